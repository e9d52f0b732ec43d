/* expr_names.c - the namespace of the language: which functions and which
 * field paths exist, their static types, the canonical text of a path (what
 * the host's resolver is handed) and its splitting back into steps, and the
 * "did you mean" suggestions of the error messages.
 */
#include "rules_int.h"

#include <stdio.h>
#include <string.h>

static const at_fn_info_t at_fns[] = {
    {"exists", AT_FN_EXISTS, 1, 1},     {"year", AT_FN_YEAR, 1, 2},
    {"month", AT_FN_MONTH, 1, 2},       {"day", AT_FN_DAY, 1, 2},
    {"hour", AT_FN_HOUR, 1, 2},         {"minute", AT_FN_MINUTE, 1, 2},
    {"second", AT_FN_SECOND, 1, 2},     {"day_of_week", AT_FN_DOW, 1, 2},
    {"lower", AT_FN_LOWER, 1, 1},       {"upper", AT_FN_UPPER, 1, 1},
    {"len", AT_FN_LEN, 1, 1},           {"abs", AT_FN_ABS, 1, 1},
    {"affinity", AT_FN_AFFINITY, 1, 1}, {"in_segment", AT_FN_IN_SEGMENT, 1, 1},
    {"time", AT_FN_TIME, 1, 1},
};

const char *const at_rules__fn_names[] = {
    "exists", "year",  "month", "day", "hour",     "minute",     "second", "day_of_week",
    "lower",  "upper", "len",   "abs", "affinity", "in_segment", "time",
};
const size_t at_rules__fn_count = AT_ARRAY_LEN(at_rules__fn_names);

const at_fn_info_t *at_rules__fn_find(const char *s, size_t n)
{
    for (size_t i = 0; i < AT_ARRAY_LEN(at_fns); i++)
        if (strlen(at_fns[i].name) == n && memcmp(at_fns[i].name, s, n) == 0)
            return &at_fns[i];
    return NULL;
}

/* Edit distance of two short strings (each at most 32 bytes), counting a
 * swap of two neighbours as one edit (optimal string alignment). */
static size_t at_edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t d[33][33];
    for (size_t i = 0; i <= na; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            size_t v = AT_MIN(d[i - 1][j] + 1, d[i][j - 1] + 1);
            v = AT_MIN(v, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]));
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                v = AT_MIN(v, d[i - 2][j - 2] + 1);
            d[i][j] = v;
        }
    return d[na][nb];
}

/* Whether s is an abbreviation of w: its letters in order ("cnt", "typ"). */
static bool at_is_subsequence(const char *s, size_t n, const char *w)
{
    size_t i = 0;
    for (; *w && i < n; w++)
        if (*w == s[i])
            i++;
    return i == n;
}

/* A suggestion is one or two edits away from what was written (two only
 * for longer words, so "foo" does not become "now"), or the written word
 * is an abbreviation of it. */
const char *at_rules__suggest(const char *s, size_t n, const char *const *cands, size_t ncands)
{
    if (n == 0 || n > 32)
        return NULL;
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < ncands; i++) {
        size_t m = strlen(cands[i]);
        if (m > 32)
            continue;
        size_t d = at_edit_distance(s, n, cands[i], m);
        bool close = d <= 1 || (d == 2 && n > 4) || (n >= 3 && at_is_subsequence(s, n, cands[i]));
        if (close && d < best_d) {
            best = cands[i];
            best_d = d;
        }
    }
    return best;
}

static bool at_seg_is(const at_pseg_t *g, const char *w)
{
    size_t n = strlen(w);
    return g->index < 0 && g->len == n && memcmp(g->s, w, n) == 0;
}

