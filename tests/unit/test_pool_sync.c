/*  test_pool_sync.c - an embedded pool's blocking applies (client/sync.c):
    the caller's own session, from many threads at once, with the errors
    apply_async reports, ended by terminate or a lost worker; on the socket
    pair to the broker thread (docs/PROTOCOL.md 9.2): they take that path
    (the broker's log names the pair), carry arguments and results larger
    than a socket's buffer both ways, and keep exact answers while the I/O
    thread's calls (maps, apply_async) share the broker.

    After every test: no child process, no ipc file.
*/
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "../integration/test_tasks.c"

/* ---- the caller's own session -------------------------------------------------- */

static mp_obj_t *args1(int64_t a)
{
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(a));
    return args;
}

typedef struct {
    mp_pool_t *pool;
    int64_t base;
    int good;
} applier_t;

static void *applier(void *arg)
{
    applier_t *a = arg;
    for (int64_t i = 0; i < 150; i++) {
        int64_t x = a->base + i;
        mp_obj_t *args = args1(x), *v = NULL;
        if (mp_pool_apply(a->pool, "square", args, &v) == 0 && mp_obj_int(v) == x * x)
            a->good++;
        mp_obj_destroy(&v);
        mp_obj_destroy(&args);
    }
    return NULL;
}

/* Four threads call mp_pool_apply at once: one holds the blocking session,
   the others go through the I/O thread; each gets its own answers. */
static void test_pool_apply_from_many_threads_each_gets_its_own_answer(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    pthread_t th[4];
    applier_t a[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (applier_t){pool, (int64_t)k * 100000, 0};
        assert_int_equal(pthread_create(&th[k], NULL, applier, &a[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(a[k].good, 150);
    }
    mp_pool_destroy(&pool);
}

/* The blocking path reports what the I/O thread's path reports: a task's
   failure, bad arguments, an unknown task, a closed pool; and its session
   survives being idle for longer than the broker's expiry. */
static void test_pool_blocking_apply_errors_match_apply_async(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(1, NULL);
    mp_obj_t *args = args1(7), *v = NULL;
    assert_int_equal(mp_pool_apply(pool, "even_only", args, &v), MP_ETASK);
    assert_null(v);
    mp_obj_destroy(&args);
    args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_str("seven"));
    assert_int_equal(mp_pool_apply(pool, "square", args, &v), MP_EBADARGS);
    mp_obj_destroy(&args);
    assert_int_equal(mp_pool_apply(pool, "no_such_task", NULL, &v), MP_EUNKNOWNTASK);
    /* idle past 3 heartbeats (500 ms): still a live session */
    usleep(2000 * 1000);
    args = args1(8);
    assert_int_equal(mp_pool_apply(pool, "even_only", args, &v), 0);
    assert_int_equal(mp_obj_int(v), 8);
    mp_obj_destroy(&v);
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_apply(pool, "even_only", args, &v), MP_ESTATE);
    mp_obj_destroy(&args);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

static void *terminate_later(void *arg)
{
    usleep(300 * 1000);
    mp_pool_terminate(arg);
    return NULL;
}

/* A blocking apply of sleep_ms(5000) that later(arg), on a thread of its
   own, ends: it returns want within 3 s. */
static void assert_blocking_apply_ended(mp_pool_t *pool, void *(*later)(void *), void *arg,
                                        int want)
{
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, later, arg), 0);
    mp_obj_t *args = args1(5000), *v = NULL;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_apply(pool, "sleep_ms", args, &v), want);
    assert_true(tu_now_ms() - t0 < 3000);
    pthread_join(th, NULL);
    mp_obj_destroy(&args);
}

