#!/usr/bin/env bash
# test_auth.sh - API keys and scopes (DESIGN.md §4): Bearer keys, ?key= and
# write_key for browsers, scopes enforced, and development mode that refuses
# to bind to anything but loopback.
source "$(dirname "$0")/common.sh"

# No key configured: refuse a non-loopback address, and say why.
rc=0
"$ATTUNE" serve --listen 0.0.0.0:0 --data-dir "$T/d0" 2>"$T/refuse.log" || rc=$?
check "no key + public address refused" test "$rc" -ne 0
check "refusal says why" grep -qi "no API key" "$T/refuse.log"

cat > "$T/keys.yaml" <<'YAML'
keys:
  - name: browser
    key: pk_live_browser
    scopes: [ingest]
  - name: backend
    key: sk_backend
    scopes: [ingest, read]
  - name: ops
    key: sk_admin
    scopes: [admin, read]
YAML
start_server "$T/data" --config "$T/keys.yaml"
EV='{"type":"page_view","user_id":"1"}'
J=(-H 'Content-Type: application/json')

req POST /v1/events "${J[@]}" -d "$EV"
check "no key 401" test "$STATUS" = 401
check "401 is JSON" jq_eq 'j["error"]["code"]' unauthorized
req POST /v1/events "${J[@]}" -H 'Authorization: Bearer wrong' -d "$EV"
check "wrong key 403" test "$STATUS" = 403
req POST /v1/events "${J[@]}" -H 'Authorization: Bearer sk_backend' -d "$EV"
check "bearer ingest key 200" test "$STATUS" = 200
req POST '/v1/events?key=pk_live_browser' "${J[@]}" -d "$EV"
check "?key= ingest key 200" test "$STATUS" = 200
req POST '/v1/events?key=sk_admin' "${J[@]}" -d "$EV"
check "?key= without ingest scope 403" test "$STATUS" = 403
req POST /v1/events -H 'Content-Type: text/plain' -d '{"write_key":"pk_live_browser","events":[{"type":"page_view","anonymous_id":"b"}]}'
check "write_key in the body 200" test "$STATUS" = 200
req POST /v1/events -H 'Content-Type: text/plain' -d '{"write_key":"nope","events":[{"type":"page_view","anonymous_id":"b"}]}'
check "bad write_key 401" test "$STATUS" = 401

req GET /v1/rejected -H 'Authorization: Bearer pk_live_browser'
check "ingest key cannot read" test "$STATUS" = 403
req GET /v1/rejected -H 'Authorization: Bearer sk_backend'
check "read key reads" test "$STATUS" = 200
req PUT /v1/schemas/click "${J[@]}" -H 'Authorization: Bearer sk_backend' -d '{"type":"object"}'
check "read key cannot change schemas" test "$STATUS" = 403
req PUT /v1/schemas/click "${J[@]}" -H 'Authorization: Bearer sk_admin' -d '{"type":"object"}'
check "admin key changes schemas" test "$STATUS" = 200
req GET /healthz
check "healthz needs no key" test "$STATUS" = 200
stop_server

"$ATTUNE" replay --data-dir "$T/data" > "$T/replay"
check "only authorized events were written" test "$(wc -l < "$T/replay")" = 3
finish
