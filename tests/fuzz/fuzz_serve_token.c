/* fuzz_serve_token.c - the stream token parser (push_token.c): any bytes
 * are checked against a fixed secret without crashing, a token is never
 * accepted unless it is the one minted for its user and expiry, and a
 * token minted for a user key taken from the input checks out to the same
 * key.
 */
#include "at_core.h"
#include "push_int.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char secret[] = "fuzz secret";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char user[AT_PUSH_USER_MAX + 1], again[AT_PUSH_TOKEN_MAX];
    size_t ulen = 0;
    int64_t exp = 0;
    int rc = at_push_token_check(secret, sizeof secret - 1, (const char *)data, size, 1000, user,
                                 sizeof user, &ulen, &exp);
    AT_ASSERT(rc == AT_PUSH_TOKEN_OK || rc == AT_PUSH_TOKEN_BAD || rc == AT_PUSH_TOKEN_EXPIRED);
    if (rc != AT_PUSH_TOKEN_BAD) {
        /* accepted: it must be exactly what we mint for (user, exp) */
        size_t n =
            at_push_token_make(secret, sizeof secret - 1, user, ulen, exp, again, sizeof again);
        AT_ASSERT(n == size && !memcmp(again, data, size));
    }
    /* round trip with the input as a user key */
    size_t kl = AT_MIN(size, (size_t)AT_PUSH_USER_MAX);
    if (kl == 0 || memchr(data, '\0', kl))
        return 0;
    char tok[AT_PUSH_TOKEN_MAX];
    size_t tl = at_push_token_make(secret, sizeof secret - 1, (const char *)data, kl, 5000, tok,
                                   sizeof tok);
    AT_ASSERT(tl > 0);
    rc = at_push_token_check(secret, sizeof secret - 1, tok, tl, 1000, user, sizeof user, &ulen,
                             &exp);
    AT_ASSERT(rc == AT_PUSH_TOKEN_OK && ulen == kl && !memcmp(user, data, kl) && exp == 5000);
    rc = at_push_token_check(secret, sizeof secret - 1, tok, tl, 5000, user, sizeof user, &ulen,
                             &exp);
    AT_ASSERT(rc == AT_PUSH_TOKEN_EXPIRED);
    return 0;
}
