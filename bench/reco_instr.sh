#!/usr/bin/env bash
# reco_instr.sh - instructions per recommendation answer built on the shard
# (the miss path of bench/reco.sh), counted by callgrind, so that changes
# to the blend can be compared on a noisy machine.
#
# The history of bench/reco.sh (HIST_EVENTS shopper events of USERS users
# over the last hour) is imported; `attune serve` runs under callgrind,
# collecting inside at_reco_user only, with reco.cache long (merged item
# data, once built, is reused for the whole run). READS users (spread over
# the first 5,000 ids) are asked for their recommendations twice, each
# request with its own `exclude=` so that no kept answer serves it:
#   first: merged item data is built for every seed on the way (a cold
#          server, or reco.cache later);
#   again: the same users, merged item data reused (a warm server).
# Then a second server under callgrind, collecting inside the HTTP loop
# only, answers the same request KEPT times over one kept-alive
# connection: the answer is built once and then served as a kept answer,
# so the figure is what a kept answer costs the HTTP thread (its user-space
# instructions; the kernel's TCP path is not counted).
# Prints the instructions per read of each pass.
#
# Usage: bench/reco_instr.sh    (ATTUNE=path/to/attune, default build/release/attune)
# Knobs: USERS=100000 HIST_EVENTS=2000000 READS=300 KEPT=2000
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ATTUNE=${ATTUNE:-$root/build/release/attune}
USERS=${USERS:-100000}
HIST_EVENTS=${HIST_EVENTS:-2000000}
READS=${READS:-300}
KEPT=${KEPT:-2000}
. "$root/bench/lib.sh"
bench_begin reco_instr
for tool in valgrind callgrind_control callgrind_annotate curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh bench)"
done
start=$(python3 -c "import datetime,time; print(datetime.datetime.utcfromtimestamp(time.time() - 3600).strftime('%Y-%m-%dT%H:%M:%SZ'))")
"$ATTUNE" load --out "$work/hist.ndjson" --events "$HIST_EVENTS" --rate $((HIST_EVENTS / 3600)) \
    --users "$USERS" --anonymous 0 --seed 7 --start-time "$start" 2>/dev/null
"$ATTUNE" import -d "$work/data" "$work/hist.ndjson" >/dev/null 2>&1
rm -f "$work/hist.ndjson"
port=$(free_port)
# serve_cg OUT FUNCTION [serve options]: `attune serve` under callgrind,
# collecting inside FUNCTION only, into OUT; waits until it is ready ($pid)
serve_cg() {
    local out=$1 fn=$2
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="$fn" \
        "$ATTUNE" serve --listen "127.0.0.1:$port" --data-dir "$work/data" "$@" >"$out.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return
        kill -0 "$pid" 2>/dev/null || { cat "$out.log" >&2; die "attune did not come up"; }
        sleep 1
    done
}
serve_cg "$work/cg.out" at_reco_user --set reco.cache=3600s
callgrind_control -z "$pid" >/dev/null 2>&1
for pass in first again; do
    for i in $(seq "$READS"); do
        echo "http://127.0.0.1:$port/v1/users/$(((i * 7919) % 5000 + 1))/recommendations?n=10&exclude=$pass$i"
    done | xargs -n 50 curl -sf >/dev/null
    callgrind_control -d "$pid" >/dev/null 2>&1
done
sleep 1
kill "$pid"
wait "$pid" 2>/dev/null || true

# the kept answer: the same request KEPT times on one connection
serve_cg "$work/kept.out" at_http__loop_main
url="http://127.0.0.1:$port/v1/users/1/recommendations?n=10"
curl -sf "$url" >/dev/null
callgrind_control -z "$pid" >/dev/null 2>&1
for _ in $(seq "$KEPT"); do echo "$url"; done | xargs curl -sf >/dev/null
callgrind_control -d "$pid" >/dev/null 2>&1
sleep 1
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'; }
first=$(total "$work/cg.out.1")
again=$(total "$work/cg.out.2")
kept=$(total "$work/kept.out.1")
echo "at_reco_user, instructions per read over $READS reads (callgrind):"
awk -v f="$first" -v a="$again" -v n="$READS" 'BEGIN {
    printf "  merged item data built on the way: %10.0f\n", f / n
    printf "  merged item data reused:           %10.0f\n", a / n }'
awk -v k="$kept" -v n="$KEPT" 'BEGIN {
    printf "HTTP loop, instructions per kept answer served over %d requests (callgrind):\n", n
    printf "  kept answer:                       %10.0f\n", k / n }'
