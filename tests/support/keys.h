/*  keys.h - CURVE key pairs for the tests (support_keys.c): a temporary
    directory with NAME.key / NAME.key_secret pairs (zcert format, as
    mp-client keygen writes them) and an allow-list root allow/ with one
    subdirectory per role (workers/, clients/, managers/, operators/). Programs that
    use it compile support_keys.c and link czmq. */
#ifndef MP_TEST_KEYS_H_INCLUDED
#define MP_TEST_KEYS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/* Makes the directory, allow/ and its role subdirectories, and a key pair
   per name. */
void tk_setup(const char *const *names, size_t n);
/* Removes the directory and everything in it. 0 or -1. */
int tk_teardown(void);
/* The path of name's public (NAME.key) or secret (NAME.key_secret) file;
   four calls may hold their results at once. */
const char *tk_key(const char *name, bool secret);
/* The allow-list root. */
const char *tk_allow_dir(void);
/* Copies name's public key into allow/role/ (takes effect without a
   restart: zcertstore rereads the directory). */
void tk_allow(const char *name, const char *role);

#endif
