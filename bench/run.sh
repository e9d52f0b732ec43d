#!/usr/bin/env bash
# run.sh - runs every benchmark in turn (`make bench`): bench/http.sh, then
# bench/ingest.sh. Prints their results and records nothing: the numbers
# that matter go into docs/benchmarks.md by hand, with the machine they
# came from. Exits non-zero if any benchmark failed (the others still run).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
status=0
for b in http ingest; do
    echo "== bench/$b.sh"
    if [ ! -f "$here/$b.sh" ]; then
        echo "bench/$b.sh is missing: skipped" >&2
        status=1
        continue
    fi
    bash "$here/$b.sh" || { echo "bench/$b.sh failed" >&2; status=1; }
done
exit "$status"
