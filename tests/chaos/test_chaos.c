/*  test_chaos.c - the cluster under repeated faults, each case bounded in
    time and asserting exact counts (docs/PROTOCOL.md 7):

    - the broker SIGKILLed twice during 20,000 apply_async and restarted on
      the same port: 20,000 results, each once and right;
    - the broker SIGKILLed during a 100,000-item map and restarted: every
      result once, in order;
    - a worker SIGKILLed every 200 ms (and replaced) during a 100,000-item
      map on 3 workers: every result once, in order;
    - a worker SIGSTOPped (no heartbeat): its dispatches move to another
      worker, and what it sends after SIGCONT is not delivered twice;
    - a durable 20,000-item job (mp-broker --journal): its client and the
      broker SIGKILLed, the broker restarted and SIGKILLed again: a new
      client fetches 20,000 results, each once, in order.

    Time limits (an endless task in a map of 1,000) and poison tasks are in
    test_limits.c and test_cluster.c. Label "chaos": run once, not again
    under sanitizers.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mp/pool.h"
#include "support.h"

#define HB "300"

static char endpoint[256], bind_at[64];
static char journal_dir[128]; /* set: the broker keeps a journal there */

/* A broker on a fixed loopback port, so that a restart listens where the
   clients and workers already point. */
static pid_t start_broker(void)
{
    if (!bind_at[0])
        snprintf(bind_at, sizeof bind_at, "tcp://127.0.0.1:%d", tu_free_port());
    const char *extra[] = {"--journal", journal_dir, NULL};
    return tu_start_broker_with(bind_at, HB, journal_dir[0] ? extra : NULL, endpoint,
                                sizeof endpoint);
}

static pid_t restart_broker(pid_t old)
{
    kill(old, SIGKILL);
    tu_reap(old);
    usleep(200000);
    return start_broker();
}

static int setup(void **state)
{
    (void)state;
    bind_at[0] = '\0';
    journal_dir[0] = '\0';
    return 0;
}

static void test_chaos_broker_killed_twice_during_20000_applies(void **state)
{
    (void)state;
    pid_t broker = start_broker();
    tu_start_worker(endpoint, "2", HB);
    tu_start_worker(endpoint, "2", HB);
    mp_pool_t *pool = tu_cluster_pool(endpoint, 300, 4);
    enum { N = 20000 };
    mp_async_t **r = calloc(N, sizeof *r);
    for (int i = 0; i < N; i++) {
        mp_obj_t *args = mp_obj_new_array();
        mp_obj_array_add(args, mp_obj_new_int(i));
        assert_int_equal(mp_pool_apply_async(pool, "slow_square", args, NULL, &r[i]), 0);
        mp_obj_destroy(&args);
    }
    for (int kill_at = 1; kill_at <= 2; kill_at++) { /* a third, then two thirds in */
        size_t want = (size_t)N * (size_t)kill_at / 3;
        assert_true(TU_WAIT_UNTIL(mp_async_ready(r[want]), 30000)); /* they end about in order */
        broker = restart_broker(broker);
    }
    uint64_t t0 = tu_now_ms();
    for (int i = 0; i < N; i++) {
        mp_obj_t *v = NULL;
        int rc = mp_async_get_obj(r[i], 60000, &v);
        if (rc)
            fail_msg("apply %d: %s", i, mp_strerror(rc));
        assert_int_equal(mp_obj_int(v), (int64_t)i * i);
        mp_obj_destroy(&v);
        mp_async_destroy(&r[i]);
    }
    printf("# 20,000 applies, broker killed twice: the rest took %llu ms after the second\n",
           (unsigned long long)(tu_now_ms() - t0));
    free(r);
    mp_pool_destroy(&pool);
}

static void test_chaos_broker_killed_during_a_100000_map(void **state)
{
    (void)state;
    pid_t broker = start_broker();
    tu_start_worker(endpoint, "2", HB);
    tu_start_worker(endpoint, "2", HB);
    mp_pool_t *pool = tu_cluster_pool(endpoint, 300, 4);
    enum { N = 100000 };
    mp_items_t *in = tu_range(N);
    mp_call_options_t o = {.chunksize = 500};
    mp_async_t *r;
    assert_int_equal(mp_pool_map_async(pool, "slow_square", in, &o, &r), 0);
    size_t done = 0, total = 0;
    assert_true(TU_WAIT_UNTIL((mp_async_progress(r, &done, &total), done >= N / 4), 30000));
    uint64_t t0 = tu_now_ms();
    broker = restart_broker(broker);
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r, 60000, &out), 0);
    tu_assert_squares(out, N);
    printf("# 100,000-item map, broker killed a quarter in: every result once, in order; "
           "%llu ms after the kill\n",
           (unsigned long long)(tu_now_ms() - t0));
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    tu_assert_map_squares(pool, 1000); /* and the pool goes on */
    mp_pool_destroy(&pool);
}

