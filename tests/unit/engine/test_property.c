/* test_property.c - event time makes arrival order irrelevant: random
 * workloads fed in time order and shuffled within the allowed lateness give
 * exactly the same sequence of (user, rule, kind, group) transitions; with
 * the early path off, exactly the same outputs, instants included (so the
 * same membership at every watermark); and the same final state digest. */
#include "golden.h"

#include <stdint.h>

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int64_t rnd_in(int64_t n)
{
    return (int64_t)(rnd() % (uint64_t)n);
}

typedef struct ev {
    char key[16];
    int id;
    int64_t ts, recv, order;
    char type[16];
    char extra[256];
} ev_t;

static const char *const rules[][2] = {
    {"segment", "{\"name\":\"high_intent\",\"filter\":\"type == \\\"view_item\\\"\",\"group_by\":"
                "\"item_id\",\"window\":\"10m\",\"having\":\"count > 3\"}"},
    {"segment", "{\"name\":\"big_spender\",\"filter\":\"type == \\\"purchase\\\"\",\"window\":"
                "\"30d\",\"having\":\"sum(properties.revenue) > 500\"}"},
    {"segment", "{\"name\":\"deal_hunter_today\",\"filter\":\"type == \\\"view_item\\\" && "
                "properties.discount > 0\",\"window\":\"tumbling 1d\",\"having\":"
                "\"distinct(item_id) >= 3\"}"},
    {"segment", "{\"name\":\"engaged_session\",\"filter\":\"type == \\\"page_view\\\"\","
                "\"window\":\"session\",\"having\":\"count >= 4\"}"},
    {"segment", "{\"name\":\"electronics_fan\",\"when\":\"affinity(\\\"electronics\\\") > 0.4 "
                "&& profile.counters.purchase >= 1\"}"},
    {"segment", "{\"name\":\"cheap_taste\",\"filter\":\"type == \\\"view_item\\\"\",\"window\":"
                "\"1h\",\"having\":\"avg(properties.price) < 40\"}"},
    {"segment", "{\"name\":\"fan_and_busy\",\"when\":\"in_segment(\\\"electronics_fan\\\") && "
                "profile.session.events >= 3\"}"},
    {"trigger", "{\"name\":\"cart_abandoned\",\"on\":\"type == \\\"add_to_cart\\\"\",\"unless\":"
                "\"type == \\\"purchase\\\"\",\"within\":\"30m\",\"cooldown\":\"24h\"}"},
    {"trigger", "{\"name\":\"big_order\",\"on\":\"type == \\\"purchase\\\" && "
                "properties.revenue > 100\"}"},
    {"trigger", "{\"name\":\"evening\",\"on\":\"type == \\\"page_view\\\" && hour(timestamp, "
                "context.timezone) >= 18\",\"cooldown\":\"2h\"}"},
};

/* A workload: sessions of a few users over two days. */
static size_t gen(ev_t *v, size_t cap)
{
    static const char *const types[] = {"page_view", "view_item", "view_item", "add_to_cart",
                                        "purchase",  "page_view", "search"};
    static const char *const cats[] = {"electronics/phones", "electronics/tv", "books", "garden"};
    static const char *const zones[] = {"Europe/Paris", "America/New_York", "UTC", ""};
    size_t n = 0;
    for (int u = 0; u < 12 && n < cap; u++) {
        int64_t t = GOLDEN_BASE + rnd_in(3600000);
        const char *zone = zones[u % 4];
        int sessions = 1 + (int)rnd_in(4);
        for (int s = 0; s < sessions && n < cap; s++) {
            int events = 1 + (int)rnd_in(12);
            for (int e = 0; e < events && n < cap; e++) {
                ev_t *x = &v[n];
                x->id = (int)n++;
                snprintf(x->key, sizeof x->key, "%c:%d", u % 5 == 4 ? 'a' : 'u', u);
                x->ts = t;
                snprintf(x->type, sizeof x->type, "%s", types[rnd_in(7)]);
                int item = (int)rnd_in(5);
                snprintf(x->extra, sizeof x->extra,
                         "{\"item_id\":\"i%d\",\"category\":\"%s\",\"properties\":{\"price\":%d,"
                         "\"revenue\":%d,\"discount\":%d},\"context\":{\"timezone\":\"%s\"}}",
                         item, cats[item % 4], (int)rnd_in(100), (int)rnd_in(400), (int)rnd_in(3),
                         zone);
                /* 1 s to 4 min apart; now and then two at the same instant */
                t += rnd_in(8) == 0 ? 0 : 1000 + rnd_in(240000);
                if (rnd_in(20) == 0)
                    t += 10 * 60000; /* sometimes a pause */
            }
            t += 31 * 60000 + rnd_in(12 * 3600000); /* the session ends */
        }
    }
    return n;
}

