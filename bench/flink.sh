#!/usr/bin/env bash
# flink.sh - the high_intent segment on Apache Flink, the peer of attune's
# stream processing (bench/flink/README.md says what the job does).
#
# Builds the Flink job (bench/flink, Maven) if needed, generates the events
# with `attune load --out` (same seed, count and start time give the same
# file, so attune can be run on it too), and runs the job on a local
# mini-cluster with parallelism 2, pinned with taskset to CPUs 0 and 1 (the
# job needs both: two source/parse subtasks and two keyed subtasks):
#   - throughput: FLINK_EVENTS events read as fast as possible; warm-up runs
#     of the same file first (FLINK_WARMUP_RUNS, 2), in the same JVM, then a
#     timed run, measured from its first event to its last output; checkpoints off (FLINK_CHECKPOINT_S
#     adds a run with checkpoints); its transitions, sorted, go to FLINK_OUT;
#   - latency: FLINK_RATE events/s replayed at their own pace for
#     FLINK_LAT_SECONDS, event times shifted to the wall clock; enters after
#     the first FLINK_LAT_WARMUP seconds are measured from the moment their
#     event entered the pipeline; once per buffer timeout in
#     FLINK_BUFFER_TIMEOUTS (Flink's default, 100 ms, and 5 ms).
# Prints
#   flink: high_intent throughput N events/s (enters E, exits X, late L), K events per CPU-second
#   flink: high_intent latency at R ev/s p50 .. p99 .. p99.9 .. (...)
# and details on stderr.
#
# Environment: ATTUNE (default build/release/attune), FLINK_EVENTS (2000000),
# FLINK_SEED (20260427), FLINK_START (2026-04-27T00:00:00Z, the first event's
# time), FLINK_RATE (10000: events per second of event time in both files,
# the replay rate in latency mode), FLINK_LAT_SECONDS (90),
# FLINK_LAT_WARMUP (30), FLINK_BUFFER_TIMEOUTS ("100 5", in ms),
# FLINK_CHECKPOINT_S (0: no run with checkpoints), FLINK_MODES
# ("throughput latency"), FLINK_HEAP (4g), FLINK_GC_THROUGHPUT (Parallel),
# FLINK_GC_LATENCY (G1), FLINK_OUT (the sorted transitions
# of the throughput run; default $BENCH_TMP/flink-high_intent.tsv), BENCH_TMP
# (build/bench), JAVA_HOME. Needs: Java 17 or later, Maven, taskset; Maven
# Central (or a filled ~/.m2) for the first build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
job="$root/bench/flink"
ATTUNE=${ATTUNE:-$root/build/release/attune}
events=${FLINK_EVENTS:-2000000}
seed=${FLINK_SEED:-20260427}
start=${FLINK_START:-2026-04-27T00:00:00Z}
rate=${FLINK_RATE:-10000}
lat_seconds=${FLINK_LAT_SECONDS:-90}
lat_warmup=${FLINK_LAT_WARMUP:-30}
timeouts=${FLINK_BUFFER_TIMEOUTS:-100 5}
checkpoint_s=${FLINK_CHECKPOINT_S:-0}
modes=${FLINK_MODES:-throughput latency}
heap=${FLINK_HEAP:-4g}
warmup_runs=${FLINK_WARMUP_RUNS:-2}
gc_throughput=${FLINK_GC_THROUGHPUT:-Parallel}
gc_latency=${FLINK_GC_LATENCY:-G1}
tmp_root=${BENCH_TMP:-$root/build/bench}
out=${FLINK_OUT:-$tmp_root/flink-high_intent.tsv}

die() {
    echo "flink: $*" >&2
    exit 1
}

# ---- tools ------------------------------------------------------------------
java=java
[ -n "${JAVA_HOME:-}" ] && java="$JAVA_HOME/bin/java"
command -v "$java" >/dev/null 2>&1 ||
    die "no java (install a JDK 17 or later, e.g. apt-get install openjdk-17-jdk-headless, or set JAVA_HOME)"
