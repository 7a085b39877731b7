/*  hmac.h - SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), for the
    Manager's challenge-response authentication: libsodium's (hmac.c).
    Not installed. */
#ifndef MP_HMAC_H_INCLUDED
#define MP_HMAC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define MP_SHA256_SIZE 32

void mp__sha256(const void *data, size_t len, uint8_t out[MP_SHA256_SIZE]);
void mp__hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                     uint8_t out[MP_SHA256_SIZE]);
/* Compares n bytes in time independent of where they differ. */
int mp__consttime_equal(const void *a, const void *b, size_t n);

#endif
