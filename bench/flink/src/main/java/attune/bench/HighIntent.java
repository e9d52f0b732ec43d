package attune.bench;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.accumulators.LongMaximum;
import org.apache.flink.api.common.accumulators.LongMinimum;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * The high_intent segment of attune (DESIGN.md §5) as a Flink job:
 *
 * <pre>
 *   filter: type == "view_item"   group_by: item_id   window: 10m (sliding, event time)   having: count &gt; 3
 * </pre>
 *
 * Per (user key, item) the job keeps the event times of the window and emits "enter" at the
 * first event time at which more than 3 of them lie in (t-10m, t] (at once: it is final), and
 * "exit" at the first instant the count drops to 3 or fewer (some event's time + 10m), when the
 * watermark passes that instant. Watermark: the largest event time seen minus 5 s; events at or
 * before the watermark are late: counted, not windowed.
 *
 * <p>Modes: {@code throughput} reads the file as fast as it can (a warm-up run first, then a timed
 * run, in one JVM); {@code latency} replays it at the pace of its own timestamps, with event times
 * shifted to the wall clock, and measures each enter from the moment its event entered the
 * pipeline. See README.md.
 */
public final class HighIntent {
    static final long WINDOW_MS = 10 * 60 * 1000;
    static final int MAX_COUNT_OUTSIDE = 3; // having: count > 3
    static final long LATENESS_MS = 5000;
    static final long NONE = Long.MIN_VALUE;

    private HighIntent() {}

    // ---- records ------------------------------------------------------------

    /** A raw event line, the System.nanoTime() at which it entered the pipeline and the one at
     * which it was due to (latency mode; else 0). */
    public static final class Line {
        public String json;
        public long emitNanos;
        public long dueNanos;

        public Line() {}

        Line(String json, long emitNanos, long dueNanos) {
            this.json = json;
            this.emitNanos = emitNanos;
            this.dueNanos = dueNanos;
        }
    }

    /** A parsed event: its event time, and key = "u:ID\tITEM" for a view_item, else null. */
    public static final class Ev {
        public String key;
        public long ts;
        public long emitNanos;
        public long dueNanos;
    }

    /** An enter or exit of one (user key, item) at an event-time instant. */
    public static final class Transition {
        public String key;
        public boolean enter;
        public long instant;
        public long causeNanos; // an enter's causing event entered the pipeline then; 0: a timer
        public long causeDueNanos; // and was due to then

        public Transition() {}

        Transition(String key, boolean enter, long instant, Ev cause) {
            this.key = key;
            this.enter = enter;
            this.instant = instant;
            if (cause != null) {
                this.causeNanos = cause.emitNanos;
                this.causeDueNanos = cause.dueNanos;
            }
        }
    }

    /** The fields of an event that the segment reads; the rest of the line is parsed and skipped. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public static final class RawEvent {
        public String type;
        public String user_id;
        public String anonymous_id;
        public String item_id;
        public JsonNode timestamp;
    }

    /** RFC 3339 or epoch milliseconds, at millisecond resolution; missing: now (receive time). */
    static long eventTime(JsonNode ts) {
        if (ts == null || ts.isNull()) return System.currentTimeMillis();
        if (ts.isNumber()) return ts.longValue();
        return rfc3339Millis(ts.asText());
    }

    /**
     * RFC 3339 to epoch ms, finer fractions truncated. The usual shape
     * (2026-04-27T14:35:00.123Z, any fraction, Z or +hh:mm) is read by hand: java.time's
     * Instant.parse builds a formatter per call and took half of the parsing thread's time.
     * Anything else goes to java.time, which parses it or throws.
     */
    static long rfc3339Millis(String s) {
        int n = s.length();
        if (n >= 20 && s.charAt(4) == '-' && s.charAt(7) == '-' && (s.charAt(10) | 0x20) == 't'
                && s.charAt(13) == ':' && s.charAt(16) == ':') {
            int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
            int h = digits(s, 11, 2), mi = digits(s, 14, 2), sec = digits(s, 17, 2);
            int i = 19, frac = 0, k = 0;
            if (s.charAt(i) == '.') {
                for (i++; i < n && s.charAt(i) >= '0' && s.charAt(i) <= '9'; i++, k++)
                    if (k < 3) frac = frac * 10 + (s.charAt(i) - '0');
                for (int j = k; j < 3; j++) frac *= 10;
            }
            boolean zoned = false;
            long off = 0;
            if (i == n - 1 && (s.charAt(i) | 0x20) == 'z') {
                zoned = true;
            } else if (i == n - 6 && (s.charAt(i) == '+' || s.charAt(i) == '-')
                    && s.charAt(i + 3) == ':') {
                int oh = digits(s, i + 1, 2), om = digits(s, i + 4, 2);
                zoned = oh >= 0 && oh < 24 && om >= 0 && om < 60;
                off = (s.charAt(i) == '-' ? -1L : 1L) * (oh * 60 + om) * 60_000L;
            }
            if (zoned && (s.charAt(19) != '.' || k > 0) && y >= 0 && mo >= 1 && mo <= 12
                    && d >= 1 && d <= 31 && h >= 0 && h < 24 && mi >= 0 && mi < 60 && sec >= 0
                    && sec < 60) {
                long days = java.time.LocalDate.of(y, mo, d).toEpochDay(); // checks the day
                return ((days * 24 + h) * 60 + mi) * 60_000L + sec * 1000L + frac - off;
            }
        }
        return java.time.OffsetDateTime.parse(s).toInstant().toEpochMilli();
    }

    /** The n decimal digits at s[i..]; -1 when one is not a digit. */
    private static int digits(String s, int i, int n) {
        int v = 0;
        for (int j = i; j < i + n; j++) {
            char c = s.charAt(j);
            if (c < '0' || c > '9') return -1;
            v = v * 10 + (c - '0');
        }
        return v;
    }

    /** CPU time of the whole JVM (every thread: tasks, GC, JIT, Flink's own). */
    static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean)
                java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    static String userKey(String userId, String anonymousId) {
        if (userId != null) return "u:" + userId;
        return anonymousId != null ? "a:" + anonymousId : null;
    }

    // ---- parsing ------------------------------------------------------------

    /** Parses each whole line with Jackson; shifts event times by a constant (latency mode). */
    static final class Parse extends RichMapFunction<Line, Ev> {
        private final long shiftMs;
        private transient ObjectReader reader;
        private transient LongMinimum firstEventNanos, firstEventCpuNanos;
        private transient boolean seen;

        Parse(long shiftMs) {
            this.shiftMs = shiftMs;
        }

        @Override
        public void open(OpenContext ctx) {
            reader = new ObjectMapper().readerFor(RawEvent.class);
            firstEventNanos = new LongMinimum();
            firstEventCpuNanos = new LongMinimum();
            getRuntimeContext().addAccumulator("first_event_ns", firstEventNanos);
            getRuntimeContext().addAccumulator("first_event_cpu_ns", firstEventCpuNanos);
        }

        @Override
        public Ev map(Line line) throws IOException {
            if (!seen) {
                seen = true;
                firstEventNanos.add(System.nanoTime());
                firstEventCpuNanos.add(processCpuNanos());
            }
            RawEvent r = reader.readValue(line.json);
            Ev e = new Ev();
            e.ts = eventTime(r.timestamp) + shiftMs;
            e.emitNanos = line.emitNanos;
            e.dueNanos = line.dueNanos;
            String user = userKey(r.user_id, r.anonymous_id);
            if ("view_item".equals(r.type) && r.item_id != null && user != null)
                e.key = user + '\t' + r.item_id;
            return e;
        }
    }

    // ---- the segment --------------------------------------------------------

    /**
     * Keyed state of one (user key, item): its event times in time order, times[lo..hi), the
     * membership, and the pending event-time timer. A POJO, so Flink serializes it without Kryo.
     */
    public static final class Window {
        public long[] times = new long[4];
        public int lo;
        public int hi;
        public boolean inside;
        public long timer = NONE;

        /** Inserts t in time order (after equal times); returns its index. */
        int insert(long t) {
            if (hi == times.length) {
                if (lo > 0) {
                    System.arraycopy(times, lo, times, 0, hi - lo);
                    hi -= lo;
                    lo = 0;
                } else {
                    times = Arrays.copyOf(times, times.length * 2);
                }
            }
            int i = hi++;
            while (i > lo && times[i - 1] > t) {
                times[i] = times[i - 1];
                i--;
            }
            times[i] = t;
            return i;
        }

        /** Forgets the times at or before t. */
        void dropThrough(long t) {
            while (lo < hi && times[lo] <= t) lo++;
            if (lo == hi) lo = hi = 0;
        }

        /** The number of times in (t - 10m, t]. */
        int countAt(long t) {
            int c = 0;
            for (int i = lo; i < hi && times[i] <= t; i++)
                if (times[i] > t - WINDOW_MS) c++;
            return c;
        }

        /** The first kept time at or after index from whose count exceeds 3 and which is before
         * limit; NONE when there is none. Equal times are evaluated once, at the last of them. */
        long firstHolding(int from, long limit) {
            for (int i = from; i < hi && times[i] < limit; i++) {
                if (i + 1 < hi && times[i + 1] == times[i]) continue;
                if (countAt(times[i]) > MAX_COUNT_OUTSIDE) return times[i];
            }
            return NONE;
        }
    }

    static final class HighIntentFn extends KeyedProcessFunction<String, Ev, Transition>
            implements CheckpointListener {
        private transient ValueState<Window> state;
        private transient LongCounter enters, exits, late;
        private transient LongMaximum checkpoints;

        @Override
        public void open(OpenContext ctx) {
            state = getRuntimeContext().getState(new ValueStateDescriptor<>("window", Window.class));
            enters = getRuntimeContext().getLongCounter("enters");
            exits = getRuntimeContext().getLongCounter("exits");
            late = getRuntimeContext().getLongCounter("late");
            checkpoints = new LongMaximum(0);
            getRuntimeContext().addAccumulator("checkpoints", checkpoints);
        }

        @Override
        public void notifyCheckpointComplete(long id) {
            checkpoints.add(id); // ids count up from 1
        }

        @Override
        public void processElement(Ev e, Context ctx, Collector<Transition> out) throws Exception {
            long wm = ctx.timerService().currentWatermark();
            if (e.ts <= wm) { // late: at or before the watermark
                late.add(1);
                return;
            }
            Window w = state.value();
            if (w == null) w = new Window();
            int at = w.insert(e.ts);
            if (!w.inside) {
                // The count rose on [e.ts, e.ts + 10m): it holds first at e.ts or, for an
                // out-of-order event, at a later event time already seen.
                long t = w.firstHolding(at, e.ts + WINDOW_MS);
                if (t != NONE) enter(w, ctx.getCurrentKey(), t, e, out);
            }
            schedule(w, ctx.timerService());
            state.update(w);
        }

        @Override
        public void onTimer(long ts, OnTimerContext ctx, Collector<Transition> out) throws Exception {
            Window w = state.value();
            if (w == null) return; // a superseded timer of a cleared key
            if (ts == w.timer) w.timer = NONE;
            advance(w, ctx.getCurrentKey(), ctx.timerService().currentWatermark(), out);
            if (w.lo == w.hi && !w.inside) {
                state.clear(); // nothing left in the window: the key costs nothing more
                return;
            }
            schedule(w, ctx.timerService());
            state.update(w);
        }

        private void enter(Window w, String key, long t, Ev cause, Collector<Transition> out) {
            w.inside = true;
            w.dropThrough(t - WINDOW_MS); // no longer counted at t or after: exits come after t
            enters.add(1);
            out.collect(new Transition(key, true, t, cause));
        }

        /** Emits the exits whose instants the watermark has passed, and the enters that follow
         * them among the events already seen. */
        private void advance(Window w, String key, long wm, Collector<Transition> out) {
            while (w.inside) {
                long x = w.times[w.lo] + WINDOW_MS; // the next instant the count drops
                if (x > wm) return;
                w.dropThrough(x - WINDOW_MS);
                if (w.countAt(x) > MAX_COUNT_OUTSIDE) continue;
                w.inside = false;
                exits.add(1);
                out.collect(new Transition(key, false, x, null));
                // Events after x that arrived while the user was inside may make it hold again.
                int from = w.lo;
                while (from < w.hi && w.times[from] <= x) from++;
                long t = w.firstHolding(from, Long.MAX_VALUE);
                if (t != NONE) enter(w, key, t, null, out);
            }
            w.dropThrough(wm - WINDOW_MS); // outside: only events after the watermark can count
        }

        /** Keeps one timer pending: at the next instant the count drops while inside (a possible
         * exit), else when the last event leaves the window (to clear the state). */
        private static void schedule(Window w, org.apache.flink.streaming.api.TimerService timers) {
            if (w.lo == w.hi) return;
            if (w.inside) {
                long next = w.times[w.lo] + WINDOW_MS;
                if (w.timer != NONE && w.timer <= next) return;
                w.timer = next; // an earlier registered, later timer fires harmlessly
            } else {
                if (w.timer != NONE) return; // it will look again when it fires
                w.timer = w.times[w.hi - 1] + WINDOW_MS;
            }
            timers.registerEventTimeTimer(w.timer);
        }
    }

    // ---- latency mode: replay at the file's own pace ---------------------------

    /** Takes "OFFSET_MS\tJSON" lines, holds each until T0 + OFFSET_MS on the wall clock, and
     * stamps it with the time it is let into the pipeline. */
    static final class Pace extends RichMapFunction<String, Line> {
        private final long t0Ms;
        private final long warmupMs;
        private transient long baseNanos;
        private transient LongMaximum behind;

        Pace(long t0Ms, long warmupMs) {
            this.t0Ms = t0Ms;
            this.warmupMs = warmupMs;
        }

        @Override
        public void open(OpenContext ctx) {
            baseNanos = System.nanoTime() + (t0Ms - System.currentTimeMillis()) * 1_000_000L;
            behind = new LongMaximum();
            getRuntimeContext().addAccumulator("max_behind_ns", behind);
        }

        @Override
        public Line map(String s) {
            int tab = s.indexOf('\t');
            long off = Long.parseLong(s, 0, tab, 10);
            long due = baseNanos + off * 1_000_000L;
            long now;
            while ((now = System.nanoTime()) < due) LockSupport.parkNanos(due - now);
            if (off >= warmupMs) behind.add(now - due);
            return new Line(s.substring(tab + 1), now, due);
        }
    }

    // ---- output ---------------------------------------------------------------

    static final DateTimeFormatter RFC3339_MS =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'", Locale.ROOT)
                    .withZone(ZoneOffset.UTC);

    /** Writes "USER\tITEM\tenter|exit\tINSTANT" lines to DIR/part-N, and at the end DIR/stats-N:
     * the nanoTime of its last output and the JVM's CPU time at the end, then a line per measured enter: its latency (ns) from the
     * moment its event entered the pipeline and from the moment it was due to. */
    static final class TransitionSink implements Sink<Transition> {
        private final String dir;
        private final long measureFromMs; // enters at or after this event time are measured

        TransitionSink(String dir, long measureFromMs) {
            this.dir = dir;
            this.measureFromMs = measureFromMs;
        }

        @Override
        public SinkWriter<Transition> createWriter(WriterInitContext ctx) throws IOException {
            int n = ctx.getTaskInfo().getIndexOfThisSubtask();
            Path d = Path.of(dir);
            BufferedWriter part = Files.newBufferedWriter(d.resolve("part-" + n));
            return new SinkWriter<>() {
                long last = 0;
                long[] lat = new long[2048]; // pairs: from emit, from due
                int nlat = 0;

                @Override
                public void write(Transition t, Context c) throws IOException {
                    long now = System.nanoTime();
                    if (t.enter && t.causeNanos != 0 && t.instant >= measureFromMs) {
                        if (nlat == lat.length) lat = Arrays.copyOf(lat, nlat * 2);
                        lat[nlat++] = now - t.causeNanos;
                        lat[nlat++] = now - t.causeDueNanos;
                    }
                    last = now;
                    part.write(t.key);
                    part.write(t.enter ? "\tenter\t" : "\texit\t");
                    part.write(RFC3339_MS.format(Instant.ofEpochMilli(t.instant)));
                    part.write('\n');
                }

                @Override
                public void flush(boolean endOfInput) throws IOException {
                    part.flush();
                }

                @Override
                public void close() throws IOException {
                    part.close();
                    StringBuilder sb = new StringBuilder().append(last).append(' ')
                            .append(processCpuNanos()).append('\n');
                    for (int i = 0; i < nlat; i += 2)
                        sb.append(lat[i]).append(' ').append(lat[i + 1]).append('\n');
                    Files.writeString(d.resolve("stats-" + n), sb);
                }
            };
        }
    }

    // ---- the job ---------------------------------------------------------------

    static JobExecutionResult run(Opts o, String in, String out, long t0Ms, long shiftMs,
            long measureFromMs, boolean latency) throws Exception {
        Configuration conf = new Configuration();
        conf.set(ExecutionOptions.RUNTIME_MODE, RuntimeExecutionMode.STREAMING);
        conf.set(StateBackendOptions.STATE_BACKEND, "hashmap");
        conf.set(PipelineOptions.OBJECT_REUSE, true); // no function keeps its input
        if (o.bufferTimeoutMs >= 0)
            conf.set(ExecutionOptions.BUFFER_TIMEOUT, Duration.ofMillis(o.bufferTimeoutMs));
        if (o.checkpointMs > 0) {
            conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(o.checkpointMs));
            conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
            conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY,
                    Path.of(o.work, "checkpoints").toUri().toString());
        }
        StreamExecutionEnvironment env =
                StreamExecutionEnvironment.createLocalEnvironment(o.parallelism, conf);

        FileSource<String> source = FileSource
                .forRecordStreamFormat(new TextLineInputFormat(), new org.apache.flink.core.fs.Path(in))
                .build();
        DataStream<String> lines = env.fromSource(source, WatermarkStrategy.noWatermarks(), "events");
        DataStream<Line> stamped = latency
                ? lines.map(new Pace(t0Ms, o.warmupMs)).name("replay at the file's pace")
                : lines.map(s -> new Line(s, 0, 0)).returns(Line.class).name("line");
        stamped.map(new Parse(shiftMs)).name("parse (Jackson)")
                // Flink's bounded out-of-orderness watermark is max - delay - 1 and an element
                // at or before it is late: a delay of 5 s - 1 ms makes that max - 5 s, attune's.
                .assignTimestampsAndWatermarks(WatermarkStrategy
                        .<Ev>forBoundedOutOfOrderness(Duration.ofMillis(LATENESS_MS - 1))
                        .withTimestampAssigner((e, prev) -> e.ts))
                .filter(e -> e.key != null).name("type == view_item")
                .keyBy(e -> e.key, Types.STRING)
                .process(new HighIntentFn()).name("high_intent")
                .sinkTo(new TransitionSink(out, measureFromMs)).name("transitions");
        return env.execute("high_intent " + (latency ? "latency" : "throughput"));
    }

    // ---- the driver ------------------------------------------------------------

    static final class Opts {
        String mode, events, work, out;
        int parallelism = 2, partitions = 2, warmupRuns = 1;
        long bufferTimeoutMs = -1, checkpointMs = 0, warmupMs = 20_000, startDelayMs = 3000;
        double rate = 0;
    }

    static void usage(String why) {
        System.err.println("high_intent: " + why + "\n"
                + "usage: HighIntent throughput|latency --events FILE --work DIR [--out FILE]\n"
                + "  [--parallelism 2] [--partitions 2] [--warmup-runs 1] [--checkpoint-ms 0]\n"
                + "  [--buffer-timeout-ms (Flink's default)] [--warmup-s 20] [--rate R (label)]");
        System.exit(2);
    }

    static Opts parse(String[] a) {
        Opts o = new Opts();
        if (a.length < 1) usage("no mode");
        o.mode = a[0];
        for (int i = 1; i < a.length; i += 2) {
            if (i + 1 >= a.length) usage("missing value for " + a[i]);
            String v = a[i + 1];
            switch (a[i]) {
                case "--events" -> o.events = v;
                case "--work" -> o.work = v;
                case "--out" -> o.out = v;
                case "--parallelism" -> o.parallelism = Integer.parseInt(v);
                case "--partitions" -> o.partitions = Integer.parseInt(v);
                case "--warmup-runs" -> o.warmupRuns = Integer.parseInt(v);
                case "--checkpoint-ms" -> o.checkpointMs = Long.parseLong(v);
                case "--buffer-timeout-ms" -> o.bufferTimeoutMs = Long.parseLong(v);
                case "--warmup-s" -> o.warmupMs = (long) (Double.parseDouble(v) * 1000);
                case "--rate" -> o.rate = Double.parseDouble(v);
                default -> usage("unknown option " + a[i]);
            }
        }
        if (!o.mode.equals("throughput") && !o.mode.equals("latency")) usage("bad mode " + o.mode);
        if (o.events == null || o.work == null) usage("--events and --work are required");
        return o;
    }

    /** What prepare() learnt about the file. */
    record Input(long events, long firstMs, long lastMs) {}

    /**
     * Splits the file into o.partitions files by user key, as a topic keyed by user key would be
     * (each source subtask reads one, each user's events stay in order); in latency mode each line
     * is prefixed with its event time's offset from the first event. Not timed.
     */
    static Input prepare(Opts o, Path inDir, boolean offsets) throws IOException {
        Files.createDirectories(inDir);
        ObjectReader reader = new ObjectMapper().readerFor(RawEvent.class);
        BufferedWriter[] parts = new BufferedWriter[o.partitions];
        for (int i = 0; i < parts.length; i++)
            parts[i] = Files.newBufferedWriter(inDir.resolve("part-" + i + ".ndjson"));
        long n = 0, first = NONE, last = NONE;
        try (BufferedReader r = Files.newBufferedReader(Path.of(o.events), StandardCharsets.UTF_8)) {
            for (String s; (s = r.readLine()) != null; ) {
                if (s.isEmpty()) continue;
                RawEvent e = reader.readValue(s);
                String user = userKey(e.user_id, e.anonymous_id);
                int p = user == null ? 0 : Math.floorMod(user.hashCode(), o.partitions);
                long ts = eventTime(e.timestamp);
                if (first == NONE) first = ts;
                last = Math.max(last, ts);
                if (offsets) {
                    parts[p].write(Long.toString(Math.max(0, ts - first)));
                    parts[p].write('\t');
                }
                parts[p].write(s);
                parts[p].write('\n');
                n++;
            }
        }
        for (BufferedWriter w : parts) w.close();
        return new Input(n, first, last);
    }

    /** The sink's files: transitions sorted, nanoTime of the last output, enter latencies (ns,
     * sorted) from the emit and from the due time. */
    record Output(List<String> transitions, long lastNanos, long endCpuNanos, long[] fromEmit,
            long[] fromDue) {}

    static Output collect(Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        List<Long> emit = new ArrayList<>(), due = new ArrayList<>();
        long last = 0, cpu = 0;
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files.sorted()::iterator) {
                String name = f.getFileName().toString();
                if (name.startsWith("part-")) {
                    lines.addAll(Files.readAllLines(f));
                } else if (name.startsWith("stats-")) {
                    List<String> s = Files.readAllLines(f);
                    String[] head = s.get(0).split(" ");
                    last = Math.max(last, Long.parseLong(head[0]));
                    cpu = Math.max(cpu, Long.parseLong(head[1]));
                    for (int i = 1; i < s.size(); i++) {
                        String[] v = s.get(i).split(" ");
                        emit.add(Long.parseLong(v[0]));
                        due.add(Long.parseLong(v[1]));
                    }
                }
            }
        }
        lines.sort(Comparator.naturalOrder());
        return new Output(lines, last, cpu, emit.stream().mapToLong(Long::longValue).sorted().toArray(),
                due.stream().mapToLong(Long::longValue).sorted().toArray());
    }

    static long acc(JobExecutionResult r, String name) {
        Object v = r.getAccumulatorResult(name);
        return v == null ? 0 : ((Number) v).longValue();
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path f : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator)
                Files.delete(f);
        }
    }

    static String describe(Opts o) {
        return String.format(Locale.ROOT,
                "Flink %s, Java %s (%s, GC %s), parallelism %d, %d input partitions by user key, "
                        + "heap state backend, checkpoints %s, buffer timeout %s, "
                        + "watermark interval 200 ms (Flink's default)",
                org.apache.flink.runtime.util.EnvironmentInformation.getVersion(),
                System.getProperty("java.version"), System.getProperty("java.vm.name"),
                java.lang.management.ManagementFactory.getGarbageCollectorMXBeans().stream()
                        .map(b -> b.getName()).collect(java.util.stream.Collectors.joining("/")),
                o.parallelism, o.partitions,
                o.checkpointMs > 0 ? "every " + o.checkpointMs + " ms" : "off",
                o.bufferTimeoutMs >= 0 ? o.bufferTimeoutMs + " ms" : "100 ms (Flink's default)");
    }

    static double ms(long nanos) {
        return nanos / 1e6;
    }

    /** Nearest rank. */
    static long pct(long[] sorted, double q) {
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    public static void main(String[] args) throws Exception {
        Opts o = parse(args);
        boolean latency = o.mode.equals("latency");
        Path work = Path.of(o.work);
        Path inDir = work.resolve("in");
        deleteTree(inDir);
        Input in = prepare(o, inDir, latency);
        if (in.events() == 0) throw new IllegalArgumentException("no events in " + o.events);
        System.err.println("high_intent: " + describe(o));

        if (!latency) {
            Output res = null;
            JobExecutionResult r = null;
            for (int run = 0; run <= o.warmupRuns; run++) {
                Path out = work.resolve("out-" + run);
                deleteTree(out);
                Files.createDirectories(out);
                r = run(o, inDir.toString(), out.toString(), 0, 0, Long.MAX_VALUE, false);
                res = collect(out);
                long first = acc(r, "first_event_ns");
                double secs = (res.lastNanos() - first) / 1e9;
                double cpu = (res.endCpuNanos() - acc(r, "first_event_cpu_ns")) / 1e9;
                System.err.printf(Locale.ROOT,
                        "high_intent: %s run: %d events in %.3f s (first event to last output; "
                                + "job %.3f s): %.0f events/s, enters %d, exits %d, late %d; "
                                + "%.2f CPU-s (%.0f events per CPU-second)%n",
                        run < o.warmupRuns ? "warm-up" : "timed", in.events(), secs,
                        r.getNetRuntime() / 1e3, in.events() / secs, acc(r, "enters"),
                        acc(r, "exits"), acc(r, "late"), cpu, in.events() / cpu);
                if (run < o.warmupRuns) deleteTree(out);
            }
            double secs = (res.lastNanos() - acc(r, "first_event_ns")) / 1e9;
            double cpu = (res.endCpuNanos() - acc(r, "first_event_cpu_ns")) / 1e9;
            if (o.out != null)
                Files.write(Path.of(o.out), res.transitions());
            System.out.printf(Locale.ROOT,
                    "flink: high_intent throughput %.0f events/s (enters %d, exits %d, late %d), "
                            + "%.0f events per CPU-second%s%n",
                    in.events() / secs, acc(r, "enters"), acc(r, "exits"), acc(r, "late"),
                    in.events() / cpu,
                    o.checkpointMs > 0 ? String.format(Locale.ROOT,
                            " with checkpoints every %.0f s (%d completed)", o.checkpointMs / 1e3,
                            acc(r, "checkpoints")) : "");
            return;
        }

        long t0 = System.currentTimeMillis() + o.startDelayMs;
        long measureFrom = t0 + o.warmupMs;
        Path out = work.resolve("out-latency");
        deleteTree(out);
        Files.createDirectories(out);
        JobExecutionResult r = run(o, inDir.toString(), out.toString(), t0, t0 - in.firstMs(),
                measureFrom, true);
        Output res = collect(out);
        long[] l = res.fromEmit(), d = res.fromDue();
        double spanS = (in.lastMs() - in.firstMs()) / 1e3;
        double rate = o.rate > 0 ? o.rate : in.events() / Math.max(spanS, 1e-3);
        System.err.printf(Locale.ROOT,
                "high_intent: latency run: %d events over %.1f s (%.0f ev/s), warm-up %.1f s, "
                        + "%d enters measured (of %d), exits %d, late %d, source at most %.2f ms "
                        + "behind schedule after warm-up%n",
                in.events(), spanS, in.events() / Math.max(spanS, 1e-3), o.warmupMs / 1e3,
                l.length, acc(r, "enters"), acc(r, "exits"), acc(r, "late"),
                ms(acc(r, "max_behind_ns")));
        if (o.out != null) Files.write(Path.of(o.out), res.transitions());
        if (l.length == 0) {
            System.err.println("high_intent: no enter after the warm-up: nothing to measure");
            System.exit(1);
        }
        System.out.printf(Locale.ROOT,
                "flink: high_intent latency at %.0f ev/s p50 %.2f ms p99 %.2f ms p99.9 %.2f ms "
                        + "(max %.2f; from the due time p50 %.2f p99 %.2f p99.9 %.2f max %.2f; "
                        + "%d enters, buffer timeout %s)%n",
                rate, ms(pct(l, 0.50)), ms(pct(l, 0.99)), ms(pct(l, 0.999)), ms(l[l.length - 1]),
                ms(pct(d, 0.50)), ms(pct(d, 0.99)), ms(pct(d, 0.999)), ms(d[d.length - 1]),
                l.length, o.bufferTimeoutMs >= 0 ? o.bufferTimeoutMs + " ms" : "100 ms");
    }
}
