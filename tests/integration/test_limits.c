/*  test_limits.c - stopping running work: task time limits
    (docs/PROTOCOL.md 7.1: a task still running past its limit is killed
    with its executor, which is replaced; its item fails with MP_ETIMELIMIT
    naming the limit, and every other item of the call completes) and
    cancelling (mp_async_cancel, a terminated cluster pool: queued items
    are dropped, running ones killed, each ends MP_ECANCELLED; the workers
    serve on).

    The tasks are test_tasks.c's: compiled in here (an embedded pool
    serves this program's tasks) and, as libtest_tasks.so, served by
    mp-worker for the cluster cases.
*/
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mp/pool.h"
#include "support.h"

#include "test_tasks.c"

/* mp-broker and one mp-worker of 2 executors, and a pool on them. */
static mp_pool_t *cluster(char *ep, size_t size)
{
    tu_start_broker("tcp://127.0.0.1:0", "500", ep, size);
    tu_start_worker(ep, "2", "500");
    return tu_cluster_pool(ep, 500, 2);
}

/* 0 .. n-1 with item bad replaced by -1 (spin_if_negative spins on it) */
static mp_items_t *range_with_spinner(int n, int bad)
{
    mp_items_t *l = mp_items_new();
    for (int i = 0; i < n; i++)
        assert_int_equal(mp_items_add_int(l, i == bad ? -1 : i), 0);
    return l;
}

/* A map of n items, one spinning at bad, under limit_ms: returns within
   budget_ms with one MP_ETIMELIMIT at bad and n - 1 squares. */
static void assert_one_timed_out(mp_pool_t *pool, int n, int bad, int limit_ms, int budget_ms)
{
    mp_items_t *in = range_with_spinner(n, bad);
    mp_call_options_t o = {.time_limit_ms = limit_ms};
    mp_async_t *r;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_map_async(pool, "spin_if_negative", in, &o, &r), 0);
    const mp_items_t *out = NULL;
    assert_int_equal(mp_async_get(r, budget_ms, &out), MP_ETIMELIMIT);
    uint64_t took = tu_now_ms() - t0;
    printf("# a map of %d, item %d endless, limit %d ms: %llu ms, 1 MP_ETIMELIMIT, %d results\n", n,
           bad, limit_ms, (unsigned long long)took, n - 1);
    assert_true(took >= (uint64_t)limit_ms);
    assert_true(took < (uint64_t)budget_ms);
    assert_int_equal(mp_items_len(out), n);
    assert_int_equal(mp_items_nerrors(out), 1);
    const mp_task_error_t *e = mp_items_error(out, (size_t)bad);
    assert_non_null(e);
    assert_int_equal(e->code, MP_ETIMELIMIT);
    char want[64];
    snprintf(want, sizeof want, "time limit of %d ms", limit_ms);
    assert_non_null(strstr(e->message, want));
    for (int i = 0; i < n; i++) {
        int64_t v;
        if (i == bad)
            continue;
        assert_int_equal(mp_items_int(out, (size_t)i, &v), 0);
        assert_int_equal(v, (int64_t)i * i);
    }
    mp_async_destroy(&r);
    mp_items_destroy(&in);
}

static void test_limits_map_embedded(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    assert_one_timed_out(pool, 1000, 500, 500, 5000);
    /* the killed executor was replaced: the pool has both and serves on */
    assert_int_equal(tu_wait_processes(pool, 2, 5000), 2);
    tu_assert_map_squares(pool, 1000);
    mp_pool_destroy(&pool);
}

static void test_limits_pool_default_and_per_call(void **state)
{
    (void)state;
    mp_pool_options_t po = {.time_limit_ms = 300};
    mp_pool_t *pool = tu_new_pool(2, &po);
    /* the pool's default applies to a blocking apply */
    mp_obj_t *args = mp_obj_new_array(), *v = NULL;
    mp_obj_array_add(args, mp_obj_new_int(-1));
    assert_int_equal(mp_pool_apply(pool, "spin_if_negative", args, &v), MP_ETIMELIMIT);
    mp_obj_destroy(&args);
    /* a call may lift it (< 0: none) or set its own */
    args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(600));
    mp_call_options_t none = {.time_limit_ms = -1};
    mp_async_t *r;
    assert_int_equal(mp_pool_apply_async(pool, "sleep_ms", args, &none, &r), 0);
    assert_int_equal(mp_async_get_obj(r, 5000, &v), 0);
    assert_int_equal(mp_obj_int(v), 600);
    mp_obj_destroy(&v);
    mp_async_destroy(&r);
    mp_call_options_t longer = {.time_limit_ms = 2000};
    assert_int_equal(mp_pool_apply_async(pool, "sleep_ms", args, &longer, &r), 0);
    assert_int_equal(mp_async_get_obj(r, 5000, &v), 0);
    mp_obj_destroy(&v);
    mp_async_destroy(&r);
    /* a task under the limit, many times: never killed */
    mp_items_t *in = tu_range(2000);
    mp_async_t *m;
    assert_int_equal(mp_pool_map_async(pool, "slow_square", in, NULL, &m), 0);
    const mp_items_t *out;
    assert_int_equal(mp_async_get(m, 10000, &out), 0);
    tu_assert_squares(out, 2000);
    mp_async_destroy(&m);
    mp_items_destroy(&in);
    mp_obj_destroy(&args);
    mp_pool_destroy(&pool);
}

