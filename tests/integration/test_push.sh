#!/usr/bin/env bash
# test_push.sh - push to the browser through the real binary: a subscriber
# gets the segment and trigger events its own events cause (SSE and
# WebSocket), resumes with Last-Event-ID across a restart with nothing lost
# or repeated, a slow reader holds up neither ingestion nor other
# subscribers and is told what it missed, stream tokens and their errors,
# and 10,000 open streams with the memory each costs (PUSH_CONNS=N to
# change the count, 0 to skip).
source "$(dirname "$0")/common.sh"

CLIENT=$T/push_client
${CC:-cc} -O1 -o "$CLIENT" "$(dirname "$0")/push_client.c" || at_fail "cannot build push_client"

cat >"$T/rules.yaml" <<'YAML'
stream:
  lateness: 1s
  idle_tick: 200ms
segments:
  - name: viewer
    filter: type == "view_item"
    window: 10m
    having: count >= 2
triggers:
  - name: buzzed
    on: type == "buzz"
    action: {say: "hi"}
placements:
  - name: home_banner
    variants:
      - name: mobile_fan
        when: profile.counters.view_item >= 2 && context.device == "mobile"
      - name: loyal
        when: profile.counters.view_item >= 2
    fallback: default
YAML
J=(-H 'Content-Type: application/json')

# post_buzz USER FIRST LAST: events buzz-USER-FIRST..LAST, 100 per request.
post_buzz() {
    local u=$1 i=$2 last=$3 body k
    while [ "$i" -le "$last" ]; do
        body='{"events":['
        for ((k = 0; k < 100 && i <= last; k++, i++)); do
            [ "$k" -gt 0 ] && body+=','
            body+="{\"type\":\"buzz\",\"user_id\":\"$u\",\"event_id\":\"buzz-$u-$i\"}"
        done
        req POST /v1/events "${J[@]}" -d "$body]}"
        [ "$STATUS" = 200 ] || at_fail "POST /v1/events answered $STATUS: $BODY"
    done
}

# wait_conns N KIND: until attune_push_connections{kind=KIND} is N.
wait_conns() {
    local i
    for i in $(seq 200); do
        req GET /metrics
        grep -q "^attune_push_connections{kind=\"$2\"} $1\$" <<<"$BODY" && return 0
        at_sleep_ms 25
    done
    at_fail "attune_push_connections{kind=\"$2\"} did not reach $1"
}

# wait_lines FILE N: until FILE has N lines (the status line included).
wait_lines() {
    local i
    for i in $(seq 400); do
        [ "$(wc -l <"$1")" -ge "$2" ] && return 0
        at_sleep_ms 25
    done
    at_fail "$1 did not reach $2 lines: $(cat "$1")"
}

metric() { req GET /metrics; awk -v m="$1" '$1 == m {print $2}' <<<"$BODY"; }

start_server "$T/data" --config "$T/rules.yaml" --set push.max_buffer=4KiB --set push.heartbeat=500ms

# --- a subscriber gets the segment_enter its own events cause; another user gets nothing
"$CLIENT" sse "$AT_PORT" /v1/users/42/stream -n 1 -t 5000 >"$T/s42" &
p1=$!
"$CLIENT" sse "$AT_PORT" /v1/users/u:7/stream -n 1 -t 1500 >"$T/s7" &
p2=$!
wait_conns 2 sse
for i in 1 2; do
    req POST /v1/events "${J[@]}" -d "{\"type\":\"view_item\",\"user_id\":\"42\",\"item_id\":\"i$i\",\"event_id\":\"v$i\"}"
done
wait "$p1" "$p2"
check "the stream answers 200" grep -qx 'HTTP 200' "$T/s42"
check "the subscriber gets its segment_enter" \
    grep -qP '^\d+:\d+\tsegment_enter\t\{.*"segment":"viewer".*"user":"u:42"' "$T/s42"
id=$(awk -F'\t' 'NR == 2 {print $1}' "$T/s42")
check "the SSE id is the output's position" grep -q "\"position\":\"$id\"" "$T/s42"
check "another user's stream gets nothing" test "$(wc -l <"$T/s7")" = 1

