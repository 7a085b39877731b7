/*  test_isolation.c - one bad task holds only itself.

    - A task that SIGKILLs its whole worker process (supervisor, zygote,
      executor) ends as MP_EWORKERLOST after exactly max-attempts
      executions, however each loss was noticed (silence, or a send that
      failed), and the rest of the map completes.
    - No hoarding: a worker whose every executor is stuck hands the
      dispatches queued behind them back, and two idle workers run them.
    - Partial results: 1,000 apply_async of which one never returns give
      999 results, and so does an imap_unordered of 1,000 with one stuck
      item, on a tcp cluster and on the embedded pool (no time limit set:
      the point is isolation).
*/
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mp/pool.h"
#include "support.h"
#include "test_tasks.c" /* the embedded pool's executors run them from here */

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

enum { CALLS = 1000, STUCK = 500 };

/* The pool of a test: a tcp cluster of 3 workers with 2 executors each,
   or (cluster false) the embedded pool with 2 executors. */
static mp_pool_t *isolation_pool(bool cluster)
{
    mp_pool_t *pool;
    if (!cluster) {
        mp_pool_options_t o = {.processes = 2};
        assert_int_equal(mp_pool_new(&o, &pool), 0);
        return pool;
    }
    char ep[256];
    tu_start_broker("tcp://127.0.0.1:0", HB, ep, sizeof ep);
    for (int i = 0; i < 3; i++)
        tu_start_worker(ep, "2", HB);
    mp_pool_options_t o = {.broker = ep, .heartbeat_ms = 300};
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, 6, 10000), 6);
    return pool;
}

/* 1,000 apply_async, sent at once (so they travel batched), of which the
   500th never returns: the 999 others complete, with their results. */
static void applies_with_one_endless(bool cluster)
{
    mp_pool_t *pool = isolation_pool(cluster);
    mp_async_t **r = calloc(CALLS, sizeof *r);
    uint64_t t0 = tu_now_ms();
    for (int i = 0; i < CALLS; i++) {
        mp_obj_t *args = mp_obj_new_array();
        mp_obj_array_add(args, mp_obj_new_int(i == STUCK ? -1 : i));
        assert_int_equal(mp_pool_apply_async(pool, "spin_if_negative", args, NULL, &r[i]), 0);
        mp_obj_destroy(&args);
    }
    for (int i = 0; i < CALLS; i++) {
        if (i == STUCK)
            continue;
        int wrc = mp_async_wait(r[i], (int)(t0 + 10000 - tu_now_ms()));
        if (wrc)
            printf("# call %d: %s\n", i, mp_strerror(wrc));
        assert_int_equal(wrc, 0);
        const mp_items_t *out;
        int grc = mp_async_get(r[i], 0, &out);
        if (grc)
            printf("# call %d: %s: %s\n", i, mp_strerror(grc),
                   mp_async_error(r[i]) ? mp_async_error(r[i])->message : "?");
        assert_int_equal(grc, 0);
        int64_t v;
        assert_int_equal(mp_items_int(out, 0, &v), 0);
        assert_int_equal(v, (int64_t)i * i);
    }
    uint64_t took = tu_now_ms() - t0;
    printf("# %s: 1,000 apply_async, one endless: 999 results in %llu ms\n",
           cluster ? "tcp cluster" : "embedded", (unsigned long long)took);
    assert_true(took < 10000);
    assert_false(mp_async_ready(r[STUCK]));
    /* every other call of its batch is done: it can be cancelled alone */
    assert_int_equal(mp_async_cancel(r[STUCK]), 0);
    assert_int_equal(mp_async_wait(r[STUCK], 5000), 0);
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r[STUCK], 0, &out), MP_ECANCELLED);
    for (int i = 0; i < CALLS; i++)
        mp_async_destroy(&r[i]);
    free(r);
    tu_assert_map_squares(pool, 100); /* the pool serves on */
    mp_pool_destroy(&pool);
}

static void test_isolation_applies_one_endless_tcp(void **state)
{
    (void)state;
    applies_with_one_endless(true);
}

static void test_isolation_applies_one_endless_embedded(void **state)
{
    (void)state;
    applies_with_one_endless(false);
}

static int gen_with_stuck(void *arg, mp_items_t *out)
{
    int *next = arg;
    if (*next == CALLS)
        return MP_EEOF;
    int i = (*next)++;
    return mp_items_add_int(out, i == STUCK ? -1 : i);
}