static void test_limits_map_cluster(void **state)
{
    (void)state;
    char ep[256];
    mp_pool_t *pool = cluster(ep, sizeof ep);
    assert_one_timed_out(pool, 1000, 500, 500, 5000);
    /* twice in one call, on both executors at once */
    mp_items_t *in = range_with_spinner(100, 10);
    assert_int_equal(mp_items_add_int(in, -1), 0);
    mp_call_options_t o = {.time_limit_ms = 300, .chunksize = 10};
    mp_async_t *r;
    assert_int_equal(mp_pool_map_async(pool, "spin_if_negative", in, &o, &r), 0);
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r, 5000, &out), MP_ETIMELIMIT);
    assert_int_equal(mp_items_nerrors(out), 2);
    assert_non_null(mp_items_error(out, 10));
    assert_non_null(mp_items_error(out, 100));
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    tu_assert_map_squares(pool, 1000);
    mp_pool_destroy(&pool);
}

/* n items of sleep_ms(ms), one per chunk */
static mp_items_t *sleeps(int n, int ms)
{
    mp_items_t *l = mp_items_new();
    for (int i = 0; i < n; i++)
        assert_int_equal(mp_items_add_int(l, ms), 0);
    return l;
}

/* Cancels, 300 ms in, a map of 40 five-second sleeps on 2 executors:
   ready at once (the two running are killed, not waited for), every item
   MP_ECANCELLED; the pool then serves a map as before. */
static void assert_cancel_kills(mp_pool_t *pool)
{
    mp_items_t *in = sleeps(40, 5000);
    mp_call_options_t o = {.chunksize = 1};
    mp_async_t *r;
    assert_int_equal(mp_pool_map_async(pool, "sleep_ms", in, &o, &r), 0);
    usleep(300 * 1000);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_async_cancel(r), 0);
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r, 3000, &out), MP_ECANCELLED);
    printf("# cancel of a map of 40 five-second sleeps, 2 running: ready in %llu ms\n",
           (unsigned long long)(tu_now_ms() - t0));
    assert_true(tu_now_ms() - t0 < 3000);
    assert_int_equal(mp_items_nerrors(out), 40);
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(mp_items_error(out, i)->code, MP_ECANCELLED);
    assert_int_equal(mp_async_cancel(r), 0); /* ready: nothing more to do */
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    uint64_t t1 = tu_now_ms();
    tu_assert_map_squares(pool, 1000); /* both executors free again, at once */
    assert_true(tu_now_ms() - t1 < 3000);
}

static void test_cancel_embedded(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    assert_cancel_kills(pool);
    /* a cancelled apply; results already in stay */
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(10000));
    mp_async_t *r;
    assert_int_equal(mp_pool_apply_async(pool, "sleep_ms", args, NULL, &r), 0);
    usleep(100 * 1000);
    assert_int_equal(mp_async_cancel(r), 0);
    mp_obj_t *v = NULL;
    assert_int_equal(mp_async_get_obj(r, 3000, &v), MP_ECANCELLED);
    mp_async_destroy(&r);
    mp_obj_destroy(&args);
    mp_items_t *in = tu_range(100);
    assert_int_equal(mp_pool_map_async(pool, "square", in, NULL, &r), 0);
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r, 5000, &out), 0);
    assert_int_equal(mp_async_cancel(r), 0); /* after the fact: the results stand */
    tu_assert_squares(out, 100);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_cancel_cluster_and_terminate(void **state)
{
    (void)state;
    char ep[256];
    mp_pool_t *pool = cluster(ep, sizeof ep);
    assert_cancel_kills(pool);
    /* a terminated pool's running items are killed too: another client
       finds both executors free at once, not after the 10 s sleeps */
    mp_items_t *in = sleeps(10, 10000);
    mp_call_options_t o = {.chunksize = 1};
    mp_async_t *r;
    assert_int_equal(mp_pool_map_async(pool, "sleep_ms", in, &o, &r), 0);
    usleep(300 * 1000);
    assert_int_equal(mp_pool_terminate(pool), 0);
    mp_async_destroy(&r);
    mp_pool_destroy(&pool);
    mp_items_destroy(&in);
    uint64_t t0 = tu_now_ms();
    pool = tu_cluster_pool(ep, 500, 2); /* both executors free at once */
    tu_assert_map_squares(pool, 1000);
    assert_true(tu_now_ms() - t0 < 4000);
    mp_pool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_limits_map_embedded, tu_kill_teardown),
        cmocka_unit_test_teardown(test_limits_pool_default_and_per_call, tu_kill_teardown),
        cmocka_unit_test_teardown(test_limits_map_cluster, tu_kill_teardown),
        cmocka_unit_test_teardown(test_cancel_embedded, tu_kill_teardown),
        cmocka_unit_test_teardown(test_cancel_cluster_and_terminate, tu_kill_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
