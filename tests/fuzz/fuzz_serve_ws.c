/* fuzz_serve_ws.c - what the WebSocket path parses from clients: the
 * handshake's header values (the Connection token list, the
 * Sec-WebSocket-Key), the Last-Event-ID position, and the frames after the
 * upgrade, fed to a wslay server context configured as the server
 * configures it (messages up to 1 MiB, read from a non-blocking source in
 * pieces of the input's choosing). Every text message is checked to lie
 * within the bytes sent.
 *
 * Input: the first line is a header value (checked as both), the rest is
 * the client's byte stream; its first byte chooses the read size.
 */
#include "at_core.h"
#include "http_int.h"
#include "push_int.h"

#include <stdint.h>
#include <string.h>
#include <wslay/wslay.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct feed {
    const uint8_t *p;
    size_t len, off, step;
    size_t msgs, total;
} feed_t;

static ssize_t fz_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    feed_t *f = ud;
    if (f->off >= f->len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = AT_MIN(AT_MIN(len, f->step), f->len - f->off);
    memcpy(buf, f->p + f->off, n);
    f->off += n;
    return (ssize_t)n;
}

static ssize_t fz_send(wslay_event_context_ptr ctx, const uint8_t *d, size_t len, int flags,
                       void *ud)
{
    (void)ctx;
    (void)d;
    (void)flags;
    (void)ud;
    return (ssize_t)len;
}

static void fz_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m,
                   void *ud)
{
    (void)ctx;
    feed_t *f = ud;
    f->msgs++;
    f->total += m->msg_length;
    AT_ASSERT(f->total <= f->len); /* a message is never longer than what came */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : size;
    const char *hv = (const char *)data;
    (void)at_http__has_token(hv, hl, "upgrade");
    bool key = at_http__ws_key_valid(hv, hl);
    AT_ASSERT(!key || hl == 24);
    int part = -1;
    int64_t off = -1;
    if (at_push_position_parse(hv, hl, 16, &part, &off))
        AT_ASSERT(part >= 0 && part < 16 && off >= 0);
    if (!nl)
        return 0;
    feed_t f = {.p = nl + 1, .len = size - hl - 1};
    f.step = f.len ? (size_t)(f.p[0] % 64) + 1 : 1;
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = fz_recv, .send_callback = fz_send, .on_msg_recv_callback = fz_msg};
    wslay_event_context_ptr ctx = NULL;
    AT_ASSERT(wslay_event_context_server_init(&ctx, &cbs, &f) == 0);
    wslay_event_config_set_max_recv_msg_length(ctx, 1 << 20);
    for (int i = 0; i < 10000 && f.off < f.len && wslay_event_want_read(ctx); i++) {
        if (wslay_event_recv(ctx) != 0)
            break;
        (void)wslay_event_send(ctx);
    }
    wslay_event_context_free(ctx);
    return 0;
}
