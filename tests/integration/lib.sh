# lib.sh - shared helpers for the integration tests (sourced, never run).
#
# A test script does:   . "$(dirname "$0")/lib.sh"; at_it_init NAME
# and then uses:
#   at_free_port               prints a free loopback TCP port
#   at_serve_start DIR [ARG..] starts `attune serve` on a free loopback port
#                              with --data-dir DIR and ARGs, waits for
#                              /healthz; sets AT_PID AT_PORT AT_URL
#                              AT_SERVE_LOG. Extra environment for the server
#                              comes from the array AT_SERVE_ENV (VAR=value).
#   at_wait_ready [SECONDS]    waits until GET /readyz answers 200
#   at_serve_stop              SIGTERM, waits; fails unless the exit code is 0
#   at_serve_kill              SIGKILL, waits
#   at_http_code METHOD PATH [BODY]  prints the status code of one request
#   at_sleep_ms MS             sleeps MS milliseconds
#   at_build_powerloss         builds $AT_WORK/powerloss.so (the power-loss
#                              shim of powerloss.c) and $AT_WORK/powerloss-cut
#   at_fail MESSAGE            prints MESSAGE (and the server log's tail) and
#                              exits 1
# Processes started through these helpers are killed by the exit trap, by
# pid. $AT_WORK is removed on success and kept on failure.
#
# Environment (set by ctest, see tests/CMakeLists.txt): ATTUNE (the binary),
# AT_TEST_TMP (scratch space), AT_SOURCE_DIR, AT_BUILD_DIR.

AT_PIDS=()
AT_SERVE_ENV=()
AT_PID=""
AT_KEEP_WORK=0

at_it_init() {
    local name=$1
    AT_IT_NAME=$name
    if [ -z "${ATTUNE:-}" ]; then
        local b
        for b in "${AT_BUILD_DIR:-}/attune" build/dev/attune build/release/attune; do
            [ -x "$b" ] && ATTUNE=$b && break
        done
    fi
    [ -x "${ATTUNE:-}" ] || { echo "$name: set ATTUNE to the attune binary" >&2; exit 1; }
    mkdir -p "${AT_TEST_TMP:-/tmp}"
    AT_WORK=$(mktemp -d "${AT_TEST_TMP:-/tmp}/$name.XXXXXX")
    # ASan built with gcc wants its runtime first; a preloaded shim is not.
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
    trap at__cleanup EXIT
}

at__cleanup() {
    local rc=$? pid
    for pid in "${AT_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "$rc" -eq 0 ] && [ "$AT_KEEP_WORK" -eq 0 ]; then
        rm -rf "$AT_WORK"
    else
        echo "$AT_IT_NAME: work files kept in $AT_WORK" >&2
    fi
    exit "$rc"
}

at_fail() {
    echo "$AT_IT_NAME: FAIL: $*" >&2
    if [ -n "${AT_SERVE_LOG:-}" ] && [ -f "$AT_SERVE_LOG" ]; then
        echo "--- last lines of $AT_SERVE_LOG" >&2
        tail -n 20 "$AT_SERVE_LOG" >&2
    fi
    exit 1
}

at_sleep_ms() {
    sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"
}

at_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

at_http_code() {
    local method=$1 path=$2
    if [ $# -ge 3 ]; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$method" \
            -H 'Content-Type: application/json' --data-binary "$3" "$AT_URL$path" || true
    else
        curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$method" "$AT_URL$path" || true
    fi
}

# Starts the server; retries on another port when the chosen one was taken
# between at_free_port and the bind.
at_serve_start() {
    local dir=$1 try i
    shift
    for try in 1 2 3; do
        AT_PORT=$(at_free_port)
        AT_URL="http://127.0.0.1:$AT_PORT"
        AT_SERVE_LOG="$AT_WORK/serve.$AT_PORT.log"
        env ${AT_SERVE_ENV[@]+"${AT_SERVE_ENV[@]}"} "$ATTUNE" serve \
            --listen "127.0.0.1:$AT_PORT" --data-dir "$dir" "$@" 2>"$AT_SERVE_LOG" &
        AT_PID=$!
        AT_PIDS+=("$AT_PID")
        for i in $(seq 300); do
            [ "$(at_http_code GET /healthz)" = 200 ] && return 0
            kill -0 "$AT_PID" 2>/dev/null || break
            at_sleep_ms 20
        done
        if kill -0 "$AT_PID" 2>/dev/null; then
            at_fail "server on port $AT_PORT did not answer /healthz within 6 s"
        fi
        wait "$AT_PID" 2>/dev/null || true
        grep -qi 'in use' "$AT_SERVE_LOG" || at_fail "server exited at start"
    done
    at_fail "no free port after 3 tries"
}

at_wait_ready() {
    local secs=${1:-60} i
    for i in $(seq $((secs * 20))); do
        [ "$(at_http_code GET /readyz)" = 200 ] && return 0
        kill -0 "$AT_PID" 2>/dev/null || at_fail "server exited before it was ready"
        at_sleep_ms 50
    done
    at_fail "server not ready within $secs s"
}

at_serve_stop() {
    local rc=0 i
    kill -TERM "$AT_PID" 2>/dev/null || at_fail "server $AT_PID is not running"
    for i in $(seq 600); do
        kill -0 "$AT_PID" 2>/dev/null || break
        at_sleep_ms 50
    done
    kill -0 "$AT_PID" 2>/dev/null && at_fail "server did not stop within 30 s of SIGTERM"
    wait "$AT_PID" || rc=$?
    [ "$rc" -eq 0 ] || at_fail "server exited with $rc after SIGTERM"
}

at_serve_kill() {
    kill -9 "$AT_PID" 2>/dev/null || true
    wait "$AT_PID" 2>/dev/null || true
}

at_build_powerloss() {
    local src cc=${CC:-cc}
    src="$(dirname "${BASH_SOURCE[0]}")/powerloss.c"
    $cc -shared -fPIC -O1 -o "$AT_WORK/powerloss.so" "$src" -ldl ||
        at_fail "cannot build the shim"
    $cc -O1 -DPOWERLOSS_CUT -o "$AT_WORK/powerloss-cut" "$src" ||
        at_fail "cannot build the cut"
}
