#!/usr/bin/env bash
# test_stream.sh - stream processing through the real binary: segments and
# triggers from the config file and the API, profiles, read-your-writes,
# identity merges, the output log, restart with checkpoints (the state
# digest of the recovered data equals a replay from scratch), and metrics.
source "$(dirname "$0")/common.sh"

cat >"$T/rules.yaml" <<'YAML'
stream:
  lateness: 1s
  idle_tick: 200ms
checkpoint:
  interval: 1s
segments:
  - name: high_intent
    filter: type == "view_item"
    group_by: item_id
    window: 10m
    having: count > 3
  - name: big_spender
    filter: type == "purchase"
    window: 30d
    having: sum(properties.revenue) > 500
  - name: electronics_fan
    when: affinity("electronics") > 0.4 && profile.counters.purchase >= 1
triggers:
  - name: cart_abandoned
    on: type == "add_to_cart"
    unless: type == "purchase"
    within: 2s
    action: {offer: "DISCOUNT10"}
YAML
check "check-config accepts the rules" "$ATTUNE" check-config "$T/rules.yaml"
cat >"$T/bad.yaml" <<'YAML'
segments:
  - name: broken
    filter: type == "view_item"
    window: 10m
    having: count >> 3
YAML
out=$("$ATTUNE" check-config "$T/bad.yaml" 2>&1 || true)
check "check-config names the file's line and column inside the expression" \
    grep -q 'bad.yaml:5:20: segments\[0\].having: ' <<<"$out"

start_server "$T/data" --config "$T/rules.yaml"

# --- high_intent: the fourth view is announced at once (final at once)
for i in 1 2 3 4; do
    req POST /v1/events -H 'Content-Type: application/json' -d "{\"type\":\"view_item\",\"user_id\":\"1\",\"item_id\":\"987\",\"category\":\"electronics/phones\",\"event_id\":\"v$i\"}"
done
check "events accepted" test "$STATUS" = 200
pos=$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["positions"]))')
req GET "/v1/users/u:1?min_position=$pos"
check "profile answers 200" test "$STATUS" = 200
check "read-your-writes: all four views counted" jq_eq 'j["counters"]["view_item"]' 4
check "high_intent is among the segments" jq_eq '[s["name"] for s in j["segments"]]' '["high_intent"]'
check "the group is named" jq_eq 'j["segments"][0]["groups"][0]["group"]' 987
req GET /v1/users/1
check "a bare id is a user id" jq_eq 'j["user"]' 'u:1'
req GET /v1/users/u:nobody
check "unknown user is 404" test "$STATUS" = 404
req GET /v1/segments/high_intent
check "segment definition with its member count" jq_eq 'j["members"]' 1
check "final at once" jq_eq 'j["final_at_once"]' true
req GET /v1/segments/high_intent/members
check "members page" jq_eq 'j["members"]' '["u:1"]'

# --- rule API: versions, errors with positions, conflicts
req PUT /v1/segments/two_views -d '{"filter":"type == \"view_item\"","window":"1h","having":"count >= 2"}'
check "PUT a segment" jq_eq 'j["version"]' 1
req PUT /v1/segments/two_views -d '{"filter":"type == \"view_item\"","window":"1h","having":"count >= 3"}'
check "PUT again: version 2" jq_eq 'j["version"]' 2
req PUT /v1/segments/two_views -d '{"filter":"type == \"view_item\"","window":"1h","having":"count >= 3"}'
check "the same definition: no new version" jq_eq 'j["version"]' 2
req PUT /v1/segments/bad -d '{"filter":"type == \"view_item\" &&","window":"1h","having":"count >= 2"}'
check "bad expression: 400" test "$STATUS" = 400
check "the error names the field" jq_eq 'j["error"]["field"]' filter
check "and the position" jq_eq 'j["error"]["message"][:12]' 'filter: 1:23'
req PUT /v1/segments/bad -d '{"window":"1h","havin":"count >= 2"}'
check "unknown field refused" jq_eq 'j["error"]["field"]' havin
req PUT /v1/segments/needs_two -d '{"when":"in_segment(\"two_views\")"}'
check "a segment over another" test "$STATUS" = 200
req DELETE /v1/segments/two_views
check "deleting a segment in use: 409" test "$STATUS" = 409
req DELETE /v1/segments/nope
check "deleting an unknown segment: 404" test "$STATUS" = 404
req PUT /v1/triggers/t1 -d '{"unless":"true"}'
check "a trigger without on: 400" jq_eq 'j["error"]["field"]' on
# rules.json cannot be written (here: a directory in its place): 500
# internal, and nothing changed
mv "$T/data/rules.json" "$T/rules.json.saved"
mkdir "$T/data/rules.json"
req PUT /v1/segments/unwritable -d '{"filter":"type == \"view_item\"","window":"1h","having":"count >= 2"}'
check "rules.json not writable: 500" test "$STATUS" = 500
check "with code internal" jq_eq 'j["error"]["code"]' internal
rmdir "$T/data/rules.json"
mv "$T/rules.json.saved" "$T/data/rules.json"
req GET /v1/segments/unwritable
check "and nothing changed" test "$STATUS" = 404
req GET /v1/segments
check "the list" jq_eq 'sorted(s["name"] for s in j["segments"])' '["big_spender", "electronics_fan", "high_intent", "needs_two", "two_views"]'

