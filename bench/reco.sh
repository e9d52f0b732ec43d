#!/usr/bin/env bash
# reco.sh - GET /v1/users/{id}/recommendations served by attune against
# nginx returning a JSON body of the same size, while 1,000 events/s are
# ingested.
#
# History: `attune load --out` writes HIST_EVENTS shopper events of
# USERS known users over the last HIST_SECONDS, imported into a new data
# directory (the recommender's aggregates and the users' profiles come
# from it). Then `attune serve` runs pinned to SERVER_CPU; `attune load`
# sends 1,000 events/s (LOAD_RATE) to it for the whole measurement, pinned
# to CLIENT_CPU with wrk. wrk asks for the recommendations of users chosen
# by a Zipf law over the USERS ids (exponent ZIPF_S; user 1 the most
# asked for; each run draws its own sequence), `wrk -t1 -cCONNS
# -dDURATION`, runs interleaved with nginx (one worker, access_log off, the
# median attune answer's size as a static body), after one warm-up run of
# each that is not counted; median of RUNS. Prints requests/s, p99, the
# share of attune's answers served from kept answers, and the ratio.
#
# Usage: bench/reco.sh    (ATTUNE=path/to/attune, default build/release/attune)
# Knobs: USERS=100000 HIST_EVENTS=2000000 HIST_SECONDS=3600 LOAD_RATE=1000
#        RUNS=3 DURATION=10s CONNS=50 ZIPF_S=1.0 SERVER_CPU=0 CLIENT_CPU=1 SERVE_ARGS=
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ATTUNE=${ATTUNE:-$root/build/release/attune}
USERS=${USERS:-100000}
HIST_EVENTS=${HIST_EVENTS:-2000000}
HIST_SECONDS=${HIST_SECONDS:-3600}
LOAD_RATE=${LOAD_RATE:-1000}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
ZIPF_S=${ZIPF_S:-1.0}
SERVE_ARGS=${SERVE_ARGS:-} # more arguments for attune serve, e.g. --set reco.answers=8192
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
. "$root/bench/lib.sh"
bench_begin reco
for tool in wrk taskset curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh bench)"
done
[ -x "$NGINX" ] || die "nginx not found (scripts/deps.sh bench)"

# --- history
start=$(python3 -c "import datetime,time; print(datetime.datetime.utcfromtimestamp(time.time() - $HIST_SECONDS).strftime('%Y-%m-%dT%H:%M:%SZ'))")
rate=$(( HIST_EVENTS / HIST_SECONDS ))
"$ATTUNE" load --out "$work/hist.ndjson" --events "$HIST_EVENTS" --rate "$rate" --users "$USERS" \
    --anonymous 0 --seed 7 --start-time "$start" 2>/dev/null
t0=$(date +%s.%N)
"$ATTUNE" import -d "$work/data" "$work/hist.ndjson" 2>/dev/null >/dev/null
t1=$(date +%s.%N)
awk -v n="$HIST_EVENTS" -v u="$USERS" -v a="$t0" -v b="$t1" 'BEGIN { printf "history: %d events of %d users imported in %.1f s (%.0f events/s)\n", n, u, b - a, n / (b - a) }'
rm -f "$work/hist.ndjson"

# --- the servers
port=$(free_port)
# shellcheck disable=SC2086 # SERVE_ARGS: words
taskset -c "$SERVER_CPU" "$ATTUNE" serve --listen "127.0.0.1:$port" --data-dir "$work/data" $SERVE_ARGS \
    >"$work/attune.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_url "http://127.0.0.1:$port/readyz" "$pid" || { cat "$work/attune.log" >&2; die "attune did not come up"; }

