#!/usr/bin/env bash
# stream.sh - stream processing: latency from acknowledgment to segment
# event, events per second through the processing path, and memory per
# user, each with its peer where there is one (bench/flink.sh for Flink,
# Redis for memory).
#
# Modes (STREAM_MODES, default "latency throughput memory"):
#   latency     `attune serve` with the rules given, fed by `attune load` at
#               STREAM_RATE events/s (open loop, event times = now) for
#               STREAM_LAT_SECONDS; the server's own summary of the time
#               from each event's durable acknowledgment to the segment or
#               trigger event it made final at once
#               (attune_output_latency_early_seconds), once with
#               checkpoints every STREAM_CKPT_OFF (10 min: none during the
#               run) and once every STREAM_CKPT_ON (1 s: one is always
#               running or just done). The whole run counts: attune has no
#               JIT to warm up. The client's ack latency is printed too.
#   throughput  `attune import` of STREAM_EVENTS generated events into a
#               new data directory, timed from start to the last event
#               processed, once with the high_intent rule alone (the rule
#               of the Flink job) and once with bench/stream_rules.yaml.
#   memory      STREAM_MEM_USERS users with about 50 events each over 7 days
#               (`attune load --out --anonymous 0` at the rate that spreads
#               them so),
#               imported with bench/stream_rules.yaml; then `attune serve`
#               recovers that state and its RSS minus an empty server's,
#               divided by the users held, is the bytes per user (once
#               with everything, once more with dedup.horizon=0: the dedup
#               index holds event ids, so it grows with the events of its
#               horizon, not with the users). The same
#               profiles (as GET /v1/users/{id} renders them, a sample)
#               stored as Redis hashes, one per user, give Redis's bytes
#               per user (INFO memory used_memory growth).
# The engine runs on CPUs 0 and 1 (taskset), as the Flink job does.
#
# Environment: ATTUNE (build/release/attune), STREAM_MODES, STREAM_RATE
# (10000), STREAM_LAT_SECONDS (60), STREAM_CKPT_OFF (10m), STREAM_CKPT_ON
# (1s), STREAM_EVENTS (2000000), STREAM_MEM_USERS (1000000), STREAM_SEED
# (20260427), STREAM_START (2026-04-27T00:00:00Z), BENCH_TMP (build/bench).
# Needs: curl, python3, taskset, redis-server and redis-cli for memory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ATTUNE=${ATTUNE:-$root/build/release/attune}
modes=${STREAM_MODES:-latency throughput memory}
rate=${STREAM_RATE:-10000}
lat_batch=${STREAM_BATCH:-10}
lat_seconds=${STREAM_LAT_SECONDS:-60}
ckpt_off=${STREAM_CKPT_OFF:-10m}
ckpt_on=${STREAM_CKPT_ON:-1s}
events=${STREAM_EVENTS:-2000000}
mem_users=${STREAM_MEM_USERS:-1000000}
seed=${STREAM_SEED:-20260427}
start=${STREAM_START:-2026-04-27T00:00:00Z}
rules="$root/bench/stream_rules.yaml"
source "$root/bench/lib.sh"
bench_begin stream

# start_server PORT DATA CONFIG [ARGS...]: attune serve on CPUs 0,1, waits
# until it is ready.
start_server() {
    local port=$1 data=$2 cfg=$3 i
    shift 3
    taskset -c 0,1 "$ATTUNE" serve --listen "127.0.0.1:$port" --data-dir "$data" --config "$cfg" \
        "$@" 2>>"$work/attune.log" &
    pid=$!
    # recovering a large state reads the dedup horizon's log: minutes at 1M users
    for i in $(seq 12000); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] &&
            return 0
        kill -0 "$pid" 2>/dev/null || { tail -20 "$work/attune.log" >&2; die "attune serve exited"; }
        sleep 0.05
    done
    die "attune serve was not ready after 10 min"
}


# metric TEXT NAME [LABELS]: the value of one sample of /metrics text.
metric() {
    local n=$2
    [ -n "${3:-}" ] && n="$2{$3}"
    awk -v n="$n" '$1 == n { print $2; exit }' <<<"$1"
}

