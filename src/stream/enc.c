/* enc.c - the compact encoding of state values (at_stream.h). */
#include "at_stream.h"

#include <string.h>

void at_enc_str(at_buf_t *b, const char *s, size_t n)
{
    at_enc_varint(b, n);
    if (n) {
        if (b->cap - b->len <= n)
            AT_ASSERT(at_buf_reserve(b, n) == 0);
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
    }
}

void at_enc_f32(at_buf_t *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t t[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    AT_ASSERT(at_buf_append(b, t, 4) == 0);
}

void at_enc_f64(at_buf_t *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(u >> (8 * i));
    AT_ASSERT(at_buf_append(b, t, 8) == 0);
}

uint64_t at_dec_varint_slow(at_dec_t *d)
{
    const uint8_t *p = d->p;
    if (d->end - p >= 10) { /* no bounds check per byte */
        uint64_t v = 0;
        for (int shift = 0; shift < 70; shift += 7) {
            uint8_t c = *p++;
            v |= (uint64_t)(c & 0x7f) << shift;
            if (!(c & 0x80)) {
                d->p = p;
                return v;
            }
        }
        d->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= d->end) {
            d->bad = true;
            return 0;
        }
        uint8_t c = *p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            d->p = p;
            return v;
        }
    }
    d->bad = true;
    return 0;
}

at_pstr_t at_dec_str(at_dec_t *d)
{
    at_pstr_t s = {NULL, 0};
    uint64_t n = at_dec_varint(d);
    if (d->bad || n > (uint64_t)(d->end - d->p)) {
        d->bad = true;
        return s;
    }
    s.s = (const char *)d->p;
    s.n = (uint32_t)n;
    d->p += n;
    return s;
}

float at_dec_f32(at_dec_t *d)
{
    if (d->end - d->p < 4) {
        d->bad = true;
        return 0;
    }
    uint32_t u = (uint32_t)d->p[0] | (uint32_t)d->p[1] << 8 | (uint32_t)d->p[2] << 16 |
                 (uint32_t)d->p[3] << 24;
    d->p += 4;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

double at_dec_f64(at_dec_t *d)
{
    if (d->end - d->p < 8) {
        d->bad = true;
        return 0;
    }
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)d->p[i] << (8 * i);
    d->p += 8;
    double x;
    memcpy(&x, &u, 8);
    return x;
}
