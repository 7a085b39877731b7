/*  testutil.h - what every libmp unit test needs besides cmocka.

    Rules the helpers enforce: every process a test starts is reaped (no
    zombie, no stray child), and nothing is left in /dev/shm. Code running
    in a child process must not use cmocka asserts (they would unwind into
    the parent's copy of cmocka state): children report through exit codes.
*/
#ifndef MP_TESTUTIL_H_INCLUDED
#define MP_TESTUTIL_H_INCLUDED

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mp.h"

static inline uint64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Number of /dev/shm entries whose name starts with prefix. */
static inline int tu_shm_count(const char *prefix)
{
    DIR *d = opendir("/dev/shm");
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

/* Fails the test when this process still has a child (zombie or alive). */
static inline void tu_assert_no_children(void)
{
    pid_t r = waitpid(-1, NULL, WNOHANG);
    assert_int_equal(r, -1);
    assert_int_equal(errno, ECHILD);
}

/* Shared by every group: each test must leave no child and no shm file. */
static inline int tu_teardown(void **state)
{
    (void)state;
    tu_assert_no_children();
    /* this process's blocks only: ctest runs test programs in parallel
       (test_shm checks its own named "mptest" blocks itself) */
    char own[32];
    snprintf(own, sizeof own, "mp_%d_", (int)getpid());
    assert_int_equal(tu_shm_count(own), 0);
    return 0;
}

/* Starts fn(arg) with fork, joins it, returns its exit code. */
static inline int tu_run(mp_target_fn *fn, void *arg)
{
    mp_process_t *p = mp_process_new(fn, arg, NULL);
    assert_non_null(p);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_join(p, 30000), 0);
    int code = -1000;
    assert_true(mp_process_exitcode(p, &code));
    mp_process_destroy(&p);
    return code;
}

/* Starts n daemon fork children running fn(arg) (daemon: a failed test
   cannot leave one behind that the exit handler would wait for). */
static inline void tu_start_n(mp_process_t **ps, int n, mp_target_fn *fn, void *arg)
{
    mp_process_opts_t opts = {.daemon = true};
    for (int i = 0; i < n; i++) {
        ps[i] = mp_process_new(fn, arg, &opts);
        assert_non_null(ps[i]);
        assert_int_equal(mp_process_start(ps[i]), 0);
    }
}

/* Joins the n processes within one shared timeout and destroys them (a
   process still running is killed and reaped). codes[i] is the exit code,
   -1000 when it did not end in time. Returns how many ended in time. */
static inline int tu_join_n(mp_process_t **ps, int n, int timeout_ms, int *codes)
{
    uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
    int ended = 0;
    for (int i = 0; i < n; i++) {
        uint64_t now = tu_now_ms();
        codes[i] = -1000;
        if (mp_process_join(ps[i], now < deadline ? (int)(deadline - now) : 0) == 0 &&
            mp_process_exitcode(ps[i], &codes[i]))
            ended++;
        mp_process_destroy(&ps[i]);
    }
    return ended;
}

/* Asserts that elapsed ms is within [want - 20, want + slack]. */
#define TU_ASSERT_ELAPSED(start_ms, want, slack)                                                   \
    do {                                                                                           \
        uint64_t el_ = tu_now_ms() - (start_ms);                                                   \
        assert_in_range(el_, (want) > 20 ? (want)-20 : 0, (want) + (slack));                       \
    } while (0)

#endif
