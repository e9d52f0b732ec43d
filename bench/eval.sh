#!/usr/bin/env bash
# eval.sh - recommendation quality: `attune eval` on MovieLens 100K
# (prequential next-item evaluation, HR@10, MRR@10, NDCG@10 with bootstrap
# intervals; docs/decisions/0008-eval.md), every method against the
# popularity baseline of the same run.
#
# The data is never copied into the repository (its terms forbid
# redistribution): it is read where it lies, ../shared/data/movielens-100k
# beside the checkout, or EVAL_DATA. The figures are deterministic; the
# seconds are not, so the run is repeated EVAL_RUNS times (3) and the
# median seconds per method are reported (the figures of every run must be
# equal, or the script fails).
#
# Environment: ATTUNE (default build/release/attune), EVAL_DATA (u.data),
# EVAL_RUNS (3), EVAL_ARGS (extra options for attune eval, e.g.
# "--methods popularity,itemknn"), BENCH_TMP. Needs: python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ATTUNE=${ATTUNE:-$root/build/release/attune}
data=${EVAL_DATA:-$root/../shared/data/movielens-100k/u.data}
runs=${EVAL_RUNS:-3}
source "$root/bench/lib.sh"
bench_begin eval
[ -r "$data" ] || die "no MovieLens u.data at $data (set EVAL_DATA)"

echo "eval: attune eval --format movielens ${EVAL_ARGS:+$EVAL_ARGS }$data, $runs runs"
for i in $(seq 1 "$runs"); do
    # shellcheck disable=SC2086 # EVAL_ARGS is a list of options
    "$ATTUNE" eval --format movielens ${EVAL_ARGS:-} --json "$data" > "$work/run$i.json"
done

python3 - "$work"/run*.json <<'PY'
import json, statistics, sys
runs = [json.load(open(p)) for p in sys.argv[1:]]
def figures(j):
    j = json.loads(json.dumps(j))
    for m in j["methods"]:
        m.pop("seconds")
        m.get("tuned", {}).pop("seconds", None)
    return j
if any(figures(r) != figures(runs[0]) for r in runs):
    sys.exit("eval: the figures differ between runs")
j = runs[0]
k = j["k"]
print(f"dataset: {j['interactions']} interactions, {j['users']} users, {j['items']} items; "
      f"scored {j['scored']} new-item interactions after the first {j['scored_from']}; "
      f"bootstrap over users, {j['bootstrap']['resamples']} resamples, seed {j['bootstrap']['seed']}")
pop = next((m for m in j["methods"] if m["name"] == "popularity"), None)
print(f"\n| method | HR@{k} | MRR@{k} | NDCG@{k} | HR vs popularity | seconds (median of {len(runs)}) |")
print("|---|---|---|---|---:|---:|")
for i, m in enumerate(j["methods"]):
    name = m["name"]
    if "tuned" in m:
        name += f" ({m['tuned']['param']} = {m['tuned']['value']})"
    ci = lambda x: f"{m[x]['value']:.4f} [{m[x]['lo']:.4f}, {m[x]['hi']:.4f}]"
    ratio = f"{m['hr']['value'] / pop['hr']['value']:.2f}x" if pop and pop["hr"]["value"] else "-"
    secs = statistics.median(r["methods"][i]["seconds"] + r["methods"][i].get("tuned", {}).get("seconds", 0)
                             for r in runs)
    print(f"| {name} | {ci('hr')} | {ci('mrr')} | {ci('ndcg')} | {ratio} | {secs:.1f} |")
for m in j["methods"]:
    if "tuned" in m:
        t = m["tuned"]
        grid = ", ".join(f"{g['value']}: {g['hr']:.4f}" for g in t["grid"])
        print(f"\n{m['name']}: {t['param']} tuned on the first {j['tune_end']} interactions "
              f"({t['scored']} scored), HR@{k} {grid}; chose {t['value']}")
PY