# the median answer's size, over 200 users drawn like wrk's
sizes=$(python3 - "$USERS" "$ZIPF_S" "$port" <<'EOF'
import random, sys, urllib.request
n, s, port = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
w = [1 / (i ** s) for i in range(1, n + 1)]
random.seed(1)
out, known = [], 0
for u in random.choices(range(1, n + 1), weights=w, k=200):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/users/{u}/recommendations?n=10") as r:
        b = r.read()
        out.append(len(b))
        known += b'"known":true' in b
out.sort()
print(out[len(out) // 2], out[0], out[-1], known * 100 // len(out))
EOF
)
read -r size smin smax known <<<"$sizes"
echo "answer size: median $size bytes (min $smin, max $smax); $known% of the users asked for have a history"
curl -s "http://127.0.0.1:$port/v1/users/1/recommendations?n=10" >"$work/sample.json"
echo "sample: $(head -c 300 "$work/sample.json")..."
body=$(python3 -c "print('{\"items\":[\"' + 'x' * max(0, $size - 14) + '\"]}')")

nport=$(free_port)
nginx_conf "$NGINX" "$work" "$nport" "    location /v1/users/ {
      default_type application/json;
      return 200 '$body';
    }"
taskset -c "$SERVER_CPU" "$NGINX" -p "$work" -c "$work/nginx.conf" >/dev/null 2>&1 &
pids+=($!)
wait_url "http://127.0.0.1:$nport/v1/users/1/recommendations" "${pids[-1]}" || die "nginx did not come up"

cat >"$work/zipf.lua" <<EOF
local n, s = $USERS, $ZIPF_S
local cdf, sum = {}, 0
for i = 1, n do sum = sum + 1 / (i ^ s); cdf[i] = sum end
for i = 1, n do cdf[i] = cdf[i] / sum end
math.randomseed(tonumber(os.getenv("ZIPF_SEED") or "42"))
request = function()
  local r, lo, hi = math.random(), 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < r then lo = mid + 1 else hi = mid end
  end
  return wrk.format("GET", "/v1/users/" .. lo .. "/recommendations?n=10")
end
EOF

# --- 1,000 events/s for the whole measurement
taskset -c "$CLIENT_CPU" "$ATTUNE" load --url "http://127.0.0.1:$port" --rate "$LOAD_RATE" \
    --duration 3600s --users "$USERS" --anonymous 0 --batch 10 --connections 2 --seed 8 \
    >"$work/load.log" 2>&1 &
pids+=($!)
sleep 2

answers() { # kept-answer hits and builds so far
    curl -s "http://127.0.0.1:$port/metrics" |
        awk '$1 == "attune_reco_answers_cached_total" { h = $2 } $1 == "attune_reco_answers_built_total" { b = $2 } END { print h + 0, b + 0 }'
}
run_wrk() { # name port
    local out rps p99 h0 b0 h1 b1 share=""
    [ "$1" = attune ] && read -r h0 b0 <<<"$(answers)"
    out=$(ZIPF_SEED=$((42 + run)) taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$work/zipf.lua" \
        "http://127.0.0.1:$2")
    if [ "$1" = attune ]; then
        read -r h1 b1 <<<"$(answers)"
        share=$(awk -v h=$((h1 - h0)) -v b=$((b1 - b0)) 'BEGIN { printf "  %.1f%% kept answers", (h + b > 0) ? 100 * h / (h + b) : 0 }')
    fi
    [ "$run" = 0 ] && { printf '  %-6s warm-up: %10.0f req/s%s\n' "$1" "$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')" "$share"; return; }
    rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
    p99=$(wrk_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
    if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then
        echo "$out" | grep 'Non-2xx\|Socket errors' | sed "s/^/  $1: /" >&2
    fi
    echo "$rps" >>"$work/$1.rps"
    echo "$p99" >>"$work/$1.p99"
    printf '  %-6s run %d: %10.0f req/s  p99 %7.3f ms%s\n' "$1" "$run" "$rps" "$p99" "$share"
}
echo "GET /v1/users/{zipf($ZIPF_S) of $USERS}/recommendations?n=10, wrk -t1 -c$CONNS -d$DURATION, servers on cpu $SERVER_CPU, wrk and $LOAD_RATE events/s on cpu $CLIENT_CPU"
for run in $(seq 0 "$RUNS"); do # run 0: a warm-up of each, not counted
    run_wrk attune "$port"
    run_wrk nginx "$nport"
done
a_rps=$(median_of <"$work/attune.rps")
n_rps=$(median_of <"$work/nginx.rps")
a_p99=$(median_of <"$work/attune.p99")
n_p99=$(median_of <"$work/nginx.p99")
curl -s "http://127.0.0.1:$port/metrics" | grep -E "^attune_(reco_items|reco_bytes|reco_answers_cached_total|reco_answers_built_total|users|events_processed_total) " | sed 's/^/  /' || true
echo "median of $RUNS:"
printf '  attune  %10.0f req/s  p99 %7.3f ms\n' "$a_rps" "$a_p99"
printf '  nginx   %10.0f req/s  p99 %7.3f ms\n' "$n_rps" "$n_p99"
awk -v a="$a_rps" -v n="$n_rps" 'BEGIN { printf "  ratio attune/nginx: %.2f\n", a / n }'
