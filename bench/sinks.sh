#!/usr/bin/env bash
# sinks.sh - webhook deliveries per second to nginx, and the delivery
# latency of live outputs.
#
# Throughput: `attune load --out` writes EVENTS shopper events of the last
# minute, imported into a new data directory whose rules hold one plain
# trigger per item view (`on: type == "view_item"`), so the output logs hold
# one trigger output per view. Then `attune serve` starts with one webhook
# sink (CONCURRENCY attempts in flight) pointing at nginx (one worker,
# answering 200 to every POST), pinned to SERVER_CPU and CLIENT_CPU, and
# the time from the start until GET /v1/sinks counts every output
# delivered gives deliveries/s. The sink's position is removed between
# runs; median of RUNS.
#
# Latency: a new data directory, the same sink, and `attune load` sending
# LIVE_RATE events/s for LIVE_SECONDS; the figures are the sink's own
# (GET /v1/sinks): from reading an output off the bus to its 2xx
# (latency_ms), and from the output's event time, which `attune load` sets
# at sending, to its 2xx (event_latency_ms, wall clock).
#
# Usage: bench/sinks.sh    (ATTUNE=path/to/attune, default build/release/attune)
# Knobs: EVENTS=200000 RUNS=3 CONCURRENCY=4 LIVE_RATE=1000 LIVE_SECONDS=10
#        SERVER_CPU=0 CLIENT_CPU=1
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ATTUNE=${ATTUNE:-$root/build/release/attune}
EVENTS=${EVENTS:-200000}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-4}
LIVE_RATE=${LIVE_RATE:-1000}
LIVE_SECONDS=${LIVE_SECONDS:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
. "$root/bench/lib.sh"
bench_begin sinks
for tool in taskset curl jq; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh bench)"
done
[ -x "$NGINX" ] || die "nginx not found (scripts/deps.sh bench)"

# --- the receiver: nginx answering 200 to every POST
nport=$(free_port)
nginx_conf "$NGINX" "$work" "$nport" "    location /hook {
      client_body_buffer_size 64k;
      return 200 'ok';
    }"
taskset -c "$CLIENT_CPU" "$NGINX" -p "$work" -c "$work/nginx.conf" >/dev/null 2>&1 &
pids+=($!)
wait_url "http://127.0.0.1:$nport/hook" "${pids[-1]}" || die "nginx did not come up"

cat >"$work/c.yaml" <<YAML
stream:
  idle_tick: 200ms
triggers:
  - name: viewed
    on: type == "view_item"
sinks:
  webhooks:
    - name: bench
      url: http://127.0.0.1:$nport/hook
      secret: bench-secret-0123
      concurrency: $CONCURRENCY
YAML

# --- throughput over a backlog of outputs
start=$(date -u -d '-60 seconds' +%Y-%m-%dT%H:%M:%SZ)
"$ATTUNE" load --out "$work/events.ndjson" --events "$EVENTS" --rate $((EVENTS / 50)) \
    --users 10000 --anonymous 0 --seed 7 --start-time "$start" 2>/dev/null
"$ATTUNE" import -c "$work/c.yaml" -d "$work/data" "$work/events.ndjson" >/dev/null 2>&1
outputs=$("$ATTUNE" replay --outputs -d "$work/data" | wc -l)
echo "backlog: $EVENTS events imported, $outputs trigger outputs to deliver"

rates=()
for r in $(seq "$RUNS"); do
    rm -rf "$work/data/sinks"
    port=$(free_port)
    t0=$(date +%s.%N)
    taskset -c "$SERVER_CPU" "$ATTUNE" serve -c "$work/c.yaml" --listen "127.0.0.1:$port" \
        --data-dir "$work/data" >"$work/attune.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_url "http://127.0.0.1:$port/healthz" "$pid" || { cat "$work/attune.log" >&2; die "attune did not come up"; }
    while :; do
        ok=$(curl -s "http://127.0.0.1:$port/v1/sinks" | jq '.sinks[0].counts.ok')
        [ "$ok" -ge "$outputs" ] && break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    attempts=$(curl -s "http://127.0.0.1:$port/v1/sinks" | jq '.sinks[0].counts.attempts')
    stop_server
    rate=$(awk -v n="$outputs" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
    echo "run $r: $outputs outputs delivered in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s ($rate/s, $attempts attempts, including start-up)"
    rates+=("$rate")
done
med=$(printf '%s\n' "${rates[@]}" | median_of)
echo "deliveries/s (concurrency $CONCURRENCY, median of $RUNS): $med"

# --- latency of live outputs
port=$(free_port)
taskset -c "$SERVER_CPU" "$ATTUNE" serve -c "$work/c.yaml" --listen "127.0.0.1:$port" \
    --data-dir "$work/live" >"$work/attune.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_url "http://127.0.0.1:$port/readyz" "$pid" || die "attune did not come up"
taskset -c "$CLIENT_CPU" "$ATTUNE" load --url "http://127.0.0.1:$port" --rate "$LIVE_RATE" \
    --duration "${LIVE_SECONDS}s" --users 10000 --anonymous 0 --batch 10 --connections 2 \
    --seed 8 >"$work/load.log" 2>&1
sleep 1
s=$(curl -s "http://127.0.0.1:$port/v1/sinks" | jq -c '.sinks[0]')
stop_server
echo "live: $LIVE_RATE events/s for $LIVE_SECONDS s: $(jq '.counts.ok' <<<"$s") outputs delivered"
echo "latency bus->2xx: p50 $(jq '.latency_ms.p50' <<<"$s") ms, p99 $(jq '.latency_ms.p99' <<<"$s") ms"
echo "latency event time->2xx: p50 $(jq '.event_latency_ms.p50' <<<"$s") ms, p99 $(jq '.event_latency_ms.p99' <<<"$s") ms"
