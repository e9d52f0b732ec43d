#!/usr/bin/env bash
# test_import.sh - `attune import` through the real binary: NDJSON and CSV
# files (with a header, and tab-separated without one, epoch seconds like
# MovieLens' u.data) into a fresh data directory, checked record by record
# with `attune replay`; exit codes and the summary line; a bad line; stdin;
# --sort; duplicates on a second import; a data directory held by a server
# is refused; --url into a running server gives the same events; and a
# segment from the config file sees the imported events.
source "$(dirname "$0")/common.sh"

# replay_events DIR: one line per event record, sorted by event_id:
# event_id key ts_ms value-without-received_at (as JSON).
replay_events() {
    "$ATTUNE" replay --data-dir "$1" | python3 -c 'import json, sys
rows = []
for line in sys.stdin:
    r = json.loads(line)
    if r["type"] != "event":
        continue
    v = r["value"]
    v.pop("received_at")
    rows.append("%s %s %d %s" % (r["event_id"], r["key"], r["ts_ms"], json.dumps(v, sort_keys=True)))
print("\n".join(sorted(rows)))'
}

# record_types DIR: the distinct record types in the log.
record_types() {
    "$ATTUNE" replay --data-dir "$1" | python3 -c 'import json, sys
print(" ".join(sorted({json.loads(l)["type"] for l in sys.stdin})))'
}

# value_of DIR EVENT_ID EXPR: a Python expression over the stored event (v).
value_of() {
    "$ATTUNE" replay --data-dir "$1" | python3 -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["type"] == "event" and r["value"].get("event_id") == sys.argv[1]:
        v = r["value"]
        x = eval(sys.argv[2])
        print(x if isinstance(x, str) else json.dumps(x))' "$2" "$3"
}

summary_re='^import: [0-9]+ events read, [0-9]+ accepted, [0-9]+ duplicates, [0-9]+ rejected in [0-9.]+ s \([0-9]+ events/s\)$'

# --- usage
check "import --help" bash -c "'$ATTUNE' import --help | grep -q '^usage: attune import'"
check "attune --help lists import" bash -c "'$ATTUNE' --help | grep -q '^  import '"
rc=0; "$ATTUNE" import 2>/dev/null || rc=$?
check "no file: exit 2" test "$rc" -eq 2
rc=0; "$ATTUNE" import --time-unit hours x.csv 2>/dev/null || rc=$?
check "bad option value: exit 2" test "$rc" -eq 2
rc=0; "$ATTUNE" import --url http://127.0.0.1:1 --data-dir "$T/x" x.csv 2>/dev/null || rc=$?
check "--url with --data-dir: exit 2" test "$rc" -eq 2
rc=0; "$ATTUNE" import --data-dir "$T/x" "$T/missing.ndjson" 2>"$T/err" || rc=$?
check "a missing file: exit 1" test "$rc" -eq 1
check "a missing file is named" grep -q 'missing.ndjson' "$T/err"

# --- NDJSON into a fresh data directory
cat >"$T/events.ndjson" <<'EOF'
{"event_id":"n1","type":"view_item","user_id":"1","item_id":"987","timestamp":"2024-03-01T10:00:00Z"}
{"event_id":"n2","type":"add_to_cart","user_id":"1","item_id":"987","timestamp":1709287260000,"properties":{"price":19.99}}

{"messageId":"n3","event":"search","anonymousId":"a-7","originalTimestamp":"2024-03-01T10:02:00.250Z","properties":{"query":"shoes"}}
EOF
rc=0; "$ATTUNE" import --data-dir "$T/nd" "$T/events.ndjson" 2>"$T/err" || rc=$?
check "NDJSON import exits 0" test "$rc" -eq 0
check "the summary line" grep -Eq "$summary_re" "$T/err"
check "the summary counts" grep -q '^import: 3 events read, 3 accepted, 0 duplicates, 0 rejected' "$T/err"
check "no progress line when stderr is not a terminal" bash -c "! grep -q \$'\\r' '$T/err'"
replay_events "$T/nd" >"$T/nd.events"
check "every event is in the log" test "$(wc -l <"$T/nd.events")" -eq 3
check "n1: key and time" grep -q '^n1 u:1 1709287200000 ' "$T/nd.events"
check "n2: epoch ms" grep -q '^n2 u:1 1709287260000 ' "$T/nd.events"
check "n3: Segment names mapped" grep -q '^n3 a:a-7 1709287320250 ' "$T/nd.events"
check "n2: properties kept" test "$(value_of "$T/nd" n2 'v["properties"]["price"]')" = 19.99
check "no tick records: historical time only" test "$(record_types "$T/nd")" = event

