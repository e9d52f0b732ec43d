/* test_import.c - the CSV side of `attune import`: the record splitter
 * (quoting, separators, empty fields, records over several lines), the
 * column mapping, rows into events (numbers and strings, empty fields,
 * types, time units), the guesses of format and separator, reading whole
 * files (a header row by default, none with --columns), and the options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../src/cli/import.c"
#include "../../../src/cli/load.c"
#include "../../../src/cli/load_gen.c"
#include "../../../src/cli/load_hist.c"
#include "../../../src/cli/load_http.c"
#include "../../../src/cli/load_run.c"

/* Splits s; returns the count and fills f. */
static int split(const char *s, char sep, at_buf_t *out, at_imp_field_t *f, int maxf)
{
    return at_imp_csv_split(s, strlen(s), sep, out, f, maxf, NULL);
}

static void assert_field(const at_imp_field_t *f, const char *want)
{
    assert_int_equal(f->n, strlen(want));
    assert_memory_equal(f->s, want, f->n);
}

static void test_split_plain(void **state)
{
    (void)state;
    at_buf_t out;
    at_buf_init(&out, 0);
    at_imp_field_t f[8];
    assert_int_equal(split("a,b,c", ',', &out, f, 8), 3);
    assert_field(&f[0], "a");
    assert_field(&f[1], "b");
    assert_field(&f[2], "c");
    /* empty fields, at the ends and in the middle */
    assert_int_equal(split(",x,,", ',', &out, f, 8), 4);
    assert_field(&f[0], "");
    assert_field(&f[1], "x");
    assert_field(&f[2], "");
    assert_field(&f[3], "");
    assert_int_equal(split("", ',', &out, f, 8), 1);
    assert_field(&f[0], "");
    /* spaces are data */
    assert_int_equal(split(" a , b", ',', &out, f, 8), 2);
    assert_field(&f[0], " a ");
    /* other separators; a comma is then plain text */
    assert_int_equal(split("196\t242\t3\t881250949", '\t', &out, f, 8), 4);
    assert_field(&f[3], "881250949");
    assert_int_equal(split("a,b;c", ';', &out, f, 8), 2);
    assert_field(&f[0], "a,b");
    assert_int_equal(split("a|b", '|', &out, f, 8), 2);
    at_buf_deinit(&out);
}

static void test_split_quotes(void **state)
{
    (void)state;
    at_buf_t out;
    at_buf_init(&out, 0);
    at_imp_field_t f[8];
    assert_int_equal(split("\"a,b\",\"say \"\"hi\"\"\",\"\"", ',', &out, f, 8), 3);
    assert_field(&f[0], "a,b");
    assert_field(&f[1], "say \"hi\"");
    assert_field(&f[2], "");
    /* a quoted separator of another kind, and a quoted tab */
    assert_int_equal(split("\"x\ty\"\tz", '\t', &out, f, 8), 2);
    assert_field(&f[0], "x\ty");
    /* a quote inside an unquoted field is kept */
    assert_int_equal(split("5\" screen,b", ',', &out, f, 8), 2);
    assert_field(&f[0], "5\" screen");
    /* a quoted field with a line break inside */
    assert_int_equal(split("\"line1\nline2\",x", ',', &out, f, 8), 2);
    assert_field(&f[0], "line1\nline2");
    /* one field is a count, never "more" (found by fuzz_cli_csv) */
    assert_int_equal(split("solo", ',', &out, f, 8), 1);
    assert_int_equal(split("\"solo\"", ',', &out, f, 8), 1);
    assert_field(&f[0], "solo");
    /* still open: the record goes on */
    assert_int_equal(split("a,\"open", ',', &out, f, 8), AT_IMP_CSV_MORE);
    assert_int_equal(split("a,\"ends with \"\"", ',', &out, f, 8), AT_IMP_CSV_MORE);
    /* text after a closing quote */
    const char *why = NULL;
    assert_int_equal(at_imp_csv_split("\"a\"b,c", 6, ',', &out, f, 8, &why), AT_EPARSE);
    assert_non_null(why);
    /* too many fields */
    assert_int_equal(split("a,b,c", ',', &out, f, 2), AT_ETOOBIG);
    at_buf_deinit(&out);
}