# config FILE INTERVAL [RULES]: a config with the rules of RULES (default:
# high_intent alone) and the checkpoint interval.
config() {
    local f=$1 iv=$2 src=${3:-}
    if [ -n "$src" ]; then
        sed "s/^checkpoint:.*//" "$src" >"$f"
    else
        cat >"$f" <<'EOF'
segments:
  - name: high_intent
    filter: type == "view_item"
    group_by: item_id
    window: 10m
    having: count > 3
EOF
    fi
    printf 'checkpoint:\n  interval: %s\n' "$iv" >>"$f"
}

ms() { awk -v s="$1" 'BEGIN { printf "%.3f", s * 1000 }'; }

# ---- latency ----------------------------------------------------------------
lat_run() { # lat_run LABEL CONFIG
    local port data="$work/lat-data" out m n
    port=$(free_port)
    rm -rf "$data"
    start_server "$port" "$data" "$2"
    out=$("$ATTUNE" load --url "http://127.0.0.1:$port" --rate "$rate" --duration "${lat_seconds}s" --batch "$lat_batch" \
        --seed "$seed" --json) || die "attune load failed ($1)"
    sleep 2 # the last outputs
    m=$(curl -s "http://127.0.0.1:$port/metrics")
    stop_server
    rm -rf "$data"
    n=$(metric "$m" attune_output_latency_early_seconds_count)
    [ "${n:-0}" -gt 0 ] || die "no early outputs were measured ($1)"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
lat = r.get("latency_ms", {})
print("stream: %-32s ack->segment p50 %s ms p99 %s ms p99.9 %s ms (%s outputs, %s checkpoints);"
      " client ack p50 %s ms p99 %s ms" % (sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5],
      sys.argv[6], sys.argv[7], lat.get("p50", "?"), lat.get("p99", "?")))' "$out" "$1" \
        "$(ms "$(metric "$m" attune_output_latency_early_seconds 'quantile="0.5"')")" \
        "$(ms "$(metric "$m" attune_output_latency_early_seconds 'quantile="0.99"')")" \
        "$(ms "$(metric "$m" attune_output_latency_early_seconds 'quantile="0.999"')")" \
        "$n" "$(metric "$m" attune_checkpoints_total)"
}

# ---- throughput -------------------------------------------------------------
gen() { # gen FILE COUNT RATE USERS [ANONYMOUS_SHARE]
    "$ATTUNE" load --out "$1" --events "$2" --rate "$3" --users "$4" --seed "$seed" \
        --anonymous "${5:-0.2}" --start-time "$start" >/dev/null 2>"$work/load.log" || {
        cat "$work/load.log" >&2
        die "attune load --out failed"
    }
}

tp_run() { # tp_run LABEL CONFIG FILE [COMPARE]
    local data="$work/tp-data" t0 t1 out cpu
    rm -rf "$data"
    t0=$(date +%s.%N)
    out=$(/usr/bin/time -f '%U %S' -o "$work/time.txt" taskset -c 0,1 "$ATTUNE" import \
        --data-dir "$data" --config "$2" --shards 2 --json "$3" 2>"$work/import.log") || {
        tail -5 "$work/import.log" >&2
        die "attune import failed ($1)"
    }
    t1=$(date +%s.%N)
    cpu=$(awk '{ print $1 + $2 }' "$work/time.txt")
    python3 -c '
import json, sys
r = json.loads(sys.argv[1]); n = r["accepted"]; wall = float(sys.argv[3]) - float(sys.argv[2])
print("stream: %-12s %8.0f events/s (%d events in %.2f s, start to engine closed), %8.0f events "
      "per CPU-second" % (sys.argv[4], n / wall, n, wall, n / float(sys.argv[5])))' \
        "$(tail -1 <<<"$out")" "$t0" "$t1" "$1" "$cpu"
    if [ -n "${4:-}" ]; then
        "$ATTUNE" replay --data-dir "$data" --outputs 2>/dev/null >"$work/outputs.ndjson"
        transitions "$work/outputs.ndjson" "$3" >"$work/attune-high_intent.tsv"
        echo "stream: high_intent transitions written sorted to $work/attune-high_intent.tsv" \
            "($(wc -l <"$work/attune-high_intent.tsv") lines)" >&2
        local flink=${FLINK_OUT:-${BENCH_TMP:-$root/build/bench}/flink-high_intent.tsv}
        if [ -f "$flink" ]; then
            compare "$work/attune-high_intent.tsv" "$flink" "$3"
        fi
        cp "$work/attune-high_intent.tsv" "${BENCH_TMP:-$root/build/bench}/attune-high_intent.tsv"
    fi
    rm -rf "$data"
}

