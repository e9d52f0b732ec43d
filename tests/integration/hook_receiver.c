/* hook_receiver.c - a webhook receiver for test_sinks.sh: plain sockets,
 * HTTP/1.1 with keep-alive, one thread polling every connection.
 *
 *   hook_receiver PORT_FILE LOG_FILE SECRET [FAIL_FIRST] [STATUS]
 *
 * Binds 127.0.0.1 on a free port (written to PORT_FILE). For each POST it
 * checks Attune-Signature (v1=hex HMAC-SHA256(SECRET, TIMESTAMP "." BODY),
 * computed here with OpenSSL's HMAC()), answers STATUS (default 200) but
 * 500 to the first FAIL_FIRST attempts of each Attune-Id, and appends a
 * line per attempt to LOG_FILE:
 *
 *   ATTEMPT ID KEY SEQ SIG(ok|bad) STATUS
 *
 * A bad signature is answered 401. HOOK_PORT in the environment picks the
 * port. Runs until killed. */
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXC 256
#define BUFSZ (1 << 20)
#define NIDS (1 << 18)

typedef struct conn {
    int fd;
    char *buf;
    size_t len;
} conn_t;

static char ids[NIDS][64];
static int counts[NIDS];

static int *attempts_of(const char *id)
{
    unsigned h = 5381;
    for (const char *p = id; *p; p++)
        h = h * 33 + (unsigned char)*p;
    for (unsigned i = 0; i < NIDS; i++) {
        unsigned k = (h + i) % NIDS;
        if (!ids[k][0]) {
            (void)snprintf(ids[k], sizeof ids[k], "%s", id);
            return &counts[k];
        }
        if (!strcmp(ids[k], id))
            return &counts[k];
    }
    return &counts[0];
}

/* The value of header name in head (NUL-terminated), copied into out. */
static int header(const char *head, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *l = p + 2;
        if (!strncasecmp(l, name, n) && l[n] == ':') {
            l += n + 1;
            while (*l == ' ')
                l++;
            const char *e = strstr(l, "\r\n");
            size_t m = e ? (size_t)(e - l) : strlen(l);
            if (m >= cap)
                m = cap - 1;
            memcpy(out, l, m);
            out[m] = 0;
            return 0;
        }
    }
    out[0] = 0;
    return -1;
}

static const char *secret;
static int fail_first, status_always = 200;
static FILE *logf_;

static int handle(int fd, char *head, const char *body, size_t blen)
{
    char id[64], key[64], seq[32], ts[32], sig[160];
    header(head, "Attune-Id", id, sizeof id);
    header(head, "Idempotency-Key", key, sizeof key);
    header(head, "Attune-Seq", seq, sizeof seq);
    header(head, "Attune-Timestamp", ts, sizeof ts);
    header(head, "Attune-Signature", sig, sizeof sig);
    size_t tl = strlen(ts);
    char *msg = malloc(tl + 1 + blen);
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, body, blen);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg, tl + 1 + blen, mac, &ml);
    free(msg);
    char hex[2 * EVP_MAX_MD_SIZE + 4] = "v1=";
    for (unsigned i = 0; i < ml; i++)
        (void)snprintf(hex + 3 + 2 * i, 3, "%02x", mac[i]);
    int sig_ok = !strcmp(hex, sig) && id[0];
    int *n = attempts_of(id[0] ? id : "-");
    int st = !sig_ok ? 401 : (*n)++ < fail_first ? 500 : status_always;
    fprintf(logf_, "ATTEMPT %s %s %s %s %d\n", id[0] ? id : "-", key[0] ? key : "-",
            seq[0] ? seq : "-", sig_ok ? "ok" : "bad", st);
    fflush(logf_);
    char resp[128];
    int rl = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n", st);
    return write(fd, resp, (size_t)rl) == rl ? 0 : -1;
}

/* Handles the whole requests in c's buffer; -1 closes the connection. */
static int drain(conn_t *c)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return c->len >= BUFSZ ? -1 : 0;
        size_t hl = (size_t)(end - c->buf) + 4;
        char save = c->buf[hl - 2];
        c->buf[hl - 2] = 0;
        char cl[32];
        header(c->buf, "Content-Length", cl, sizeof cl);
        size_t blen = (size_t)strtoul(cl, NULL, 10);
        if (hl + blen > BUFSZ)
            return -1;
        if (c->len < hl + blen) {
            c->buf[hl - 2] = save;
            return 0;
        }
        if (handle(c->fd, c->buf, c->buf + hl, blen) < 0)
            return -1;
        memmove(c->buf, c->buf + hl + blen, c->len - hl - blen);
        c->len -= hl + blen;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: hook_receiver PORT_FILE LOG_FILE SECRET [FAIL_FIRST] [STATUS]\n");
        return 2;
    }
    secret = argv[3];
    fail_first = argc > 4 ? atoi(argv[4]) : 0;
    status_always = argc > 5 ? atoi(argv[5]) : 200;
    logf_ = fopen(argv[2], "a");
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    const char *fixed = getenv("HOOK_PORT"); /* to come back on the same port */
    if (fixed)
        sa.sin_port = htons((uint16_t)atoi(fixed));
    socklen_t sl = sizeof sa;
    if (!logf_ || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 128) ||
        getsockname(ls, (struct sockaddr *)&sa, &sl)) {
        perror("hook_receiver");
        return 1;
    }
    FILE *pf = fopen(argv[1], "w");
    fprintf(pf, "%d\n", ntohs(sa.sin_port));
    fclose(pf);
    conn_t cs[MAXC];
    int nc = 0;
    struct pollfd pfd[MAXC + 1];
    for (;;) {
        pfd[0] = (struct pollfd){.fd = ls, .events = POLLIN};
        for (int i = 0; i < nc; i++)
            pfd[i + 1] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
        if (poll(pfd, (nfds_t)nc + 1, -1) < 0 && errno != EINTR)
            return 1;
        for (int i = nc - 1; i >= 0; i--) {
            if (!pfd[i + 1].revents)
                continue;
            ssize_t r = read(cs[i].fd, cs[i].buf + cs[i].len, BUFSZ - cs[i].len);
            if (r > 0)
                cs[i].len += (size_t)r;
            if (r <= 0 || drain(&cs[i]) < 0) {
                close(cs[i].fd);
                free(cs[i].buf);
                cs[i] = cs[--nc];
            }
        }
        if ((pfd[0].revents & POLLIN) && nc < MAXC) {
            int fd = accept(ls, NULL, NULL);
            if (fd >= 0)
                cs[nc++] = (conn_t){fd, malloc(BUFSZ), 0};
        }
    }
}
