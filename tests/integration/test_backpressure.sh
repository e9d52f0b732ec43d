#!/usr/bin/env bash
# test_backpressure.sh - bounded queues: under a flood of maximum-size
# batches from many connections the server answers 429 with Retry-After,
# stays responsive, loses nothing it acknowledged, and its RSS stays under
# max_memory + 64 MiB. Runs the unsanitized build (ASan's shadow memory and
# quarantine would swamp the RSS figure) when there is one.
source "$(dirname "$0")/common.sh"
PLAIN=${AT_BUILD_DIR:-}/../dev/attune
[ -x "$PLAIN" ] && ATTUNE=$PLAIN

# The writer is slowed down (each fsync takes 20 ms more, through the
# power-loss shim) so that it, not the parser, is the bottleneck.
MAXMEM_MB=16
at_build_powerloss
AT_SERVE_ENV=(LD_PRELOAD="$AT_WORK/powerloss.so" POWERLOSS_DIR="$T/data"
    POWERLOSS_JOURNAL="$T/journal" POWERLOSS_SYNC_DELAY_US=20000)
start_server "$T/data" --fsync always --set max_memory=${MAXMEM_MB}MiB --set http.max_connections=256

# ~1 MiB bodies of 400 events of ~2.5 KiB.
python3 - "$T/body.json" <<'PY'
import json, sys
evs = [{"type": "view_item", "user_id": str(i), "item_id": str(i % 97),
        "properties": {"a": "x" * 800, "b": "y" * 800, "c": "z" * 800}} for i in range(400)]
open(sys.argv[1], "w").write(json.dumps({"events": evs}))
PY
size=$(stat -c %s "$T/body.json")
check "body is close to 1 MiB" test "$size" -gt 900000

flood() {
    for _ in $(seq 1 5); do
        curl -s -o /dev/null -w '%{http_code} %header{retry-after}\n' -H 'Content-Type: application/json' \
            --data-binary @"$T/body.json" "$(URL /v1/events)"
    done
}
pids=()
for i in $(seq 1 32); do
    flood > "$T/codes.$i" &
    pids+=($!)
done

running() {
    local p
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
}
maxrss=0
while running; do
    rss=$(awk '/VmRSS/{print $2}' /proc/$AT_PID/status)
    [ "$rss" -gt "$maxrss" ] && maxrss=$rss
    sleep 0.02
done
cat "$T"/codes.* > "$T/codes"
ok=$(grep -c '^200 $' "$T/codes" || true)
full=$(grep -c '^429 ' "$T/codes" || true)
full_retry=$(grep -c '^429 [1-9]' "$T/codes" || true)
other=$(grep -vc '^200 $\|^429 ' "$T/codes" || true)
echo "flood: $ok x 200, $full x 429, $other other; max RSS $((maxrss / 1024)) MiB"
check "some batches were accepted" test "$ok" -gt 0
check "the flood met 429" test "$full" -gt 0
check "every 429 carries Retry-After" test "$full_retry" -eq "$full"
check "no other statuses" test "$other" -eq 0
check "RSS under max_memory + 64 MiB" test "$maxrss" -lt $(((MAXMEM_MB + 64) * 1024))

# The budget is shared with the events waiting for the watermark (the
# allowed lateness, 5 s), so a client that follows Retry-After gets in once
# they are processed.
for i in $(seq 40); do
    req POST /v1/events -H 'Content-Type: application/json' --data-binary @"$T/body.json"
    [ "$STATUS" = 200 ] && break
    sleep 0.5
done
check "after the flood a batch is accepted" test "$STATUS" = 200
req GET /metrics
check "refusals counted" grep -q '^attune_batches_refused_full_total [1-9]' "$T/body"
stop_server
n=$("$ATTUNE" replay --data-dir "$T/data" | grep -c "\"type\":\"event\"")
check "every acknowledged event is in the log" test "$n" -eq $(((ok + 1) * 400))
finish