# the same file again: duplicates, not errors
rc=0; "$ATTUNE" import --data-dir "$T/nd" --json "$T/events.ndjson" >"$T/out.json" 2>"$T/err" || rc=$?
check "a second import exits 0" test "$rc" -eq 0
BODY=$(cat "$T/out.json")
check "--json: duplicates" jq_eq '[j["events"], j["accepted"], j["duplicates"], j["rejected"]]' '[3, 0, 3, 0]'
check "--json: seconds and rate" jq_eq 'j["seconds"] > 0 and j["events_per_s"] > 0' true

# --- CSV with a header row
cat >"$T/shop.csv" <<'EOF'
event,user,item,category,timestamp,event_id,price,note,context.device
view_item,42,987,electronics/phones,2024-03-01T10:00:00Z,c1,19.90,"big, ""new""",mobile
purchase,42,987,,1709287260,c2,19.90,,
,43,5,,1709287320000,c3,,plain,
EOF
rc=0; "$ATTUNE" import --data-dir "$T/csv" "$T/shop.csv" 2>"$T/err" || rc=$?
check "CSV import exits 0" test "$rc" -eq 0
check "CSV summary" grep -q '^import: 3 events read, 3 accepted, 0 duplicates, 0 rejected' "$T/err"
replay_events "$T/csv" >"$T/csv.events"
check "c1: RFC 3339" grep -q '^c1 u:42 1709287200000 ' "$T/csv.events"
check "c2: epoch seconds" grep -q '^c2 u:42 1709287260000 ' "$T/csv.events"
check "c3: epoch ms" grep -q '^c3 u:43 1709287320000 ' "$T/csv.events"
check "c1: number property" test "$(value_of "$T/csv" c1 'v["properties"]["price"]')" = 19.9
check "c1: quoted text property" test "$(value_of "$T/csv" c1 'v["properties"]["note"]')" = 'big, "new"'
check "c1: context column" test "$(value_of "$T/csv" c1 'v["context"]["device"]')" = mobile
check "c1: category" test "$(value_of "$T/csv" c1 'v["category"]')" = electronics/phones
check "c2: empty fields are absent" test "$(value_of "$T/csv" c2 'sorted(v)')" = \
    '["event_id", "item_id", "properties", "received_at", "timestamp", "ts", "type", "user_id"]'
check "c3: no type column value: --type's default" test "$(value_of "$T/csv" c3 'v["type"]')" = view_item

# --- tab-separated without a header, epoch seconds (MovieLens' u.data)
printf '196\t242\t3\t881250949\n186\t302\t3\t881250950\n22\t377\t1\t881250951\n' >"$T/u.data"
rc=0; "$ATTUNE" import --data-dir "$T/ml" --columns user_id,item_id,rating,timestamp --type rate \
    "$T/u.data" 2>"$T/err" || rc=$?
check "u.data import exits 0" test "$rc" -eq 0
check "u.data summary" grep -q '^import: 3 events read, 3 accepted, 0 duplicates, 0 rejected' "$T/err"
"$ATTUNE" replay --data-dir "$T/ml" >"$T/ml.log"
check "u.data: every row, times in ms" test "$(python3 -c 'import json, sys
rows = sorted((json.loads(l)["key"], json.loads(l)["ts_ms"], json.loads(l)["value"]["item_id"],
               json.loads(l)["value"]["properties"]["rating"], json.loads(l)["value"]["type"])
              for l in open(sys.argv[1]))
