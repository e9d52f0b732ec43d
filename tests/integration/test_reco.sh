#!/usr/bin/env bash
# test_reco.sh - the item catalog and the recommender through the real
# binary: POST /v1/items and its errors, co-occurrence from events (similar
# items), trending with windows and categories, a user's recommendations
# without what they bought and without unavailable items, the cold start,
# query errors, and the aggregates surviving a restart (checkpoint digest
# equals a replay from scratch).
source "$(dirname "$0")/common.sh"

cat >"$T/conf.yaml" <<'YAML'
stream:
  lateness: 200ms
  idle_tick: 100ms
checkpoint:
  interval: 1s
reco:
  cache: 1s
  answer_ttl: 1s
YAML
start_server "$T/data" --config "$T/conf.yaml"

# --- the catalog
req POST /v1/items -d '{"items":[{"item_id":"phone","category":"el/phones"},{"item_id":"case","category":"el/acc"},{"item_id":"charger","category":"el/acc","available":false,"attributes":{"price":19}}]}'
check "items accepted" jq_eq 'j["accepted"]' 3
req POST /v1/items -d '{"item_id":"lamp","category":"home"}'
check "a single item is accepted" jq_eq 'j["accepted"]' 1
req POST /v1/items -d '{"items":[{"item_id":"a"},{"item_id":"b","available":"yes"}]}'
check "a bad item is refused with 400" test "$STATUS" = 400
check "naming the item and field" jq_eq 'j["error"]["field"]' 'items[1].available'
req POST /v1/items -d '{"item_id":"a","price":3}'
check "an unknown field is refused" jq_eq '[j["error"]["code"], j["error"]["field"]]' '["invalid_item", "price"]'
req POST /v1/items -d '{"items":'
check "an unparseable body is refused" test "$STATUS" = 400
req GET /v1/items
check "GET /v1/items is not a route" test "$STATUS" = 405
req GET /v1/items/charger
check "an item reads back" jq_eq '[j["category"], j["available"], j["catalog"], j["attributes"]["price"]]' '["el/acc", false, true, 19]'
req GET /v1/items/unknown
check "an unknown item is 404" test "$STATUS" = 404

# --- interactions: people who view the phone cart the case and view the charger
now=$(date +%s%3N)
for u in 1 2 3 4; do
    printf '{"type":"view_item","user_id":"%s","item_id":"phone","category":"el/phones","timestamp":%d}\n{"type":"add_to_cart","user_id":"%s","item_id":"case","category":"el/acc","timestamp":%d}\n{"type":"view_item","user_id":"%s","item_id":"charger","category":"el/acc","timestamp":%d}\n' \
        "$u" $((now - 3000)) "$u" $((now - 2900)) "$u" $((now - 2800)) >"$T/ev.ndjson"
    req POST /v1/events -H 'Content-Type: application/x-ndjson' --data-binary @"$T/ev.ndjson"
done
for u in 5 6; do
    req POST /v1/events -d "{\"type\":\"view_item\",\"user_id\":\"$u\",\"item_id\":\"lamp\",\"category\":\"home\",\"timestamp\":$((now - 2000))}"
done
req POST /v1/events -d "{\"type\":\"purchase\",\"user_id\":\"me\",\"item_id\":\"phone\",\"category\":\"el/phones\",\"timestamp\":$((now - 1000))}"
# the aggregates move when the watermark passes the events (lateness 200 ms)
sleep 1.5

req GET /v1/items/phone/similar
check "similar: the case comes with the phone" jq_eq '[i["item_id"] for i in j["items"]]' '["case"]'
check "with its reason" jq_eq '[j["items"][0]["reason"], j["items"][0]["because"]]' '["viewed_with", "phone"]'
req GET /v1/items/case/similar?n=1
check "similar: n bounds the answer; the unavailable charger is left out" jq_eq '[i["item_id"] for i in j["items"]]' '["phone"]'
req GET /v1/items/nothing/similar
check "similar: an item never seen is 404" test "$STATUS" = 404

req GET "/v1/trending?window=1h"
check "trending: carts weigh more than views" jq_eq '[i["item_id"] for i in j["items"]]' '["case", "phone", "lamp"]'
check "trending: the window is named" jq_eq 'j["window"]' 1h
req GET "/v1/trending?category=el"
check "trending: a category prefix" jq_eq '[i["item_id"] for i in j["items"]]' '["case", "phone"]'
req GET "/v1/trending?window=2h"
check "trending: an unknown window is 400" jq_eq '[j["error"]["code"], j["error"]["field"]]' '["invalid_query", "window"]'
req GET "/v1/trending?n=0"
check "trending: n out of range is 400" jq_eq 'j["error"]["field"]' n