static void cols_from(at_imp_cols_t *c, const char *names, int want_rc)
{
    at_buf_t out;
    at_buf_init(&out, 0);
    at_imp_field_t f[AT_IMP_MAX_COLUMNS + 1];
    int nf = split(names, ',', &out, f, AT_IMP_MAX_COLUMNS + 1);
    assert_true(nf > 0);
    char err[200] = "";
    assert_int_equal(at_imp_cols_set(c, f, nf, NULL, NULL, 0, err, sizeof err), want_rc);
    if (want_rc)
        assert_true(err[0] != 0);
    at_buf_deinit(&out);
}

static void test_columns(void **state)
{
    (void)state;
    at_imp_cols_t c;
    cols_from(&c, "User, ITEM ,event,ts,time_spent,context.device,properties.price,-,", 0);
    assert_int_equal(c.n, 9);
    assert_int_equal(c.c[0].kind, AT_IMP_COL_FIELD);
    assert_string_equal(c.c[0].name, "user_id");
    assert_string_equal(c.c[1].name, "item_id");
    assert_string_equal(c.c[2].name, "type");
    assert_true(c.has_type);
    assert_int_equal(c.c[3].kind, AT_IMP_COL_TIMESTAMP);
    assert_int_equal(c.c[4].kind, AT_IMP_COL_PROP);
    assert_string_equal(c.c[4].name, "time_spent");
    assert_int_equal(c.c[5].kind, AT_IMP_COL_CONTEXT);
    assert_string_equal(c.c[5].name, "device");
    assert_int_equal(c.c[6].kind, AT_IMP_COL_PROP);
    assert_string_equal(c.c[6].name, "price");
    assert_int_equal(c.c[7].kind, AT_IMP_COL_SKIP);
    assert_int_equal(c.c[8].kind, AT_IMP_COL_SKIP);
    at_imp_cols_free(&c);
    cols_from(&c, "user_id,item_id,rating,timestamp", 0);
    assert_false(c.has_type);
    at_imp_cols_free(&c);
    /* two names for one field, or one property twice */
    cols_from(&c, "user,user_id", AT_EINVALID);
    at_imp_cols_free(&c);
    cols_from(&c, "price,properties.price", AT_EINVALID);
    at_imp_cols_free(&c);
    /* the same name in two namespaces is fine */
    cols_from(&c, "context.price,price", 0);
    at_imp_cols_free(&c);
    assert_string_equal(at_imp_col_canonical("anonymousId", 11), "anonymous_id");
    assert_string_equal(at_imp_col_canonical("TIME", 4), "timestamp");
    assert_null(at_imp_col_canonical("customer", 8));
}

static void test_columns_mapping(void **state)
{
    (void)state;
    const char *from[] = {"customer_id", "event_time", "user"};
    const char *to[] = {"user_id", "timestamp", "item_id"};
    at_buf_t out;
    at_buf_init(&out, 0);
    at_imp_field_t f[8];
    int nf = split("customer_id,event_time,user", ',', &out, f, 8);
    at_imp_cols_t c;
    char err[200];
    assert_int_equal(at_imp_cols_set(&c, f, nf, from, to, 3, err, sizeof err), 0);
    assert_int_equal(c.c[0].kind, AT_IMP_COL_TOP);
    assert_string_equal(c.c[0].name, "customer_id");
    assert_int_equal(c.c[1].kind, AT_IMP_COL_TIMESTAMP);
    assert_string_equal(c.c[1].name, "event_time");
    /* the operator's mapping wins over the built-in alias */
    assert_int_equal(c.c[2].kind, AT_IMP_COL_TOP);
    assert_string_equal(c.c[2].name, "user");
    at_imp_rowopt_t o = {.unit = AT_IMP_TIME_AUTO, .type = "view_item"};
    nf = split("c9,881250949,u", ',', &out, f, 8);
    at_buf_t ev;
    at_buf_init(&ev, 0);
    assert_int_equal(at_imp_row_json(&c, f, nf, &o, &ev, err, sizeof err), 0);
    assert_string_equal(ev.data, "{\"type\":\"view_item\",\"customer_id\":\"c9\","
                                 "\"event_time\":881250949000,\"user\":\"u\"}");
    at_imp_cols_free(&c);
    at_buf_deinit(&ev);
    at_buf_deinit(&out);
}

