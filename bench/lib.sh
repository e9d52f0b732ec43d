# lib.sh - what the benchmark scripts share; sourced, after `root` and
# ATTUNE are set, by bench/ingest.sh, stream.sh, eval.sh, reco.sh and
# http.sh (which uses the helpers at the end only).
#
# bench_begin NAME: checks the attune binary, makes the work directory
# $work under ${BENCH_TMP:-build/bench} and removes it on exit, killing the
# server whose pid is in $pid if one is still running and the helper
# processes (nginx, load generators) whose pids are in the array $pids.

bench_begin() {
    bench_name=$1
    [ -x "$ATTUNE" ] || { echo "$bench_name: no attune binary at $ATTUNE (make release)" >&2; exit 1; }
    mkdir -p "${BENCH_TMP:-$root/build/bench}"
    work=$(mktemp -d "${BENCH_TMP:-$root/build/bench}/$bench_name.XXXXXX")
    pid=""
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
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

# wait_url URL PID: waits (up to 30 s) until URL answers 2xx; fails early
# when PID exits.
wait_url() {
    for _ in $(seq 300); do
        curl -fs -o /dev/null "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_server: SIGTERM to $pid and wait for it.
stop_server() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}

# median_of: the median of the numbers on stdin, one a line.
median_of() {
    sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# wrk_ms V: wrk's latency ("812.00us", "1.20ms", "1.01s") in milliseconds.
wrk_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}

# nginx_conf NGINX DIR PORT LOCATIONS: DIR/nginx.conf for one worker on
# 127.0.0.1:PORT without an access log, its temp paths inside DIR so it
# runs without root (only the temp path directives this build knows),
# serving the location blocks LOCATIONS.
nginx_conf() {
    local nginx=$1 dir=$2 port=$3 locations=$4 temps="" t
    for t in $("$nginx" -V 2>&1 | grep -o -- '--http-[a-z-]*-temp-path' | sed 's/--http-//; s/-temp-path//'); do
        temps+="  ${t//-/_}_temp_path $dir/nginx-$t;"$'\n'
    done
    cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
$temps  server {
    listen 127.0.0.1:$port;
$locations
  }
}
CONF
}