# --- resume: what happened while away and across a restart, exactly once
"$CLIENT" sse "$AT_PORT" /v1/users/42/stream -n 1 -t 5000 >"$T/r1" &
p1=$!
wait_conns 1 sse
post_buzz 42 1 1
wait "$p1"
last=$(awk -F'\t' 'NR == 2 {print $1}' "$T/r1")
check "the first trigger arrives" grep -qP '\ttrigger\t.*"trigger":"buzzed"' "$T/r1"
post_buzz 42 2 3 # nobody listening
stop_server
start_server "$T/data" --config "$T/rules.yaml" --set push.max_buffer=4KiB --set push.heartbeat=500ms
post_buzz 42 4 4 # after the restart, before the reconnect
"$CLIENT" sse "$AT_PORT" /v1/users/42/stream -H "Last-Event-ID: $last" -n 4 -t 6000 >"$T/r2" &
rpid=$!
wait_lines "$T/r2" 4
post_buzz 42 5 5 # live, after the replay
wait "$rpid"
check "the resumed stream gets the 3 missed and the live one" test "$(grep -c $'\ttrigger\t' "$T/r2")" = 4
check "no duplicates" test "$(cut -f1 "$T/r2" | sort | uniq -d | wc -l)" = 0
check "in order, all after Last-Event-ID" \
    awk -F'\t' -v l="${last#*:}" 'NR > 1 {split($1, p, ":"); if (p[2] + 0 <= l + 0 || p[2] + 0 <= prev) bad = 1; prev = p[2] + 0} END {exit bad}' "$T/r2"
"$CLIENT" sse "$AT_PORT" "/v1/users/42/stream?last_event_id=$(cut -f1 "$T/r2" | tail -1)" -t 800 >"$T/r3" || true
check "resuming from the newest gets nothing more" test "$(wc -l <"$T/r3")" = 1
check "resumes are counted" test "$(metric attune_push_resumes_total)" -ge 2
"$CLIENT" sse "$AT_PORT" "/v1/users/42/stream?last_event_id=nope" -t 800 >"$T/r4" || true
check "a bad Last-Event-ID is 400" grep -q '"invalid_last_event_id"' "$T/r4"

# --- a slow reader holds up neither ingestion nor other subscribers, and learns what it missed
"$CLIENT" sse "$AT_PORT" /v1/users/9/stream -s 4000 -t 8000 >"$T/slow" &
spid=$!
"$CLIENT" sse "$AT_PORT" /v1/users/8/stream -n 1 -t 4000 >"$T/fast" &
fpid=$!
wait_conns 2 sse
t0=$(date +%s%N)
post_buzz 9 1 900
post_buzz 8 1 1
t1=$(date +%s%N)
wait "$fpid"
echo "push: 901 events ingested in $(((t1 - t0) / 1000000)) ms with a stalled subscriber"
check "ingestion is not held up by the slow reader (under 4 s)" test $(((t1 - t0) / 1000000)) -lt 4000
check "another subscriber gets its message meanwhile" grep -q $'\ttrigger\t' "$T/fast"
wait "$spid"
got=$(grep -c $'\ttrigger\t' "$T/slow" || true)
check "the slow reader gets a dropped notice" grep -qP '\tdropped\t\{"type":"dropped","count":\d+' "$T/slow"
count=$(grep -oP '"count":\K\d+' "$T/slow" | head -1)
resume=$(grep -P '\tdropped\t' "$T/slow" | cut -f1)
echo "push: the slow reader got $got messages, then a notice of ${count:-?} dropped; resume at $resume"
check "some were dropped" test "${count:-0}" -gt 0
check "drops are counted" test "$(metric attune_push_dropped_total)" -ge "${count:-1}"
missed=$((900 - got))
"$CLIENT" sse "$AT_PORT" /v1/users/9/stream -H "Last-Event-ID: $resume" -n "$missed" -t 8000 >"$T/slow2"
"$CLIENT" sse "$AT_PORT" /v1/users/9/stream -H "Last-Event-ID: $resume" -t 8000 -n $((missed + 1)) -t 1500 >"$T/slow3"
check "reconnecting with the notice's id fetches exactly the missed ones" \
    test "$(grep -c $'\ttrigger\t' "$T/slow2")" = "$missed"
