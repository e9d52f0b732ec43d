# lib.sh - what the benchmark scripts share; sourced, after `root` and
# ATTUNE are set, by bench/ingest.sh and bench/stream.sh.
#
# bench_begin NAME: checks the attune binary, makes the work directory
# $work under ${BENCH_TMP:-build/bench} and removes it on exit, killing the
# server whose pid is in $pid if one is still running.

bench_begin() {
    bench_name=$1
    [ -x "$ATTUNE" ] || { echo "$bench_name: no attune binary at $ATTUNE (make release)" >&2; exit 1; }
    mkdir -p "${BENCH_TMP:-$root/build/bench}"
    work=$(mktemp -d "${BENCH_TMP:-$root/build/bench}/$bench_name.XXXXXX")
    pid=""
    trap bench_cleanup EXIT
}

bench_cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}

die() {
    echo "$bench_name: $*" >&2
    exit 1
}

# free_port: a TCP port free on loopback now.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# stop_server: SIGTERM to $pid and wait for it.
stop_server() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}
