#!/usr/bin/env bash
# test_sinks.sh - webhooks through the real binary and a local receiver
# (hook_receiver.c) that checks every signature and fails the first
# attempts of each output: after dedup by idempotency key every output is
# accepted exactly once, every attempt of an output carries the same key
# and seq; kill -9 during deliveries loses nothing; a dead endpoint fills
# the dead-letter log (listed, then replayed to a live receiver) and opens
# its breaker; outputs of an old backfill are skipped (sinks.max_age).
source "$(dirname "$0")/lib.sh"
at_it_init sinks

RECV=${AT_BUILD_DIR:-build/dev}/tests/hook_receiver
[ -x "$RECV" ] || at_fail "no $RECV (build the tests)"
SECRET=whsec-test-secret
W=$AT_WORK

# start_receiver NAME FAIL_FIRST STATUS [PORT]: sets RPORT and RPID
start_receiver() {
    local name=$1 i
    rm -f "$W/$name.port"
    env ${4:+HOOK_PORT=$4} "$RECV" "$W/$name.port" "$W/$name.log" "$SECRET" "$2" "$3" &
    RPID=$!
    AT_PIDS+=("$RPID")
    for i in $(seq 100); do
        [ -s "$W/$name.port" ] && break
        at_sleep_ms 20
    done
    RPORT=$(cat "$W/$name.port") || at_fail "receiver $name did not start"
}

# post_events FROM TO TYPE: one event per user u$i
post_events() {
    local i body=""
    for i in $(seq "$1" "$2"); do
        body+="{\"type\":\"$3\",\"user_id\":\"u$i\",\"event_id\":\"$3-$i\"}"$'\n'
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-ndjson' \
        --data-binary "$body" "$AT_URL/v1/events")
    [ "$code" = 200 ] || at_fail "POST /v1/events answered $code"
}

# accepted LOG: the ids answered 2xx (one line per acceptance)
accepted() { awk '$6 >= 200 && $6 < 300 {print $2}' "$1"; }

# wait_accepted LOG N: until N distinct ids were accepted
wait_accepted() {
    local i n=0
    for i in $(seq 300); do
        n=$(accepted "$1" | sort -u | wc -l)
        [ "$n" -ge "$2" ] && return 0
        at_sleep_ms 100
    done
    at_fail "only $n of $2 outputs accepted in $1"
}

# output_ids NAME: the ids of the trigger NAME's outputs in the data dir
output_ids() {
    "$ATTUNE" replay --outputs -d "$W/data" | jq -r "select(.trigger == \"$1\") | .id" | sort -u
}