check "and no more" test "$(grep -c $'\ttrigger\t' "$T/slow3")" = "$missed"
check "the notice counted no more than were missed" test "${count:-0}" -le "$missed"
check "nothing twice" test "$(cat "$T/slow" "$T/slow2" | grep $'\ttrigger\t' | cut -f1 | sort | uniq -d | wc -l)" = 0

# --- WebSocket: the same messages, events sent as text frames
"$CLIENT" ws "$AT_PORT" '/v1/ws?user_id=42' -n 4 -t 5000 \
    -m '{"type":"buzz","user_id":"42","event_id":"ws-1"}' -m '{bad' \
    -m '{"events":[{"type":"buzz","user_id":"42","event_id":"ws-2"}]}' >"$T/ws"
check "the upgrade answers 101" grep -qx 'HTTP 101' "$T/ws"
check "an event frame is acknowledged" grep -q '^{"type":"ack","accepted":1,' "$T/ws"
check "a bad frame gets an error frame" grep -q '^{"type":"error","error":{"code":"invalid_json"' "$T/ws"
check "the trigger arrives as a text frame" grep -q '^{"id":"[0-9a-f]*","type":"trigger".*"user":"u:42"' "$T/ws"
"$CLIENT" ws "$AT_PORT" '/v1/ws' -t 800 >"$T/ws2" || true
check "WebSocket without user_id is 400" grep -q '"invalid_user"' "$T/ws2"
check "messages are counted by type" test "$(metric 'attune_push_messages_total{type="trigger"}')" -ge 900

# --- decisions: sent on connect and when the variant changes, without an id
"$CLIENT" sse "$AT_PORT" '/v1/users/77/stream?placements=home_banner&context.device=mobile&recommendations=3' \
    -t 3000 >"$T/d1" &
p1=$!
"$CLIENT" ws "$AT_PORT" '/v1/ws?user_id=77&placements=home_banner' -t 3000 >"$T/d2" &
p2=$!
wait_lines "$T/d1" 3
wait_lines "$T/d2" 2
for i in 1 2; do
    req POST /v1/events "${J[@]}" -d "{\"type\":\"view_item\",\"user_id\":\"77\",\"item_id\":\"d$i\",\"event_id\":\"d$i\"}"
done
wait "$p1" "$p2"
check "the current decision on connect" grep -qP '^-\tdecision\t\{"type":"decision","placement":"home_banner".*"variant":"default"' "$T/d1"
check "current recommendations on connect" grep -qP '^-\trecommendations\t\{"type":"recommendations","user":"u:77"' "$T/d1"
check "a new decision when the variant changes (context from the query)" \
    grep -qP '^-\tdecision\t.*"variant":"mobile_fan"' "$T/d1"
check "the same over WebSocket, without the context" grep -q '^{"type":"decision".*"variant":"loyal"' "$T/d2"
"$CLIENT" sse "$AT_PORT" '/v1/users/77/stream?placements=nope' -t 500 >"$T/d3" || true
check "an unknown placement is 404" grep -q '"unknown_placement"' "$T/d3"
stop_server

# --- tokens
cat >"$T/keys.yaml" <<'YAML'
keys:
  - name: browser
    key: pk_browser
    scopes: [ingest]
  - name: backend
    key: sk_backend
    scopes: [read]
push:
  token_secret: "a long random secret for the test"
  token_ttl: 5s