req GET /v1/users/me/recommendations
check "recommendations: the bought phone is not recommended again" jq_eq '"phone" in [i["item_id"] for i in j["items"]]' false
check "recommendations: the case first, because of the phone" jq_eq '[j["items"][0]["item_id"], j["items"][0]["reason"], j["items"][0]["because"]]' '["case", "viewed_with", "phone"]'
check "recommendations: the unavailable charger is left out" jq_eq '"charger" in [i["item_id"] for i in j["items"]]' false
check "recommendations: the user is known" jq_eq 'j["known"]' true
req GET "/v1/users/me/recommendations?exclude=case,other"
check "recommendations: exclude" jq_eq '"case" in [i["item_id"] for i in j["items"]]' false
req GET "/v1/users/me/recommendations?category=home"
check "recommendations: category" jq_eq '[i["item_id"] for i in j["items"]]' '["lamp"]'
req GET /v1/users/stranger/recommendations?n=2
check "cold start: a new user gets what is trending" jq_eq '[j["known"], [i["reason"] for i in j["items"]]]' '[false, ["trending", "trending"]]'

# the same request again is answered from the partition's cache, and a
# new event of the user changes the answer at once
# metric_at_least_1 NAME: NAME's value once /metrics shows it at 1 or more
# (the figures are published every few hundred ms), else after 3 s; the
# body stays in $T/body
metric_at_least_1() {
    local v=0
    for _ in $(seq 30); do
        req GET /metrics
        v=$(M="$1" awk '$1 == ENVIRON["M"] { print $2 }' "$T/body")
        [ "${v:-0}" -ge 1 ] && break
        sleep 0.1
    done
    echo "${v:-0}"
}
# positions: the positions of the events just posted, for min_position
positions() {
    python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["positions"]))' "$T/body"
}

req GET /v1/users/me/recommendations
req GET /v1/users/me/recommendations
cached=$(metric_at_least_1 attune_reco_answers_cached_total)
check "a repeated request is answered from the cache" test "${cached:-0}" -ge 1
built=$(awk '$1 == "attune_reco_answers_built_total" { print $2 }' "$T/body")
check "the answers built are counted" test "${built:-0}" -ge 1
req GET /v1/users/me/recommendations
check "the lamp is recommended before the user sees it" jq_eq '"lamp" in [i["item_id"] for i in j["items"]]' true
req POST /v1/events -d "{\"type\":\"view_item\",\"user_id\":\"me\",\"item_id\":\"lamp\",\"category\":\"home\"}"
pos=$(positions)
req GET "/v1/users/me/recommendations?min_position=$pos"
check "a new event of the user is seen at once with its position, not after the cache" jq_eq '"lamp" in [i["item_id"] for i in j["items"]]' false
req GET /v1/users/me/recommendations
check "and by the next read of the answer the HTTP thread keeps" jq_eq '"lamp" in [i["item_id"] for i in j["items"]]' false
# why answers are built: a new user's first answer, then an event of theirs
# (a page view: no item aggregate moves) and the answer again at once
req GET /v1/users/cz/recommendations
req POST /v1/events -d '{"type":"page_view","user_id":"cz"}'
pos=$(positions)
req GET "/v1/users/cz/recommendations?min_position=$pos"
changed=$(metric_at_least_1 'attune_reco_answers_built_by_cause_total{cause="changed"}')
check "an answer built again after the user's event is counted as changed" test "${changed:-0}" -ge 1

# the catalog makes the charger available again
req POST /v1/items -d '{"item_id":"charger","category":"el/acc","available":true}'
sleep 1.2 # merged item data is reused for up to a second
req GET /v1/items/case/similar
check "available again: back in similar items" jq_eq '"charger" in [i["item_id"] for i in j["items"]]' true

req GET /metrics
check "metrics count catalog records and items" grep -q '^attune_reco_items ' "$T/body"

# --- restart: the aggregates are in the checkpoints
stop_server
start_server "$T/data" --config "$T/conf.yaml"
req GET /v1/items/phone/similar
check "similar items survive a restart" jq_eq '[i["item_id"] for i in j["items"]]' '["case", "charger", "lamp"]'
req GET /v1/items/charger
check "so does the catalog" jq_eq 'j["available"]' true
stop_server
d1=$("$ATTUNE" replay --digest -d "$T/data" --config "$T/conf.yaml")
d2=$("$ATTUNE" replay --digest --from-scratch -d "$T/data" --config "$T/conf.yaml")
check "recovered aggregates equal a replay from scratch ($d1 $d2)" test "$d1" = "$d2"
finish