metric() { curl -s "$AT_URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

start_receiver crm 3 200
CRM_PORT=$RPORT
start_receiver dead 0 503
DEAD_PORT=$RPORT
DEAD_PID=$RPID

cat >"$W/c.yaml" <<YAML
stream:
  idle_tick: 200ms
triggers:
  - name: bought
    on: type == "purchase"
  - name: refunded
    on: type == "refund"
sinks:
  webhooks:
    - name: crm
      url: http://127.0.0.1:$CRM_PORT/hook
      secret: $SECRET
      triggers: [bought]
      backoff: 20ms
      backoff_max: 100ms
      breaker_failures: 100000
    - name: dead
      url: http://127.0.0.1:$DEAD_PORT/hook
      secret: $SECRET
      events: [trigger]
      triggers: [refunded]
      max_attempts: 3
      backoff: 10ms
      backoff_max: 50ms
      breaker_failures: 2
      breaker_cooldown: 200ms
YAML
"$ATTUNE" check-config "$W/c.yaml" >/dev/null || at_fail "check-config refused the config"
printf 'sinks:\n  webhooks:\n    - name: x\n      url: http://h\n      secret: 12345678\n      concurrency: 0\n' >"$W/bad.yaml"
out=$("$ATTUNE" check-config "$W/bad.yaml" 2>&1 || true)
grep -q 'bad.yaml:6:20: sinks.webhooks.concurrency' <<<"$out" || at_fail "check-config: $out"

# --- retries, signatures, idempotency keys
at_serve_start "$W/data" --config "$W/c.yaml"
at_wait_ready
post_events 1 40 purchase
wait_accepted "$W/crm.log" 40
grep -q ' bad ' "$W/crm.log" && at_fail "a signature did not verify"
awk '$2 != $3 {exit 1}' "$W/crm.log" || at_fail "an Idempotency-Key differs from Attune-Id"
awk '{ if ($2 in s && s[$2] != $4) exit 1; s[$2] = $4 }' "$W/crm.log" ||
    at_fail "the attempts of an output carried different seqs"
[ "$(accepted "$W/crm.log" | sort | uniq -d | wc -l)" = 0 ] || at_fail "an output accepted twice"
[ "$(awk '$2 == a' a="$(accepted "$W/crm.log" | head -1)" "$W/crm.log" | wc -l)" = 4 ] ||
    at_fail "the first 3 attempts were not retried"
echo "sinks: 40 outputs accepted once each after 3 failures, signatures verified"

# --- a dead endpoint: dead letters after max_attempts, the breaker opens
post_events 1 5 refund
for i in $(seq 200); do
    [ "$(metric 'attune_sink_dead{sink="dead"}')" = 5 ] && break
    at_sleep_ms 100
done
[ "$(metric 'attune_sink_dead{sink="dead"}')" = 5 ] || at_fail "no 5 dead letters"
[ "$(metric 'attune_sink_breaker_opened_total{sink="dead"}')" -ge 1 ] ||
    at_fail "the breaker of the dead endpoint never opened"
list=$(curl -s "$AT_URL/v1/sinks/dead/dead?limit=10")
[ "$(jq '.total' <<<"$list")" = 5 ] || at_fail "dead listing: $list"
[ "$(jq '[.dead[] | select(.reason == "max_attempts" and .attempts == 3 and .status == 503)] | length' <<<"$list")" = 5 ] ||
    at_fail "dead letters without reason, attempts or status: $list"
[ "$(curl -s "$AT_URL/v1/sinks/dead/dead?limit=2" | jq '.dead | length')" = 2 ] || at_fail "limit ignored"
[ "$(at_http_code GET /v1/sinks/nope/dead)" = 404 ] || at_fail "unknown sink not 404"
[ "$(at_http_code GET '/v1/sinks/dead/dead?limit=0')" = 400 ] || at_fail "bad limit not 400"
sinks=$(curl -s "$AT_URL/v1/sinks")
[ "$(jq -r '.sinks[] | select(.name == "crm") | .counts.ok' <<<"$sinks")" = 40 ] || at_fail "GET /v1/sinks: $sinks"
echo "sinks: dead endpoint -> 5 dead letters after 3 attempts, breaker opened"

# a replay interrupted by kill -9 resumes at the next start: the endpoint
# hangs (SIGSTOP) while the replayed attempts are in flight
last=$(curl -s "$AT_URL/v1/sinks/dead/dead" | jq '.dead[-1].offset')
kill -STOP "$DEAD_PID"
curl -s -X POST "$AT_URL/v1/sinks/dead/dead/replay" >/dev/null
for i in $(seq 100); do
    [ "$(curl -s "$AT_URL/v1/sinks" | jq '.sinks[] | select(.name == "dead") | .inflight')" -gt 0 ] && break
    at_sleep_ms 50
done
[ "$(curl -s "$AT_URL/v1/sinks/dead/dead" | jq '[.dead[] | select(.replaying)] | length')" = 5 ] ||
    at_fail "the dead letters are not marked as replaying"
at_serve_kill
kill -CONT "$DEAD_PID"
at_serve_start "$W/data" --config "$W/c.yaml"
at_wait_ready
grep -q 'sink_replay.*sink=dead dead_letters=5' "$AT_SERVE_LOG" || at_fail "the replay did not resume"
for i in $(seq 200); do
    list=$(curl -s "$AT_URL/v1/sinks/dead/dead")
    [ "$(jq '.total' <<<"$list")" = 5 ] && [ "$(jq ".dead[0].offset > $last" <<<"$list")" = true ] && break
    at_sleep_ms 100
done
[ "$(jq ".dead[0].offset > $last" <<<"$list")" = true ] || at_fail "the resumed replay did not finish: $list"
echo "sinks: a replay interrupted by kill -9 resumed and failed again into new dead letters"

# the endpoint comes back on its port; the dead letters are replayed there
kill -9 "$DEAD_PID"
wait "$DEAD_PID" 2>/dev/null || true
start_receiver dead2 0 200 "$DEAD_PORT"
[ "$(curl -s -X POST "$AT_URL/v1/sinks/dead/dead/replay" | jq .replaying)" = 5 ] || at_fail "replay"
wait_accepted "$W/dead2.log" 5
for i in $(seq 100); do
    [ "$(metric 'attune_sink_dead{sink="dead"}')" = 0 ] && break
    at_sleep_ms 100
done
[ "$(curl -s "$AT_URL/v1/sinks/dead/dead" | jq .total)" = 0 ] || at_fail "dead letters left after replay"
[ "$(accepted "$W/dead2.log" | sort -u)" = "$(output_ids refunded)" ] || at_fail "replayed ids differ"
echo "sinks: the dead letters were replayed to the live endpoint"

# --- kill -9 during deliveries: each output still arrives (once after dedup)
post_events 41 400 purchase
at_sleep_ms 300
at_serve_kill
at_serve_start "$W/data" --config "$W/c.yaml"
at_wait_ready
wait_accepted "$W/crm.log" 400
[ "$(accepted "$W/crm.log" | sort -u)" = "$(output_ids bought)" ] ||
    at_fail "after kill -9 the accepted ids differ from the outputs"
grep -q ' bad ' "$W/crm.log" && at_fail "a signature did not verify"
awk '{ if ($2 in s && s[$2] != $4) exit 1; s[$2] = $4 }' "$W/crm.log" || at_fail "seq changed"
dups=$(accepted "$W/crm.log" | sort | uniq -d | wc -l)
echo "sinks: kill -9 during deliveries: 400 outputs accepted ($dups delivered again, deduplicated by key)"
at_serve_stop

# --- max_age: outputs of an old backfill (imported into a new data
# directory) are recorded, not delivered
before=$(wc -l <"$W/crm.log")
for i in $(seq 1 20); do
    echo "{\"type\":\"purchase\",\"user_id\":\"old$i\",\"event_id\":\"old-$i\",\"timestamp\":\"2024-01-01T00:00:$((i + 10))Z\"}"
done >"$W/old.ndjson"
"$ATTUNE" import -c "$W/c.yaml" -d "$W/backfill" "$W/old.ndjson" >/dev/null 2>&1 || at_fail "import failed"
nold=$("$ATTUNE" replay --outputs -d "$W/backfill" | wc -l)
[ "$nold" -gt 0 ] || at_fail "the backfill made no outputs"
at_serve_start "$W/backfill" --config "$W/c.yaml"
at_wait_ready
for i in $(seq 100); do
    [ "$(metric 'attune_sink_deliveries_total{sink="crm",result="skipped"}')" = "$nold" ] && break
    at_sleep_ms 100
done
[ "$(metric 'attune_sink_deliveries_total{sink="crm",result="skipped"}')" = "$nold" ] ||
    at_fail "the $nold old outputs were not skipped"
at_sleep_ms 300
[ "$(wc -l <"$W/crm.log")" = "$before" ] || at_fail "an old output was delivered"
[ -s "$W/backfill/sinks/crm/skipped" ] || at_fail "no skipped record"
[ "$(metric 'attune_sink_lag{sink="crm"}')" = 0 ] || at_fail "lag not 0"
at_serve_stop
echo "sinks: $nold outputs of a backfill skipped (max_age) and recorded"
echo "sinks: ok"
