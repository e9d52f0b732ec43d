# common.sh - assertions for the API integration tests, on top of lib.sh
# (server start/stop, ports, clean-up): HTTP calls that keep status and
# body, counted checks, JSON comparisons, and the closing summary line.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
at_it_init "$(basename "$0" .sh)"

T=$AT_WORK
FAILS=0
CHECKS=0
STATUS=""
BODY=""

# start_server DATA_DIR [flags...]: a server on a free port, ready.
start_server() {
    at_serve_start "$@"
    at_wait_ready
}

# stop_server: SIGTERM; fails the test unless it exits 0.
stop_server() {
    at_serve_stop
    CHECKS=$((CHECKS + 1))
    echo "ok: clean shutdown exits 0"
}

URL() { echo "$AT_URL$1"; }

# req METHOD PATH [curl args...]: sets STATUS and BODY ($T/body).
req() {
    local m=$1 p=$2
    shift 2
    STATUS=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 30 -X "$m" "$AT_URL$p" "$@")
    BODY=$(cat "$T/body")
}

# check NAME COMMAND...: runs the command and counts the outcome.
check() {
    local name=$1
    shift
    CHECKS=$((CHECKS + 1))
    if "$@"; then
        echo "ok: $name"
    else
        FAILS=$((FAILS + 1))
        echo "FAIL: $name (status=${STATUS:-} body=${BODY:0:300})" >&2
    fi
}

# jq_eq EXPR EXPECTED: a Python expression over the JSON body (as j),
# printed as JSON (strings bare), compared with EXPECTED.
jq_eq() {
    local got
    got=$(printf '%s' "$BODY" | python3 -c 'import json,sys
j = json.load(sys.stdin)
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))' "$1" 2>&1) || true
    [ "$got" = "$2" ] || { echo "  expected $1 == $2, got $got" >&2; return 1; }
}

finish() {
    echo "$((CHECKS - FAILS)) passed, $FAILS failed"
    [ "$FAILS" -eq 0 ] || AT_KEEP_WORK=1
    [ "$FAILS" -eq 0 ]
}
