/*  hmac.c - SHA-256 and HMAC-SHA256 for the Manager's challenge-response
    (docs/MANAGER.md section 6), from libsodium.

    libsodium is already in every libmp process: libzmq's CURVE is built on
    it. Our own SHA-256 (written from FIPS 180-4 in an earlier session) is
    retired: a hand-written primitive is one more thing to get wrong, and
    libsodium's is audited and faster. This file stays as the seam so that
    the Manager's code names what it needs, not the library.
*/
#include <sodium.h>

#include "base/hmac.h"

void mp__sha256(const void *data, size_t len, uint8_t out[MP_SHA256_SIZE])
{
    crypto_hash_sha256(out, data, len);
}

void mp__hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                     uint8_t out[MP_SHA256_SIZE])
{
    /* any key length, as RFC 2104 (a longer key is hashed first) */
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

int mp__consttime_equal(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}
