/* logf.c - structured log lines (logfmt) on stderr.
 *
 * Each line is built in a stack buffer and written with one write(), so
 * lines from different threads never interleave (a line is cut at
 * AT_LOG_LINE_MAX bytes, below PIPE_BUF, which keeps writes to a pipe
 * atomic too). */
#include "at_core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define AT_LOG_LINE_MAX 4096

static atomic_int at_log__min = AT_LOG_INFO;

static const char *const at_log__names[] = {"debug", "info", "warn", "error"};

/* Drops messages below lvl from now on. Thread: any. */
void at_logf_level(at_loglevel_t lvl)
{
    atomic_store(&at_log__min, (int)lvl);
}

/* Appends msg quoted for logfmt (\" \\ \n \r \t escaped, other control
 * bytes dropped) into line at *pos, never past cap - 2. */
static void at_log__quote(char *line, size_t *pos, size_t cap, const char *msg)
{
    size_t p = *pos;
    line[p++] = '"';
    for (const char *s = msg; *s && p + 4 < cap; s++) {
        char c = *s;
        char esc = c == '"'    ? '"'
                   : c == '\\' ? '\\'
                   : c == '\n' ? 'n'
                   : c == '\r' ? 'r'
                   : c == '\t' ? 't'
                               : 0;
        if (esc) {
            line[p++] = '\\';
            line[p++] = esc;
        } else if ((unsigned char)c >= 0x20) {
            line[p++] = c;
        }
    }
    line[p++] = '"';
    *pos = p;
}

/* Writes "ts=... level=... msg="..." <fmt text>\n" to stderr in one
 * write(); fmt may be NULL. Messages below the level set with
 * at_logf_level are dropped. Thread: any. */
void at_logf(at_loglevel_t lvl, const char *msg, const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&at_log__min))
        return;
    char line[AT_LOG_LINE_MAX];
    char ts[32];
    at_time_format_rfc3339(at_time_now_ms(), ts);
    int lv = lvl >= AT_LOG_DEBUG && lvl <= AT_LOG_ERROR ? (int)lvl : AT_LOG_ERROR;
    int n = snprintf(line, sizeof line, "ts=%s level=%s msg=", ts, at_log__names[lv]);
    size_t pos = (size_t)(n > 0 ? n : 0);
    at_log__quote(line, &pos, sizeof line, msg ? msg : "");
    if (fmt && *fmt && pos + 2 < sizeof line) {
        line[pos++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(line + pos, sizeof line - pos - 1, fmt, ap);
        va_end(ap);
        if (k > 0)
            pos += AT_MIN((size_t)k, sizeof line - pos - 2);
    }
    for (size_t i = 0; i < pos; i++) {
        if (line[i] == '\n')
            line[i] = ' '; /* one message, one line */
    }
    line[pos++] = '\n';
    ssize_t w;
    do {
        w = write(STDERR_FILENO, line, pos);
    } while (w < 0 && errno == EINTR);
}