static int by_order(const void *a, const void *b)
{
    const ev_t *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Runs the workload in the given arrival order; fills lines and digest. */
static void feed(ev_t *v, size_t n, bool no_early, char ***lines, size_t *nlines, uint64_t *digest)
{
    golden_t g;
    golden_init(&g, 2, 5000, 30 * 60000, 0);
    for (int p = 0; p < g.partitions; p++) {
        at_proc_free(g.pr[p]);
        g.cfg.no_early = no_early;
        at_proc_ops_t ops = {golden_output, golden_send};
        g.pr[p] = at_proc_new(p, &g.cfg, &ops, &g);
    }
    for (size_t i = 0; i < AT_ARRAY_LEN(rules); i++)
        assert_int_equal(
            golden_rule(&g, rules[i][0][0] == 's' ? AT_RULE_SEGMENT : AT_RULE_TRIGGER, rules[i][1]),
            0);
    golden_run(&g);
    for (size_t i = 0; i < n; i++) {
        char extra[400];
        char recv[48];
        golden_fmt_time(v[i].recv, recv, sizeof recv);
        /* golden_event reads "recv" as a duration after the base */
        snprintf(extra, sizeof extra, "%.*s,\"recv\":\"%s\"}", (int)strlen(v[i].extra) - 1,
                 v[i].extra, recv);
        g.eventno = v[i].id; /* ids that do not depend on arrival order */
        assert_int_equal(golden_event(&g, v[i].key, v[i].ts, v[i].type, extra), 0);
        golden_run(&g);
    }
    golden_tick(&g, GOLDEN_BASE + 40LL * 86400000);
    golden_run(&g);
    *lines = g.all;
    *nlines = g.nall;
    g.all = NULL;
    g.nall = 0;
    *digest = 0;
    for (int p = 0; p < g.partitions; p++)
        *digest += at_proc_digest(g.pr[p]);
    golden_free(&g);
}

/* The (user, rule, kind, group) of an output line, without the instant. */
static void strip(const char *line, char *out, size_t n)
{
    snprintf(out, n, "%s", line);
    char *at = strstr(out, " at=");
    if (at)
        *at = '\0';
}

static void compare(char **a, size_t na, char **b, size_t nb, bool exact, const char *what)
{
    if (na != nb)
        fprintf(stderr, "%s: %zu vs %zu outputs\n", what, na, nb);
    for (size_t i = 0; i < AT_MIN(na, nb); i++) {
        char x[512], y[512];
        if (exact) {
            snprintf(x, sizeof x, "%s", a[i]);
            snprintf(y, sizeof y, "%s", b[i]);
        } else {
            strip(a[i], x, sizeof x);
            strip(b[i], y, sizeof y);
        }
        if (strcmp(x, y)) {
            fprintf(stderr, "%s: output %zu differs:\n  sorted:   %s\n  shuffled: %s\n", what, i,
                    a[i], b[i]);
            fail();
        }
    }
    assert_int_equal(na, nb);
}

/* Sorting outputs by user keeps the per-user sequence and ignores how users
 * interleave (which depends on arrival). */
static int by_user(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    const char *ux = strchr(strchr(x, ' ') + 1, ' ') + 1, *uy = strchr(strchr(y, ' ') + 1, ' ') + 1;
    size_t lx = strcspn(ux, " "), ly = strcspn(uy, " ");
    int c = strncmp(ux, uy, AT_MIN(lx, ly));
    return c ? c : (int)lx - (int)ly;
}

/* By (user, rule, group): the order of one rule's transitions for one user
 * is what must not change; early outputs of different rules may
 * interleave differently, since they are announced as events arrive. */
static int by_user_rule(const void *a, const void *b)
{
    int c = by_user(a, b);
    if (c)
        return c;
    char x[512], y[512];
    strip(*(char *const *)a, x, sizeof x);
    strip(*(char *const *)b, y, sizeof y);
    const char *rx = strchr(x, ' ') + 1, *ry = strchr(y, ' ') + 1; /* rule user [group] */
    return strcmp(rx, ry);
}

static void stable_sort(char **v, size_t n, int (*cmp)(const void *, const void *))
{
    for (size_t i = 1; i < n; i++) { /* insertion sort: stable */
        char *k = v[i];
        size_t j = i;
        while (j > 0 && cmp(&v[j - 1], &k) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = k;
    }
}

static void free_lines(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void test_shuffled_equals_sorted(void **state)
{
    (void)state;
    const char *env = getenv("PROPERTY_SEEDS");
    int seeds = env ? atoi(env) : 25;
    size_t total = 0;
    for (int seed = 1; seed <= seeds; seed++) {
        rng_state = 0x9E3779B97F4A7C15ULL * (uint64_t)seed;
        static ev_t v[4096];
        size_t n = gen(v, AT_ARRAY_LEN(v));
        total += n;
        /* sorted: arrival in time order, each received when it happened */
        for (size_t i = 0; i < n; i++) {
            v[i].recv = v[i].ts;
            v[i].order = v[i].ts * 4096 + (int64_t)i;
        }
        qsort(v, n, sizeof *v, by_order);
        char **a, **b, **c, **d;
        size_t na, nb, nc, nd;
        uint64_t da, db, dc, dd;
        feed(v, n, false, &a, &na, &da);
        feed(v, n, true, &c, &nc, &dc);
        /* shuffled: each arrives up to 4.9 s late (the lateness is 5 s) */
        for (size_t i = 0; i < n; i++) {
            int64_t jitter = rnd_in(4900);
            v[i].recv = v[i].ts + jitter;
            v[i].order = v[i].recv * 4096 + (int64_t)i;
        }
        qsort(v, n, sizeof *v, by_order);
        feed(v, n, false, &b, &nb, &db);
        feed(v, n, true, &d, &nd, &dd);
        stable_sort(a, na, by_user_rule);
        stable_sort(b, nb, by_user_rule);
        stable_sort(c, nc, by_user);
        stable_sort(d, nd, by_user);
        compare(a, na, b, nb, false, "early path on: transitions");
        compare(c, nc, d, nd, true, "early path off: outputs");
        assert_true(dc == dd); /* the same state, bit for bit */
        (void)da;
        (void)db;
        free_lines(a, na);
        free_lines(b, nb);
        free_lines(c, nc);
        free_lines(d, nd);
    }
    fprintf(stderr, "property: %d seeds, %zu events\n", seeds, total);
}

typedef struct kv {
    char *k, *v;
    size_t kl, vl;
} kv_t;

typedef struct kvs {
    kv_t *v;
    size_t n, cap;
} kvs_t;

static void collect(void *ud, const char *key, size_t klen, const void *val, size_t vlen)
{
    kvs_t *c = ud;
    if (!val)
        return; /* a deletion: the restored partition starts without the key */
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
    }
    kv_t *x = &c->v[c->n++];
    x->k = malloc(klen + 1);
    x->v = malloc(vlen + 1);
    memcpy(x->k, key, klen);
    memcpy(x->v, val, vlen);
    x->kl = klen;
    x->vl = vlen;
}

/* Runs v[0..n), stopping after `cut` events to checkpoint every partition
 * (twice: a base, then a delta of the changes since) and restore it into a
 * fresh processor that reads the log again from its replay point. */
static void feed_restored(ev_t *v, size_t n, size_t cut, size_t cut2, char ***lines, size_t *nlines,
                          uint64_t *digest)
{
    golden_t g;
    golden_init(&g, 2, 5000, 30 * 60000, 0);
    for (size_t i = 0; i < AT_ARRAY_LEN(rules); i++)
        assert_int_equal(
            golden_rule(&g, rules[i][0][0] == 's' ? AT_RULE_SEGMENT : AT_RULE_TRIGGER, rules[i][1]),
            0);
    golden_run(&g);
    kvs_t state[GOLDEN_MAXP];
    memset(state, 0, sizeof state);
    for (size_t i = 0; i <= n; i++) {
        if (i == cut || i == cut2) {
            for (int p = 0; p < g.partitions; p++) {
                at_proc_changes(g.pr[p], collect, &state[p]); /* cumulative: later wins */
                at_buf_t meta;
                at_buf_init(&meta, 0);
                at_proc_meta(g.pr[p], &meta);
                at_proc_stats_t st;
                at_proc_stats(g.pr[p], &st);
                at_proc_ops_t ops = {golden_output, golden_send};
                at_proc_t *fresh = at_proc_new(p, &g.cfg, &ops, &g);
                at_error_t e;
                assert_int_equal(at_proc_restore_meta(fresh, meta.data, meta.len, &e), 0);
                for (size_t k = 0; k < state[p].n; k++) /* the last value of a key wins */
                    assert_int_equal(at_proc_restore_user(fresh, state[p].v[k].k, state[p].v[k].kl,
                                                          state[p].v[k].v, state[p].v[k].vl),
                                     0);
                at_proc_restore_done(fresh);
                at_proc_suppress_until(fresh, st.out_next);
                g.log[p].done = (size_t)at_proc_replay_from(fresh);
                at_proc_free(g.pr[p]);
                g.pr[p] = fresh;
                at_buf_deinit(&meta);
            }
            golden_run(&g);
        }
        if (i == n)
            break;
        char extra[400], recv[48];
        golden_fmt_time(v[i].recv, recv, sizeof recv);
        snprintf(extra, sizeof extra, "%.*s,\"recv\":\"%s\"}", (int)strlen(v[i].extra) - 1,
                 v[i].extra, recv);
        g.eventno = v[i].id;
        assert_int_equal(golden_event(&g, v[i].key, v[i].ts, v[i].type, extra), 0);
        golden_run(&g);
    }
    golden_tick(&g, GOLDEN_BASE + 40LL * 86400000);
    golden_run(&g);
    *lines = g.all;
    *nlines = g.nall;
    g.all = NULL;
    g.nall = 0;
    *digest = 0;
    for (int p = 0; p < g.partitions; p++) {
        *digest += at_proc_digest(g.pr[p]);
        for (size_t k = 0; k < state[p].n; k++) {
            free(state[p].v[k].k);
            free(state[p].v[k].v);
        }
        free(state[p].v);
    }
    golden_free(&g);
}

/* A partition restored from a checkpoint, and the records after its
 * replay point read again, equals one that never stopped: the same
 * outputs, none twice, and the same state digest. */
static void test_restore_equals_uninterrupted(void **state)
{
    (void)state;
    const char *env = getenv("PROPERTY_SEEDS");
    int seeds = env ? atoi(env) : 15;
    for (int seed = 1; seed <= seeds; seed++) {
        rng_state = 0xD1B54A32D192ED03ULL * (uint64_t)seed;
        static ev_t v[4096];
        size_t n = gen(v, AT_ARRAY_LEN(v));
        for (size_t i = 0; i < n; i++) { /* arrive up to 4.9 s late, shuffled */
            v[i].recv = v[i].ts + rnd_in(4900);
            v[i].order = v[i].recv * 4096 + (int64_t)i;
        }
        qsort(v, n, sizeof *v, by_order);
        char **a, **b;
        size_t na, nb;
        uint64_t da, db;
        feed(v, n, false, &a, &na, &da);
        size_t cut = (size_t)rnd_in((int64_t)n),
               cut2 = cut + (size_t)rnd_in((int64_t)(n - cut) + 1);
        feed_restored(v, n, cut, cut2, &b, &nb, &db);
        compare(a, na, b, nb, true, "restored: outputs");
        if (da != db)
            fail_msg(
                "seed %d (cut %zu, %zu of %zu): digest %016llx after a restore, %016llx without",
                seed, cut, cut2, n, (unsigned long long)db, (unsigned long long)da);
        free_lines(a, na);
        free_lines(b, nb);
    }
}

/* A user past a rule's state cap (64 groups) is degraded for that rule and
 * each event the rule could not keep is counted, once. */
static void test_degraded_counted(void **state)
{
    (void)state;
    golden_t g;
    golden_init(&g, 1, 5000, 30 * 60000, 0);
    assert_int_equal(golden_rule(&g, AT_RULE_SEGMENT,
                                 "{\"name\":\"per_item\",\"filter\":\"type == "
                                 "\\\"view_item\\\"\",\"group_by\":\"item_id\",\"window\":\"1h\","
                                 "\"having\":\"count > 3\"}"),
                     0);
    golden_run(&g);
    for (int i = 0; i < 70; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "{\"item_id\":\"i%d\"}", i);
        assert_int_equal(golden_event(&g, "u:1", 1000 + i, "view_item", extra), 0);
        golden_run(&g);
    }
    golden_tick(&g, 60000);
    golden_run(&g);
    at_proc_stats_t st;
    at_proc_stats(g.pr[0], &st);
    assert_int_equal(st.degraded, 70 - AT_RULE_MAX_GROUPS);
    golden_free(&g);
}

/* Past the window-entry cap (1024 per group) each further event is counted:
 * the oldest entry goes for it. */
static void test_degraded_entries_counted(void **state)
{
    (void)state;
    golden_t g;
    golden_init(&g, 1, 5000, 30 * 60000, 0);
    assert_int_equal(golden_rule(&g, AT_RULE_SEGMENT,
                                 "{\"name\":\"big_spender\",\"filter\":\"type == "
                                 "\\\"purchase\\\"\",\"window\":\"1d\","
                                 "\"having\":\"sum(properties.revenue) > 1000000\"}"),
                     0);
    golden_run(&g);
    for (int i = 0; i < AT_RULE_MAX_ENTRIES + 10; i++) {
        assert_int_equal(
            golden_event(&g, "u:1", 1000 + i, "purchase", "{\"properties\":{\"revenue\":1}}"), 0);
        if (i % 64 == 0)
            golden_run(&g);
    }
    golden_tick(&g, 60000);
    golden_run(&g);
    at_proc_stats_t st;
    at_proc_stats(g.pr[0], &st);
    assert_int_equal(st.degraded, 10);
    golden_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shuffled_equals_sorted),
        cmocka_unit_test(test_restore_equals_uninterrupted),
        cmocka_unit_test(test_degraded_counted),
        cmocka_unit_test(test_degraded_entries_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