static void test_numbers(void **state)
{
    (void)state;
    const char *yes[] = {"0",   "-0",     "42",    "-3.25",
                         "1e9", "1.5E-3", "2e+10", "123456789012345678901"};
    const char *no[] = {"",    "-",   "007", "1.", ".5",  "+1",  "1e",   "0x10",
                        "NaN", "inf", " 1",  "1 ", "1,5", "--1", "1.2.3"};
    for (size_t i = 0; i < AT_ARRAY_LEN(yes); i++)
        assert_true(at_imp_is_number(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < AT_ARRAY_LEN(no); i++)
        assert_false(at_imp_is_number(no[i], strlen(no[i])));
}

static int64_t epoch(const char *s, at_imp_unit_t u)
{
    int64_t ms = -1;
    return at_imp_epoch_ms(s, strlen(s), u, &ms) ? ms : -1;
}

static void test_time_units(void **state)
{
    (void)state;
    assert_int_equal(epoch("881250949", AT_IMP_TIME_AUTO), 881250949000LL);
    assert_int_equal(epoch("1777300500123", AT_IMP_TIME_AUTO), 1777300500123LL);
    assert_int_equal(epoch("99999999999", AT_IMP_TIME_AUTO), 99999999999000LL); /* below 10^11 */
    assert_int_equal(epoch("100000000000", AT_IMP_TIME_AUTO), 100000000000LL);
    /* forced seconds: past 9999, which ingestion refuses with its reason */
    assert_int_equal(epoch("1777300500123", AT_IMP_TIME_S), 1777300500123000LL);
    assert_int_equal(epoch("9999999999999999", AT_IMP_TIME_S), -1); /* ms would overflow */
    assert_int_equal(epoch("1777300500", AT_IMP_TIME_S), 1777300500000LL);
    assert_int_equal(epoch("1777300500", AT_IMP_TIME_MS), 1777300500LL);
    assert_int_equal(epoch("1777300500.5", AT_IMP_TIME_S), 1777300500500LL);
    assert_int_equal(epoch("1777300500.123789", AT_IMP_TIME_AUTO), 1777300500123LL);
    assert_int_equal(epoch("1777300500123.9", AT_IMP_TIME_MS), 1777300500123LL);
    assert_int_equal(epoch(" 881250949 ", AT_IMP_TIME_AUTO), 881250949000LL);
    assert_int_equal(epoch("0", AT_IMP_TIME_S), 0);
    /* not epoch numbers: passed on as strings */
    assert_int_equal(epoch("2026-04-27T14:35:00Z", AT_IMP_TIME_AUTO), -1);
    assert_int_equal(epoch("-5", AT_IMP_TIME_AUTO), -1);
    assert_int_equal(epoch("12.", AT_IMP_TIME_AUTO), -1);
    assert_int_equal(epoch("", AT_IMP_TIME_AUTO), -1);
    assert_int_equal(epoch("1234567890123456789", AT_IMP_TIME_MS), -1); /* 19 digits */
}

/* Converts one row under the columns names. */
static int row(const char *names, const char *line, char sep, at_imp_unit_t u, at_buf_t *ev)
{
    at_imp_cols_t c;
    cols_from(&c, names, 0);
    at_buf_t out;
    at_buf_init(&out, 0);
    at_imp_field_t f[AT_IMP_MAX_COLUMNS + 1];
    int nf = at_imp_csv_split(line, strlen(line), sep, &out, f, AT_IMP_MAX_COLUMNS + 1, NULL);
    assert_true(nf > 0);
    at_imp_rowopt_t o = {.unit = u, .type = "view_item"};
    char why[200];
    at_buf_reset(ev);
    int rc = at_imp_row_json(&c, f, nf, &o, ev, why, sizeof why);
    at_imp_cols_free(&c);
    at_buf_deinit(&out);
    return rc;
}

static void test_rows(void **state)
{
    (void)state;
    at_buf_t ev;
    at_buf_init(&ev, 0);
    /* MovieLens: properties as numbers, epoch seconds as ms, the default type */
    assert_int_equal(row("user_id,item_id,rating,timestamp", "196\t242\t3\t881250949", '\t',
                         AT_IMP_TIME_AUTO, &ev),
                     0);
    assert_string_equal(ev.data, "{\"type\":\"view_item\",\"user_id\":\"196\",\"item_id\":\"242\","
                                 "\"timestamp\":881250949000,\"properties\":{\"rating\":3}}");
    /* canonical fields stay strings even when numeric; text properties are
     * strings; empty fields are absent, nested objects only when needed */
    assert_int_equal(row("type,user,item,category,ts,event_id,session_id,price,note,context.device",
                         "purchase,007,,a/b,2026-04-27T14:35:00Z,e1,,19.90,\"x, \"\"y\"\"\",", ',',
                         AT_IMP_TIME_AUTO, &ev),
                     0);
    assert_string_equal(ev.data, "{\"type\":\"purchase\",\"user_id\":\"007\",\"category\":\"a/b\","
                                 "\"timestamp\":\"2026-04-27T14:35:00Z\",\"event_id\":\"e1\","
                                 "\"properties\":{\"price\":19.90,\"note\":\"x, \\\"y\\\"\"}}");
    /* an empty type cell gets the default; context values */
    assert_int_equal(
        row("type,user_id,context.device,context.w", ",1,mobile,1280", ',', AT_IMP_TIME_AUTO, &ev),
        0);
    assert_string_equal(ev.data, "{\"type\":\"view_item\",\"user_id\":\"1\","
                                 "\"context\":{\"device\":\"mobile\",\"w\":1280}}");
    /* a short row: the rest is empty; numbers that JSON does not write are text */
    assert_int_equal(row("user_id,a,b,c", "1,007,1.", ',', AT_IMP_TIME_AUTO, &ev), 0);
    assert_string_equal(ev.data, "{\"type\":\"view_item\",\"user_id\":\"1\","
                                 "\"properties\":{\"a\":\"007\",\"b\":\"1.\"}}");
    /* time units */
    assert_int_equal(row("user_id,timestamp", "1,1777300500", ',', AT_IMP_TIME_MS, &ev), 0);
    assert_string_equal(ev.data,
                        "{\"type\":\"view_item\",\"user_id\":\"1\",\"timestamp\":1777300500}");
    assert_int_equal(row("user_id,timestamp", "1,1777300500123", ',', AT_IMP_TIME_AUTO, &ev), 0);
    assert_string_equal(ev.data,
                        "{\"type\":\"view_item\",\"user_id\":\"1\",\"timestamp\":1777300500123}");
    /* control characters and bad UTF-8 still give valid JSON */
    assert_int_equal(row("user_id,note", "1,\"a\tb\xff\"", ',', AT_IMP_TIME_AUTO, &ev), 0);
    assert_string_equal(ev.data, "{\"type\":\"view_item\",\"user_id\":\"1\","
                                 "\"properties\":{\"note\":\"a\\tb\\ufffd\"}}");
    /* more fields than columns */
    assert_int_equal(row("user_id,item_id", "1,2,3", ',', AT_IMP_TIME_AUTO, &ev), AT_EINVALID);
    assert_int_equal(ev.len, 0);
    at_buf_deinit(&ev);
}

static void test_guesses(void **state)
{
    (void)state;
    assert_int_equal(at_imp_guess_format("x/events.ndjson", 'a'), AT_IMP_NDJSON);
    assert_int_equal(at_imp_guess_format("e.JSONL", -1), AT_IMP_NDJSON);
    assert_int_equal(at_imp_guess_format("e.json", 'u'), AT_IMP_NDJSON);
    assert_int_equal(at_imp_guess_format("e.csv", '{'), AT_IMP_CSV);
    assert_int_equal(at_imp_guess_format("e.tsv", '{'), AT_IMP_CSV);
    assert_int_equal(at_imp_guess_format("ml/u.data", '1'), AT_IMP_CSV);
    assert_int_equal(at_imp_guess_format("", '{'), AT_IMP_NDJSON);
    assert_int_equal(at_imp_guess_format("", 'u'), AT_IMP_CSV);
    assert_int_equal(at_imp_guess_format("dir.csv/file", '{'), AT_IMP_NDJSON);
    assert_int_equal(at_imp_guess_sep("a.tsv", "a,b", 3), '\t');
    assert_int_equal(at_imp_guess_sep("u.data", "1\t2\t3", 5), '\t');
    assert_int_equal(at_imp_guess_sep("a.csv", "a\tb,c", 5), ',');
    assert_int_equal(at_imp_guess_sep("", "a;b", 3), ',');
}

/* ---- whole files, read into the --sort store (no engine needed) ---------------- */

static char tmp_path[512];

static const char *write_tmp(const char *name, const char *text)
{
    const char *dir = getenv("AT_TEST_TMP");
    (void)snprintf(tmp_path, sizeof tmp_path, "%s/%s", dir ? dir : "/tmp", name);
    if (dir)
        assert_int_equal(at_mkdirs(dir, 0755), 0);
    FILE *f = fopen(tmp_path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return tmp_path;
}

/* Reads path as `attune import --sort ARGS path` would, into r. */
static void read_into(at_imp_run_t *r, at_imp_opts_t *o, const char *const *args, int nargs,
                      const char *path)
{
    char *argv[16] = {"import", "--sort"};
    int argc = 2;
    for (int i = 0; i < nargs; i++)
        argv[argc++] = (char *)args[i];
    argv[argc++] = (char *)path;
    char *own[AT_ARRAY_LEN(o->sets)] = {0};
    assert_int_equal(at_imp__parse(o, own, argc, argv), 0);
    at_imp__run_init(r, o);
    r->tty = false;
    at_imp__limits(r);
    assert_int_equal(at_imp__read_file(r, 0), 0);
}

static const char *held(const at_imp_run_t *r, size_t i, size_t *n)
{
    *n = r->sorted[i].len;
    return r->held.data + r->sorted[i].off;
}

static void assert_held(const at_imp_run_t *r, size_t i, const char *want)
{
    size_t n;
    const char *s = held(r, i, &n);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(s, want, n);
}

static void test_file_header(void **state)
{
    (void)state;
    at_imp_opts_t o;
    at_imp_run_t r;
    /* the header is the first row, never guessed; a BOM and CRLF; blank
     * lines skipped; a quoted field over two lines */
    const char *p = write_tmp("imp_header.csv", "\xef\xbb\xbfuser_id,item_id,note\r\n"
                                                "1,2,plain\r\n"
                                                "\r\n"
                                                "3,4,\"two\r\nlines\"\r\n"
                                                "5,6,7,8\n"
                                                "9,10,\"open\n");
    read_into(&r, &o, NULL, 0, p);
    assert_int_equal(r.read, 4);
    assert_int_equal(r.nsorted, 2);
    assert_held(&r, 0,
                "{\"type\":\"view_item\",\"user_id\":\"1\",\"item_id\":\"2\","
                "\"properties\":{\"note\":\"plain\"}}");
    assert_held(&r, 1,
                "{\"type\":\"view_item\",\"user_id\":\"3\",\"item_id\":\"4\","
                "\"properties\":{\"note\":\"two\\nlines\"}}");
    assert_int_equal(r.sorted[1].where.line, 4);
    assert_int_equal(r.local_rejected, 2); /* too many fields; an unclosed quote */
    assert_int_equal(r.nreasons, 2);
    assert_non_null(strstr(r.reasons[0], "imp_header.csv:6: invalid_csv: the row has 4 fields"));
    assert_non_null(strstr(r.reasons[1], ":7: invalid_csv: a quoted field is not closed"));
    at_imp__run_deinit(&r);
}

static void test_file_columns(void **state)
{
    (void)state;
    at_imp_opts_t o;
    at_imp_run_t r;
    /* --columns: every row is data, even one that looks like a header */
    const char *p = write_tmp("imp_u.data", "user_id\titem_id\trating\ttimestamp\n"
                                            "196\t242\t3\t881250949\n"
                                            "186\t302\t3\t891717742\n"
                                            "22\t377\t1\t878887116\n");
    const char *args[] = {"--columns", "user_id,item_id,rating,timestamp", "--type", "rate"};
    read_into(&r, &o, args, 4, p);
    assert_int_equal(r.read, 4);
    assert_int_equal(r.nsorted, 4);
    assert_held(&r, 0,
                "{\"type\":\"rate\",\"user_id\":\"user_id\",\"item_id\":\"item_id\","
                "\"timestamp\":\"timestamp\",\"properties\":{\"rating\":\"rating\"}}");
    assert_held(&r, 1,
                "{\"type\":\"rate\",\"user_id\":\"196\",\"item_id\":\"242\","
                "\"timestamp\":881250949000,\"properties\":{\"rating\":3}}");
    assert_int_equal(r.sorted[1].ts, 881250949000LL);
    /* sorted by time, stable; the unreadable time goes last */
    at_imp__feed_sorted_order(&r);
    assert_int_equal(r.sorted[0].where.line, 4);
    assert_int_equal(r.sorted[1].where.line, 2);
    assert_int_equal(r.sorted[2].where.line, 3);
    assert_int_equal(r.sorted[3].where.line, 1);
    at_imp__run_deinit(&r);
}

static void test_file_ndjson(void **state)
{
    (void)state;
    at_imp_opts_t o;
    at_imp_run_t r;
    const char *p =
        write_tmp("imp_events.jsonl", "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":1000}\n"
                                      "  \n"
                                      "not json\n"
                                      "{\"event\":\"b\",\"userId\":\"2\",\"originalTimestamp\":"
                                      "\"1970-01-01T00:00:00.500Z\"}");
    read_into(&r, &o, NULL, 0, p);
    assert_int_equal(r.read, 3);
    assert_held(&r, 1, "not json"); /* passed on as it is: ingestion rejects it */
    assert_int_equal(r.sorted[0].ts, 1000);
    assert_int_equal(r.sorted[1].ts, INT64_MAX);
    assert_int_equal(r.sorted[2].ts, 500);
    assert_int_equal(r.sorted[2].where.line, 4);
    at_imp__run_deinit(&r);
}

static void test_file_one_column(void **state)
{
    (void)state;
    at_imp_opts_t o;
    at_imp_run_t r;
    const char *p = write_tmp("imp_one.csv", "user_id\n1\n\"2\"\n3\n");
    read_into(&r, &o, NULL, 0, p);
    assert_int_equal(r.read, 3);
    assert_int_equal(r.nsorted, 3);
    assert_held(&r, 1, "{\"type\":\"view_item\",\"user_id\":\"2\"}");
    assert_int_equal(r.sorted[2].where.line, 4);
    at_imp__run_deinit(&r);
}

static void test_file_bad_header(void **state)
{
    (void)state;
    at_imp_opts_t o;
    at_imp_run_t r;
    const char *p = write_tmp("imp_dup.csv", "user,user_id\n1,2\n");
    read_into(&r, &o, NULL, 0, p);
    assert_int_equal(r.read, 0);
    assert_non_null(strstr(r.fatal, "columns 1 and 2 both give user_id"));
    at_imp__run_deinit(&r);
}

/* ---- options ------------------------------------------------------------------- */

static int parse(int argc, const char **argv)
{
    at_imp_opts_t o;
    char *own[AT_ARRAY_LEN(o.sets)] = {0};
    int rc = at_imp__parse(&o, own, argc, (char **)argv);
    for (size_t i = 0; i < AT_ARRAY_LEN(own); i++)
        free(own[i]);
    return rc;
}

static void test_options(void **state)
{
    (void)state;
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w"); /* the messages are not under test */
    assert_non_null(stderr);
    const char *ok[] = {"import",  "-d", "dir",   "--set", "a=b",         "-p", "4",
                        "--batch", "10", "--sep", "tab",   "--time-unit", "s",  "f.csv"};
    assert_int_equal(parse(AT_ARRAY_LEN(ok), ok), 0);
    const char *url[] = {"import", "--url", "http://127.0.0.1:1", "--key", "k", "--connections",
                         "4",      "-"};
    assert_int_equal(parse(AT_ARRAY_LEN(url), url), 0);
    const char *bad[][4] = {
        {"import", NULL},
        {"import", "--time-unit", "h", "f"},
        {"import", "--sep", "ab", "f"},
        {"import", "--sep", "\"", "f"},
        {"import", "--format", "xml", "f"},
        {"import", "--batch", "0", "f"},
        {"import", "--key", "k", "f"},
        {"import", "--set", "noequals", "f"},
        {"import", "--bogus", "f", NULL},
        {"import", "-", "-", NULL},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(bad); i++) {
        int argc = 0;
        while (argc < 4 && bad[i][argc])
            argc++;
        assert_int_equal(parse(argc, bad[i]), 2);
    }
    const char *mixed[] = {"import", "--url", "http://h:1", "-d", "x", "f"};
    assert_int_equal(parse(AT_ARRAY_LEN(mixed), mixed), 2);
    (void)fclose(stderr);
    stderr = saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_plain),
        cmocka_unit_test(test_split_quotes),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_columns_mapping),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_time_units),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_guesses),
        cmocka_unit_test(test_file_header),
        cmocka_unit_test(test_file_columns),
        cmocka_unit_test(test_file_ndjson),
        cmocka_unit_test(test_file_one_column),
        cmocka_unit_test(test_file_bad_header),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
