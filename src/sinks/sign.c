/* sign.c - the signature of a webhook delivery: hex HMAC-SHA256 of
 * TIMESTAMP "." BODY under the sink's secret (docs/api.md "Verifying a
 * delivery"). */
#include "at_sinks.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>

void at_sink_sign(const char *secret, size_t slen, int64_t ts, const char *body, size_t blen,
                  char hex[65])
{
    char pre[32]; /* holds any int64 and the dot */
    int n = snprintf(pre, sizeof pre, "%lld.", (long long)ts);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                            OSSL_PARAM_construct_end()};
    size_t out = 0;
    AT_ASSERT(c && EVP_MAC_init(c, (const unsigned char *)secret, slen, params) == 1);
    AT_ASSERT(EVP_MAC_update(c, (const unsigned char *)pre, (size_t)n) == 1);
    AT_ASSERT(EVP_MAC_update(c, (const unsigned char *)body, blen) == 1);
    AT_ASSERT(EVP_MAC_final(c, mac, &out, sizeof mac) == 1);
    mlen = (unsigned int)out;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < mlen && i < 32; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[64] = '\0';
}
