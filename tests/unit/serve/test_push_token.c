/* test_push_token.c - stream tokens (push_token.c): a minted token checks
 * out to its user and expiry, expires, and is refused when any part of it
 * is changed, signed with another secret, or malformed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_core.h"
#include "push_int.h"

#include <string.h>

static const unsigned char secret[] = "s3cret";
#define SL (sizeof secret - 1)

static int check(const char *tok, int64_t now, char *user, size_t *ulen, int64_t *exp)
{
    return at_push_token_check(secret, SL, tok, strlen(tok), now, user, AT_PUSH_USER_MAX + 1, ulen,
                               exp);
}

static void test_round_trip(void **state)
{
    (void)state;
    char tok[AT_PUSH_TOKEN_MAX], user[AT_PUSH_USER_MAX + 1];
    size_t n = at_push_token_make(secret, SL, "u:42", 4, 1796230000, tok, sizeof tok);
    assert_true(n > 0);
    assert_int_equal(strlen(tok), n);
    assert_non_null(strchr(tok, '.'));
    assert_null(strpbrk(tok, "+/=&?%")); /* safe in a query string as is */
    size_t ul = 0;
    int64_t exp = 0;
    assert_int_equal(check(tok, 1796229999, user, &ul, &exp), AT_PUSH_TOKEN_OK);
    assert_string_equal(user, "u:42");
    assert_int_equal(ul, 4);
    assert_int_equal(exp, 1796230000);
    assert_int_equal(check(tok, 1796230000, user, &ul, &exp), AT_PUSH_TOKEN_EXPIRED);
    /* user keys with dots, colons and any bytes */
    const char *odd = "a:anon.with.dots:and\xc3\xa9";
    n = at_push_token_make(secret, SL, odd, strlen(odd), 50, tok, sizeof tok);
    assert_int_equal(check(tok, 1, user, &ul, &exp), AT_PUSH_TOKEN_OK);
    assert_string_equal(user, odd);
}

static void test_tampered(void **state)
{
    (void)state;
    char tok[AT_PUSH_TOKEN_MAX], user[AT_PUSH_USER_MAX + 1], t2[AT_PUSH_TOKEN_MAX];
    size_t n = at_push_token_make(secret, SL, "u:42", 4, 1796230000, tok, sizeof tok);
    size_t ul;
    int64_t exp;
    for (size_t i = 0; i < n; i++) {
        memcpy(t2, tok, n + 1);
        t2[i] = t2[i] == 'A' ? 'B' : 'A';
        assert_int_equal(check(t2, 0, user, &ul, &exp), AT_PUSH_TOKEN_BAD);
    }
    /* another secret */
    n = at_push_token_make((const unsigned char *)"other", 5, "u:42", 4, 1796230000, t2, sizeof t2);
    assert_int_equal(check(t2, 0, user, &ul, &exp), AT_PUSH_TOKEN_BAD);
    /* a later expiry with the old signature */
    memcpy(t2, tok, strlen(tok) + 1);
    t2[0] = '9';
    assert_int_equal(check(t2, 0, user, &ul, &exp), AT_PUSH_TOKEN_BAD);
    const char *bad[] = {"",
                         ".",
                         "..",
                         "1.dTo0Mg.",
                         "garbage",
                         "x.dTo0Mg.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                         "1796230000.dTo0Mg"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(check(bad[i], 0, user, &ul, &exp), AT_PUSH_TOKEN_BAD);
    assert_int_equal(at_push_token_make(secret, SL, "", 0, 1, tok, sizeof tok), 0);
}

static void test_position(void **state)
{
    (void)state;
    int p;
    int64_t o;
    assert_true(at_push_position_parse("5:0", 3, 16, &p, &o));
    assert_int_equal(p, 5);
    assert_int_equal(o, 0);
    assert_true(at_push_position_parse("15:123456789", 12, 16, &p, &o));
    assert_int_equal(o, 123456789);
    const char *bad[] = {"16:1", "5:", ":5", "5", "a:1", "5:1x", "5:-1", "1:1234567890123456789"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(at_push_position_parse(bad[i], strlen(bad[i]), 16, &p, &o));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