print(rows)' "$T/ml.log")" = \
    "[('u:186', 881250950000, '302', 3, 'rate'), ('u:196', 881250949000, '242', 3, 'rate'), ('u:22', 881250951000, '377', 1, 'rate')]"

# --- a bad line: exit 1, counted, quarantined
cat >"$T/bad.ndjson" <<'EOF'
{"event_id":"b1","type":"view_item","user_id":"1","timestamp":"2024-03-01T10:00:00Z"}
{"event_id":"b2","type":"view_item","user_id":"1","timestamp":"yesterday"}
not json at all
{"event_id":"b4","type":"view_item","user_id":"1","timestamp":"2024-03-01T10:00:01Z"}
EOF
rc=0; "$ATTUNE" import --data-dir "$T/bad" --json "$T/bad.ndjson" >"$T/out.json" 2>"$T/err" || rc=$?
check "rejected events: exit 1" test "$rc" -eq 1
check "rejected count in the summary" grep -q '^import: 4 events read, 2 accepted, 0 duplicates, 2 rejected' "$T/err"
check "the reason names file and line" grep -q 'bad.ndjson:2: invalid_event: ' "$T/err"
check "and the other one" grep -q 'bad.ndjson:3: invalid_json: ' "$T/err"
check "points to the quarantine log" grep -q 'GET /v1/rejected' "$T/err"
BODY=$(cat "$T/out.json")
check "--json rejected" jq_eq 'j["rejected"]' 2
printf 'user_id,note\n1,"ok"\n2,"x"y\n3,four,five\n' >"$T/bad.csv"
rc=0; "$ATTUNE" import --data-dir "$T/badcsv" "$T/bad.csv" 2>"$T/err" || rc=$?
check "unreadable CSV rows: exit 1" test "$rc" -eq 1
check "unreadable CSV rows counted" grep -q '^import: 3 events read, 1 accepted, 0 duplicates, 2 rejected' "$T/err"
check "unreadable CSV row named" grep -q 'bad.csv:3: invalid_csv: text after a closing quote' "$T/err"

# --- stdin: NDJSON and CSV guessed from the first byte
rc=0; "$ATTUNE" import --data-dir "$T/stdin" - <"$T/events.ndjson" 2>"$T/err" || rc=$?
check "NDJSON on stdin" grep -q '^import: 3 events read, 3 accepted' "$T/err"
rc=0; cat "$T/shop.csv" | "$ATTUNE" import --data-dir "$T/stdin2" - 2>"$T/err" || rc=$?
check "CSV on stdin (a pipe)" grep -q '^import: 3 events read, 3 accepted' "$T/err"
check "stdin gives the same events" test "$(replay_events "$T/stdin2")" = "$(cat "$T/csv.events")"

# --- --sort: the log holds each partition's events in time order
printf 'user_id,item_id,timestamp,event_id\n1,a,1709287300,s3\n1,b,1709287100,s1\n1,c,1709287200,s2\n1,d,1709287200,s2b\n' >"$T/unsorted.csv"
"$ATTUNE" import --data-dir "$T/sorted" --sort "$T/unsorted.csv" 2>"$T/err"
check "--sort: stable time order in the log" test "$("$ATTUNE" replay --data-dir "$T/sorted" |
    python3 -c 'import json, sys; print(" ".join(json.loads(l)["event_id"] for l in sys.stdin))')" = "s1 s2 s2b s3"

