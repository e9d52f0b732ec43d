/* test_load_gen.c - the shopper model of `attune load`: Zipf sampling,
 * determinism, funnel proportions and the shape of every event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../../src/cli/load_gen.c"

#define NOW_MS 1777300500123LL /* 2026-04-27T14:35:00.123Z */

static at_load_gen_cfg_t cfg_default(uint64_t seed)
{
    return (at_load_gen_cfg_t){.seed = seed,
                               .users = 100000,
                               .items = 10000,
                               .categories = 50,
                               .zipf = 1.1,
                               .anonymous = 0.2};
}

/* ---- a small strict JSON validator ------------------------------------- */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p != '\\')
            continue;
        p++;
        if (*p == 'u') {
            for (int i = 1; i <= 4; i++)
                if (!isxdigit((unsigned char)p[i]))
                    return NULL;
            p += 4;
        } else if (!strchr("\"\\/bfnrt", *p) || *p == '\0') {
            return NULL;
        }
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (isdigit((unsigned char)*p))
            p++;
    else
        return NULL;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return p;
}

static const char *json_container(const char *p, int depth, char close, bool object)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (object) {
            p = json_string(p);
            if (!p)
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = json_value(json_ws(p), depth + 1);
        if (!p)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
        p = json_ws(p);
    }
}

static const char *json_value(const char *p, int depth)
{
    if (depth > 32)
        return NULL;
    switch (*p) {
    case '{':
        return json_container(p, depth, '}', true);
    case '[':
        return json_container(p, depth, ']', false);
    case '"':
        return json_string(p);
    case 't':
        return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return json_number(p);
    }
}

static bool json_valid(const char *s)
{
    const char *end = json_value(json_ws(s), 0);
    return end && *json_ws(end) == '\0';
}

/* Copies the string value of "key" (its first occurrence in the line ev
 * starts) into out; false if absent. */
