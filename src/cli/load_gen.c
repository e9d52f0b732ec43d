/* load_gen.c - the shopper model of `attune load`.
 *
 * A pool of concurrently active sessions; each call picks one at random and
 * lets it take its next step, so events of different users interleave the
 * way they do on a real site. A session walks a funnel: a landing
 * page_view, then browsing (view_item of items drawn by Zipf popularity,
 * category pages, searches), add_to_cart of some viewed items, and at the
 * end a purchase of the cart or an abandoned cart. About one session in
 * five is anonymous (anonymous_id only).
 *
 * Everything but the timestamp is a function of the seed and the number of
 * calls, so event n always has event_id "ld-<seed>-<n>" and the same body.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

/* ---- random numbers ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A stateless mix of v, for properties fixed per item or per user. */
static uint64_t mix64(uint64_t v)
{
    return splitmix64(&v);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* Seeds r from seed. Thread: r's owner. */
void at_load_rng_seed(at_load_rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

/* Returns the next 64 random bits. Thread: r's owner. */
uint64_t at_load_rng_next(at_load_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Returns a uniform double in [0, 1) (53 random bits). */
double at_load_rng_unit(at_load_rng_t *r)
{
    return (double)(at_load_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Returns a uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t at_load_rng_below(at_load_rng_t *r, uint64_t n)
{
    AT_ASSERT(n > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do
        v = at_load_rng_next(r);
    while (v >= limit);
    return v % n;
}

/* ---- Zipf ----------------------------------------------------------------- */

/* Builds the cumulative table. Aborts on OOM; free with
 * at_load_zipf_deinit(). */
void at_load_zipf_init(at_load_zipf_t *z, uint64_t n, double s)
{
    AT_ASSERT(n >= 1 && n <= AT_LOAD_MAX_ITEMS);
    AT_ASSERT(s >= 0 && s <= 10);
    z->n = n;
    z->s = s;
    z->cdf = at_xmalloc(n * sizeof(double));
    double acc = 0;
    for (uint64_t k = 1; k <= n; k++) {
        acc += pow((double)k, -s);
        z->cdf[k - 1] = acc;
    }
}

/* Frees the table; z may be deinitialized twice. */
void at_load_zipf_deinit(at_load_zipf_t *z)
{
    free(z->cdf);
    z->cdf = NULL;
}

/* Returns a rank in 1..n by inverting the cumulative table. */
uint64_t at_load_zipf_sample(const at_load_zipf_t *z, at_load_rng_t *r)
{
    double u = at_load_rng_unit(r) * z->cdf[z->n - 1];
    uint64_t lo = 0, hi = z->n - 1;
    while (lo < hi) { /* the first index with cdf > u */
        uint64_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo + 1;
}

/* Returns the probability of rank k in 1..n. */
double at_load_zipf_prob(const at_load_zipf_t *z, uint64_t k)
{
    AT_ASSERT(k >= 1 && k <= z->n);
    return pow((double)k, -z->s) / z->cdf[z->n - 1];
}

/* ---- a writer ------------------------------------------------------------
 * An event is assembled in a stack buffer by a tiny writer and appended to
 * the caller's buffer at once. Every string the model writes comes from its
 * own tables and numbers (no quotes, backslashes or control characters), so
 * it is written between quotes as it is. */

#define AT_LOAD_EVENT_MAX 4096 /* the largest event (a purchase of a full cart) is ~1.5 KiB */

typedef struct {
    char *p, *end;
} at_load_w_t;

static void w_mem(at_load_w_t *w, const char *s, size_t n)
{
    AT_ASSERT(n <= (size_t)(w->end - w->p));
    memcpy(w->p, s, n);
    w->p += n;
}

static void w_lit(at_load_w_t *w, const char *s)
{
    w_mem(w, s, strlen(s));
}

static void w_u64(at_load_w_t *w, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    w_mem(w, tmp + sizeof(tmp) - n, (size_t)n);
}

static void w_str(at_load_w_t *w, const char *s)
{
    w_mem(w, "\"", 1);
    w_lit(w, s);
    w_mem(w, "\"", 1);
}

/* ,"key":"value" */
static void w_kv(at_load_w_t *w, const char *key, const char *val)
{
    w_mem(w, ",\"", 2);
    w_lit(w, key);
    w_mem(w, "\":\"", 3);
    w_lit(w, val);
    w_mem(w, "\"", 1);
}

/* "<prefix><seed>-<n>" as a quoted string, e.g. "s-42-7" */
static void w_id(at_load_w_t *w, const char *prefix, uint64_t seed, uint64_t n)
{
    w_mem(w, "\"", 1);
    w_lit(w, prefix);
    w_u64(w, seed);
    w_mem(w, "-", 1);
    w_u64(w, n);
    w_mem(w, "\"", 1);
}

/* cents as a JSON number with two decimals ("19.99") */
static void w_money(at_load_w_t *w, int64_t cents)
{
    AT_ASSERT(cents >= 0);
    w_u64(w, (uint64_t)cents / 100);
    char frac[3] = {'.', (char)('0' + cents % 100 / 10), (char)('0' + cents % 10)};
    w_mem(w, frac, 3);
}

/* ---- the catalog: fixed per item and per user ------------------------------ */

static const char *const k_top[] = {"electronics", "fashion", "home",    "sports", "beauty",
                                    "toys",        "books",   "grocery", "garden", "automotive"};
static const char *const k_sub[][8] = {
    {"phones", "laptops", "audio", "cameras", "tv", "wearables", "gaming", "accessories"},
    {"shoes", "dresses", "jackets", "jeans", "bags", "watches", "shirts", "hats"},
    {"kitchen", "furniture", "bedding", "lighting", "decor", "storage", "bath", "rugs"},
    {"running", "cycling", "fitness", "camping", "swimming", "tennis", "yoga", "ski"},
    {"skincare", "makeup", "fragrance", "haircare", "nails", "tools", "men", "bath"},
    {"lego", "puzzles", "dolls", "outdoor", "board-games", "baby", "rc", "crafts"},
    {"fiction", "cooking", "history", "science", "children", "travel", "comics", "business"},
    {"coffee", "snacks", "tea", "pasta", "wine", "spices", "breakfast", "organic"},
    {"tools", "plants", "grills", "furniture", "lighting", "watering", "seeds", "pots"},
    {"tires", "oil", "audio", "cleaning", "parts", "lights", "tools", "seats"},
};

#define AT_LOAD_NTOP AT_ARRAY_LEN(k_top)
#define AT_LOAD_NSUB AT_ARRAY_LEN(k_sub[0])

/* Writes the path of category index c: "electronics/phones", and past the
 * named ones "electronics/phones-2" and so on. */
static void w_category(at_load_w_t *w, uint64_t c)
{
    uint64_t top = c % AT_LOAD_NTOP, sub = (c / AT_LOAD_NTOP) % AT_LOAD_NSUB;
    uint64_t gen = c / (AT_LOAD_NTOP * AT_LOAD_NSUB);
    w_lit(w, k_top[top]);
    w_mem(w, "/", 1);
    w_lit(w, k_sub[top][sub]);
    if (gen) {
        w_mem(w, "-", 1);
        w_u64(w, gen + 1);
    }
}

/* Writes the category path of index c into out (>= 64 bytes); returns its
 * length. */
static int category_name(uint64_t c, char *out)
{
    at_load_w_t w = {out, out + 63};
    w_category(&w, c);
    *w.p = '\0';
    return (int)(w.p - out);
}

static uint64_t item_category_index(const at_load_gen_cfg_t *cfg, uint64_t item)
{
    return mix64(item ^ 0x63617465676f7279ull) % cfg->categories;
}

/* Writes the category path of item into out (>= 64 bytes); returns its
 * length. Depends on the item and the number of categories only. */
int at_load_item_category(const at_load_gen_cfg_t *cfg, uint64_t item, char *out)
{
    return category_name(item_category_index(cfg, item), out);
}

/* An item's price in cents: log-uniform from about 3 to 600, ending in .99
 * or .49. */
static int64_t item_price_cents(uint64_t item)
{
    uint64_t h = mix64(item ^ 0x7072696365ull);
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    int64_t whole = (int64_t)exp(log(3.0) + u * (log(600.0) - log(3.0)));
    return whole * 100 + ((h & 1) ? 99 : 49);
}

typedef struct {
    const char *locale, *timezone;
} at_load_place_t;

static const at_load_place_t k_places[] = {
    {"en-US", "America/New_York"},  {"en-US", "America/Chicago"}, {"en-US", "America/Los_Angeles"},
    {"en-GB", "Europe/London"},     {"fr-FR", "Europe/Paris"},    {"de-DE", "Europe/Berlin"},
    {"es-ES", "Europe/Madrid"},     {"it-IT", "Europe/Rome"},     {"nl-NL", "Europe/Amsterdam"},
    {"pt-BR", "America/Sao_Paulo"}, {"ja-JP", "Asia/Tokyo"},      {"en-IN", "Asia/Kolkata"},
    {"en-AU", "Australia/Sydney"},  {"pl-PL", "Europe/Warsaw"},
};

static const char *const k_referrers[] = {
    "https://www.google.com/",        "", "https://www.bing.com/",
    "https://news.example.com/deals", "", "https://social.example.com/"};

static const char *const k_query_words[] = {"cheap", "best",  "new",  "sale",
                                            "black", "small", "gift", "pro"};

/* ---- sessions -------------------------------------------------------------- */

#define AT_LOAD_POOL 1024  /* sessions active at once */
#define AT_LOAD_CART_MAX 8 /* items in a cart */

typedef enum { ST_LANDING, ST_BROWSE, ST_VIEWED, ST_CHECKOUT, ST_DONE } at_load_state_t;

typedef struct {
    uint64_t item;
    uint32_t quantity;
} at_load_line_t;

struct at_load_session {
    uint64_t id;   /* session counter */
    uint64_t user; /* user id, 0 when anonymous */
    at_load_state_t state;
    uint32_t steps_left; /* browsing steps before the session ends */
    uint32_t device;     /* index into k_devices */
    uint32_t place;      /* index into k_places */
    uint64_t viewed;     /* last viewed item, 0 none */
    uint32_t position;   /* list position of the next viewed item */
    const char *list;    /* where the next viewed item was listed */
    char page[96];       /* the page the shopper is on (the next referrer) */
    at_load_line_t cart[AT_LOAD_CART_MAX];
    uint32_t ncart;
};

static const char *const k_devices[] = {"mobile", "desktop", "tablet"};

static void copy_page(at_load_session_t *s, const char *page)
{
    size_t n = AT_MIN(strlen(page), sizeof(s->page) - 1);
    memcpy(s->page, page, n);
    s->page[n] = '\0';
}

static void session_start(at_load_gen_t *g, at_load_session_t *s)
{
    at_load_rng_t *r = &g->rng;
    memset(s, 0, sizeof(*s));
    s->id = g->next_session++;
    bool anonymous = at_load_rng_unit(r) < g->cfg.anonymous;
    s->user = anonymous ? 0 : 1 + at_load_rng_below(r, g->cfg.users);
    if (anonymous)
        g->anonymous_sessions++;
    double d = at_load_rng_unit(r);
    s->device = d < 0.60 ? 0 : d < 0.95 ? 1 : 2;
    /* A known user always shops from the same place. */
    uint64_t who = s->user ? s->user : s->id ^ 0x616e6f6eull;
    s->place = (uint32_t)(mix64(who) % AT_ARRAY_LEN(k_places));
    /* Geometric-ish session length: 1 to 24 steps, mean about 8. */
    s->steps_left = 1 + (uint32_t)at_load_rng_below(r, 8) + (uint32_t)at_load_rng_below(r, 8) +
                    (uint32_t)at_load_rng_below(r, 9);
    s->state = ST_LANDING;
    s->list = "home";
    const char *ref = k_referrers[at_load_rng_below(r, AT_ARRAY_LEN(k_referrers))];
    copy_page(s, ref);
}

/* ---- events ------------------------------------------------------------- */

/* Writes "ld-<seed>-<n>" into out (>= 48 bytes); returns its length. */
int at_load_event_id(uint64_t seed, uint64_t n, char *out)
{
    at_load_w_t w = {out, out + 47};
    w_lit(&w, "ld-");
    w_u64(&w, seed);
    w_mem(&w, "-", 1);
    w_u64(&w, n);
    *w.p = '\0';
    return (int)(w.p - out);
}

/* Returns the event type's name (a static string). */
const char *at_load_type_name(at_load_type_t t)
{
    static const char *const names[] = {"page_view", "view_item", "add_to_cart", "purchase",
                                        "search"};
    AT_ASSERT((size_t)t < AT_ARRAY_LEN(names));
    return names[t];
}

static const char *timestamp_text(at_load_gen_t *g, int64_t now_ms)
{
    if (now_ms != g->ts_ms || g->ts[0] == '\0') {
        at_time_format_rfc3339(now_ms, g->ts);
        g->ts_ms = now_ms;
    }
    return g->ts;
}

/* The fields every event has, from '{' to the timestamp. */
static void w_common(at_load_gen_t *g, at_load_session_t *s, at_load_type_t t, int64_t now_ms,
                     at_load_w_t *w)
{
    w_lit(w, "{\"event_id\":");
    w_id(w, "ld-", g->cfg.seed, g->next_event++);
    w_kv(w, "type", at_load_type_name(t));
    if (s->user) {
        w_lit(w, ",\"user_id\":\"");
        w_u64(w, s->user);
        w_mem(w, "\"", 1);
    } else {
        w_lit(w, ",\"anonymous_id\":");
        w_id(w, "a-", g->cfg.seed, s->id);
    }
    w_lit(w, ",\"session_id\":");
    w_id(w, "s-", g->cfg.seed, s->id);
    w_kv(w, "timestamp", timestamp_text(g, now_ms));
    g->by_type[t]++;
}

/* ,"item_id":"N","category":"..." */
static void w_item(at_load_gen_t *g, uint64_t item, at_load_w_t *w)
{
    w_lit(w, ",\"item_id\":\"");
    w_u64(w, item);
    w_lit(w, "\",\"category\":\"");
    w_category(w, item_category_index(&g->cfg, item));
    w_mem(w, "\"", 1);
}

/* ,"context":{...} with the page the event happened on; that page becomes
 * the session's current one (the next event's referrer). */
static void w_context(at_load_session_t *s, const char *page, at_load_w_t *w)
{
    const at_load_place_t *pl = &k_places[s->place];
    w_lit(w, ",\"context\":{\"device\":");
    w_str(w, k_devices[s->device]);
    w_kv(w, "locale", pl->locale);
    w_kv(w, "timezone", pl->timezone);
    w_kv(w, "page", page);
    if (s->page[0])
        w_kv(w, "referrer", s->page);
    w_mem(w, "}", 1);
    copy_page(s, page);
}

static void emit_page_view(at_load_gen_t *g, at_load_session_t *s, int64_t now, at_load_w_t *w,
                           bool landing)
{
    char page[96] = "/";
    if (!landing) {
        at_load_w_t pw = {page, page + sizeof(page) - 1};
        w_lit(&pw, "/c/");
        w_category(&pw, at_load_rng_below(&g->rng, g->cfg.categories));
        *pw.p = '\0';
        s->list = "category";
        s->position = 1;
    }
    w_common(g, s, AT_LOAD_PAGE_VIEW, now, w);
    w_context(s, page, w);
    w_lit(w, landing ? ",\"properties\":{\"title\":\"Home\"}}"
                     : ",\"properties\":{\"title\":\"Category\"}}");
}

static void item_page(uint64_t item, char *page)
{
    at_load_w_t w = {page, page + 95};
    w_lit(&w, "/p/");
    w_u64(&w, item);
    *w.p = '\0';
}

static void emit_view_item(at_load_gen_t *g, at_load_session_t *s, int64_t now, at_load_w_t *w)
{
    uint64_t item = at_load_zipf_sample(&g->zipf, &g->rng);
    char page[96];
    item_page(item, page);
    w_common(g, s, AT_LOAD_VIEW_ITEM, now, w);
    w_item(g, item, w);
    w_context(s, page, w);
    w_lit(w, ",\"properties\":{\"price\":");
    w_money(w, item_price_cents(item));
    w_lit(w, ",\"currency\":\"USD\",\"list\":");
    w_str(w, s->list);
    w_lit(w, ",\"position\":");
    w_u64(w, s->position ? s->position : 1);
    w_lit(w, "}}");
    s->viewed = item;
    s->position++;
}

static void emit_add_to_cart(at_load_gen_t *g, at_load_session_t *s, int64_t now, at_load_w_t *w)
{
    at_load_rng_t *r = &g->rng;
    uint64_t item = s->viewed;
    uint32_t qty = at_load_rng_unit(r) < 0.85 ? 1 : 2 + (uint32_t)at_load_rng_below(r, 2);
    if (s->ncart < AT_LOAD_CART_MAX)
        s->cart[s->ncart++] = (at_load_line_t){item, qty};
    char page[96];
    item_page(item, page);
    w_common(g, s, AT_LOAD_ADD_TO_CART, now, w);
    w_item(g, item, w);
    w_context(s, page, w);
    w_lit(w, ",\"properties\":{\"price\":");
    w_money(w, item_price_cents(item));
    w_lit(w, ",\"quantity\":");
    w_u64(w, qty);
    w_lit(w, ",\"currency\":\"USD\"}}");
}

static void emit_search(at_load_gen_t *g, at_load_session_t *s, int64_t now, at_load_w_t *w)
{
    at_load_rng_t *r = &g->rng;
    uint64_t c = at_load_rng_below(r, g->cfg.categories);
    uint64_t top = c % AT_LOAD_NTOP, sub = (c / AT_LOAD_NTOP) % AT_LOAD_NSUB;
    const char *word = k_query_words[at_load_rng_below(r, AT_ARRAY_LEN(k_query_words))];
    s->list = "search";
    s->position = 1;
    w_common(g, s, AT_LOAD_SEARCH, now, w);
    w_context(s, "/search", w);
    w_lit(w, ",\"properties\":{\"query\":\"");
    w_lit(w, word);
    w_mem(w, " ", 1);
    w_lit(w, k_sub[top][sub]);
    w_lit(w, "\",\"results\":");
    w_u64(w, at_load_rng_below(r, 200));
    w_lit(w, "}}");
}

/* The cart as a JSON array; returns its total in cents. */
static int64_t w_cart(at_load_gen_t *g, const at_load_session_t *s, at_load_w_t *w)
{
    int64_t total = 0;
    w_mem(w, "[", 1);
    for (uint32_t i = 0; i < s->ncart; i++) {
        const at_load_line_t *l = &s->cart[i];
        int64_t price = item_price_cents(l->item);
        total += price * l->quantity;
        w_lit(w, i ? ",{\"item_id\":\"" : "{\"item_id\":\"");
        w_u64(w, l->item);
        w_lit(w, "\",\"category\":\"");
        w_category(w, item_category_index(&g->cfg, l->item));
        w_mem(w, "\"", 1);
        w_lit(w, ",\"price\":");
        w_money(w, price);
        w_lit(w, ",\"quantity\":");
        w_u64(w, l->quantity);
        w_mem(w, "}", 1);
    }
    w_mem(w, "]", 1);
    return total;
}

static void emit_purchase(at_load_gen_t *g, at_load_session_t *s, int64_t now, at_load_w_t *w)
{
    w_common(g, s, AT_LOAD_PURCHASE, now, w);
    w_context(s, "/checkout/complete", w);
    w_lit(w, ",\"properties\":{\"order_id\":");
    w_id(w, "o-", g->cfg.seed, s->id);
    w_lit(w, ",\"items\":");
    int64_t total = w_cart(g, s, w);
    w_lit(w, ",\"revenue\":");
    w_money(w, total);
    w_lit(w, ",\"currency\":\"USD\"}}");
}

/* ---- the funnel ------------------------------------------------------------ */

/* Moves s one step. Returns true with an event written, false when the step
 * wrote nothing (the session moved on or ended). */
static bool session_step(at_load_gen_t *g, at_load_session_t *s, int64_t now, at_load_w_t *w)
{
    double u = at_load_rng_unit(&g->rng);
    switch (s->state) {
    case ST_LANDING:
        s->state = ST_BROWSE;
        emit_page_view(g, s, now, w, true);
        return true;
    case ST_BROWSE:
        if (s->steps_left == 0) {
            s->state = ST_CHECKOUT;
            return false;
        }
        s->steps_left--;
        if (u < 0.10) {
            emit_search(g, s, now, w);
        } else if (u < 0.20) {
            emit_page_view(g, s, now, w, false);
        } else {
            s->state = ST_VIEWED;
            emit_view_item(g, s, now, w);
        }
        return true;
    case ST_VIEWED:
        s->state = ST_BROWSE;
        if (u >= 0.25)
            return false;
        emit_add_to_cart(g, s, now, w);
        return true;
    case ST_CHECKOUT:
        s->state = ST_DONE;
        if (s->ncart == 0 || u >= 0.45)
            return false; /* nothing bought, or the cart is abandoned */
        emit_purchase(g, s, now, w);
        return true;
    case ST_DONE:
        session_start(g, s);
        return false;
    }
    return false;
}

/* Sets up g from cfg. Aborts on OOM. */
void at_load_gen_init(at_load_gen_t *g, const at_load_gen_cfg_t *cfg)
{
    AT_ASSERT(cfg->users >= 1 && cfg->categories >= 1);
    memset(g, 0, sizeof(*g));
    g->cfg = *cfg;
    at_load_rng_seed(&g->rng, cfg->seed);
    at_load_zipf_init(&g->zipf, cfg->items, cfg->zipf);
    g->nsessions = AT_LOAD_POOL;
    g->sessions = at_xcalloc(g->nsessions, sizeof(*g->sessions));
    for (size_t i = 0; i < g->nsessions; i++)
        session_start(g, &g->sessions[i]);
}

/* Frees what at_load_gen_init() allocated. Thread: g's owner. */
void at_load_gen_deinit(at_load_gen_t *g)
{
    at_load_zipf_deinit(&g->zipf);
    free(g->sessions);
    g->sessions = NULL;
}

/* Appends the next event to out. Returns 0 or AT_ETOOBIG (out unchanged).
 * Thread: g's owner. */
int at_load_gen_next(at_load_gen_t *g, int64_t now_ms, at_buf_t *out)
{
    char ev[AT_LOAD_EVENT_MAX];
    at_load_w_t w = {ev, ev + sizeof(ev)};
    while (!session_step(g, &g->sessions[at_load_rng_below(&g->rng, g->nsessions)], now_ms, &w))
        ;
    return at_buf_append(out, ev, (size_t)(w.p - ev));
}
