#!/usr/bin/env bash
# test_decide.sh - placements and POST /v1/decide through the real binary:
# a variant by a segment, by an affinity with the request's context, by a
# profile counter; the fallback when no rule holds, for a user without
# data and when processing is behind the request's min_position;
# experiment arms stable per user and split by their weights with a
# holdout; recommendations in the answer; the exposure event it hands back
# accepted as an event; errors, and placement errors in check-config.
source "$(dirname "$0")/common.sh"

cat >"$T/conf.yaml" <<'YAML'
stream:
  lateness: 200ms
  idle_tick: 100ms
segments:
  - name: big_spender
    filter: type == "purchase"
    window: 30d
    having: sum(properties.revenue) > 500
placements:
  - name: home_banner
    variants:
      - name: vip
        when: in_segment("big_spender")
      - name: phones
        when: affinity("el/phones") > 0.5 && context.device == "mobile"
      - name: loyal
        when: profile.counters.view_item >= 3
    fallback: default
    recommendations: 2
  - name: promo
    variants:
      - name: by_rules
    fallback: plain
    experiment:
      name: promo_test
      holdout: 20%
      arms:
        - name: control
          weight: 1
          variant: plain
        - name: treatment
          weight: 3
YAML
check "check-config accepts placements" "$ATTUNE" check-config "$T/conf.yaml"
cat >"$T/bad.yaml" <<'YAML'
placements:
  - name: broken
    variants:
      - name: x
        when: affinity("a") >> 2
    fallback: d
YAML
out=$("$ATTUNE" check-config "$T/bad.yaml" 2>&1 || true)
check "a bad condition is refused with the placement, field and column" \
    grep -q 'bad.yaml:2:5: placements\[0\].variants\[0\].when: placement broken: 1:16: ' <<<"$out"
printf 'placements:\n  - name: nofb\n    variants: []\n' >"$T/bad2.yaml"
out=$("$ATTUNE" check-config "$T/bad2.yaml" 2>&1 || true)
check "a placement without a fallback is refused" grep -q 'fallback' <<<"$out"
printf 'placements:\n  - name: p\n    fallback: d\n    experiment: {name: e, arms: [{name: a, variant: nope}]}\n' >"$T/bad3.yaml"
out=$("$ATTUNE" check-config "$T/bad3.yaml" 2>&1 || true)
check "an arm showing an unknown variant is refused" grep -q 'does not have' <<<"$out"

start_server "$T/data" --config "$T/conf.yaml"
ev() { req POST /v1/events -d "$1"; }
ev '{"type":"purchase","user_id":"rich","item_id":"tv","category":"el/tv","properties":{"revenue":900}}'
ev '{"type":"view_item","user_id":"fan","item_id":"ph1","category":"el/phones"}'
for i in 1 2 3; do ev "{\"type\":\"view_item\",\"user_id\":\"reader\",\"item_id\":\"b$i\",\"category\":\"books\"}"; done
pos=$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["positions"]))')
sleep 0.6

decide() { req POST /v1/decide -d "$1"; }
decide '{"user_id":"rich","placement":"home_banner","context":{"device":"mobile"}}'
check "a segment picks the first variant" jq_eq '[j["variant"], j["reason"], j["rule"]]' '["vip", "rule", 0]'
check "the answer says which condition" jq_eq 'j["condition"]' 'in_segment("big_spender")'
decide '{"user_id":"fan","placement":"home_banner","context":{"device":"mobile"}}'
check "an affinity and the context pick the second" jq_eq '[j["variant"], j["rule"]]' '["phones", 1]'
decide '{"user_id":"fan","placement":"home_banner","context":{"device":"desktop"}}'
check "another context: nothing holds, the fallback" jq_eq '[j["variant"], j["reason"]]' '["default", "fallback"]'
decide "{\"user_id\":\"reader\",\"placement\":\"home_banner\",\"min_position\":\"$pos\"}"
check "a profile counter picks the third" jq_eq '[j["variant"], j["rule"]]' '["loyal", 2]'
check "recommendations come with it" jq_eq 'len(j["recommendations"]) <= 2 and all("item_id" in i for i in j["recommendations"])' true
check "the exposure event to send" jq_eq 'j["exposure"]' '{"type": "exposure", "user_id": "reader", "properties": {"placement": "home_banner", "variant": "loyal"}}'
exposure=$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["exposure"]))')
req POST /v1/events -d "$exposure"
check "the exposure is accepted as an event" jq_eq 'j["accepted"]' 1
decide '{"user_id":"nobody","placement":"home_banner"}'
check "no data: the fallback" jq_eq '[j["known"], j["variant"], j["reason"]]' '[false, "default", "no_data"]'
decide '{"anonymous_id":"a-1","placement":"home_banner"}'
check "an anonymous id" jq_eq '[j["user"], j["exposure"]["anonymous_id"]]' '["a:a-1", "a-1"]'
req GET /v1/users/rich
part=$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partition"])')
decide "{\"user_id\":\"rich\",\"placement\":\"home_banner\",\"min_position\":\"$part:999999999\"}"
check "processing behind the request: the fallback, as late" jq_eq '[j["variant"], j["reason"]]' '["default", "late"]'

# --- experiments: stable arms, split by weight, with a holdout
decide '{"user_id":"u7","placement":"promo"}'
first=$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["arm"])')
stable=1
for i in 1 2 3; do
    decide '{"user_id":"u7","placement":"promo"}'
    [ "$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["arm"])')" = "$first" ] || stable=0
done
check "a user's arm is stable" test "$stable" = 1
: >"$T/arms"
for i in $(seq 1 400); do
    curl -s -X POST "$AT_URL/v1/decide" -d "{\"user_id\":\"x$i\",\"placement\":\"promo\"}" >>"$T/arms"
    echo >>"$T/arms"
done
split=$(python3 - "$T/arms" <<'EOF'
import json, sys, collections
c = collections.Counter()
for line in open(sys.argv[1]):
    j = json.loads(line)
    c[(j["arm"], j["variant"], j["reason"])] += 1
h, ctl, tr = c[("holdout", "plain", "holdout")], c[("control", "plain", "arm")], sum(v for k, v in c.items() if k[0] == "treatment")
ok = sum(c.values()) == 400 and 50 <= h <= 110 and 50 <= ctl <= 110 and 180 <= tr <= 300
print("ok" if ok else "bad", h, ctl, tr)
EOF
)
check "arms split 20% holdout, then 1:3 (got $split)" grep -q '^ok' <<<"$split"
decide '{"user_id":"x1","placement":"promo"}'
check "a treatment or control arm names the experiment" jq_eq 'j["experiment"]' promo_test

# --- errors
decide '{"user_id":"rich","placement":"nope"}'
check "an unknown placement is 404" jq_eq '[j["error"]["code"], j["error"]["field"]]' '["unknown_placement", "placement"]'
decide '{"placement":"promo"}'
check "no user is 400" jq_eq 'j["error"]["field"]' user_id
decide '{"user_id":"rich","placement":"promo","context":3}'
check "a context that is not an object is 400" jq_eq 'j["error"]["field"]' context
decide '{"user_id":'
check "an unparseable body is 400" test "$STATUS" = 400
req GET /v1/decide
check "GET /v1/decide is 405" test "$STATUS" = 405
req GET /v1/placements
check "the placements are listed" jq_eq '[p["name"] for p in j["placements"]]' '["home_banner", "promo"]'
stop_server
finish
