#!/usr/bin/env bash
# push.sh - latency from POST /v1/events to the Server-Sent Event it
# causes, and memory per open SSE connection and per WebSocket (issue: push).
#
# For each rate of RATES (events/s): a new data directory, `attune serve`
# pinned to SERVER_CPU with the trigger `ping` (on: type == "ping": final
# at once, so it fires on arrival), and bench_push pinned to CLIENT_CPU:
# USERS subscribers on GET /v1/users/{id}/stream, open-loop batches of
# BATCH ping events over CONNS connections for DURATION seconds, each
# event for the next user in turn. It prints send->ack, ack->sse and
# send->sse (p50/p99/p99.9, from each batch's intended send time, after a
# WARMUP) and fdatasync's p50/p99 on the data directory's disk (400
# back-to-back appends of 4 KiB); this script adds the server's CPU use over
# the run (user + system, % of one core) and "fdatasync paced": the same
# disk's sync of appends of the bytes one of the run's group commits wrote,
# at the pace they came, into a file preallocated like a log segment. fsync
# is the default (batch: group commit). BENCH_TMP puts the data directory
# on another file system (say, one with a journal).
#
# Then memory: MEM_CONNS SSE streams, then MEM_CONNS WebSockets, opened to
# an idle server (RSS before and after, divided by the connections).
#
# Usage: bench/push.sh    (ATTUNE=path/to/attune, default build/release/attune)
# Knobs: RATES="1000 10000 50000" USERS=1000 BATCH=10 CONNS=32 DURATION=15
#        WARMUP=3 MEM_CONNS=10000 SERVER_CPU=0 CLIENT_CPU=1
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ATTUNE=${ATTUNE:-$root/build/release/attune}
BENCH_PUSH=${BENCH_PUSH:-$(dirname "$ATTUNE")/bench/bench_push}
RATES=${RATES:-1000 10000 50000}
USERS=${USERS:-1000}
BATCH=${BATCH:-10}
CONNS=${CONNS:-32}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
MEM_CONNS=${MEM_CONNS:-10000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
. "$root/bench/lib.sh"
bench_begin push
[ -x "$BENCH_PUSH" ] || die "no bench_push at $BENCH_PUSH (make release)"
command -v taskset >/dev/null || die "taskset not found (scripts/deps.sh bench)"
ulimit -n $((MEM_CONNS + 1024)) 2>/dev/null || die "cannot raise the open files limit to $((MEM_CONNS + 1024))"

cat >"$work/push.yaml" <<'YAML'
triggers:
  - name: ping
    on: type == "ping"
YAML

start_server() { # data dir
    port=$(free_port)
    taskset -c "$SERVER_CPU" "$ATTUNE" serve -c "$work/push.yaml" --listen "127.0.0.1:$port" \
        --data-dir "$1" --set http.max_connections=$((MEM_CONNS + 1000)) >"$work/attune.log" 2>&1 &
    pid=$!
    wait_url "http://127.0.0.1:$port/readyz" "$pid" && return 0
    cat "$work/attune.log" >&2
    die "attune did not come up"
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }

echo "POST /v1/events -> SSE: $USERS subscribers, batches of $BATCH on $CONNS connections, ${DURATION}s per rate (${WARMUP}s warm-up), server on cpu $SERVER_CPU, load on cpu $CLIENT_CPU"
for rate in $RATES; do
    rm -rf "$work/data"
    start_server "$work/data"
    c0=$(cpu_ticks)
    t0=$(date +%s.%N)
    echo "rate $rate events/s:"
    taskset -c "$CLIENT_CPU" "$BENCH_PUSH" "127.0.0.1:$port" "$USERS" "$rate" "$DURATION" \
        "$BATCH" "$CONNS" "$WARMUP" "$work/data" | sed 's/^/  /' || echo "  (events were lost)"
    c1=$(cpu_ticks)
    t1=$(date +%s.%N)
    hz=$(getconf CLK_TCK)
    awk -v a="$c0" -v b="$c1" -v x="$t0" -v y="$t1" -v hz="$hz" \
        'BEGIN { printf "  server CPU: %.0f%% of one core over the run\n", 100 * (b - a) / hz / (y - x) }'
    m=$(curl -s "http://127.0.0.1:$port/metrics")
    grep -E '^attune_(push_messages_total|push_dropped_total|events_accepted_total|output_latency_early_seconds|log_zeroed_bytes_total)[ {_]' \
        <<<"$m" | sed 's/^/  /' || true
    stop_server
    # The machine's sync for this run's group commits: appends of the bytes
    # one commit wrote, at the pace they came, into a preallocated file.
    commits=$(awk '$1 == "attune_log_commits_total" { print $2 }' <<<"$m")
    logb=$(awk '$1 == "attune_log_bytes" { print $2 }' <<<"$m")
    if [ "${commits:-0}" -gt 0 ]; then
        per=$(awk -v b="$logb" -v c="$commits" 'BEGIN { printf "%d", b / c }')
        gap=$(awk -v d="$DURATION" -v c="$commits" 'BEGIN { printf "%.0f", d * 1e6 / c }')
        printf '  the same pace: %s bytes a commit, one every %s us (%s commits)\n' "$per" "$gap" "$commits"
        taskset -c "$CLIENT_CPU" "$BENCH_PUSH" fsync "$work" "$per" "$gap" 400 |
            sed 's/^  fdatasync/    fdatasync paced/; s/^/  /'
    fi
done

# --- memory per open connection, SSE then WebSocket
mem_of() { # kind (sse|ws)
    rm -rf "$work/data"
    start_server "$work/data"
    sleep 1
    rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
    BENCH_PUSH_WS=$([ "$1" = ws ] && echo 1 || echo 0) taskset -c "$CLIENT_CPU" "$BENCH_PUSH" \
        "127.0.0.1:$port" "$MEM_CONNS" 0 0 "$BATCH" 1 0 "$work" >"$work/mem.log" 2>&1 &
    hold=$!
    for _ in $(seq 100); do
        open=$(curl -s "http://127.0.0.1:$port/metrics" |
            awk '$1 ~ /^attune_push_connections/ { n += $2 } END { print n + 0 }')
        [ "$open" -ge "$MEM_CONNS" ] && break
        sleep 0.2
    done
    sleep 1
    rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
    kill "$hold" 2>/dev/null || true
    wait "$hold" 2>/dev/null || true
    awk -v a="$rss0" -v b="$rss1" -v n="$open" -v k="$1" \
        'BEGIN { printf "memory: %d open %s connections: RSS %d -> %d KiB, %.0f bytes per connection\n", n, k == "ws" ? "WebSocket" : "SSE", a, b, (b - a) * 1024 / (n > 0 ? n : 1) }'
    stop_server
}
mem_of sse
mem_of ws
