#!/usr/bin/env bash
# http.sh - GET /healthz on attune against nginx, on loopback.
#
# Both servers run pinned to core 0 (taskset), wrk runs pinned to core 1;
# `wrk -t1 -c50 -d10s` per run, runs interleaved (attune, nginx, attune, ...),
# then the median requests/s and p99 latency of each and the ratio
# attune/nginx. nginx gets one worker, access_log off, and answers the same
# JSON body and content type with `return`. Everything started here is
# stopped on exit.
#
# Usage: bench/http.sh            (ATTUNE=path/to/attune, default build/release/attune)
# Knobs: RUNS=3 DURATION=10s CONNS=50 ATTUNE_PORT=18080 NGINX_PORT=18081
#        SERVER_CPU=0 CLIENT_CPU=1
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ATTUNE=${ATTUNE:-$root/build/release/attune}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
ATTUNE_PORT=${ATTUNE_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
source "$root/bench/lib.sh"

die() { echo "http.sh: $*" >&2; exit 1; }
for tool in wrk taskset curl; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh bench)"
done
[ -x "$NGINX" ] || die "nginx not found (scripts/deps.sh bench)"
[ -x "$ATTUNE" ] || die "no attune binary at $ATTUNE (set ATTUNE=...)"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

write_nginx_conf() {
  nginx_conf "$NGINX" "$work" "$NGINX_PORT" "    location = /healthz {
      default_type application/json;
      return 200 '{\"status\":\"ok\"}';
    }"
}

run_wrk() { # name url
  local out rps p99
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$2")
  rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
  p99=$(wrk_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
  if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then
    echo "$out" | grep 'Non-2xx\|Socket errors' | sed "s/^/  $1: /" >&2
  fi
  echo "$rps" >>"$work/$1.rps"
  echo "$p99" >>"$work/$1.p99"
  printf '  %-6s run %d: %10.0f req/s  p99 %7.3f ms\n' "$1" "$run" "$rps" "$p99"
}

mkdir -p "$work/data"
taskset -c "$SERVER_CPU" "$ATTUNE" serve --listen "127.0.0.1:$ATTUNE_PORT" \
  --data-dir "$work/data" --fsync never >"$work/attune.log" 2>&1 &
pids+=($!)
wait_url "http://127.0.0.1:$ATTUNE_PORT/healthz" "${pids[-1]}" ||
  { cat "$work/attune.log" >&2; die "attune did not come up"; }

write_nginx_conf
taskset -c "$SERVER_CPU" "$NGINX" -p "$work" -c "$work/nginx.conf" >/dev/null 2>&1 &
pids+=($!)
wait_url "http://127.0.0.1:$NGINX_PORT/healthz" "${pids[-1]}" ||
  { cat "$work/nginx-error.log" >&2 || true; die "nginx did not come up"; }

echo "GET /healthz, wrk -t1 -c$CONNS -d$DURATION, servers on cpu $SERVER_CPU, wrk on cpu $CLIENT_CPU"
for run in $(seq "$RUNS"); do
  run_wrk attune "http://127.0.0.1:$ATTUNE_PORT/healthz"
  run_wrk nginx "http://127.0.0.1:$NGINX_PORT/healthz"
done

a_rps=$(median_of <"$work/attune.rps")
n_rps=$(median_of <"$work/nginx.rps")
a_p99=$(median_of <"$work/attune.p99")
n_p99=$(median_of <"$work/nginx.p99")
echo "median of $RUNS:"
printf '  attune  %10.0f req/s  p99 %7.3f ms\n' "$a_rps" "$a_p99"
printf '  nginx   %10.0f req/s  p99 %7.3f ms\n' "$n_rps" "$n_p99"
awk -v a="$a_rps" -v n="$n_rps" 'BEGIN { printf "  ratio attune/nginx: %.2f\n", a / n }'
