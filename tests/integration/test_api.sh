#!/usr/bin/env bash
# test_api.sh - POST /v1/events end to end: body forms, rejections with
# their errors, duplicates, limits, schemas with versions, the rejected log,
# metrics, replay, dedup that survives a restart, and CORS headers.
source "$(dirname "$0")/common.sh"

D="$T/data"
start_server "$D" --set http.max_body_bytes=64KiB --set events.max_batch_events=50

req GET /healthz
check "healthz 200" test "$STATUS" = 200
check "healthz body" jq_eq 'j["status"]' ok

J=(-H 'Content-Type: application/json')
req POST /v1/events "${J[@]}" -d '{"event_id":"e1","type":"view_item","user_id":"42","item_id":"987","timestamp":"2026-04-27T14:35:00Z"}'
check "single event 200" test "$STATUS" = 200
check "single event accepted" jq_eq 'j["accepted"]' 1
check "single event has a position" jq_eq 'len(j["positions"])' 1

req POST /v1/events "${J[@]}" -d '{"events":[{"event_id":"e2","type":"page_view","anonymous_id":"a-7"},{"user_id":"1"},{"type":"x","user_id":"1","timestamp":"yesterday"},{"event_id":"e1","type":"view_item","user_id":"42"}]}'
check "batch 200" test "$STATUS" = 200
check "batch accepted" jq_eq 'j["accepted"]' 1
check "batch duplicate of e1" jq_eq 'j["duplicates"]' 1
check "batch rejected two" jq_eq '[r["index"] for r in j["rejected"]]' '[1, 2]'
check "missing type names the field" jq_eq 'j["rejected"][0]["field"]' type
check "bad timestamp names the field" jq_eq 'j["rejected"][1]["field"]' timestamp

printf '{"event_id":"n1","type":"click","user_id":"5"}\n\n{"event_id":"n2","type":"click","user_id":"6"}\n' > "$T/nd"
req POST /v1/events -H 'Content-Type: application/x-ndjson' --data-binary @"$T/nd"
check "ndjson accepted 2" jq_eq 'j["accepted"]' 2

req POST /v1/events -H 'Content-Type: text/plain' -d '{"event_id":"b1","type":"page_view","anonymous_id":"beacon"}'
check "sendBeacon text/plain accepted" jq_eq 'j["accepted"]' 1

req POST /v1/events "${J[@]}" -d '{"events":[{"type":'
check "unparseable body 400" test "$STATUS" = 400
check "unparseable body code" jq_eq 'j["error"]["code"]' invalid_json

python3 -c 'import json; print(json.dumps({"events":[{"type":"t","user_id":str(i)} for i in range(51)]}))' > "$T/big"
req POST /v1/events "${J[@]}" --data-binary @"$T/big"
check "too many events 413" test "$STATUS" = 413
check "too many events code" jq_eq 'j["error"]["code"]' batch_too_large

python3 -c 'print("{\"type\":\"t\",\"user_id\":\"1\",\"properties\":{\"p\":\"" + "x"*70000 + "\"}}")' > "$T/huge"
req POST /v1/events "${J[@]}" --data-binary @"$T/huge"
check "body over the limit 413" test "$STATUS" = 413

req GET /v1/rejected?limit=10
check "rejected log lists both" jq_eq 'len(j["rejected"])' 2
check "rejected keeps the raw event" jq_eq '"yesterday" in j["rejected"][1]["raw"]' true

