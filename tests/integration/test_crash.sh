#!/usr/bin/env bash
# test_crash.sh - no acknowledged event is lost to a power cut (DESIGN.md §1).
#
# Each round starts `attune serve --fsync batch` under the powerloss.c shim,
# drives it with `attune load --acked`, SIGKILLs it at a random moment, does
# to the data directory what a power cut may do (powerloss-cut), restarts the
# server without the shim, waits for /readyz, stops it, and checks with
# `attune replay` that every acknowledged event is in the log exactly once,
# that no event is in it twice, that every event is one the load generated,
# and that offsets increase within each partition. The batch rounds share
# one data directory, so each recovery also starts from an earlier one.
#
# Then the control: the same with --fsync never (a fresh directory per round)
# must lose acknowledged events in at least one round; if it never does, the
# test could not see a missing fsync and fails.
#
# CRASH_ROUNDS (20), CRASH_CONTROL_ROUNDS (5) and CRASH_SEED (random) change
# the run; the seed is printed so a failing run can be repeated.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
at_it_init crash

rounds=${CRASH_ROUNDS:-20}
control_rounds=${CRASH_CONTROL_ROUNDS:-5}
seed0=${CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed0
echo "crash: seed $seed0 (CRASH_SEED=$seed0 repeats this run)"

at_build_powerloss

# check.py ACKED_DIR REPLAY SEEDS: prints "lost L dup D acked A events E" and
# what is wrong; exits 0 when all is well, 3 when acknowledged events are
# missing and nothing else is wrong, 1 on anything else (a duplicated or
# foreign event, a line that is not JSON, an offset out of order).
cat >"$AT_WORK/check.py" <<'EOF'
import glob, json, re, sys
acked = set()
for f in glob.glob(sys.argv[1] + "/*.acked"):
    with open(f) as fh:
        acked.update(l.strip() for l in fh if l.endswith("\n") and l.strip())
seeds = set(sys.argv[3].split())
seen, last, bad = {}, {}, []
with open(sys.argv[2]) as fh:
    for n, line in enumerate(fh, 1):
        try:
            r = json.loads(line)
        except ValueError:
            bad.append("line %d is not JSON: %.80r" % (n, line))
            continue
        p, off = r["partition"], r["offset"]
        if p in last and off <= last[p]:
            bad.append("partition %d: offset %d after %d" % (p, off, last[p]))
        last[p] = off
        if r["type"] != "event":
            continue
        eid = r["event_id"]
        m = re.fullmatch(r"ld-(\d+)-\d+", eid)
        if not m or m.group(1) not in seeds or not isinstance(r["value"], dict):
            bad.append("line %d: an event the load never sent: %.80r" % (n, line))
        seen[eid] = seen.get(eid, 0) + 1
lost = sorted(acked - seen.keys())
dups = sorted(k for k, v in seen.items() if v > 1)
print("lost %d dup %d acked %d events %d" % (len(lost), len(dups), len(acked), len(seen)))
if dups:
    bad.append("%d duplicated, e.g. %s" % (len(dups), " ".join(dups[:5])))
for b in bad[:10]:
    print("  " + b)
if lost:
    print("  %d lost, e.g. %s" % (len(lost), " ".join(lost[:5])))
sys.exit(1 if bad else 3 if lost else 0)
EOF

# One round: crash_round POLICY DATA_DIR ROUND. Sets round_lost (acknowledged
# events missing after the cut) and round_summary; fails the test on
# anything else that is wrong (duplicates, garbage, a server that does not
# come back).
seeds=""
crash_round() {
    local policy=$1 data=$2 k=$3
    local seed=$((seed0 + k)) ms rc=0 out
    local journal="$AT_WORK/journal" acked="$data.acked/$k.acked"
    seeds="$seeds $seed"
    mkdir -p "$data" "$data.acked"
    rm -f "$journal"
    # A 5 ms slower fdatasync widens the window in which a kill finds bytes
    # written but not yet durable.
    AT_SERVE_ENV=(LD_PRELOAD="$AT_WORK/powerloss.so" POWERLOSS_DIR="$data"
        POWERLOSS_JOURNAL="$journal" POWERLOSS_SYNC_DELAY_US=5000)
    at_serve_start "$data" --fsync "$policy"
    AT_SERVE_ENV=()
    at_wait_ready 60
    "$ATTUNE" load --url "$AT_URL" --rate 3000 --duration 60s --batch 50 --connections 4 \
        --seed "$seed" --acked "$acked" --drain 1s >"$AT_WORK/load.$k.log" 2>&1 &
    local load=$!
    AT_PIDS+=("$load")
    ms=$((300 + RANDOM % 1701))
    at_sleep_ms "$ms"
    at_serve_kill
    kill -INT "$load" 2>/dev/null || true
    timeout 20 tail --pid="$load" -f /dev/null || kill -9 "$load" 2>/dev/null || true
    wait "$load" 2>/dev/null || true
    [ -s "$acked" ] ||
        at_fail "round $k: no event was acknowledged (see $AT_WORK/load.$k.log)"

    out=$("$AT_WORK/powerloss-cut" "$journal" "$seed") || at_fail "round $k: powerloss-cut failed"
    local cut=${out#powerloss-cut: }

    at_serve_start "$data" --fsync "$policy"
    at_wait_ready 120
    at_serve_stop
    "$ATTUNE" replay --data-dir "$data" >"$AT_WORK/replay.ndjson" 2>"$AT_WORK/replay.err" ||
        at_fail "round $k: replay failed: $(head -c 300 "$AT_WORK/replay.err")"
    out=$(python3 "$AT_WORK/check.py" "$data.acked" "$AT_WORK/replay.ndjson" "$seeds") || rc=$?
    round_lost=$(awk 'NR == 1 { print $2 }' <<<"$out")
    round_acked=$(awk 'NR == 1 { print $6 }' <<<"$out")
    [[ $cut == *" bytes_lost=0 "* ]] || damaged=$((damaged + 1))
    round_summary="kill after ${ms}ms, $(wc -l <"$acked") acked, $cut;"
    round_summary+=" in the log: $(head -n 1 <<<"$out")"
    case $rc in
    0) ;;
    3) tail -n +2 <<<"$out" >&2 ;;
    *) # Anything but plain loss fails whatever the policy.
        echo "$out" >&2
        at_fail "round $k (fsync $policy): $round_summary" ;;
    esac
}

start=$(date +%s)
damaged=0
data="$AT_WORK/data-batch"
for k in $(seq "$rounds"); do
    crash_round batch "$data" "$k"
    echo "crash: round $k/$rounds fsync=batch: $round_summary"
    [ "$round_lost" = 0 ] || at_fail "round $k: $round_lost acknowledged events lost"
done
checked=$round_acked
batch_damaged=$damaged

detected=0
seeds=""
for k in $(seq "$control_rounds"); do
    crash_round never "$AT_WORK/data-never-$k" "$((rounds + k))"
    echo "crash: control $k/$control_rounds fsync=never: $round_summary"
    [ "$round_lost" = 0 ] || detected=$((detected + 1))
    rm -rf "$AT_WORK/data-never-$k"
done
[ "$detected" -gt 0 ] || at_fail "control: --fsync never lost nothing in $control_rounds" \
    "rounds, so this test cannot see a missing fsync"

echo "crash: control lost acknowledged events in $detected of $control_rounds rounds" \
    "with --fsync never (expected)"
echo "crash: the kill found written but not durable bytes in $batch_damaged of $rounds" \
    "batch rounds"
echo "crash: $rounds rounds, $checked acknowledged events checked, 0 lost" \
    "($(($(date +%s) - start)) s)"