# transitions OUTPUTS EVENTS: the high_intent enters and exits as Flink's
# job writes them (USER<TAB>ITEM<TAB>enter|exit<TAB>INSTANT, sorted).
transitions() {
    python3 -c '
import json, sys
rows = []
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("segment") != "high_intent":
        continue
    kind = {"segment_enter": "enter", "segment_exit": "exit"}.get(o["type"])
    if kind:
        rows.append("%s\t%s\t%s\t%s" % (o["user"], o.get("group", ""), kind, o["at"]))
for r in sorted(rows):
    print(r)' "$1"
}

# compare ATTUNE_TSV FLINK_TSV EVENTS: the same transitions, up to the
# instants neither side can close (exits after the last event - 5 s).
compare() {
    python3 -c '
import json, sys, datetime
def ms(t):
    return int(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000)
last = 0
for line in open(sys.argv[3]):
    i = line.find("\"timestamp\":\"")
    if i >= 0:
        last = max(last, ms(line[i + 13:line.index("\"", i + 13)]))
cut = last - 5000
def load(f):
    out = set()
    for l in open(f):
        u, g, k, t = l.rstrip("\n").split("\t")
        if k == "exit" and ms(t) > cut:
            continue
        out.add((u, g, k, ms(t)))
    return out
a, f = load(sys.argv[1]), load(sys.argv[2])
if a == f:
    print("stream: high_intent transitions equal to the Flink job'"'"'s (%d)" % len(a))
else:
    print("stream: high_intent transitions DIFFER from the Flink job'"'"'s: %d only in attune, %d "
          "only in Flink (of %d, %d); e.g. %s / %s" % (len(a - f), len(f - a), len(a), len(f),
          sorted(a - f)[:2], sorted(f - a)[:2]))' "$1" "$2" "$3"
}

# ---- memory -----------------------------------------------------------------
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

mem_run() {
    local users=$mem_users n=$((mem_users * 50)) mrate port data="$work/mem-data" empty="$work/mem-empty"
    mrate=$(awk -v n="$n" 'BEGIN { printf "%.6f", n / (7 * 86400) }')
    echo "stream: memory: $users users, $n events over 7 days (rate $mrate/s of event time)," \
        "bench/stream_rules.yaml, $("$ATTUNE" version 2>/dev/null)"
    gen "$work/mem.ndjson" "$n" "$mrate" "$users" 0 # known users only: typical profiles
    config "$work/mem.yaml" "$ckpt_off" "$rules"
    rm -rf "$data" "$empty"
    /usr/bin/time -f '%e %M' -o "$work/time.txt" taskset -c 0,1 "$ATTUNE" import --data-dir "$data" \
        --config "$work/mem.yaml" --shards 2 --json "$work/mem.ndjson" >"$work/import.json" \
        2>"$work/import.log" || { tail -5 "$work/import.log" >&2; die "import failed"; }
    rm -f "$work/mem.ndjson"
    echo "stream: memory: imported in $(awk '{ print $1 }' "$work/time.txt") s," \
        "peak RSS of the import $(awk '{ printf "%.0f", $2 / 1024 }' "$work/time.txt") MiB" >&2
    port=$(free_port)
    start_server "$port" "$empty" "$work/mem.yaml"
    sleep 2
    local base held m users_held
    base=$(rss_kb "$pid")
    stop_server
    local t0
    t0=$(date +%s.%N)
    start_server "$port" "$data" "$work/mem.yaml"
    echo "stream: memory: ready after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s" >&2
    sleep 2
    held=$(rss_kb "$pid")
    m=$(curl -s "http://127.0.0.1:$port/metrics")
    users_held=$(metric "$m" attune_users)
    # a sample of profiles, for the Redis side
    for i in $(seq 1 997 "$users"); do
        curl -s "http://127.0.0.1:$port/v1/users/u:$i"
        echo
    done >"$work/profiles.ndjson"
    stop_server
    # the same state without the dedup index (which holds event ids, not
    # users: its size follows the events of the horizon)
    local nodedup ddn
    start_server "$port" "$data" "$work/mem.yaml" --set dedup.horizon=0
    sleep 2
    nodedup=$(rss_kb "$pid")
    stop_server
    ddn=$(metric "$m" attune_dedup_entries)
    awk -v b="$base" -v h="$held" -v u="$users_held" -v sb="$(metric "$m" attune_state_bytes)" \
        -v nd="$nodedup" -v dn="${ddn:-0}" \
        'BEGIN { printf "stream: memory: attune %.0f bytes per user, everything included (RSS %.0f MiB - " \
                 "empty %.0f MiB, %d users and aliases held); without the dedup index (%d event ids) " \
                 "%.0f bytes per user (RSS %.0f MiB); keyed state %.0f bytes per user\n",
                 (h - b) * 1024 / u, h / 1024, b / 1024, u, dn, (nd - b) * 1024 / u, nd / 1024, sb / u }'
    redis_mem "$work/profiles.ndjson" "$users_held"
}

