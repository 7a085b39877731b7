/*  test_isolation.c - one bad task holds only itself.

    - A task that SIGKILLs its whole worker process (supervisor, zygote,
      executor) ends as MP_EWORKERLOST after exactly max-attempts
      executions, however each loss was noticed (silence, or a send that
      failed), and the rest of the map completes.
    - No hoarding: a worker whose every executor is stuck hands the
      dispatches queued behind them back, and two idle workers run them.
*/
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mp/pool.h"
#include "support.h"

#define HB "300"

static void test_isolation_task_killing_its_worker_is_lost_after_3_executions(void **state)
{
    (void)state;
    char ep[256], hits[128];
    snprintf(hits, sizeof hits, "/tmp/mp-hits-%d", (int)getpid());
    unlink(hits);
    setenv("MP_TEST_HITS", hits, 1);
    tu_start_broker("tcp://127.0.0.1:0", HB, ep, sizeof ep);
    for (int i = 0; i < 4; i++) /* three to lose, one to finish */
        tu_start_worker(ep, "1", HB);
    mp_pool_options_t o = {.broker = ep, .heartbeat_ms = 300};
    mp_pool_t *pool;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, 4, 10000), 4);
    enum { N = 20, BAD = N - 1 }; /* last: nothing innocent queued behind it */
    mp_items_t *in = tu_pairs_with(N, BAD);
    mp_call_options_t co = {.chunksize = 1};
    mp_async_t *r;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_starmap_async(pool, "kill_my_worker", in, &co, &r), 0);
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r, 30000, &out), MP_EWORKERLOST);
    uint64_t took = tu_now_ms() - t0;
    assert_int_equal(mp_items_nerrors(out), 1);
    assert_int_equal(mp_items_error(out, BAD)->code, MP_EWORKERLOST);
    tu_assert_indexes(out, N, BAD);
    struct stat st;
    assert_int_equal(stat(hits, &st), 0);
    printf("# a task killing its worker: %lld executions, MP_EWORKERLOST after %llu ms\n",
           (long long)st.st_size, (unsigned long long)took);
    assert_int_equal(st.st_size, 3); /* mp-broker's --max-attempts */
    unlink(hits);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    /* the fourth serves on (the pool hears of the third loss with the
       broker's next heartbeat, maybe after the result) */
    assert_true(TU_WAIT_UNTIL(mp_pool_processes(pool) == 1, 5000));
    tu_assert_map_squares(pool, 100);
    mp_pool_destroy(&pool);
}

static void test_isolation_stuck_worker_hands_back_what_it_holds(void **state)
{
    (void)state;
    char ep[256];
    tu_start_broker("tcp://127.0.0.1:0", HB, ep, sizeof ep);
    tu_start_worker(ep, "2", HB);
    mp_pool_options_t o = {.broker = ep, .heartbeat_ms = 300};
    mp_pool_t *pool;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, 2, 10000), 2);
    /* both executors of the only worker: stuck for good (no time limit) */
    mp_async_t *stuck[2];
    for (int i = 0; i < 2; i++) {
        mp_obj_t *args = mp_obj_new_array();
        mp_obj_array_add(args, mp_obj_new_int(-1));
        assert_int_equal(mp_pool_apply_async(pool, "spin_if_negative", args, NULL, &stuck[i]), 0);
        mp_obj_destroy(&args);
        usleep(100000); /* sent alone, not batched with the other */
    }
    usleep(300000);
    tu_start_worker(ep, "2", HB);
    tu_start_worker(ep, "2", HB);
    assert_int_equal(tu_wait_processes(pool, 6, 10000), 6);
    /* 100 chunks: the stuck worker's credit takes some, and hands them back */
    mp_items_t *in = tu_range(1000);
    mp_call_options_t co = {.chunksize = 10};
    mp_async_t *r;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_map_async(pool, "square", in, &co, &r), 0);
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r, 10000, &out), 0);
    tu_assert_squares(out, 1000);
    mp_obj_t *st = NULL;
    assert_int_equal(mp_pool_status(pool, 5000, &st), 0);
    int64_t returned = mp_obj_int(mp_obj_map_get(st, "returned"));
    mp_obj_destroy(&st);
    printf("# a worker with every executor stuck, 2 idle: a 100-chunk map in %llu ms, "
           "%lld dispatches handed back\n",
           (unsigned long long)(tu_now_ms() - t0), (long long)returned);
    assert_true(returned >= 1); /* the broker's count of W-RETURN */
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    for (int i = 0; i < 2; i++) { /* the stuck ones end when asked to */
        assert_false(mp_async_ready(stuck[i]));
        assert_int_equal(mp_async_cancel(stuck[i]), 0);
        assert_int_equal(mp_async_wait(stuck[i], 5000), 0);
        mp_async_destroy(&stuck[i]);
    }
    mp_pool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_isolation_task_killing_its_worker_is_lost_after_3_executions,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_isolation_stuck_worker_hands_back_what_it_holds,
                                  tu_kill_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
