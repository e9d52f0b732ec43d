/* push_token.c - short-lived signed stream tokens: the site's backend
 * asks for one (POST /v1/users/{id}/stream-token, read scope) and hands it
 * to the browser, which opens its stream with ?token= (EventSource cannot
 * send an Authorization header). A token names one user and an expiry and
 * is signed with HMAC-SHA256 under push.token_secret.
 *
 * Format: "EXP.USER.SIG": EXP decimal Unix seconds, USER the namespaced
 * user key in base64url, SIG base64url of HMAC-SHA256(secret, "EXP.USER"),
 * all without padding, so a token is safe in a query string as is.
 *
 * THREAD SAFETY: pure functions; any thread.
 */
#include "push_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static const char at_push__b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding; returns the length written (cap must hold
 * 4 * ceil(n / 3) bytes). */
static size_t at_push__b64_enc(const unsigned char *in, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[k++] = at_push__b64[v >> 18 & 63];
        out[k++] = at_push__b64[v >> 12 & 63];
        if (i + 1 < n)
            out[k++] = at_push__b64[v >> 6 & 63];
        if (i + 2 < n)
            out[k++] = at_push__b64[v & 63];
    }
    return k;
}

static int at_push__b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes base64url without padding; returns the length, or -1 when
 * malformed (a bad character, a dangling sixth of a byte, set trailing
 * bits) or longer than cap. */
static long at_push__b64_dec(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n % 4 == 1)
        return -1;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = at_push__b64_val(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (k == cap)
                return -1;
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1)))
        return -1; /* one spelling per token */
    return (long)k;
}

static void at_push__sign(const unsigned char *secret, size_t slen, const char *msg, size_t n,
                          char sig[44])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), secret, (int)slen, (const unsigned char *)msg, n, md, &mdlen);
    size_t k = at_push__b64_enc(md, mdlen, sig);
    sig[k] = '\0';
}

size_t at_push_token_make(const unsigned char *secret, size_t slen, const char *user, size_t ulen,
                          int64_t exp_s, char *out, size_t cap)
{
    if (ulen == 0 || ulen > AT_PUSH_USER_MAX || cap < AT_PUSH_TOKEN_MAX || exp_s < 0)
        return 0;
    size_t k = at_fmt_i64(out, exp_s);
    out[k++] = '.';
    k += at_push__b64_enc((const unsigned char *)user, ulen, out + k);
    char sig[44];
    at_push__sign(secret, slen, out, k, sig);
    out[k++] = '.';
    memcpy(out + k, sig, 43);
    k += 43;
    out[k] = '\0';
    return k;
}

int at_push_token_check(const unsigned char *secret, size_t slen, const char *t, size_t n,
                        int64_t now_s, char *user, size_t ucap, size_t *ulen, int64_t *exp_s)
{
    if (n < 4 + 43 || n >= AT_PUSH_TOKEN_MAX)
        return AT_PUSH_TOKEN_BAD;
    const char *d1 = memchr(t, '.', n);
    if (!d1 || d1 == t || d1 - t > 18)
        return AT_PUSH_TOKEN_BAD;
    int64_t exp = 0;
    for (const char *p = t; p < d1; p++) {
        if (*p < '0' || *p > '9')
            return AT_PUSH_TOKEN_BAD;
        exp = exp * 10 + (*p - '0');
    }
    if (t[n - 44] != '.')
        return AT_PUSH_TOKEN_BAD;
    const char *u = d1 + 1, *d2 = t + n - 44;
    if (d2 <= u)
        return AT_PUSH_TOKEN_BAD;
    char sig[44];
    at_push__sign(secret, slen, t, (size_t)(d2 - t), sig);
    if (CRYPTO_memcmp(sig, d2 + 1, 43) != 0)
        return AT_PUSH_TOKEN_BAD;
    unsigned char raw[AT_PUSH_USER_MAX];
    long ul = at_push__b64_dec(u, (size_t)(d2 - u), raw, sizeof raw);
    if (ul <= 0 || (size_t)ul >= ucap || memchr(raw, '\0', (size_t)ul))
        return AT_PUSH_TOKEN_BAD;
    memcpy(user, raw, (size_t)ul);
    user[ul] = '\0';
    *ulen = (size_t)ul;
    *exp_s = exp;
    return exp <= now_s ? AT_PUSH_TOKEN_EXPIRED : AT_PUSH_TOKEN_OK;
}
