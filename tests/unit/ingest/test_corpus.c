/* test_corpus.c - the whole result of parsing a generated corpus
 * (corpus_gen.h: every body form, field, value and reject) against the
 * results recorded in data/corpus.golden: canonical events, keys,
 * partitions, ids, rejects with their code, field, message and raw bytes,
 * and body-level errors. The recorded results came from the tree parser
 * as it was before the single-pass path (scan.c) existed, so they pin the
 * behaviour that path must not change.
 *
 * The file holds one 32-bit hash of the result text per body, configs in
 * order. To see what a body gives, or to record the file again after a
 * deliberate change of behaviour:
 *   AT_CORPUS_SHOW=CONFIG:BODY unit_ingest_test_corpus
 *   AT_CORPUS_DUMP=FILE unit_ingest_test_corpus      (every body and result)
 *   AT_CORPUS_WRITE=tests/unit/ingest/data/corpus.golden unit_ingest_test_corpus
 */
#include "corpus_gen.h"
#include "ingest_test.h"

#define NBODIES 3000

static char *golden_path(void)
{
    const char *dir = getenv("AT_SOURCE_DIR");
    char *p = malloc(4096);
    assert_non_null(p);
    snprintf(p, 4096, "%s/tests/unit/ingest/data/corpus.golden", dir && *dir ? dir : ".");
    return p;
}

static void test_corpus(void **state)
{
    (void)state;
    const char *write = getenv("AT_CORPUS_WRITE"), *show = getenv("AT_CORPUS_SHOW");
    const char *dump_path = getenv("AT_CORPUS_DUMP");
    FILE *dump = dump_path ? fopen(dump_path, "w") : NULL;
    int show_cfg = -1, show_body = -1;
    if (show && sscanf(show, "%d:%d", &show_cfg, &show_body) != 2)
        fail_msg("AT_CORPUS_SHOW=CONFIG:BODY");
    char *path = golden_path();
    FILE *f = fopen(write ? write : path, write ? "w" : "r");
    if (!f)
        fail_msg("%s: cannot open", write ? write : path);
    cg_buf_t body = {0}, out = {0};
    int mismatches = 0;
    size_t nacc = 0, nrej = 0, nerr = 0;
    for (int k = 0; k < CG_NCONFIGS; k++) {
        at_config_t c;
        cg_config(k, &c);
        at_ingest_t *in = it_new(&c, NULL);
        at_config_free(&c);
        cg_rng_t r = {0x9e3779b97f4a7c15ULL ^ (uint64_t)(k + 1) * 0x100000001b3ULL};
        for (int i = 0; i < NBODIES; i++) {
            at_body_kind_t kind = cg_body(&r, &body);
            cg_run(in, &body, kind, &out);
            unsigned h = (unsigned)(at_hash64(out.p, out.n) & 0xffffffffu);
            for (const char *l = out.p; l; l = strchr(l + 1, '\n'))
                l[l == out.p ? 0 : 1] == 'E' ? nacc++ : l[l == out.p ? 0 : 1] == 'R' ? nrej++ : 0;
            nerr += strncmp(out.p, "rc 0", 4) != 0;
            if (dump)
                fprintf(dump, "config %d body %d kind %d\n%s\n---\n%s\n", k, i, (int)kind,
                        body.p ? body.p : "", out.p);
            if (k == show_cfg && i == show_body)
                print_message("config %d body %d (kind %d):\n%s\n---\n%s", k, i, (int)kind,
                              body.p ? body.p : "", out.p);
            if (write) {
                fprintf(f, "%08x\n", h);
                continue;
            }
            unsigned want;
            if (fscanf(f, "%x", &want) != 1)
                fail_msg("%s: too short", path);
            if (want != h && mismatches++ < 5)
                print_message("config %d body %d (kind %d) differs:\n%s\n---\n%s", k, i, (int)kind,
                              body.p ? body.p : "", out.p);
        }
        at_ingest_free(in);
    }
    fclose(f);
    if (dump)
        fclose(dump);
    print_message("%zu events accepted, %zu rejected, %zu bodies refused\n", nacc, nrej, nerr);
    free(body.p);
    free(out.p);
    free(path);
    assert_int_equal(mismatches, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