static void test_chaos_worker_killed_every_200ms_during_a_100000_map(void **state)
{
    (void)state;
    /* every death counts an attempt for each dispatch the dead worker held
       (running, or queued behind the running one): with a death every 200
       ms a slow chunk may meet three, and end WORKER_LOST by the rules. The
       point here is that no result is lost or doubled: a larger budget. */
    setenv("MP_MAX_ATTEMPTS", "20", 1);
    start_broker();
    unsetenv("MP_MAX_ATTEMPTS");
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = tu_start_worker(endpoint, "1", HB);
    mp_pool_t *pool = tu_cluster_pool(endpoint, 300, 3);
    enum { N = 100000 };
    mp_items_t *in = tu_range(N);
    mp_call_options_t o = {.chunksize = 200};
    mp_async_t *r;
    assert_int_equal(mp_pool_map_async(pool, "slow_square", in, &o, &r), 0);
    int kills = 0;
    uint64_t t0 = tu_now_ms();
    while (!mp_async_ready(r) && tu_now_ms() - t0 < 60000) {
        usleep(200000);
        int k = kills++ % 3;
        kill(w[k], SIGKILL);
        tu_reap(w[k]);
        w[k] = tu_start_worker(endpoint, "1", HB);
    }
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r, 1000, &out), 0);
    tu_assert_squares(out, N);
    printf("# 100,000-item map: %d workers SIGKILLed, every result once, in order (%llu ms)\n",
           kills, (unsigned long long)(tu_now_ms() - t0));
    assert_true(kills >= 5);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_chaos_stopped_worker_loses_its_dispatches_once(void **state)
{
    (void)state;
    start_broker();
    pid_t stopped = tu_start_worker(endpoint, "2", HB);
    mp_pool_t *pool = tu_cluster_pool(endpoint, 300, 2);
    tu_start_worker(endpoint, "2", HB);
    assert_int_equal(tu_wait_processes(pool, 4, 10000), 4);
    mp_items_t *in = tu_repeat(40, 100); /* sleep_ms(100) x 40: 1 s on 4 executors */
    mp_call_options_t o = {.chunksize = 1};
    mp_async_t *r;
    assert_int_equal(mp_pool_map_async(pool, "sleep_ms", in, &o, &r), 0);
    usleep(150000);
    kill(stopped, SIGSTOP); /* its supervisor and its heartbeats stop */
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r, 20000, &out), 0);
    assert_int_equal(mp_items_len(out), 40);
    assert_int_equal(mp_items_nerrors(out), 0);
    kill(stopped, SIGCONT); /* its late results come back: dropped, never delivered twice */
    usleep(500000);
    for (size_t i = 0; i < 40; i++) {
        int64_t v;
        assert_int_equal(mp_items_int(out, i, &v), 0);
        assert_int_equal(v, 100);
    }
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    tu_assert_map_squares(pool, 1000);
    mp_pool_destroy(&pool);
}

static void test_chaos_client_and_broker_killed_during_a_durable_20000_map(void **state)
{
    (void)state;
    enum { N = 20000 };
    snprintf(journal_dir, sizeof journal_dir, "/tmp/mp-chaos-journal-%d", (int)getpid());
    pid_t broker = start_broker();
    tu_start_worker(endpoint, "2", HB);
    tu_start_worker(endpoint, "2", HB);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    if (child == 0) { /* the submitter: stores the job, then waits for it (killed meanwhile) */
        mp_pool_options_t o = {.broker = endpoint, .heartbeat_ms = 300};
        mp_pool_t *pool = NULL;
        mp_items_t *in = tu_range(N), *out = NULL;
        mp_submit_options_t so = {.chunksize = 100};
        int rc = mp_pool_new(&o, &pool) || mp_pool_submit(pool, "chaos", "slow_square", in, &so);
        ssize_t w = write(fds[1], rc ? "E" : "S", 1);
        (void)w;
        mp_pool_fetch(pool, "chaos", -1, &out);
        _exit(0);
    }
    close(fds[1]);
    char c = 0;
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    assert_int_equal(c, 'S');
    usleep(500000); /* some of it ran */
    kill(child, SIGKILL);
    tu_reap(child);
    broker = restart_broker(broker);
    usleep(500000);
    uint64_t t0 = tu_now_ms();
    broker = restart_broker(broker);
    mp_pool_t *pool = tu_cluster_pool(endpoint, 300, 4);
    mp_items_t *out = NULL;
    assert_int_equal(mp_pool_fetch(pool, "chaos", 60000, &out), 0);
    tu_assert_squares(out, N);
    printf("# durable 20,000-item job, its client and the broker killed, the broker twice: "
           "every result once, in order; fetched %llu ms after the last restart\n",
           (unsigned long long)(tu_now_ms() - t0));
    mp_items_destroy(&out);
    assert_int_equal(mp_pool_forget(pool, "chaos"), 0);
    mp_pool_destroy(&pool);
}

/* tu_kill_teardown, and the journal's directory removed (a failed case too). */
static int teardown(void **state)
{
    if (journal_dir[0]) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf %s", journal_dir);
        if (system(cmd) != 0)
            return -1;
    }
    return tu_kill_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chaos_broker_killed_twice_during_20000_applies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chaos_broker_killed_during_a_100000_map, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chaos_worker_killed_every_200ms_during_a_100000_map,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chaos_stopped_worker_loses_its_dispatches_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_chaos_client_and_broker_killed_during_a_durable_20000_map, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
