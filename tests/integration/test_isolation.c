/*  test_isolation.c - one bad task holds only itself (issue 20; more cases
    to come: partial results, no hoarding).

    Here: a task that SIGKILLs its whole worker process (supervisor, zygote,
    executor) ends as MP_EWORKERLOST after exactly max-attempts executions,
    however each loss was noticed (silence, or a send that failed), and the
    rest of the map completes.
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
    assert_int_equal(tu_wait_processes(pool, 1, 5000), 1); /* the fourth serves on */
    tu_assert_map_squares(pool, 100);
    mp_pool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_isolation_task_killing_its_worker_is_lost_after_3_executions,
                                  tu_kill_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