# redis_mem PROFILES USERS: the sampled profiles as one Redis hash per
# user (fields flattened: counters.view_item, affinities.books,
# recent_items.0, segments.high_intent, ...), USERS of them (the sample
# repeated), bytes per user from INFO memory's used_memory.
redis_mem() {
    command -v redis-server >/dev/null || { echo "stream: memory: no redis-server, Redis side skipped" >&2; return; }
    local port rdir="$work/redis" before after
    port=$(free_port)
    mkdir -p "$rdir"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$rdir" --save "" --appendonly no \
        --daemonize no --logfile "$work/redis.log" &
    local rpid=$!
    for i in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    before=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')
    python3 -c '
import json, sys
profs = []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    p = json.loads(line)
    if "error" in p:
        continue
    flat = {}
    def walk(pre, v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(pre + "." + k if pre else k, x)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                flat["%s.%d" % (pre, i)] = json.dumps(x, separators=(",", ":"))
        else:
            flat[pre] = v if isinstance(v, str) else json.dumps(v)
    walk("", p)
    profs.append(flat)
out = sys.stdout.buffer
def cmd(args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        b = a.encode()
        out.write(b"$%d\r\n%s\r\n" % (len(b), b))
for u in range(int(sys.argv[2])):
    f = profs[u % len(profs)]
    args = ["HSET", "user:u:%d" % (u + 1)]
    for k, v in f.items():
        args += [k, v]
    cmd(args)
sys.stderr.write("stream: memory: redis: %d sampled profiles, %.1f fields each\n" %
                 (len(profs), sum(len(f) for f in profs) / max(len(profs), 1)))' \
        "$1" "$2" | redis-cli -p "$port" --pipe >/dev/null
    after=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$rpid"
    wait "$rpid" 2>/dev/null || true
    awk -v a="$after" -v b="$before" -v u="$2" -v v="$(redis-server --version | awk '{ print $3 }')" \
        'BEGIN { printf "stream: memory: redis %s %.0f bytes per user (same profiles as hashes, " \
                 "used_memory growth / %d users)\n", v, (a - b) / u, u }'
}

for mode in $modes; do
    case $mode in
    latency)
        echo "stream: latency at $rate events/s for $lat_seconds s, $("$ATTUNE" version 2>/dev/null)"
        config "$work/hi-off.yaml" "$ckpt_off"
        config "$work/hi-on.yaml" "$ckpt_on"
        config "$work/all-on.yaml" "$ckpt_on" "$rules"
        lat_run "high_intent" "$work/hi-off.yaml"
        lat_run "high_intent, checkpoint every $ckpt_on" "$work/hi-on.yaml"
        lat_run "26 rules, checkpoint every $ckpt_on" "$work/all-on.yaml"
        ;;
    throughput)
        gen "$work/events.ndjson" "$events" "$rate" 100000
        echo "stream: throughput of attune import, $events events (seed $seed, $rate/s of event" \
            "time from $start), 2 shards on CPUs 0,1, $("$ATTUNE" version 2>/dev/null)"
        config "$work/hi.yaml" "$ckpt_off"
        config "$work/all.yaml" "$ckpt_off" "$rules"
        tp_run "high_intent" "$work/hi.yaml" "$work/events.ndjson" yes
        tp_run "26 rules" "$work/all.yaml" "$work/events.ndjson"
        rm -f "$work/events.ndjson"
        ;;
    memory)
        mem_run
        ;;
    *) die "unknown mode $mode in STREAM_MODES" ;;
    esac
done
