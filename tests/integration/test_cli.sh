#!/usr/bin/env bash
# test_cli.sh - the binary's commands: --help everywhere, version,
# check-config with line and column, replay ranges and write errors.
source "$(dirname "$0")/common.sh"

for c in serve load replay check-config; do
    check "$c --help" bash -c "'$ATTUNE' $c --help | grep -qi usage"
done
check "attune --help lists commands" bash -c "'$ATTUNE' --help | grep -q check-config"
check "version" bash -c "'$ATTUNE' version | grep -q '^attune '"
rc=0; "$ATTUNE" frobnicate 2>/dev/null || rc=$?
check "unknown command exits 2" test "$rc" -eq 2
rc=0; "$ATTUNE" serve --set shards=1 --no-such-option 2>/dev/null || rc=$?
check "serve with a bad option exits 2" test "$rc" -eq 2

cat > "$T/good.yaml" <<'YAML'
listen: 127.0.0.1:9999
fsync: always
http:
  max_body_bytes: 2MiB
mapping:
  type: event_type
  user_id: customer_id
schemas:
  purchase:
    type: object
    required: [revenue]
YAML
check "good config ok" bash -c "'$ATTUNE' check-config '$T/good.yaml' | grep -q ': ok'"

printf 'listen: 127.0.0.1:9999\nhttp:\n  max_body_bytes: lots\n' > "$T/bad1.yaml"
rc=0; "$ATTUNE" check-config "$T/bad1.yaml" 2>"$T/err1" || rc=$?
check "bad size fails" test "$rc" -eq 1
check "bad size has line 3" grep -q ':3:[0-9]*:' "$T/err1"

printf 'listen: 127.0.0.1:9999\nfsnyc: batch\n' > "$T/bad2.yaml"
rc=0; "$ATTUNE" check-config "$T/bad2.yaml" 2>"$T/err2" || rc=$?
check "unknown key fails" test "$rc" -eq 1
check "unknown key named with line 2" grep -q ':2:1:.*fsnyc' "$T/err2"

printf 'listen: [unclosed\n' > "$T/bad3.yaml"
rc=0; "$ATTUNE" check-config "$T/bad3.yaml" 2>"$T/err3" || rc=$?
check "yaml syntax error fails" test "$rc" -eq 1
check "yaml syntax error has a position" grep -q ':[0-9]*:[0-9]*:' "$T/err3"

# Mapped producer fields and replay ranges.
start_server "$T/data" --config "$T/good.yaml" --partitions 4
req POST /v1/events -H 'Content-Type: application/json' -d '{"event_type":"view_item","customer_id":"c1","event_id":"m1"}'
check "mapped fields accepted" jq_eq 'j["accepted"]' 1
req POST /v1/events -H 'Content-Type: application/json' -d '{"event":"Product Viewed","userId":"s1","messageId":"seg1","properties":{"product_id":"p9"}}'
check "Segment spec names accepted" jq_eq 'j["accepted"]' 1
stop_server
"$ATTUNE" replay --data-dir "$T/data" > "$T/all"
check "mapped user key" grep -q '"key":"u:c1"' "$T/all"
check "Segment messageId is the event_id" grep -q '"event_id":"seg1"' "$T/all"
p=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["partition"])' "$T/all")
"$ATTUNE" replay --data-dir "$T/data" --from "$p:0" --to "$p:0" > "$T/one"
check "replay --from/--to a position" test "$(wc -l < "$T/one")" -ge 1
check "replay of one partition only" bash -c "! grep -v '\"partition\":$p,' '$T/one' | grep -q ."
"$ATTUNE" replay --data-dir "$T/data" --from 2000-01-01T00:00:00Z --to 2001-01-01T00:00:00Z > "$T/none"
check "replay by receive time" test "$(wc -l < "$T/none")" -eq 0
rc=0; "$ATTUNE" replay --data-dir "$T/data" > /dev/full 2>"$T/full" || rc=$?
check "replay onto a full device exits 1" test "$rc" -eq 1
check "replay onto a full device says why" grep -q 'attune replay: ' "$T/full"
finish
