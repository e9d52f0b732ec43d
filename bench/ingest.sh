#!/usr/bin/env bash
# ingest.sh - events per second made durable: attune vs Redis streams.
#
# The same N shopper events (from `attune load --out`, one seed) go:
#   - to `attune serve` through POST /v1/events in batches of 100 over 8
#     keep-alive connections (`attune load` at a rate far above capacity,
#     same seed, so the same events; it reports the achieved rate), and
#   - to `redis-server` as XADD events:P * e <event>, pipelined 100 deep
#     over 8 connections (bench/redis_xadd.c, built here with hiredis; one
#     thread and one poll loop, like `attune load`).
# Durable: attune --fsync batch (group commit) vs Redis appendonly yes +
# appendfsync always (one fsync per event-loop turn before replying, also a
# group commit). Not durable: attune --fsync never vs Redis appendonly no
# (and, for reference, appendonly yes + appendfsync no, which still writes
# its log like attune --fsync never does).
# The server runs on CPU 0, the client on CPU 1; both keep their data in
# the same directory ($BENCH_TMP, default build/bench). Each measurement
# runs INGEST_RUNS times (3), alternating, and the median is reported.
#
# Environment: ATTUNE (default build/release/attune), INGEST_EVENTS
# (200000), INGEST_RUNS (3), BENCH_TMP. Needs: redis-server, redis-cli,
# libhiredis-dev, taskset, python3, curl (scripts/deps.sh bench).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ATTUNE=${ATTUNE:-$root/build/release/attune}
events=${INGEST_EVENTS:-200000}
runs=${INGEST_RUNS:-3}
conns=8
batch=100
seed=20260427
source "$root/bench/lib.sh"
bench_begin ingest

# run_attune POLICY: prints the achieved events/s.
run_attune() {
    local port data="$work/attune-data" i out
    port=$(free_port)
    rm -rf "$data"
    taskset -c 0 "$ATTUNE" serve --listen "127.0.0.1:$port" --data-dir "$data" --fsync "$1" \
        2>"$work/attune.log" &
    pid=$!
    for i in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] &&
            break
        sleep 0.05
    done
    out=$(taskset -c 1 "$ATTUNE" load --url "http://127.0.0.1:$port" --rate 100000000 \
        --events "$events" --batch "$batch" --connections "$conns" --seed "$seed" --json) || true
    stop_server
    rm -rf "$data"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
n = r["events"]["acknowledged"]
if n != int(sys.argv[2]):
    sys.exit("ingest: attune acknowledged %d of %s events" % (n, sys.argv[2]))
print("%.0f" % r["events_per_s"])' "$out" "$events"
}

# run_redis APPENDONLY APPENDFSYNC: prints the achieved events/s.
run_redis() {
    local port data="$work/redis-data" i out n
    port=$(free_port)
    rm -rf "$data" && mkdir -p "$data"
    taskset -c 0 redis-server --bind 127.0.0.1 --port "$port" --dir "$data" --save "" \
        --appendonly "$1" --appendfsync "$2" --daemonize no --logfile "$work/redis.log" &
    pid=$!
    for i in $(seq 600); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    out=$(taskset -c 1 "$work/redis_xadd" 127.0.0.1 "$port" "$work/events.ndjson" "$conns" \
        "$batch") || { stop_server; exit 1; }
    n=0
    for i in $(seq 0 15); do
        n=$((n + $(redis-cli -p "$port" xlen "events:$i")))
    done
    stop_server
    rm -rf "$data"
    [ "$n" -eq "$events" ] || { echo "ingest: redis holds $n of $events events" >&2; exit 1; }
    awk '$1 == "events_per_s" { print $2 }' <<<"$out"
}

median() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

cc -O2 -o "$work/redis_xadd" "$root/bench/redis_xadd.c" -lhiredis
"$ATTUNE" load --out "$work/events.ndjson" --events "$events" --seed "$seed" >/dev/null 2>&1
bytes=$(wc -c <"$work/events.ndjson")
echo "ingest: $events events (mean $((bytes / events)) bytes of JSON), batches / pipelines of" \
    "$batch, $conns connections, server on CPU 0, client on CPU 1, median of $runs runs"
echo "ingest: $(redis-server --version | awk '{ print $1, $2, $3 }')," \
    "$("$ATTUNE" version 2>/dev/null || echo 'attune ?')"

a_batch=() r_always=() a_never=() r_no=() r_aofno=()
for k in $(seq "$runs"); do
    a_batch+=("$(run_attune batch)")
    r_always+=("$(run_redis yes always)")
    a_never+=("$(run_attune never)")
    r_no+=("$(run_redis no no)")
    r_aofno+=("$(run_redis yes no)")
    echo "ingest: run $k: attune batch ${a_batch[-1]}, redis always ${r_always[-1]}," \
        "attune never ${a_never[-1]}, redis appendonly no ${r_no[-1]}," \
        "redis appendfsync no ${r_aofno[-1]} events/s" >&2
done

row() {
    awk -v what="$1" -v a="$2" -v r="$3" -v rn="$4" \
        'BEGIN { printf "%-34s %12d %12d %8.2f   (%s)\n", what, a, r, a / r, rn }'
}
printf '%-34s %12s %12s %8s\n' "durability" "attune ev/s" "redis ev/s" "ratio"
row "fsync per group commit" "$(median "${a_batch[@]}")" "$(median "${r_always[@]}")" \
    "attune --fsync batch / redis appendfsync always"
row "no fsync" "$(median "${a_never[@]}")" "$(median "${r_no[@]}")" \
    "attune --fsync never / redis appendonly no"
row "no fsync, log still written" "$(median "${a_never[@]}")" "$(median "${r_aofno[@]}")" \
    "attune --fsync never / redis appendonly yes, appendfsync no"