static bool field(const char *ev, const char *key, char *out, size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = memmem(ev, strcspn(ev, "\n"), pat, strlen(pat));
    if (!p)
        return false;
    p += strlen(pat);
    const char *q = strchr(p, '"');
    size_t n = (size_t)(q - p);
    if (n >= outlen)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* ---- tests -------------------------------------------------------------- */

static void test_json_validator_itself(void **state)
{
    (void)state;
    assert_true(json_valid("{\"a\":[1,2.5,-3e2,\"x\\n\",true,null],\"b\":{}}"));
    assert_false(json_valid("{\"a\":1,}"));
    assert_false(json_valid("{\"a\":01}"));
    assert_false(json_valid("{\"a\":\"x}"));
    assert_false(json_valid("{\"a\":1} x"));
}

static void test_rng_ranges(void **state)
{
    (void)state;
    at_load_rng_t r;
    at_load_rng_seed(&r, 7);
    int hits[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = at_load_rng_unit(&r);
        assert_true(u >= 0.0 && u < 1.0);
        uint64_t v = at_load_rng_below(&r, 10);
        assert_true(v < 10);
        hits[v]++;
    }
    for (int i = 0; i < 10; i++)
        assert_true(hits[i] > 9400 && hits[i] < 10600);
}

static void test_zipf_follows_exponent(void **state)
{
    (void)state;
    const uint64_t n = 1000, samples = 2000000;
    at_load_zipf_t z;
    at_load_zipf_init(&z, n, 1.1);
    at_load_rng_t r;
    at_load_rng_seed(&r, 42);
    uint64_t *counts = calloc(n + 1, sizeof(uint64_t));
    for (uint64_t i = 0; i < samples; i++) {
        uint64_t k = at_load_zipf_sample(&z, &r);
        assert_true(k >= 1 && k <= n);
        counts[k]++;
    }
    /* Rank 1 is the most frequent, and the first ranks come in order. */
    for (uint64_t k = 2; k <= n; k++)
        assert_true(counts[1] > counts[k]);
    for (uint64_t k = 1; k < 6; k++)
        assert_true(counts[k] > counts[k + 1]);
    /* Each of the top ranks within 3% of its probability. */
    for (uint64_t k = 1; k <= 20; k++) {
        double expect = at_load_zipf_prob(&z, k) * (double)samples;
        assert_true(fabs((double)counts[k] - expect) < 0.03 * expect);
    }
    /* The exponent fitted between ranks 1 and 50. */
    double fitted = log((double)counts[1] / (double)counts[50]) / log(50.0);
    assert_true(fabs(fitted - 1.1) < 0.03);
    free(counts);
    at_load_zipf_deinit(&z);
}

static void test_zipf_zero_is_uniform(void **state)
{
    (void)state;
    at_load_zipf_t z;
    at_load_zipf_init(&z, 4, 0.0);
    at_load_rng_t r;
    at_load_rng_seed(&r, 1);
    int counts[5] = {0};
    for (int i = 0; i < 40000; i++)
        counts[at_load_zipf_sample(&z, &r)]++;
    for (int k = 1; k <= 4; k++)
        assert_true(counts[k] > 9500 && counts[k] < 10500);
    at_load_zipf_deinit(&z);
}

static char *generate(uint64_t seed, int n, at_load_gen_t *keep)
{
    at_load_gen_cfg_t cfg = cfg_default(seed);
    at_load_gen_t g;
    at_load_gen_init(&g, &cfg);
    at_buf_t b;
    at_buf_init(&b, 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(at_load_gen_next(&g, NOW_MS + i, &b), 0);
        assert_int_equal(at_buf_putc(&b, '\n'), 0);
    }
    if (keep)
        *keep = g;
    else
        at_load_gen_deinit(&g);
    return at_buf_steal(&b, NULL);
}

static void test_same_seed_same_events(void **state)
{
    (void)state;
    char *a = generate(99, 3000, NULL);
    char *b = generate(99, 3000, NULL);
    char *c = generate(100, 3000, NULL);
    assert_string_equal(a, b);
    assert_true(strcmp(a, c) != 0);
    /* event ids run ld-<seed>-0, ld-<seed>-1, ... in order */
    char id[64], want[64];
    const char *line = a;
    for (int i = 0; i < 3000; i++) {
        assert_true(field(line, "event_id", id, sizeof(id)));
        snprintf(want, sizeof(want), "ld-99-%d", i);
        assert_string_equal(id, want);
        line = strchr(line, '\n') + 1;
    }
    free(a);
    free(b);
    free(c);
}

static void check_event(const char *ev, int64_t want_ms, uint64_t categories)
{
    char type[32], v[128];
    assert_true(json_valid(ev));
    assert_true(field(ev, "event_id", v, sizeof(v)));
    assert_true(strncmp(v, "ld-5-", 5) == 0);
    assert_true(field(ev, "type", type, sizeof(type)));
    bool user = field(ev, "user_id", v, sizeof(v));
    bool anon = field(ev, "anonymous_id", v, sizeof(v));
    assert_true(user != anon); /* exactly one of them */
    assert_true(field(ev, "session_id", v, sizeof(v)));
    assert_true(field(ev, "timestamp", v, sizeof(v)));
    int64_t ms = 0;
    assert_int_equal(at_time_parse_rfc3339(v, strlen(v), &ms), 0);
    assert_int_equal(ms, want_ms);
    assert_non_null(strstr(ev, "\"context\":{\"device\":"));
    assert_true(field(ev, "timezone", v, sizeof(v)));
    assert_true(field(ev, "page", v, sizeof(v)));
    if (strcmp(type, "view_item") == 0 || strcmp(type, "add_to_cart") == 0) {
        assert_true(field(ev, "item_id", v, sizeof(v)));
        uint64_t item = strtoull(v, NULL, 10);
        assert_true(item >= 1 && item <= 10000);
        assert_true(field(ev, "category", v, sizeof(v)));
        char cat[64];
        at_load_gen_cfg_t cfg = cfg_default(5);
        cfg.categories = categories;
        at_load_item_category(&cfg, item, cat);
        assert_string_equal(v, cat); /* the item's category is fixed */
        assert_non_null(strstr(ev, "\"price\":"));
    }
    if (strcmp(type, "add_to_cart") == 0)
        assert_non_null(strstr(ev, "\"quantity\":"));
    if (strcmp(type, "purchase") == 0) {
        assert_non_null(strstr(ev, "\"items\":[{\"item_id\":"));
        const char *rev = strstr(ev, "\"revenue\":");
        assert_non_null(rev);
        assert_true(strtod(rev + 10, NULL) > 0);
    }
    if (strcmp(type, "search") == 0)
        assert_true(field(ev, "query", v, sizeof(v)));
}

static void test_events_are_valid_json_with_fields(void **state)
{
    (void)state;
    at_load_gen_cfg_t cfg = cfg_default(5);
    at_load_gen_t g;
    at_load_gen_init(&g, &cfg);
    at_buf_t b;
    at_buf_init(&b, 0);
    size_t total = 0, max = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        at_buf_reset(&b);
        assert_int_equal(at_load_gen_next(&g, NOW_MS + i, &b), 0);
        check_event(b.data, NOW_MS + i, cfg.categories);
        total += b.len;
        max = AT_MAX(max, b.len);
    }
    double avg = (double)total / n;
    assert_true(avg >= 300 && avg <= 500);
    assert_true(max < 2000);
    for (int t = 0; t < AT_LOAD_NTYPES; t++)
        assert_true(g.by_type[t] > 0);
    at_buf_deinit(&b);
    at_load_gen_deinit(&g);
}

