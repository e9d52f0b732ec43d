#!/usr/bin/env bash
# test_crash_state.sh - processing state survives crashes exactly.
#
# Rounds of: `attune serve` with rules (checkpoints every second) under the
# power-loss shim, driven by `attune load`, SIGKILLed at a random moment,
# the power cut applied (everything not fsynced may be lost: the output logs
# are not fsynced except before a checkpoint), restarted. All rounds share
# one data directory, so each recovery starts from checkpoints written by
# an earlier one. At the end the state digest computed from the checkpoints
# plus the log's tail must equal the one of processing the whole log from
# scratch (what an engine that never crashed would hold after the same log),
# and every output id must appear once in the output logs.
#
# STATE_ROUNDS (8) and CRASH_SEED (random) change the run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
at_it_init crash_state

rounds=${STATE_ROUNDS:-8}
seed0=${CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed0
echo "crash_state: seed $seed0 (CRASH_SEED=$seed0 repeats this run)"
at_build_powerloss

cat >"$AT_WORK/rules.yaml" <<'YAML'
stream:
  lateness: 2s
  idle_tick: 300ms
checkpoint:
  interval: 1s
segments:
  - name: high_intent
    filter: type == "view_item"
    group_by: item_id
    window: 10m
    having: count > 2
  - name: browser
    filter: type == "page_view" || type == "view_item"
    window: session
    having: count >= 4
  - name: spender
    filter: type == "purchase"
    window: 1h
    having: count >= 1
  - name: fan
    when: profile.counters.add_to_cart >= 2
triggers:
  - name: cart_abandoned
    on: type == "add_to_cart"
    unless: type == "purchase"
    within: 3s
YAML

data="$AT_WORK/data"
mkdir -p "$data" # the shim resolves POWERLOSS_DIR at start
for k in $(seq "$rounds"); do
    journal="$AT_WORK/journal"
    rm -f "$journal"
    AT_SERVE_ENV=(LD_PRELOAD="$AT_WORK/powerloss.so" POWERLOSS_DIR="$data"
        POWERLOSS_JOURNAL="$journal" POWERLOSS_SYNC_DELAY_US=2000)
    at_serve_start "$data" --config "$AT_WORK/rules.yaml" --partitions 4
    AT_SERVE_ENV=()
    at_wait_ready 120
    "$ATTUNE" load --url "$AT_URL" --rate 1500 --duration 60s --batch 20 --connections 2 \
        --seed $((seed0 + k)) >"$AT_WORK/load.$k.log" 2>&1 &
    load=$!
    AT_PIDS+=("$load")
    ms=$((1500 + RANDOM % 2500))
    at_sleep_ms "$ms"
    at_serve_kill
    kill -INT "$load" 2>/dev/null || true
    wait "$load" 2>/dev/null || true
    out=$("$AT_WORK/powerloss-cut" "$journal" $((seed0 + k))) || at_fail "round $k: powerloss-cut failed"
    echo "crash_state: round $k/$rounds: killed after ${ms}ms; ${out#powerloss-cut: }"
done

# a last clean run: recover, let ticks close what is open, stop
at_serve_start "$data" --config "$AT_WORK/rules.yaml"
at_wait_ready 120
at_sleep_ms 1500
at_serve_stop

d1=$("$ATTUNE" replay --digest -d "$data" --config "$AT_WORK/rules.yaml") ||
    at_fail "digest from the checkpoints failed"
d2=$("$ATTUNE" replay --digest --from-scratch -d "$data" --config "$AT_WORK/rules.yaml") ||
    at_fail "digest from scratch failed"
echo "crash_state: digest from checkpoints $d1, from scratch $d2"
[ "$d1" = "$d2" ] || at_fail "the recovered state differs from a replay of the whole log"
# what processing the whole log produces, output by output
"$ATTUNE" replay --digest --from-scratch --outputs -d "$data" --config "$AT_WORK/rules.yaml" |
    grep '^{' >"$AT_WORK/regenerated.ndjson"

"$ATTUNE" replay --outputs -d "$data" >"$AT_WORK/outputs.ndjson"
"$ATTUNE" replay -d "$data" >"$AT_WORK/log.ndjson"
python3 - "$AT_WORK/outputs.ndjson" "$AT_WORK/log.ndjson" "$AT_WORK/regenerated.ndjson" <<'PY' || at_fail "outputs are wrong"
import collections, json, sys
outs = [json.loads(l) for l in open(sys.argv[1])]
regen = [json.loads(l) for l in open(sys.argv[3])]
# the output logs, written across crashes and power cuts, hold exactly what
# one uninterrupted pass over the log produces, at the same positions
def pos(o):
    p, off = o["position"].split(":")
    return (int(p), int(off), o["id"])
assert sorted(map(pos, outs)) == sorted(map(pos, regen)), \
    "the output log differs from a replay from scratch (%d vs %d outputs)" % (len(outs), len(regen))
ids = collections.Counter(o["id"] for o in outs)
dups = [i for i, c in ids.items() if c > 1]
assert not dups, "outputs appear twice: %s" % dups[:5]
seqs = collections.defaultdict(list)
for o in outs:
    seqs[o["user"]].append(o["seq"])
for u, s in seqs.items():
    assert s == sorted(s) and len(set(s)) == len(s), "user %s: sequence %s" % (u, s[:20])
events = sum(1 for l in open(sys.argv[2]) if '"type":"event"' in l)
kinds = collections.Counter(o["type"] for o in outs)
print("crash_state: %d events in the log, outputs %s" % (events, dict(kinds)))
assert events > 0 and outs, "nothing happened"
PY
echo "crash_state: $rounds crashes, recovered state equals a replay from scratch"
