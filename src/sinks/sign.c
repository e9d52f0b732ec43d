/* sign.c - the signature of a webhook delivery: hex HMAC-SHA256 of
 * TIMESTAMP "." BODY under the sink's secret (docs/api.md "Verifying a
 * delivery"). */
#include "at_sinks.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>

/* The HMAC implementation, fetched once: a fetch looks it up by name in
 * the provider tables, which costs more than signing a small body. */
static EVP_MAC *at_sink__hmac;
static pthread_once_t at_sink__hmac_once = PTHREAD_ONCE_INIT;

static void at_sink__hmac_fetch(void)
{
    at_sink__hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

void at_sink_sign(const char *secret, size_t slen, int64_t ts, const char *body, size_t blen,
                  char hex[65])
{
    char pre[32]; /* holds any int64 and the dot */
    int n = snprintf(pre, sizeof pre, "%lld.", (long long)ts);
    unsigned char mac[EVP_MAX_MD_SIZE];
    AT_ASSERT(pthread_once(&at_sink__hmac_once, at_sink__hmac_fetch) == 0 && at_sink__hmac);
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(at_sink__hmac);
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    size_t mlen = 0;
    AT_ASSERT(c && EVP_MAC_init(c, (const unsigned char *)secret, slen, params) == 1);
    AT_ASSERT(EVP_MAC_update(c, (const unsigned char *)pre, (size_t)n) == 1);
    AT_ASSERT(EVP_MAC_update(c, (const unsigned char *)body, blen) == 1);
    AT_ASSERT(EVP_MAC_final(c, mac, &mlen, sizeof mac) == 1 && mlen == 32);
    EVP_MAC_CTX_free(c);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[64] = '\0';
}
