/*  support_keys.c - CURVE key pairs for the tests (keys.h). */
#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "keys.h"

static char dir[256], allow[300];

void tk_setup(const char *const *names, size_t n)
{
    snprintf(dir, sizeof dir, "%s/mp-keys-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(allow, sizeof allow, "%s/allow", dir);
    assert_int_equal(mkdir(allow, 0700), 0);
    const char *roles[] = {"workers", "clients", "managers", "operators"};
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++) {
        char sub[400];
        snprintf(sub, sizeof sub, "%s/%s", allow, roles[i]);
        assert_int_equal(mkdir(sub, 0700), 0);
    }
    for (size_t i = 0; i < n; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s.key", dir, names[i]);
        zcert_t *c = zcert_new();
        assert_non_null(c);
        assert_int_equal(zcert_save(c, path), 0);
        zcert_destroy(&c);
    }
}

int tk_teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

const char *tk_key(const char *name, bool secret)
{
    static char path[4][400];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s.key%s", dir, name, secret ? "_secret" : "");
    return path[k];
}

const char *tk_allow_dir(void)
{
    return allow;
}

void tk_allow(const char *name, const char *role)
{
    char to[400], cmd[1200];
    snprintf(to, sizeof to, "%s/%s/%s.key", allow, role, name);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", tk_key(name, false), to);
    assert_int_equal(system(cmd), 0);
}