# --- a data directory held by a running server is refused; --url imports into it
start_server "$T/live"
rc=0; "$ATTUNE" import --data-dir "$T/live" "$T/events.ndjson" 2>"$T/err" || rc=$?
check "a server's data directory: exit 1" test "$rc" -eq 1
check "and says why" grep -q 'is in use' "$T/err"
rc=0; "$ATTUNE" import --url "$AT_URL" "$T/events.ndjson" "$T/shop.csv" 2>"$T/err" || rc=$?
check "--url import exits 0" test "$rc" -eq 0
check "--url summary" grep -q '^import: 6 events read, 6 accepted, 0 duplicates, 0 rejected' "$T/err"
rc=0; "$ATTUNE" import --url "$AT_URL" --connections 3 --batch 1 "$T/events.ndjson" 2>"$T/err" || rc=$?
check "--url again: duplicates" grep -q '^import: 3 events read, 0 accepted, 3 duplicates' "$T/err"
rc=0; "$ATTUNE" import --url "$AT_URL" "$T/bad.ndjson" 2>"$T/err" || rc=$?
check "--url with rejects: exit 1" test "$rc" -eq 1
check "--url rejected count" grep -q ' 2 rejected in ' "$T/err"
req GET '/v1/rejected?limit=10'
check "--url rejects are in the server's quarantine log" jq_eq 'len(j["rejected"])' 2
stop_server
check "--url gives the same events as a data directory" test \
    "$(replay_events "$T/live" | grep -v '^b')" = "$(LC_ALL=C sort "$T/nd.events" "$T/csv.events")"
# a server whose body limit is below a batch: 413, then one event per request
start_server "$T/small" --set http.max_body_bytes=1KiB --set events.max_event_bytes=512
rc=0; "$ATTUNE" import --url "$AT_URL" --connections 1 "$T/events.ndjson" "$T/shop.csv" \
    "$T/events.ndjson" "$T/shop.csv" 2>"$T/err" || rc=$?
check "a body limit below a batch: every event still goes in" \
    grep -q '^import: 12 events read, 6 accepted, 6 duplicates, 0 rejected' "$T/err"
req GET /metrics
check "after a 413" bash -c "grep -q '^attune_http_limit_refusals_total [1-9]' '$T/body'"
stop_server
rc=0; "$ATTUNE" import --url "http://127.0.0.1:$(at_free_port)" "$T/events.ndjson" 2>"$T/err" &
pid=$!
AT_PIDS+=("$pid")
sleep 1
kill -INT "$pid" 2>/dev/null || true
wait "$pid" || rc=$?
check "--url to nobody, interrupted: exit 1" test "$rc" -eq 1

# --- a segment from the config file sees the imported events
cat >"$T/rules.yaml" <<'YAML'
segments:
  - name: high_intent
    filter: type == "view_item"
    group_by: item_id
    window: 10m
    having: count > 3
YAML
cat >"$T/views.csv" <<'EOF'
user_id,item_id,timestamp,event_id
1,987,2024-03-01T10:00:00Z,v1
1,987,2024-03-01T10:02:00Z,v2
1,987,2024-03-01T10:04:00Z,v3
1,987,2024-03-01T10:06:00Z,v4
2,987,2024-03-01T10:07:00Z,v5
EOF
rc=0; "$ATTUNE" import --config "$T/rules.yaml" --data-dir "$T/seg" "$T/views.csv" 2>"$T/err" || rc=$?
check "import with rules exits 0" test "$rc" -eq 0
check "the segment_enter is in the output log" bash -c \
    "'$ATTUNE' replay --outputs --data-dir '$T/seg' | grep -q '\"type\":\"segment_enter\",\"segment\":\"high_intent\".*\"user\":\"u:1\"'"
if "$ATTUNE" replay --help | grep -q -- '--digest'; then
    d1=$("$ATTUNE" replay --digest --config "$T/rules.yaml" --data-dir "$T/seg")
    d2=$("$ATTUNE" replay --digest --from-scratch --config "$T/rules.yaml" --data-dir "$T/seg")
    check "the final checkpoints equal processing from scratch" test -n "$d1" -a "$d1" = "$d2"
else
    echo "skip: attune replay --digest does not exist yet"
fi
start_server "$T/seg" --config "$T/rules.yaml"
req GET /v1/users/u:1
check "the imported profile" jq_eq 'j["counters"]["view_item"]' 4
check "high_intent lists the imported user" jq_eq '[s["name"] for s in j["segments"]]' '["high_intent"]'
check "since the fourth view's event time" jq_eq 'j["segments"][0]["since"]' 2024-03-01T10:06:00.000Z
req GET /v1/users/u:2
check "the other user is not in it" jq_eq 'j["segments"]' '[]'
stop_server
finish