# versions of a name continue after a delete, and ids are never given out
# twice (also after a restart: see below)
jget() { printf '%s' "$BODY" | python3 -c 'import json,sys; print(eval(sys.argv[1], {"j": json.load(sys.stdin)}))' "$1"; }
req PUT /v1/segments/again -d '{"when":"profile.counters.view_item >= 100"}'
check "a rule to delete" jq_eq 'j["version"]' 1
again_id=$(jget 'j["id"]')
req DELETE /v1/segments/again
req PUT /v1/segments/again -d '{"when":"profile.counters.view_item >= 100"}'
check "put again after its delete: the next version" jq_eq 'j["version"]' 2
check "with a new id" test "$(jget 'j["id"]')" -gt "$again_id"
again_id=$(jget 'j["id"]')
req DELETE /v1/segments/again
check "deleted again (the highest id in force is gone)" test "$STATUS" = 200

# a rollout to 50% of "roll" takes u:r4 (not u:r1): with another filter it
# cannot take the state over, so u:r4 leaves version 1, and the reads show
# only the version acting for each user
req PUT /v1/segments/roll -d '{"filter":"type == \"view_item\"","window":"1h","having":"count >= 1"}'
req POST /v1/events -d '{"events":[{"type":"view_item","user_id":"r1","item_id":"1"},{"type":"view_item","user_id":"r4","item_id":"1"}]}'
pos=$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["positions"]))')
req GET "/v1/users/u:r4?min_position=$pos"
check "u:r4 is in roll" jq_eq '[[s["name"], s["version"]] for s in j["segments"]]' '[["roll", 1]]'
req PUT /v1/segments/roll -d '{"rollout":"50%","filter":"type == \"page_view\"","window":"1h","having":"count >= 1"}'
check "a candidate for half the users" jq_eq 'j["version"]' 2
ok=""
for i in $(seq 50); do
    req GET /v1/users/u:r4
    if jq_eq 'j["segments"]' '[]' 2>/dev/null; then ok=1; break; fi
    at_sleep_ms 100
done
check "the user the rollout took left version 1" test -n "$ok"
req GET /v1/users/u:r1
check "the other stays in version 1" jq_eq '[[s["name"], s["version"]] for s in j["segments"]]' '[["roll", 1]]'
req GET /v1/segments/roll/members
check "members: only the one left" jq_eq 'j["members"]' '["u:r1"]'
ok=""
for i in $(seq 50); do
    req GET /v1/segments/roll
    if jq_eq '[[v["version"], v["members"]] for v in j["versions"]]' '[[1, 1], [2, 0]]' 2>/dev/null; then ok=1; break; fi
    at_sleep_ms 100
done
check "member counts per version" test -n "$ok"
req DELETE /v1/segments/roll
check "roll deleted" test "$STATUS" = 200

# --- the absence trigger fires after 2 s without a purchase
req POST /v1/events -d '{"type":"add_to_cart","user_id":"2","item_id":"5"}'
req POST /v1/events -d '{"type":"add_to_cart","user_id":"3","item_id":"5"}'
req POST /v1/events -d '{"type":"purchase","user_id":"3","item_id":"5","properties":{"revenue":600}}'
fired=""
for i in $(seq 100); do
    req GET /v1/users/u:2
    if jq_eq 'len(j["triggers"])' 1 2>/dev/null; then fired=1; break; fi
    at_sleep_ms 100
done
check "cart_abandoned fired for the user who did not buy (ticks moved the watermark)" test -n "$fired"
check "with its action" jq_eq 'j["triggers"][0]["action"]' '{"offer": "DISCOUNT10"}'
req GET /v1/users/u:3
check "not for the one who bought" jq_eq 'len(j["triggers"])' 0
# a new version of a trigger: the earlier fire keeps its name and version
req PUT /v1/triggers/wished -d '{"on":"type == \"add_to_wishlist\"","action":{"offer":"A"}}'
check "a plain trigger" jq_eq 'j["version"]' 1
req POST /v1/events -d '{"type":"add_to_wishlist","user_id":"5","item_id":"5"}'
req PUT /v1/triggers/wished -d '{"on":"type == \"add_to_wishlist\"","action":{"offer":"B"}}'
check "a new version of the trigger" jq_eq 'j["version"]' 2
ok=""
for i in $(seq 50); do
    req GET /v1/users/u:5
    if jq_eq '[[t.get("name"), t.get("version"), "action" in t] for t in j["triggers"]]' '[["wished", 1, false]]' 2>/dev/null; then ok=1; break; fi
    at_sleep_ms 100
