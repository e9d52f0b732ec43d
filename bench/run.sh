#!/usr/bin/env bash
# run.sh - runs every benchmark in turn (`make bench`): bench/http.sh,
# bench/ingest.sh, bench/flink.sh (the Flink peer, whose transitions
# stream.sh compares with attune's), then bench/stream.sh (processing
# throughput, latency and memory per user; STREAM_MEM_USERS=1000000 for the
# figure of docs/benchmarks.md, 100000 here by default to keep the run
# short), then bench/eval.sh (recommendation quality on MovieLens 100K,
# from ../shared/data), bench/reco.sh (recommendations served against
# nginx), bench/reco_instr.sh (instructions per answer built),
# bench/push.sh (POST to SSE latency, memory per stream) and
# bench/sinks.sh (webhook deliveries to nginx). Prints their results and
# records nothing: the numbers that matter go into docs/benchmarks.md by
# hand, with the machine they came from. Exits non-zero if any benchmark failed (the others still run).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
status=0
export STREAM_MEM_USERS=${STREAM_MEM_USERS:-100000}
for b in http ingest flink stream eval reco reco_instr push sinks; do
    echo "== bench/$b.sh"
    if [ ! -f "$here/$b.sh" ]; then
        echo "bench/$b.sh is missing: skipped" >&2
        status=1
        continue
    fi
    bash "$here/$b.sh" || { echo "bench/$b.sh failed" >&2; status=1; }
done
exit "$status"
