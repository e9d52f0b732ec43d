#!/usr/bin/env bash
# test_eval.sh - `attune eval` on small generated datasets: the table and
# the JSON, determinism, options (--k, --methods, --warmup, --limit,
# --resamples), the three formats and standard input, and errors that name
# the line (exit 1) or the option (exit 2).
source "$(dirname "$0")/common.sh"

check "eval --help" bash -c "'$ATTUNE' eval --help | grep -qi usage"
check "attune --help lists eval" bash -c "'$ATTUNE' --help | grep -q '^  eval '"

# 60 users over 80 items of uneven popularity, with repeats, and a type column.
python3 - "$T/d.csv" "$T/u.data" <<'PY'
import random, sys
r = random.Random(5)
with open(sys.argv[1], "w") as f, open(sys.argv[2], "w") as m:
    f.write("user,item,timestamp,type\n")
    for i in range(3000):
        u = r.randrange(60)
        it = int(80 * r.random() ** 2)
        t = 1700000000 + i // 2          # pairs share a second
        f.write(f"{u},i{it},{t},{'view_item' if i % 3 else 'add_to_cart'}\n")
        m.write(f"{u}\t{it}\t{1 + i % 5}\t{t}\n")
PY

"$ATTUNE" eval "$T/d.csv" > "$T/table"
check "table has both baselines" bash -c "grep -q '^popularity ' '$T/table' && grep -q '^itemknn (neighbours=' '$T/table'"
check "table has the metrics at k = 10" grep -q 'HR@10 .*MRR@10 .*NDCG@10' "$T/table"
check "table says what was scored" grep -q '^scored: [0-9]* interactions whose item is new' "$T/table"

"$ATTUNE" eval --json "$T/d.csv" > "$T/j1"
"$ATTUNE" eval --json "$T/d.csv" > "$T/j2"
BODY=$(cat "$T/j1")
check "json: 3000 interactions" jq_eq 'j["interactions"]' 3000
check "json: methods in order, attune's own among them" jq_eq '[m["name"] for m in j["methods"]]' '["popularity", "itemknn", "attune"]'
check "json: attune's recommender finds next items" jq_eq 'j["methods"][2]["hits"] > 0' true
check "json: counts add up" jq_eq 'j["scored"] + j["repeats"] + j["without_item"] + j["scored_from"]' 3000
check "json: scoring starts after the tuning tenth" jq_eq 'j["scored_from"]' 300
check "json: bootstrap over users" jq_eq 'j["bootstrap"]["unit"]' user
check "json: intervals hold the estimate" jq_eq 'all(m[x]["lo"] <= m[x]["value"] <= m[x]["hi"] for m in j["methods"] for x in ("hr", "mrr", "ndcg"))' true
check "json: hits agree with HR" jq_eq 'all(abs(m["hits"] / j["scored"] - m["hr"]["value"]) < 1e-6 for m in j["methods"])' true
check "json: item-kNN tuned over its grid" jq_eq '[g["value"] for g in j["methods"][1]["tuned"]["grid"]]' '[10, 20, 50, 100, 200]'
strip() { python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
for m in j["methods"]:
    m.pop("seconds"); m.get("tuned", {}).pop("seconds", None)
print(json.dumps(j, sort_keys=True))' "$1"; }
check "two runs give the same figures" test "$(strip "$T/j1")" = "$(strip "$T/j2")"

"$ATTUNE" eval --json --k 5 --methods itemknn,popularity --warmup 0.5 --resamples 0 "$T/d.csv" > "$T/j3"
BODY=$(cat "$T/j3")
check "--k" jq_eq 'j["k"]' 5
check "--methods order" jq_eq '[m["name"] for m in j["methods"]]' '["itemknn", "popularity"]'
check "--warmup" jq_eq 'j["scored_from"]' 1500
check "--resamples 0: no interval" jq_eq 'all(m["hr"]["lo"] == m["hr"]["value"] == m["hr"]["hi"] for m in j["methods"])' true

"$ATTUNE" eval --json --limit 1000 --methods popularity - < "$T/d.csv" > "$T/j4"
BODY=$(cat "$T/j4")
check "--limit and stdin" jq_eq '[j["interactions"], j["dataset"], len(j["methods"])]' '[1000, "-", 1]'

"$ATTUNE" eval --json --format movielens --methods popularity "$T/u.data" > "$T/j5"
BODY=$(cat "$T/j5")
check "movielens format" jq_eq '[j["interactions"], j["users"]]' '[3000, 60]'
# The same interactions as the CSV (its user and item ids differ only by
# the "i"), so popularity scores the same.
BODY=$(cat "$T/j1")
pop_csv=$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["methods"][0]["hits"])')
BODY=$(cat "$T/j5")
check "movielens and csv agree" jq_eq 'j["methods"][0]["hits"]' "$pop_csv"

python3 - "$T/d.csv" "$T/d.ndjson" <<'PY'
import csv, json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as o:
    for row in csv.DictReader(f):
        o.write(json.dumps({"type": row["type"], "user_id": row["user"], "item_id": row["item"],
                            "timestamp": int(row["timestamp"]) * 1000}) + "\n")
PY
"$ATTUNE" eval --json --methods popularity "$T/d.ndjson" > "$T/j6"
BODY=$(cat "$T/j6")
check "ndjson agrees with csv" jq_eq 'j["methods"][0]["hits"]' "$pop_csv"

# Attune's own events, as `attune load` writes them.
"$ATTUNE" load --out "$T/load.ndjson" --events 2000 --users 100 --items 200 --seed 3 \
    --start-time 2026-01-01T00:00:00Z >/dev/null 2>&1
BODY=$("$ATTUNE" eval --json --k 5 "$T/load.ndjson")
check "attune load's events" jq_eq 'j["interactions"] == 2000 and j["without_item"] > 0 and j["scored"] > 0' true

printf 'user,item,timestamp\n1,a,1\n2,b,soon\n' > "$T/bad.csv"
rc=0; "$ATTUNE" eval "$T/bad.csv" 2>"$T/err" >/dev/null || rc=$?
check "a bad line exits 1" test "$rc" -eq 1
check "the error names line and field" grep -q 'line 3, field 3 (timestamp)' "$T/err"
rc=0; "$ATTUNE" eval "$T/missing.csv" 2>"$T/err" >/dev/null || rc=$?
check "a missing file exits 1" test "$rc" -eq 1
rc=0; "$ATTUNE" eval --methods nope "$T/d.csv" 2>"$T/err" >/dev/null || rc=$?
check "an unknown method exits 2" test "$rc" -eq 2
if ! "$ATTUNE" eval --help | grep -q ' attune$\|, attune'; then
    rc=0; "$ATTUNE" eval --methods attune "$T/d.csv" 2>"$T/err" >/dev/null || rc=$?
    check "attune without its adapter exits 2 and says so" bash -c "[ $rc -eq 2 ] && grep -q 'not built' '$T/err'"
fi
rc=0; "$ATTUNE" eval --k 0 "$T/d.csv" 2>/dev/null >/dev/null || rc=$?
check "--k 0 exits 2" test "$rc" -eq 2
rc=0; "$ATTUNE" eval 2>/dev/null || rc=$?
check "no file exits 2" test "$rc" -eq 2
finish