/* terminate ends a blocking apply waiting on its own session. */
static void test_pool_terminate_ends_a_blocking_apply(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(1, NULL);
    assert_blocking_apply_ended(pool, terminate_later, pool, MP_ECANCELLED);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

static void *kill_worker_later(void *arg)
{
    (void)arg;
    usleep(300 * 1000);
    mp_process_t *kids[4];
    if (mp_active_children(kids, 4) == 1)
        kill(mp_process_pid(kids[0]), SIGKILL);
    return NULL;
}

/* A blocking apply whose pool loses its worker process fails, never hangs. */
static void test_pool_blocking_apply_whose_worker_process_dies_fails(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(1, NULL);
    assert_blocking_apply_ended(pool, kill_worker_later, NULL, MP_EWORKERLOST);
    mp_pool_destroy(&pool);
}

/* ---- on the socket pair ---------------------------------------------------------- */

static uint8_t pattern(size_t j, int64_t seed)
{
    return (uint8_t)(j * 7u + (j >> 11) + (uint64_t)seed * 131u);
}

/* bin_of(n, seed): n bytes, each a function of its place and seed */
MP_TASK(bin_of)
{
    size_t n = (size_t)mp_task_int(task, 0);
    int64_t seed = mp_task_int(task, 1);
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return mp_task_fail(task, MP_ENOMEM, "out of memory");
    for (size_t j = 0; j < n; j++)
        p[j] = pattern(j, seed);
    int rc = mp_task_return_bin(task, p, n);
    free(p);
    return rc;
}

/* bin_check(bin, seed): its length when every byte is bin_of's, else -1 */
MP_TASK(bin_check)
{
    size_t n = 0;
    const uint8_t *p = mp_task_bin(task, 0, &n);
    int64_t seed = mp_task_int(task, 1);
    if (!p)
        return mp_task_fail(task, 1, "not a bin");
    for (size_t j = 0; j < n; j++)
        if (p[j] != pattern(j, seed))
            return mp_task_return_int(task, -1);
    return mp_task_return_int(task, (int64_t)n);
}

static mp_obj_t *args2(int64_t a, int64_t b)
{
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(a));
    mp_obj_array_add(args, mp_obj_new_int(b));
    return args;
}

/* The broker thread logs each client's HELLO with the peer's name: the
   blocking applies' session is its socket pair ("sync pair"), not a
   ZeroMQ peer, and only the I/O thread's session is one. */
