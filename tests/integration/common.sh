# common.sh - helpers for the integration tests: a server on a free
# loopback port in a fresh data directory, HTTP calls, JSON assertions.
# Sourced by tests/integration/test_*.sh; needs $ATTUNE (the binary).
set -euo pipefail

: "${ATTUNE:?set ATTUNE to the attune binary}"
TMP_ROOT=${AT_TEST_TMP:-/tmp}
mkdir -p "$TMP_ROOT"
T=$(mktemp -d "$TMP_ROOT/it.XXXXXX")
SERVER_PID=""
PORT=""
FAILS=0
CHECKS=0

cleanup() {
    [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server DATA_DIR [flags...]: starts attune serve, waits for /readyz.
start_server() {
    local dir=$1
    shift
    PORT=$(free_port)
    "$ATTUNE" serve --listen "127.0.0.1:$PORT" --data-dir "$dir" "$@" 2>>"$T/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        if curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$T/server.log"; fail "server exited at start"; return 1; }
        sleep 0.05
    done
    fail "server not ready"
}

# stop_server: SIGTERM, expects a clean exit 0.
stop_server() {
    kill -TERM "$SERVER_PID"
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    check "clean shutdown exits 0" test "$rc" -eq 0
}

URL() { echo "http://127.0.0.1:$PORT$1"; }

# req METHOD PATH [curl args...]: sets STATUS, BODY and HEADERS.
req() {
    local m=$1 p=$2
    shift 2
    STATUS=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$m" "$(URL "$p")" "$@")
    BODY=$(cat "$T/body")
    HEADERS=$(cat "$T/headers")
}

fail() {
    FAILS=$((FAILS + 1))
    echo "FAIL: $*" >&2
}

# check NAME COMMAND...: runs the command, counts it.
check() {
    local name=$1
    shift
    CHECKS=$((CHECKS + 1))
    if "$@"; then echo "ok: $name"; else fail "$name (status=${STATUS:-} body=${BODY:-})"; fi
}

# jq_eq EXPR EXPECTED: evaluates a Python expression over the JSON in $BODY
# (bound to j) and compares its repr-free value with EXPECTED.
jq_eq() {
    local got
    got=$(printf '%s' "$BODY" | python3 -c 'import json,sys; j=json.load(sys.stdin); v=eval(sys.argv[1]); print(json.dumps(v) if not isinstance(v,str) else v)' "$1" 2>&1) || true
    [ "$got" = "$2" ] || { echo "  expected $1 == $2, got $got" >&2; return 1; }
}

finish() {
    echo "$((CHECKS - FAILS)) passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}