# Schemas: register, read back, evolve compatibly, refuse a breaking change.
# A schema describes the event's properties (docs/events.md).
req PUT /v1/schemas/add_to_cart "${J[@]}" -d '{"type":"object","required":["price"],"properties":{"price":{"type":"number","minimum":0}}}'
check "schema v1 registered" jq_eq 'j["version"]' 1
req PUT /v1/schemas/add_to_cart "${J[@]}" -d '{"type":"object","required":["price"],"properties":{"price":{"type":"number","minimum":0},"coupon":{"type":"string"}}}'
check "compatible schema becomes v2" jq_eq 'j["version"]' 2
req PUT /v1/schemas/add_to_cart "${J[@]}" -d '{"type":"object","required":["price","quantity"],"properties":{"price":{"type":"number"}}}'
check "breaking schema 409" test "$STATUS" = 409
check "breaking schema code" jq_eq 'j["error"]["code"]' incompatible_schema
req PUT /v1/schemas/add_to_cart "${J[@]}" -d '{"type":"object","oneOf":[]}'
check "invalid schema 400" test "$STATUS" = 400
req GET /v1/schemas/add_to_cart
check "schema latest is v2" jq_eq 'j["version"]' 2
req GET '/v1/schemas/add_to_cart?version=1'
check "schema v1 kept" jq_eq 'j["version"]' 1
req POST /v1/events "${J[@]}" -d '{"events":[{"type":"add_to_cart","user_id":"9","properties":{"price":-1}},{"event_id":"c1","type":"add_to_cart","user_id":"9","properties":{"price":5}}]}'
check "schema violation rejected" jq_eq 'j["rejected"][0]["code"]' schema_violation
check "schema violation names the property" jq_eq 'j["rejected"][0]["field"]' properties.price
check "schema-valid event accepted" jq_eq 'j["accepted"]' 1

req GET /nope
check "unknown route 404 JSON" jq_eq 'j["error"]["code"]' not_found
req GET /v1/events
check "wrong method 405" test "$STATUS" = 405

req GET /metrics
check "metrics 200" test "$STATUS" = 200
check "metrics count accepted" grep -q '^attune_events_accepted_total 6$' "$T/body"
check "metrics count duplicates" grep -q '^attune_events_duplicate_total 1$' "$T/body"
check "metrics rejects by reason" grep -q 'attune_events_rejected_total{reason="invalid_event"} 2' "$T/body"
check "metrics fsync histogram" grep -q '^attune_fsync_seconds_count [1-9]' "$T/body"

stop_server
"$ATTUNE" replay --data-dir "$D" > "$T/replay"
check "replay prints every accepted event" test "$(grep -c "\"type\":\"event\"" "$T/replay")" = 6
check "replay has e1 once" test "$(grep -c '"event_id":"e1"' "$T/replay")" = 1

# A restart keeps the dedup index: e1 is still a duplicate.
start_server "$D"
req POST /v1/events "${J[@]}" -d '{"event_id":"e1","type":"view_item","user_id":"42"}'
check "dedup survives a restart" jq_eq 'j["duplicates"]' 1
req GET /v1/schemas/add_to_cart
check "schemas survive a restart" jq_eq 'j["version"]' 2
stop_server

# CORS: the Origin is echoed back. One too long for the header lines is not
# echoed at all rather than cut, and the answer's other headers stay whole.
# cors ORIGIN METHOD PATH [curl args...]: the answer's headers into $T/h.
cors() {
    local o=$1 m=$2 p=$3
    shift 3
    curl -s -o /dev/null -D - --max-time 30 -X "$m" -H "Origin: $o" "$AT_URL$p" "$@" |
        tr -d '\r' > "$T/h" || true
}
# Every header line after the status line is NAME: VALUE.
headers_whole() { ! sed 1d "$T/h" | grep -v '^$' | grep -qv '^[A-Za-z-]*: .'; }
origin() { python3 -c 'import sys; print("https://" + "a" * (int(sys.argv[1]) - 16) + ".example")' "$1"; }
start_server "$T/cors" --set 'http.cors_origins=*'
cors https://shop.example POST /v1/events "${J[@]}" -d '{"type":"t","user_id":"1"}'
check "CORS origin echoed on events" grep -qx 'Access-Control-Allow-Origin: https://shop.example' "$T/h"
cors https://shop.example OPTIONS /v1/events
check "CORS origin echoed on a preflight" grep -qx 'Access-Control-Allow-Origin: https://shop.example' "$T/h"
cors "$(origin 400)" POST /v1/events "${J[@]}" -d '{"type":"t","user_id":"1"}'
check "long origin: events 200" grep -q '^HTTP/1.1 200' "$T/h"
check "long origin: events headers whole" headers_whole
check "long origin: events not echoed" bash -c "! grep -qi '^access-control' '$T/h'"
cors "$(origin 850)" DELETE /v1/schemas/t
check "long origin: 405 keeps Allow" grep -qx 'Allow: GET, PUT' "$T/h"
check "long origin: 405 headers whole" headers_whole
check "long origin: 405 not echoed" bash -c "! grep -qi '^access-control' '$T/h'"
stop_server
finish