static size_t count_type(const char *all, const char *type)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"type\":\"%s\"", type);
    size_t n = 0, len = strlen(all), plen = strlen(pat);
    for (const char *p = all; (p = memmem(p, len - (size_t)(p - all), pat, plen)); p++)
        n++;
    return n;
}

static void test_funnel_proportions(void **state)
{
    (void)state;
    at_load_gen_t g;
    const int n = 100000;
    char *all = generate(11, n, &g);
    size_t pv = count_type(all, "page_view"), views = count_type(all, "view_item");
    size_t carts = count_type(all, "add_to_cart"), buys = count_type(all, "purchase");
    size_t searches = count_type(all, "search");
    assert_int_equal(pv + views + carts + buys + searches, (size_t)n);
    assert_int_equal(views, g.by_type[AT_LOAD_VIEW_ITEM]);
    assert_int_equal(carts, g.by_type[AT_LOAD_ADD_TO_CART]);
    assert_int_equal(buys, g.by_type[AT_LOAD_PURCHASE]);
    /* views > carts > purchases, in the proportions of the model */
    double cart_per_view = (double)carts / (double)views;
    assert_true(cart_per_view > 0.2 && cart_per_view < 0.3);
    assert_true(buys > 0 && buys < carts);
    assert_true(searches > 0 && searches < views);
    /* about a fifth of the sessions are anonymous */
    double anon = (double)g.anonymous_sessions / (double)g.next_session;
    assert_true(anon > 0.17 && anon < 0.23);
    /* every finished session landed once with a page_view */
    assert_true(pv >= g.next_session - g.nsessions);
    free(all);
    at_load_gen_deinit(&g);
}

/* --anonymous 0: every session has a user id. */
static void test_no_anonymous(void **state)
{
    (void)state;
    at_load_gen_cfg_t cfg = cfg_default(3);
    cfg.anonymous = 0;
    at_load_gen_t g;
    at_load_gen_init(&g, &cfg);
    at_buf_t b;
    at_buf_init(&b, 0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(at_load_gen_next(&g, NOW_MS + i, &b), 0);
    assert_null(strstr(b.data, "anonymous_id"));
    assert_int_equal(g.anonymous_sessions, 0);
    assert_true(g.next_session > 10);
    at_buf_deinit(&b);
    at_load_gen_deinit(&g);
}

static void test_item_category_is_fixed(void **state)
{
    (void)state;
    at_load_gen_cfg_t a = cfg_default(1), b = cfg_default(2);
    char ca[64], cb[64];
    bool seen[50] = {false};
    int distinct = 0;
    for (uint64_t item = 1; item <= 10000; item++) {
        at_load_item_category(&a, item, ca);
        at_load_item_category(&b, item, cb);
        assert_string_equal(ca, cb);
        assert_non_null(strchr(ca, '/'));
        uint64_t c = item_category_index(&a, item);
        assert_true(c < 50);
        distinct += !seen[c];
        seen[c] = true;
    }
    assert_int_equal(distinct, 50);
    /* past the named ones, category paths stay distinct */
    char c0[64], c80[64];
    category_name(0, c0);
    category_name(80, c80);
    assert_string_equal(c0, "electronics/phones");
    assert_string_equal(c80, "electronics/phones-2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_validator_itself),
        cmocka_unit_test(test_rng_ranges),
        cmocka_unit_test(test_zipf_follows_exponent),
        cmocka_unit_test(test_zipf_zero_is_uniform),
        cmocka_unit_test(test_same_seed_same_events),
        cmocka_unit_test(test_events_are_valid_json_with_fields),
        cmocka_unit_test(test_funnel_proportions),
        cmocka_unit_test(test_no_anonymous),
        cmocka_unit_test(test_item_category_is_fixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
