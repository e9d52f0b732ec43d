/* test_golden.c - the golden tests of segments and triggers: every
 * tests/golden/rules/NAME.test script (format in golden.h) is fed to the
 * partition processor and its outputs must be exactly the expected lines,
 * in order. A failure names the script, line and the outputs seen. */
#include "golden.h"

#include <dirent.h>

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
    return s;
}

/* Next whitespace-separated word of *s (NUL-terminated in place). */
static char *word(char **s)
{
    char *p = *s;
    while (*p == ' ')
        p++;
    char *w = p;
    while (*p && *p != ' ')
        p++;
    if (*p)
        *p++ = '\0';
    *s = p;
    return w;
}

static int run_script(const char *path, char *why, size_t whylen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, whylen, "cannot open %s", path);
        return -1;
    }
    char line[8192];
    int lineno = 0, rc = 0;
    int partitions = 1;
    int64_t lateness = 5000, gap = 30 * 60000, ttl = 0;
    golden_t g;
    bool started = false;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *cmd = word(&s);
        if (!started && (!strcmp(cmd, "partitions") || !strcmp(cmd, "lateness") ||
                         !strcmp(cmd, "gap") || !strcmp(cmd, "ttl"))) {
            int64_t v = 0;
            if (!strcmp(cmd, "partitions"))
                partitions = atoi(s);
            else if (at_parse_duration_ms(trim(s), &v) == 0)
                *(strcmp(cmd, "lateness") == 0 ? &lateness
                  : strcmp(cmd, "gap") == 0    ? &gap
                                               : &ttl) = v;
            continue;
        }
        if (!started) {
            golden_init(&g, partitions, lateness, gap, ttl);
            started = true;
        }
        if (!strcmp(cmd, "segment") || !strcmp(cmd, "trigger")) {
            if (golden_rule(&g, cmd[0] == 's' ? AT_RULE_SEGMENT : AT_RULE_TRIGGER, s) < 0) {
                snprintf(why, whylen, "%s:%d: %s", path, lineno, g.err);
                rc = -1;
            }
        } else if (!strcmp(cmd, "delete")) {
            char *kind = word(&s), *name = word(&s);
            at_ruleset_t *next = NULL;
            at_error_t e;
            int k = !strcmp(kind, "segment") ? AT_RULE_SEGMENT : AT_RULE_TRIGGER;
            if (at_ruleset_change(g.rs, AT_CHG_DELETE, k, name, strlen(name), NULL, 0, 0, 0, &next,
                                  &e) < 0) {
                snprintf(why, whylen, "%s:%d: delete refused: %s", path, lineno, e.message);
                rc = -1;
            } else {
                at_ruleset_unref(g.rs);
                g.rs = next;
                golden_control(&g);
            }
        } else if (!strcmp(cmd, "event")) {
            char *key = word(&s), *t = word(&s), *type = word(&s);
            int64_t ts;
            if (golden_parse_time(t, &ts) < 0 || golden_event(&g, key, ts, type, s) < 0) {
                snprintf(why, whylen, "%s:%d: bad event line (%s)", path, lineno, g.err);
                rc = -1;
            }
        } else if (!strcmp(cmd, "tick")) {
            int64_t ts;
            if (golden_parse_time(trim(s), &ts) < 0) {
                snprintf(why, whylen, "%s:%d: bad time", path, lineno);
                rc = -1;
            } else {
                golden_tick(&g, ts);
            }
        } else if (!strcmp(cmd, "expect")) {
            golden_run(&g);
            if (g.matched >= g.nout) {
                snprintf(why, whylen, "%s:%d: expected '%s', but there is no more output", path,
                         lineno, s);
                rc = -1;
            } else if (strcmp(g.out[g.matched], s) != 0) {
                snprintf(why, whylen, "%s:%d: expected '%s'\n                got '%s'", path,
                         lineno, s, g.out[g.matched]);
                rc = -1;
            } else {
                g.matched++;
            }
        } else if (!strcmp(cmd, "expect-none")) {
            golden_run(&g);
            if (g.matched < g.nout) {
                snprintf(why, whylen, "%s:%d: unexpected output '%s'", path, lineno,
                         g.out[g.matched]);
                rc = -1;
            }
        } else if (!strcmp(cmd, "expect-segments") || !strcmp(cmd, "expect-fires")) {
            golden_run(&g);
            char *key = word(&s), got[4096];
            const char *want = trim(s);
            if (golden_user_list(&g, key, cmd[7] == 's' ? "segments" : "triggers", got,
                                 sizeof got) < 0) {
                snprintf(why, whylen, "%s:%d: %s", path, lineno, g.err);
                rc = -1;
            } else if (strcmp(got, want) != 0) {
                snprintf(why, whylen, "%s:%d: %s of %s: expected '%s'\n                got '%s'",
                         path, lineno, cmd + 7, key, want, got);
                rc = -1;
            }
        } else if (!strcmp(cmd, "expect-members")) {
            golden_run(&g);
            char *name = word(&s), got[4096];
            const char *want = trim(s);
            golden_members(&g, name, got, sizeof got);
            if (strcmp(got, want) != 0) {
                snprintf(why, whylen,
                         "%s:%d: members of %s: expected '%s'\n                got '%s'", path,
                         lineno, name, want, got);
                rc = -1;
            }
        } else if (!strcmp(cmd, "expect-count")) {
            golden_run(&g);
            char *rule = word(&s), *at = strchr(rule, '@');
            long long want = atoll(trim(s));
            int64_t got = at ? (*at = '\0', golden_count(&g, rule, (uint32_t)atoi(at + 1))) : -1;
            if (got != want) {
                snprintf(why, whylen, "%s:%d: member count of %s@%s: expected %lld, got %lld", path,
                         lineno, rule, at ? at + 1 : "?", want, (long long)got);
                rc = -1;
            }
        } else {
            snprintf(why, whylen, "%s:%d: unknown command '%s'", path, lineno, cmd);
            rc = -1;
        }
        if (rc == 0 && started)
            golden_run(&g);
    }
    fclose(f);
    if (started) {
        golden_run(&g);
        if (rc == 0 && g.matched < g.nout) {
            snprintf(why, whylen, "%s: unexpected output at the end: '%s'", path, g.out[g.matched]);
            rc = -1;
        }
        if (rc != 0) {
            fprintf(stderr, "--- all outputs of %s:\n", path);
            for (size_t i = 0; i < g.nall; i++)
                fprintf(stderr, "    %s\n", g.all[i]);
        }
        golden_free(&g);
    }
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden(void **state)
{
    (void)state;
    const char *src = getenv("AT_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/golden/rules", src ? src : ".");
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[1024];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 1024) {
        size_t l = strlen(de->d_name);
        if (l > 5 && !strcmp(de->d_name + l - 5, ".test"))
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    const char *only = getenv("GOLDEN");
    int failed = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && !strstr(names[i], only)) {
            free(names[i]);
            continue;
        }
        char path[8192], why[20480] = "";
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ran++;
        if (run_script(path, why, sizeof why) != 0) {
            fprintf(stderr, "FAIL %s\n", why);
            failed++;
        } else {
            fprintf(stderr, "ok   %s\n", names[i]);
        }
        free(names[i]);
    }
    fprintf(stderr, "golden: %d scripts, %d failed\n", ran, failed);
    assert_true(ran > 0);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