done
check "the fire of version 1 keeps its name and version (its action went with it)" test -n "$ok"
ok=""
for i in $(seq 50); do
    req GET /v1/users/u:3
    if jq_eq '[s["name"] for s in j["segments"]]' '["big_spender"]' 2>/dev/null; then ok=1; break; fi
    at_sleep_ms 100
done
check "big_spender (sum, announced once final)" test -n "$ok"

# --- identity: an anonymous visitor's views move to the user
for i in 1 2 3; do
    req POST /v1/events -d "{\"type\":\"view_item\",\"anonymous_id\":\"anon-9\",\"item_id\":\"42\",\"event_id\":\"a$i\"}"
done
req POST /v1/events -d '{"type":"identify","user_id":"9","anonymous_id":"anon-9","properties":{"plan":"gold"}}'
req POST /v1/events -d '{"type":"view_item","user_id":"9","item_id":"42","event_id":"u9"}'
merged=""
for i in $(seq 50); do
    req GET /v1/users/u:9
    if jq_eq 'j.get("counters",{}).get("view_item")' 4 2>/dev/null; then merged=1; break; fi
    at_sleep_ms 100
done
check "the anonymous views counted for the user" test -n "$merged"
check "traits from identify" jq_eq 'j["traits"]["plan"]' gold
check "high_intent for the merged user" jq_eq '"high_intent" in [s["name"] for s in j["segments"]]' true
req GET /v1/users/a:anon-9
check "the anonymous id reads the user" jq_eq 'j["user"]' 'u:9'

req GET /metrics
check "processing metrics" grep -q '^attune_events_processed_total [1-9]' "$T/body"
check "output metrics" grep -q '^attune_outputs_early_total [1-9]' "$T/body"
check "latency summary" grep -q '^attune_output_latency_early_seconds{quantile="0.99"}' "$T/body"
check "segment members gauge" grep -q '^attune_segment_members{segment="high_intent",version="1"} 2' "$T/body"
req GET /v1/admin/digest
check "live digest" jq_eq 'len(j["digest"])' 16
stop_server

# --- the output log holds every transition once, with deterministic ids
"$ATTUNE" replay --outputs -d "$T/data" >"$T/outputs.ndjson"
check "outputs: high_intent enter for u:1, early" python3 - "$T/outputs.ndjson" <<'PY'
import json, sys
outs = [json.loads(l) for l in open(sys.argv[1])]
ids = [o["id"] for o in outs]
assert len(ids) == len(set(ids)), "an output id appears twice"
hi = [o for o in outs if o["type"] == "segment_enter" and o.get("segment") == "high_intent" and o["user"] == "u:1"]
assert len(hi) == 1 and hi[0]["early"] and hi[0]["group"] == "987", hi
fires = [o for o in outs if o["type"] == "trigger" and o["trigger"] == "cart_abandoned"]
assert [f["user"] for f in fires] == ["u:2"], fires
assert fires[0]["action"] == {"offer": "DISCOUNT10"}
PY

# --- restart: the checkpoints restore the same state a replay from scratch gives
start_server "$T/data" --config "$T/rules.yaml"
req GET /v1/users/u:9
check "state survives a restart" jq_eq 'j["counters"]["view_item"]' 4
check "so do memberships" jq_eq 'sorted(s["name"] for s in j["segments"])' '["high_intent", "needs_two", "two_views"]'
req GET /v1/segments/two_views
check "and API rules" jq_eq 'j["version"]' 2
req GET /v1/users/u:5
check "and a fire of an earlier version" jq_eq '[[t.get("name"), t.get("version")] for t in j["triggers"]]' '[["wished", 1]]'
req PUT /v1/segments/again -d '{"when":"profile.counters.view_item >= 100"}'
check "after a restart a deleted name's versions still continue" jq_eq 'j["version"]' 3
check "and its id was never given out before" test "$(jget 'j["id"]')" -gt "$again_id"
stop_server
d1=$("$ATTUNE" replay --digest -d "$T/data" --config "$T/rules.yaml")
d2=$("$ATTUNE" replay --digest --from-scratch -d "$T/data" --config "$T/rules.yaml")
echo "digest from checkpoints $d1, from scratch $d2"
check "recovered state equals a replay from scratch" test "$d1" = "$d2"
check "checkpoints were written" test -n "$(ls "$T/data/ckpt/p0000")"
finish