static bool at_is_ident(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

/* Appends the canonical text of the path: names as .name when they are
 * identifiers, else ["..."] with JSON escapes; indexes as [N]. */
static int at_canon(const at_pseg_t *segs, size_t nsegs, at_buf_t *out)
{
    int rc = at_buf_append(out, segs[0].s, segs[0].len);
    for (size_t i = 1; i < nsegs && rc == 0; i++) {
        const at_pseg_t *g = &segs[i];
        if (g->index >= 0) {
            rc = at_buf_printf(out, "[%lld]", (long long)g->index);
        } else if (at_is_ident(g->s, g->len)) {
            rc = at_buf_putc(out, '.');
            if (rc == 0)
                rc = at_buf_append(out, g->s, g->len);
        } else {
            rc = at_buf_putc(out, '[');
            if (rc == 0)
                rc = at_buf_json_str(out, g->s, g->len);
            if (rc == 0)
                rc = at_buf_putc(out, ']');
        }
    }
    return rc;
}

static const struct {
    const char *name;
    uint8_t type;
} at_event_fields[] = {
    {"type", AT_VAL_STR},         {"event_id", AT_VAL_STR},   {"user_id", AT_VAL_STR},
    {"anonymous_id", AT_VAL_STR}, {"session_id", AT_VAL_STR}, {"item_id", AT_VAL_STR},
    {"category", AT_VAL_STR},     {"timestamp", AT_VAL_TIME}, {"received_at", AT_VAL_TIME},
    {"now", AT_VAL_TIME},
};

static const char *const at_top_names[] = {
    "type",      "event_id",    "user_id", "anonymous_id", "session_id", "item_id", "category",
    "timestamp", "received_at", "context", "properties",   "profile",    "now",
};

#define AT_TOP_LIST                                                                                \
    "type, event_id, user_id, anonymous_id, session_id, item_id, category, timestamp, "            \
    "received_at, context.*, properties.*, profile.*, now"
#define AT_PROFILE_LIST                                                                            \
    "counters.<event type>, first_seen, last_seen, session.start, session.events, "                \
    "session.pages, session.duration, traits.*"

/* The reason a path does not exist is written into why; *err_pos is the
 * segment it points at. */
#define AT_NO(pos_, ...)                                                                           \
    do {                                                                                           \
        *err_pos = (pos_);                                                                         \
        (void)snprintf(why, whylen, __VA_ARGS__);                                                  \
        return AT_EINVALID;                                                                        \
    } while (0)

static int at_profile_path(const at_pseg_t *segs, size_t nsegs, at_path_info_t *info,
                           uint32_t *err_pos, char *why, size_t whylen)
{
    static const char *const subs[] = {"counters", "first_seen", "last_seen", "session", "traits"};
    static const char *const sess[] = {"start", "events", "pages", "duration"};
    static const uint8_t sess_types[] = {AT_VAL_TIME, AT_VAL_NUM, AT_VAL_NUM, AT_VAL_DUR};
    info->profile = true;
    if (nsegs < 2)
        AT_NO(segs[0].pos, "'profile' needs a field name: " AT_PROFILE_LIST);
    const at_pseg_t *g = &segs[1];
    if (at_seg_is(g, "counters")) {
        if (nsegs < 3 || segs[2].index >= 0)
            AT_NO(nsegs < 3 ? g->pos : segs[2].pos,
                  "profile.counters needs an event type, as in profile.counters.purchase");
        if (nsegs > 3)
            AT_NO(segs[3].pos, "a counter is a number and has no fields");
        info->type = AT_VAL_NUM;
        info->zero = true;
        return 0;
    }
    if (at_seg_is(g, "first_seen") || at_seg_is(g, "last_seen")) {
        if (nsegs > 2)
            AT_NO(segs[2].pos, "profile.%.*s is a time and has no fields", (int)g->len, g->s);
        info->type = AT_VAL_TIME;
        return 0;
    }
    if (at_seg_is(g, "traits")) {
        if (nsegs < 3)
            AT_NO(g->pos, "profile.traits needs a trait name, as in profile.traits.plan");
        info->type = AT_VAL_ANY;
        return 0;
    }
    if (at_seg_is(g, "session")) {
        for (size_t i = 0; nsegs >= 3 && i < AT_ARRAY_LEN(sess); i++) {
            if (!at_seg_is(&segs[2], sess[i]))
                continue;
            if (nsegs > 3)
                AT_NO(segs[3].pos, "profile.session.%s has no fields", sess[i]);
            info->type = sess_types[i];
            return 0;
        }
        const at_pseg_t *h = nsegs >= 3 ? &segs[2] : g;
        const char *sug = nsegs >= 3 && h->index < 0
                              ? at_rules__suggest(h->s, h->len, sess, AT_ARRAY_LEN(sess))
                              : NULL;
        AT_NO(h->pos, "profile.session has start, events, pages and duration%s%s%s",
              sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
    }
    const char *sug =
        g->index < 0 ? at_rules__suggest(g->s, g->len, subs, AT_ARRAY_LEN(subs)) : NULL;
    AT_NO(g->pos, "unknown profile field '%.*s'%s%s%s; profile has " AT_PROFILE_LIST,
          (int)AT_MIN(g->len, 32), g->s, sug ? " (did you mean '" : "", sug ? sug : "",
          sug ? "'?)" : "");
}

int at_rules__path_resolve(const at_pseg_t *segs, size_t nsegs, unsigned flags,
                           at_path_info_t *info, at_buf_t *canon, uint32_t *err_pos, char *why,
                           size_t whylen)
{
    memset(info, 0, sizeof *info);
    const at_pseg_t *g = &segs[0];
    bool found = false;
    for (size_t i = 0; i < AT_ARRAY_LEN(at_event_fields); i++) {
        if (!at_seg_is(g, at_event_fields[i].name))
            continue;
        if (nsegs > 1)
            AT_NO(segs[1].pos, "'%s' is a %s and has no fields", at_event_fields[i].name,
                  at_val_type_name(at_event_fields[i].type));
        info->type = at_event_fields[i].type;
        info->now = at_seg_is(g, "now");
        found = true;
    }
    if (!found && (at_seg_is(g, "context") || at_seg_is(g, "properties"))) {
        if (nsegs < 2)
            AT_NO(g->pos, "'%.*s' needs a field name, as in %.*s.%s", (int)g->len, g->s,
                  (int)g->len, g->s, at_seg_is(g, "context") ? "device" : "price");
        info->type = AT_VAL_ANY;
        found = true;
    }
    if (!found && at_seg_is(g, "profile")) {
        if (flags & AT_EXPR_NO_PROFILE)
            AT_NO(g->pos, "%s",
                  (flags & AT_XC_HAVING) ? "aggregates read the window's events, not the profile"
                                         : "profile fields are not available here");
        int rc = at_profile_path(segs, nsegs, info, err_pos, why, whylen);
        if (rc)
            return rc;
        found = true;
    }
    if (!found) {
        const char *sug = at_rules__suggest(g->s, g->len, at_top_names, AT_ARRAY_LEN(at_top_names));
        AT_NO(g->pos, "unknown name '%.*s'%s%s%s; the names are " AT_TOP_LIST,
              (int)AT_MIN(g->len, 32), g->s, sug ? " (did you mean '" : "", sug ? sug : "",
              sug ? "'?)" : "");
    }
    if (at_canon(segs, nsegs, canon) != 0)
        AT_NO(g->pos, "field path too long");
    return 0;
}

/* One [...] step at path[i] (just past the '['): a quoted name or an index. */
static int at_split_bracket(const char *path, size_t n, size_t *ip, at_expr_step_t *st, char *buf,
                            size_t buflen, size_t *used)
{
    size_t i = *ip;
    if (i < n && path[i] == '"') {
        size_t j = ++i;
        while (j < n && path[j] != '"')
            j += path[j] == '\\' ? 2 : 1;
        if (j + 1 >= n || path[j] != '"' || path[j + 1] != ']')
            return AT_EINVALID;
        size_t outlen, errpos;
        const char *why;
        if (buflen - *used < j - i ||
            at_rules__unescape(path + i, j - i, buf + *used, &outlen, &errpos, &why) < 0)
            return AT_EINVALID;
        *st = (at_expr_step_t){.s = buf + *used, .len = outlen, .index = -1};
        *used += outlen;
        *ip = j + 2;
        return 0;
    }
    int64_t v = 0;
    size_t j = i;
    while (j < n && path[j] >= '0' && path[j] <= '9' && v < INT32_MAX)
        v = v * 10 + (path[j++] - '0');
    if (j == i || j >= n || path[j] != ']')
        return AT_EINVALID;
    *st = (at_expr_step_t){.s = NULL, .len = 0, .index = v};
    *ip = j + 1;
    return 0;
}

int at_expr_path_split(const char *path, size_t n, at_expr_step_t *steps, int max, char *buf,
                       size_t buflen)
{
    size_t i = 0, used = 0;
    int k = 0;
    while (i < n) {
        if (k >= max)
            return AT_ETOOBIG;
        at_expr_step_t *st = &steps[k];
        if (k > 0 && path[i] == '[') {
            i++;
            if (at_split_bracket(path, n, &i, st, buf, buflen, &used) < 0)
                return AT_EINVALID;
        } else {
            if (k > 0 && path[i++] != '.')
                return AT_EINVALID;
            size_t j = i;
            while (j < n && path[j] != '.' && path[j] != '[')
                j++;
            if (!at_is_ident(path + i, j - i))
                return AT_EINVALID;
            *st = (at_expr_step_t){.s = path + i, .len = j - i, .index = -1};
            i = j;
        }
        k++;
    }
    return k;
}
