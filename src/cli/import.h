/* import.h - the insides of `attune import` that are worth testing on their
 * own: the CSV record splitter (RFC 4180), the mapping of column names to
 * event fields, the conversion of one CSV row into an event object, epoch
 * timestamps, and the guesses of format and separator. Private to
 * src/cli/import.c, its unit tests and its fuzz target.
 *
 * THREAD SAFETY: nothing here is shared; every function works on what the
 * caller passes.
 */
#ifndef AT_IMPORT_H
#define AT_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "at_core.h"

#define AT_IMP_MAX_COLUMNS 256

/* ---- CSV records -----------------------------------------------------------
 * A record is one line, or several when a quoted field holds line breaks.
 * Quoting follows RFC 4180 for any separator: a field that starts with '"'
 * runs to the next lone '"', and "" inside it is one quote. A quote inside
 * an unquoted field is kept as it is (as most writers produce it); text
 * between a closing quote and the next separator is an error. */

typedef struct at_imp_field {
    const char *s; /* points into the caller's out buffer */
    size_t n;
} at_imp_field_t;

#define AT_IMP_CSV_MORE 0 /* at_imp_csv_split: a quoted field is still open */

/* Splits the record [s, s + n) on sep into f (at most maxf fields). The
 * fields' bytes are written to out, which is reset and grown once to n + 1
 * bytes (so it must have no cap below that), and f[i].s points into it.
 * Returns the number of fields (an empty record is one empty field),
 * AT_IMP_CSV_MORE when the record ends inside a quoted field (append "\n"
 * and the next line, then split again), AT_ETOOBIG past maxf fields, or
 * AT_EPARSE when text follows a closing quote; *why (may be NULL) then gets
 * a static reason. */
int at_imp_csv_split(const char *s, size_t n, char sep, at_buf_t *out, at_imp_field_t *f, int maxf,
                     const char **why);

/* ---- columns ------------------------------------------------------------- */

typedef enum {
    AT_IMP_COL_SKIP,      /* an empty name or "-" in --columns: ignored */
    AT_IMP_COL_FIELD,     /* a canonical string field: type, user_id, item_id, ... */
    AT_IMP_COL_TIMESTAMP, /* timestamp / ts / time: converted (at_imp_epoch_ms) */
    AT_IMP_COL_TOP,       /* a source of the config's mapping: kept at the top level */
    AT_IMP_COL_CONTEXT,   /* context.NAME */
    AT_IMP_COL_PROP,      /* properties.NAME, or any other name */
} at_imp_col_kind_t;

typedef struct at_imp_col {
    at_imp_col_kind_t kind;
    char *name; /* the output member: "user_id", or the property's name; owned */
    size_t len;
} at_imp_col_t;

typedef struct at_imp_cols {
    int n;
    bool has_type; /* some column gives the type */
    at_imp_col_t c[AT_IMP_MAX_COLUMNS];
} at_imp_cols_t;

/* The canonical field a column name stands for (type, event -> "type";
 * user_id, user, userId -> "user_id"; anonymous_id, anonymousId; item_id,
 * item; category; event_id, messageId; session_id, sessionId; timestamp,
 * ts, time -> "timestamp"), compared without regard to case; NULL when it
 * is none of them. */
const char *at_imp_col_canonical(const char *name, size_t n);

/* Sets cols from nf names (a header row or --columns). keep_from[i] ->
 * keep_to[i] (nkeep pairs, may be NULL) are the top-level sources of the
 * config's field mapping and their canonical fields: such a column stays at
 * the top level under its own name so that ingestion maps it (as an epoch
 * timestamp when it maps to timestamp). Names are trimmed of spaces.
 * Returns 0, or AT_EINVALID with a reason in err when two columns give the
 * same member or there are too many. Free with at_imp_cols_free() (also
 * after an error). Borrows names and keep_*. */
int at_imp_cols_set(at_imp_cols_t *cols, const at_imp_field_t *names, int nf,
                    const char *const *keep_from, const char *const *keep_to, size_t nkeep,
                    char *err, size_t errlen);
void at_imp_cols_free(at_imp_cols_t *cols);

/* ---- rows into events ------------------------------------------------------- */

typedef enum { AT_IMP_TIME_AUTO, AT_IMP_TIME_S, AT_IMP_TIME_MS } at_imp_unit_t;

/* Whether [s, s + n) is a JSON number exactly as RFC 8259 writes one. */
bool at_imp_is_number(const char *s, size_t n);

/* Reads an epoch timestamp: digits with an optional fraction, in seconds
 * or milliseconds (AUTO: an integer part below 10^11 is seconds). Returns
 * 1 with *ms set, or 0 when the text is not such a number (it is passed on
 * as a string: RFC 3339, or a reject by ingestion with its reason). */
int at_imp_epoch_ms(const char *s, size_t n, at_imp_unit_t unit, int64_t *ms);

typedef struct at_imp_rowopt {
    at_imp_unit_t unit;
    const char *type; /* for rows without a type */
} at_imp_rowopt_t;

/* Appends the event of one row as a JSON object (no newline) to out:
 * canonical fields and top-level sources in column order, then "context"
 * and "properties". An empty field is absent. Properties that are JSON
 * numbers are numbers, anything else a string. A row shorter than the
 * columns has the rest empty. Returns 0, or AT_EINVALID with a reason in
 * why when the row has more fields than there are columns (out unchanged),
 * or AT_ETOOBIG when out's cap is reached. */
int at_imp_row_json(const at_imp_cols_t *cols, const at_imp_field_t *f, int nf,
                    const at_imp_rowopt_t *o, at_buf_t *out, char *why, size_t whylen);

/* ---- guesses ----------------------------------------------------------------- */

enum { AT_IMP_GUESS = 0, AT_IMP_NDJSON = 1, AT_IMP_CSV = 2 };

/* The format of a file from its name (.ndjson .jsonl .json: NDJSON; .csv
 * .tsv: CSV), else from its first non-blank byte ('{' is NDJSON; first < 0:
 * none seen, NDJSON). */
int at_imp_guess_format(const char *path, int first);
/* The separator of a CSV file: tab for .tsv, or when the first line has
 * tabs and no commas; else a comma. */
char at_imp_guess_sep(const char *path, const char *line, size_t n);

#endif
