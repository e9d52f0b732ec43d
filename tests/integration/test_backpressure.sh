#!/usr/bin/env bash
# test_backpressure.sh - bounded queues: under a flood of maximum-size
# batches from many connections the server answers 429 with Retry-After,
# stays responsive, loses nothing it acknowledged, and its RSS stays under
# max_memory + 64 MiB. Runs the unsanitized build (ASan's shadow memory and
# quarantine would swamp the RSS figure) when there is one.
source "$(dirname "$0")/common.sh"
PLAIN=${AT_BUILD_DIR:-}/../dev/attune
[ -x "$PLAIN" ] && ATTUNE=$PLAIN

MAXMEM_MB=16
start_server "$T/data" --fsync always --set max_memory=${MAXMEM_MB}MiB --set http.max_connections=256

# ~1 MiB bodies of 400 events of ~2.5 KiB.
python3 - "$T/body.json" <<'PY'
import json, sys
evs = [{"type": "view_item", "user_id": str(i), "item_id": str(i % 97),
        "properties": {"blob": "x" * 2400}} for i in range(400)]
open(sys.argv[1], "w").write(json.dumps({"events": evs}))
PY
size=$(stat -c %s "$T/body.json")
check "body is close to 1 MiB" test "$size" -gt 900000

flood() {
    for _ in $(seq 1 12); do
        curl -s -o /dev/null -w '%{http_code} %header{retry-after}\n' -H 'Content-Type: application/json' \
            --data-binary @"$T/body.json" "$(URL /v1/events)"
    done
}
for i in $(seq 1 48); do flood > "$T/codes.$i" & done

maxrss=0
while [ "$(jobs -r | wc -l)" -gt 0 ]; do
    rss=$(awk '/VmRSS/{print $2}' /proc/$SERVER_PID/status)
    [ "$rss" -gt "$maxrss" ] && maxrss=$rss
    sleep 0.02
done
wait || true
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

req POST /v1/events -H 'Content-Type: application/json' --data-binary @"$T/body.json"
check "after the flood a batch is accepted" test "$STATUS" = 200
req GET /metrics
check "refusals counted" grep -q '^attune_batches_refused_full_total [1-9]' "$T/body"
stop_server
n=$("$ATTUNE" replay --data-dir "$T/data" | wc -l)
check "every acknowledged event is in the log" test "$n" -eq $(((ok + 1) * 400))
finish