YAML
start_server "$T/kdata" --config "$T/keys.yaml"
"$CLIENT" sse "$AT_PORT" /v1/users/42/stream -t 800 >"$T/t0" || true
check "no key, no token: 401" grep -qx 'HTTP 401' "$T/t0"
req POST /v1/users/42/stream-token
check "minting needs a read key" test "$STATUS" = 401
req POST /v1/users/42/stream-token -H 'Authorization: Bearer sk_backend'
check "minting answers 200" test "$STATUS" = 200
check "the answer names the user" grep -q '"user":"u:42"' <<<"$BODY"
check "the answer has an expiry" grep -qP '"expires_at":"\d{4}-\d\d-\d\dT' <<<"$BODY"
tok=$(grep -oP '"token":"\K[^"]+' <<<"$BODY")
minted=$(date +%s%N)
case "$tok" in *A) forged="${tok%?}B" ;; *) forged="${tok%?}A" ;; esac
"$CLIENT" sse "$AT_PORT" "/v1/users/42/stream?token=$tok" -t 200 >"$T/t1" || true
check "a token opens its user's stream" grep -qx 'HTTP 200' "$T/t1"
"$CLIENT" ws "$AT_PORT" "/v1/ws?user_id=42&token=$tok" -t 200 >"$T/t2" || true
check "and its user's WebSocket" grep -qx 'HTTP 101' "$T/t2"
"$CLIENT" sse "$AT_PORT" "/v1/users/43/stream?token=$tok" -t 200 >"$T/t3" || true
check "another user's token: 403" grep -qx 'HTTP 403' "$T/t3"
"$CLIENT" sse "$AT_PORT" "/v1/users/42/stream?token=$forged" -t 200 >"$T/t4" || true
check "a forged token: 401 invalid_token" grep -q '"invalid_token"' "$T/t4"
"$CLIENT" sse "$AT_PORT" "/v1/users/42/stream?token=garbage" -t 200 >"$T/t5" || true
check "a malformed token: 401 invalid_token" grep -q '"invalid_token"' "$T/t5"
"$CLIENT" sse "$AT_PORT" /v1/users/42/stream -H 'Authorization: Bearer sk_backend' -t 200 >"$T/t6" || true
check "a read key opens any stream" grep -qx 'HTTP 200' "$T/t6"
"$CLIENT" sse "$AT_PORT" /v1/users/42/stream -H 'Authorization: Bearer pk_browser' -t 200 >"$T/t7" || true
check "an ingest key does not: 403" grep -qx 'HTTP 403' "$T/t7"
stop_server
start_server "$T/kdata" --config "$T/keys.yaml"
"$CLIENT" sse "$AT_PORT" "/v1/users/42/stream?token=$tok" -t 200 >"$T/t8" || true
check "with token_secret set, a token survives a restart" grep -qx 'HTTP 200' "$T/t8"
at_sleep_ms $((5200 - ($(date +%s%N) - minted) / 1000000))
"$CLIENT" sse "$AT_PORT" "/v1/users/42/stream?token=$tok" -t 200 >"$T/t9" || true
check "an expired token: 401 token_expired" grep -q '"token_expired"' "$T/t9"
stop_server

# --- 10,000 open streams in one process, and what each costs
N=${PUSH_CONNS:-10000}
if [ "$N" -gt 0 ]; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    [ "$(ulimit -n)" -ge $((N + 500)) ] || at_fail "ulimit -n $(ulimit -n) is too low for $N connections"
    start_server "$T/mdata" --set http.max_connections=$((N + 100))
    rss() { awk '/^VmRSS/ {print $2}' "/proc/$AT_PID/status"; }
    before=$(rss)
    mkfifo "$T/hold"
    "$CLIENT" many "$AT_PORT" /v1/users/42/stream "$N" -t 60000 <"$T/hold" >"$T/many" &
    mpid=$!
    exec 7>"$T/hold"
    wait_lines "$T/many" 1
    check "$N streams open" grep -qx "open $N" "$T/many"
    wait_conns "$N" sse
    after=$(rss)
    per=$(((after - before) * 1024 / N))
    echo "push: $N open SSE streams: RSS $before KiB -> $after KiB, $per bytes per connection"
    check "memory per stream stays under 32 KiB (sanitizer builds included)" test "$per" -lt 32768
    exec 7>&-
    wait "$mpid"
    wait_conns 0 sse
    stop_server
fi

finish