jver=$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
[ "${jver%%.*}" -ge 17 ] 2>/dev/null || die "Java $jver at $java: Flink 2 needs 17 or later (set JAVA_HOME)"
command -v mvn >/dev/null 2>&1 || die "no mvn (install Maven, e.g. apt-get install maven)"
command -v taskset >/dev/null 2>&1 || die "no taskset (util-linux)"
[ "$(nproc)" -ge 2 ] || die "parallelism 2 needs 2 CPUs, this machine has $(nproc)"
[ -x "$ATTUNE" ] || die "no attune binary at $ATTUNE (make release, or set ATTUNE)"

# ---- build the job (quietly; again only when a source changed) ---------------
cp_file="$job/target/classpath.txt"
if [ ! -f "$cp_file" ] || [ -n "$(find "$job/pom.xml" "$job/src" -newer "$cp_file" -print -quit)" ]; then
    mkdir -p "$job/target"
    if ! JAVA_HOME=${JAVA_HOME:-} mvn -q -B -f "$job/pom.xml" compile dependency:build-classpath \
        -Dmdep.outputFile="$cp_file" >"$job/target/build.log" 2>&1; then
        tail -40 "$job/target/build.log" >&2
        rm -f "$cp_file"
        die "building bench/flink failed (log: $job/target/build.log)"
    fi
fi
classpath="$job/target/classes:$(cat "$cp_file")"

# ---- work directory ---------------------------------------------------------
mkdir -p "$tmp_root"
work=$(mktemp -d "$tmp_root/flink.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The JVM options Flink's own launcher passes on Java 17 (module access for its
# serializers) and a fixed heap. The GC: Parallel for throughput (on 2 cores
# G1's remembered-set upkeep for the heap state cost about a third of the
# throughput), G1 (Java's default) for latency (shorter pauses).
jvm=(-Xms"$heap" -Xmx"$heap"
    --add-exports=java.base/sun.net.util=ALL-UNNAMED
    --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=java.base/java.text=ALL-UNNAMED --add-opens=java.base/java.time=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED)

flink_job() { # flink_job GC MODE ARGS...
    local gc=$1
    shift
    taskset -c 0,1 "$java" "${jvm[@]}" -XX:+Use"$gc"GC -cp "$classpath" attune.bench.HighIntent "$@"
}

gen() { # gen FILE COUNT
    "$ATTUNE" load --out "$1" --events "$2" --rate "$rate" --seed "$seed" --start-time "$start" \
        >/dev/null 2>"$work/load.log" || { cat "$work/load.log" >&2; die "attune load failed"; }
}

echo "flink: $(uptime | sed 's/.*load average/load average/') before the runs" >&2
for mode in $modes; do
    case $mode in
    throughput)
        gen "$work/events.ndjson" "$events"
        flink_job "$gc_throughput" throughput --events "$work/events.ndjson" --work "$work/tp" \
            --out "$out" --warmup-runs "$warmup_runs" ||
            die "the throughput run failed"
        echo "flink: transitions of seed $seed, $events events, from $start, written sorted to $out" >&2
        if [ "$checkpoint_s" != 0 ]; then
            flink_job "$gc_throughput" throughput --events "$work/events.ndjson" --work "$work/cp" \
                --checkpoint-ms "$((checkpoint_s * 1000))" --warmup-runs "$warmup_runs" ||
                die "the throughput run with checkpoints failed"
        fi
        rm -rf "$work/events.ndjson" "$work/tp" "$work/cp"
        ;;
    latency)
        gen "$work/paced.ndjson" "$((rate * lat_seconds))"
        for bt in $timeouts; do
            flink_job "$gc_latency" latency --events "$work/paced.ndjson" --work "$work/lat" --rate "$rate" \
                --warmup-s "$lat_warmup" --buffer-timeout-ms "$bt" ||
                die "the latency run (buffer timeout $bt ms) failed"
            rm -rf "$work/lat"
        done
        ;;
    *) die "unknown mode $mode in FLINK_MODES" ;;
    esac
done
echo "flink: $(uptime | sed 's/.*load average/load average/') after the runs" >&2