/* imap_unordered of 1,000 items in chunks of 50, the 500th stuck: the 999
   others are read, each once, with the right value. */
static void imap_unordered_with_one_stuck(bool cluster)
{
    mp_pool_t *pool = isolation_pool(cluster);
    int next = 0;
    mp_imap_t *it;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(
        mp_pool_imap_unordered(pool, "spin_if_negative", gen_with_stuck, &next, 50, &it), 0);
    static bool seen[CALLS];
    memset(seen, 0, sizeof seen);
    for (int n = 0; n < CALLS - 1; n++) {
        int64_t v;
        int rc = mp_imap_next_int(it, (int)(t0 + 10000 - tu_now_ms()), &v);
        assert_int_equal(rc, 0);
        size_t index = mp_imap_index(it);
        assert_true(index < CALLS && index != STUCK && !seen[index]);
        seen[index] = true;
        assert_int_equal(v, (int64_t)index * (int64_t)index);
    }
    uint64_t took = tu_now_ms() - t0;
    printf("# %s: imap_unordered of 1,000, one stuck: 999 results in %llu ms\n",
           cluster ? "tcp cluster" : "embedded", (unsigned long long)took);
    assert_true(took < 10000);
    int64_t v;
    assert_int_equal(mp_imap_next_int(it, 300, &v), MP_ETIMEDOUT); /* the stuck one */
    mp_pool_terminate(pool);
    mp_imap_destroy(&it);
    mp_pool_destroy(&pool);
}

static void test_isolation_imap_unordered_one_stuck_tcp(void **state)
{
    (void)state;
    imap_unordered_with_one_stuck(true);
}

static void test_isolation_imap_unordered_one_stuck_embedded(void **state)
{
    (void)state;
    imap_unordered_with_one_stuck(false);
}

/* A worker lost after its stalled dispatch sent partial results: the
   broker queues only the items not answered, sliced from the chunk's
   items (bk_unit_trim), and another worker runs them: every result right,
   once. (The slice used to be leaked and the unit re-queued with no
   items: found by fuzz_broker.) */
static void test_isolation_worker_lost_after_partial_results(void **state)
{
    (void)state;
    char endpoint[256];
    tu_start_broker("tcp://127.0.0.1:0", HB, endpoint, sizeof endpoint);
    pid_t w1 = tu_start_worker(endpoint, "1", HB);
    mp_pool_t *pool = tu_cluster_pool(endpoint, 300, 1);
    mp_items_t *in = mp_items_new();
    for (int i = 0; i < 50; i++) { /* sleep_ms(ms, value) returns value */
        assert_int_equal(mp_items_add_tuple(in, 2), 0);
        assert_int_equal(mp_items_add_int(in, i == 10 ? 1500 : 1), 0);
        assert_int_equal(mp_items_add_int(in, 1000 + i), 0);
    }
    mp_async_t *r = NULL;
    mp_call_options_t co = {.chunksize = 50}; /* one dispatch */
    assert_int_equal(mp_pool_starmap_async(pool, "sleep_ms", in, &co, &r), 0);
    usleep(600 * 1000); /* item 10 runs; after 200 ms items 0..9 went as a PARTIAL */
    tu_start_worker(endpoint, "1", HB);
    kill(w1, SIGKILL); /* lost with item 10 running */
    const mp_items_t *out = NULL;
    assert_int_equal(mp_async_get(r, 30000, &out), 0);
    assert_int_equal(mp_items_len(out), 50);
    for (int i = 0; i < 50; i++) {
        int64_t v = -1;
        assert_int_equal(mp_items_int(out, (size_t)i, &v), 0);
        assert_int_equal(v, 1000 + i);
    }
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_isolation_task_killing_its_worker_is_lost_after_3_executions,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_isolation_stuck_worker_hands_back_what_it_holds,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_isolation_applies_one_endless_tcp, tu_kill_teardown),
        cmocka_unit_test_teardown(test_isolation_applies_one_endless_embedded, tu_kill_teardown),
        cmocka_unit_test_teardown(test_isolation_imap_unordered_one_stuck_tcp, tu_kill_teardown),
        cmocka_unit_test_teardown(test_isolation_imap_unordered_one_stuck_embedded,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_isolation_worker_lost_after_partial_results,
                                  tu_kill_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