static void test_blocking_applies_ride_the_broker_socket_pair(void **state)
{
    (void)state;
    char path[] = "/tmp/mp-test-sync-XXXXXX";
    int log_fd = mkstemp(path);
    assert_true(log_fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    dup2(log_fd, STDERR_FILENO);
    int level = mp_log_get_level();
    mp_log_set_level(MP_LOG_INFO);

    mp_pool_t *pool = tu_new_pool(1, NULL);
    int good = 0;
    for (int i = 0; i < 200; i++) {
        mp_obj_t *args = args1(i), *v = NULL;
        good += mp_pool_apply(pool, "square", args, &v) == 0 && mp_obj_int(v) == i * i;
        mp_obj_destroy(&v);
        mp_obj_destroy(&args);
    }
    mp_pool_destroy(&pool);

    mp_log_set_level(level);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_int_equal(good, 200);
    char log[16384];
    ssize_t n = pread(log_fd, log, sizeof log - 1, 0);
    close(log_fd);
    assert_true(n > 0);
    log[n] = '\0';
    char want[128];
    snprintf(want, sizeof want, "client sync pair hello: pool pid %d (blocking applies)",
             (int)getpid());
    if (!strstr(log, want))
        fail_msg("the broker's log does not say \"%s\":\n%s", want, log);
    snprintf(want, sizeof want, "pool pid %d (blocking applies)", (int)getpid());
    assert_ptr_equal(strstr(log, want), strstr(strstr(log, "client sync pair hello"), want));
    assert_null(strstr(strstr(log, want) + 1, want)); /* one session, one HELLO */
}

/* 8 MiB of arguments (the socket takes a few hundred KiB at a time: the
   send waits for room) and 6 MiB of result, exact, several times. */
static void test_blocking_apply_carries_megabytes_both_ways(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(1, NULL);
    size_t n = (size_t)8 << 20;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    for (int round = 0; round < 3; round++) {
        for (size_t j = 0; j < n; j++)
            big[j] = pattern(j, round);
        mp_obj_t *args = mp_obj_new_array(), *v = NULL;
        mp_obj_array_add(args, mp_obj_new_bin(big, n));
        mp_obj_array_add(args, mp_obj_new_int(round));
        assert_int_equal(mp_pool_apply(pool, "bin_check", args, &v), 0);
        assert_int_equal(mp_obj_int(v), (int64_t)n);
        mp_obj_destroy(&v);
        mp_obj_destroy(&args);

        size_t m = ((size_t)6 << 20) + (size_t)round;
        args = args2((int64_t)m, round + 10);
        assert_int_equal(mp_pool_apply(pool, "bin_of", args, &v), 0);
        size_t got = 0;
        const uint8_t *p = mp_obj_bin(v, &got);
        assert_non_null(p);
        assert_int_equal(got, m);
        size_t bad = 0;
        for (size_t j = 0; j < m; j++)
            bad += p[j] != pattern(j, round + 10);
        assert_int_equal(bad, 0);
        mp_obj_destroy(&v);
        mp_obj_destroy(&args);
    }
    free(big);
    mp_pool_destroy(&pool);
}

/* Blocking applies on the pair while the I/O thread's session maps and
   applies asynchronously on the same broker: every answer exact. */
static void test_blocking_applies_beside_maps_and_async_calls(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    enum { ROUNDS = 40, ITEMS = 500 };
    int good = 0, maps_good = 0, async_good = 0;
    for (int r = 0; r < ROUNDS; r++) {
        mp_items_t *in = mp_items_new();
        for (int i = 0; i < ITEMS; i++)
            mp_items_add_int(in, r * ITEMS + i);
        mp_async_t *map = NULL, *one = NULL;
        mp_call_options_t co = {.chunksize = 7};
        assert_int_equal(mp_pool_map_async(pool, "square", in, &co, &map), 0);
        mp_obj_t *aargs = args1(r);
        assert_int_equal(mp_pool_apply_async(pool, "square", aargs, NULL, &one), 0);
        for (int k = 0; k < 5; k++) { /* while those run */
            int64_t x = (int64_t)r * 1000 + k;
            mp_obj_t *args = args1(x), *v = NULL;
            good += mp_pool_apply(pool, "square", args, &v) == 0 && mp_obj_int(v) == x * x;
            mp_obj_destroy(&v);
            mp_obj_destroy(&args);
        }
        const mp_items_t *out = NULL;
        if (mp_async_get(map, 60000, &out) == 0 && mp_items_len(out) == ITEMS) {
            int ok = 1;
            for (int i = 0; i < ITEMS; i++) {
                int64_t x = r * ITEMS + i, y = -1;
                ok &= mp_items_int(out, (size_t)i, &y) == 0 && y == x * x;
            }
            maps_good += ok;
        }
        mp_obj_t *v = NULL;
        async_good += mp_async_get_obj(one, 60000, &v) == 0 && mp_obj_int(v) == (int64_t)r * r;
        mp_obj_destroy(&v);
        mp_async_destroy(&map);
        mp_async_destroy(&one);
        mp_obj_destroy(&aargs);
        mp_items_destroy(&in);
    }
    assert_int_equal(good, ROUNDS * 5);
    assert_int_equal(maps_good, ROUNDS);
    assert_int_equal(async_good, ROUNDS);
    mp_pool_destroy(&pool);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pool_apply_from_many_threads_each_gets_its_own_answer,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_blocking_apply_errors_match_apply_async,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_terminate_ends_a_blocking_apply, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_blocking_apply_whose_worker_process_dies_fails,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_blocking_applies_ride_the_broker_socket_pair,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_blocking_apply_carries_megabytes_both_ways,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_blocking_applies_beside_maps_and_async_calls,
                                  tu_pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
