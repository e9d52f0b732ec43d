/* fuzz_cli_csv.c - the CSV side of `attune import` on arbitrary bytes. The
 * first byte picks the separator and the time unit; then comes a header
 * line and a record (which may span lines). Checks what must hold for any
 * input: the split fields lie in order inside the output buffer and are
 * never longer than the record; writing them back quoted and splitting
 * again gives the same fields; and a row that converts is one valid JSON
 * object with a type, whatever bytes it holds. The CLI's sources are not a
 * library, so the file under test is included, as the unit tests do. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/cli/import.c"
#include "../../src/cli/load.c"
#include "../../src/cli/load_gen.c"
#include "../../src/cli/load_hist.c"
#include "../../src/cli/load_http.c"
#include "../../src/cli/load_run.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF (AT_IMP_MAX_COLUMNS + 1)

/* Writes f back as a CSV record with every field quoted. */
static void write_back(at_buf_t *b, const at_imp_field_t *f, int nf, char sep)
{
    at_buf_reset(b);
    for (int i = 0; i < nf; i++) {
        if (i)
            AT_ASSERT(at_buf_putc(b, sep) == 0);
        AT_ASSERT(at_buf_putc(b, '"') == 0);
        for (size_t k = 0; k < f[i].n; k++) {
            if (f[i].s[k] == '"')
                AT_ASSERT(at_buf_putc(b, '"') == 0);
            AT_ASSERT(at_buf_putc(b, f[i].s[k]) == 0);
        }
        AT_ASSERT(at_buf_putc(b, '"') == 0);
    }
}

/* Splits [s, s + n) and checks the fields; returns the count or the code. */
static int split_checked(const char *s, size_t n, char sep, at_buf_t *out, at_imp_field_t *f)
{
    const char *why = NULL;
    int nf = at_imp_csv_split(s, n, sep, out, f, MAXF, &why);
    AT_ASSERT(nf == AT_IMP_CSV_MORE || nf == AT_EPARSE || nf == AT_ETOOBIG || nf >= 1);
    AT_ASSERT(AT_IMP_CSV_MORE < 1); /* never a count */
    if (nf == AT_EPARSE || nf == AT_ETOOBIG)
        AT_ASSERT(why != NULL);
    if (nf < 1 || nf == AT_IMP_CSV_MORE)
        return nf;
    AT_ASSERT(nf <= MAXF);
    size_t total = 0;
    const char *prev = out->data;
    for (int i = 0; i < nf; i++) {
        AT_ASSERT(f[i].s >= prev && f[i].s + f[i].n <= out->data + out->len);
        prev = f[i].s + f[i].n;
        total += f[i].n;
    }
    AT_ASSERT(total + (size_t)(nf - 1) <= n);
    return nf;
}

static void check_row(const at_imp_cols_t *cols, const at_imp_field_t *f, int nf,
                      at_imp_unit_t unit)
{
    at_buf_t ev;
    at_buf_init(&ev, 0);
    at_imp_rowopt_t o = {.unit = unit, .type = "view_item"};
    char why[200];
    int rc = at_imp_row_json(cols, f, nf, &o, &ev, why, sizeof why);
    AT_ASSERT(rc == 0 || (rc == AT_EINVALID && nf > cols->n && ev.len == 0));
    if (rc == 0) {
        at_arena_t arena;
        at_arena_init(&arena, 4096);
        at_json_t *root = NULL;
        at_error_t e;
        AT_ASSERT(at_json_parse_all(ev.data, ev.len, &arena, 8, &root, &e) == 0);
        AT_ASSERT(root->type == AT_JSON_OBJECT);
        const at_json_t *t = at_json_get(root, "type", 4);
        AT_ASSERT(t && t->type == AT_JSON_STRING && t->len > 0);
        at_arena_deinit(&arena);
    }
    at_buf_deinit(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char seps[] = {',', '\t', ';', '|'};
    if (size < 1)
        return 0;
    char sep = seps[data[0] & 3];
    at_imp_unit_t unit = (at_imp_unit_t)((data[0] >> 2) % 3);
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    const char *nl = memchr(s, '\n', n);
    size_t hn = nl ? (size_t)(nl - s) : n;
    const char *rec = nl ? nl + 1 : s;
    size_t rn = nl ? n - hn - 1 : n;

    at_buf_t out, again, back;
    at_buf_init(&out, 0);
    at_buf_init(&again, 0);
    at_buf_init(&back, 0);
    static at_imp_field_t names[MAXF], f[MAXF], g[MAXF];
    at_imp_cols_t cols;
    char err[300];
    int nh = split_checked(s, hn, sep, &out, names);
    bool have_cols =
        nh >= 1 && at_imp_cols_set(&cols, names, nh, NULL, NULL, 0, err, sizeof err) == 0;
    if (nh >= 1 && !have_cols)
        at_imp_cols_free(&cols);

    at_buf_t scratch;
    at_buf_init(&scratch, 0);
    int nf = split_checked(rec, rn, sep, &scratch, f);
    if (nf >= 1) {
        write_back(&back, f, nf, sep);
        int ng = split_checked(back.data, back.len, sep, &again, g);
        AT_ASSERT(ng == nf);
        for (int i = 0; i < nf; i++)
            AT_ASSERT(g[i].n == f[i].n && !memcmp(g[i].s, f[i].s, f[i].n));
        if (have_cols)
            check_row(&cols, f, nf, unit);
    }
    int64_t ms;
    if (at_imp_epoch_ms(rec, rn, unit, &ms))
        AT_ASSERT(ms >= 0);
    (void)at_imp_is_number(rec, rn);
    if (have_cols)
        at_imp_cols_free(&cols);
    at_buf_deinit(&scratch);
    at_buf_deinit(&out);
    at_buf_deinit(&again);
    at_buf_deinit(&back);
    return 0;
}
