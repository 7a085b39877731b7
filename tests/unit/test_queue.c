/*  test_queue.c - Queue, SimpleQueue, JoinableQueue across processes. */
#include <signal.h>
#include <stdlib.h>

#include "support.h"

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 25000
#define DISTINCT 5000 /* values per producer: each one put 5 times */

struct mpmc {
    mp_queue_t *q;
    mp_array_t *seen; /* CONSUMERS x (PRODUCERS*DISTINCT) counters, raw */
    int id;
};

static int produce(void *arg)
{
    struct mpmc *m = arg;
    for (int seq = 0; seq < PER_PRODUCER; seq++) {
        mp_obj_t *item = mp_obj_new_int((seq % DISTINCT) * PRODUCERS + m->id);
        int rc = mp_queue_put(m->q, item, -1);
        mp_obj_destroy(&item);
        if (rc)
            return 1;
    }
    return 0;
}

static int consume(void *arg)
{
    struct mpmc *m = arg;
    int *seen = (int *)mp_array_ptr(m->seen) + (size_t)m->id * PRODUCERS * DISTINCT;
    for (;;) {
        mp_obj_t *item = NULL;
        if (mp_queue_get(m->q, &item, -1))
            return 1;
        if (mp_obj_type(item) == MP_OBJ_NIL) { /* sentinel: producers done */
            mp_obj_destroy(&item);
            return 0;
        }
        int64_t v = mp_obj_int(item);
        mp_obj_destroy(&item);
        if (v < 0 || v >= PRODUCERS * DISTINCT)
            return 2;
        seen[v]++;
    }
}

static void test_4_producers_4_consumers_move_100k_items_exactly(void **state)
{
    mp_queue_opts_t opts = {.capacity = 64 * 1024}; /* small: forces waits and wraps */
    mp_queue_t *q = mp_queue_new(&opts);
    mp_array_t *seen =
        mp_array_new('i', CONSUMERS * PRODUCERS * DISTINCT, NULL, &(mp_ctype_opts_t){.raw = true});
    struct mpmc prod[PRODUCERS], cons[CONSUMERS];
    mp_process_t *pp[PRODUCERS], *cp[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        cons[i] = (struct mpmc){q, seen, i};
        cp[i] = tu_start(consume, &cons[i], NULL);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i] = (struct mpmc){q, seen, i};
        pp[i] = tu_start(produce, &prod[i], NULL);
    }
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(tu_join(&pp[i], 60000), 0);
    mp_obj_t *stop = mp_obj_new_nil();
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(mp_queue_put(q, stop, -1), 0);
    mp_obj_destroy(&stop);
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(tu_join(&cp[i], 60000), 0);
    /* the union of what consumers saw is exactly the produced multiset */
    const int *counts = mp_array_ptr(seen);
    long total = 0;
    for (int v = 0; v < PRODUCERS * DISTINCT; v++) {
        int n = 0;
        for (int c = 0; c < CONSUMERS; c++)
            n += counts[(size_t)c * PRODUCERS * DISTINCT + v];
        if (n != PER_PRODUCER / DISTINCT)
            fail_msg("value %d seen %d times", v, n);
        total += n;
    }
    assert_int_equal(total, PRODUCERS * PER_PRODUCER);
    assert_true(mp_queue_empty(q));
    mp_array_destroy(&seen);
    mp_queue_destroy(&q);
}

static mp_obj_t *item_of_size(int i)
{
    /* sizes vary so records straddle the ring's end at many offsets */
    mp_obj_t *o = mp_obj_new_array();
    mp_obj_array_add(o, mp_obj_new_int(i));
    char pad[200];
    memset(pad, 'a' + i % 26, sizeof pad);
    mp_obj_array_add(o, mp_obj_new_strn(pad, (size_t)(i * 37) % sizeof pad));
    return o;
}

static int produce_sized(void *arg)
{
    for (int i = 0; i < 10000; i++) {
        mp_obj_t *o = item_of_size(i);
        int rc = mp_queue_put(arg, o, 10000);
        mp_obj_destroy(&o);
        if (rc)
            return 1;
    }
    return 0;
}

static void test_fifo_order_across_wraparound(void **state)
{
    mp_queue_opts_t opts = {.capacity = 700};
    mp_queue_t *q = mp_queue_new(&opts);
    mp_process_t *p = tu_start(produce_sized, q, NULL);
    for (int i = 0; i < 10000; i++) {
        mp_obj_t *got = NULL, *want = item_of_size(i);
        assert_int_equal(mp_queue_get(q, &got, 10000), 0);
        if (!mp_obj_equal(got, want))
            fail_msg("item %d differs", i);
        mp_obj_destroy(&got);
        mp_obj_destroy(&want);
    }
    assert_int_equal(tu_join(&p, 10000), 0);
    mp_queue_destroy(&q);
}

static void test_empty_full_and_timeouts(void **state)
{
    mp_queue_opts_t opts = {.maxsize = 2};
    mp_queue_t *q = mp_queue_new(&opts);
    mp_obj_t *item = NULL;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_queue_get(q, &item, 0), MP_EEMPTY);
    TU_ASSERT_ELAPSED(t0, 0, 20);
    t0 = tu_now_ms();
    assert_int_equal(mp_queue_get(q, &item, 150), MP_EEMPTY);
    TU_ASSERT_ELAPSED(t0, 150, 100);
    assert_null(item);

    mp_obj_t *one = mp_obj_new_str("one");
    assert_true(mp_queue_empty(q));
    assert_int_equal(mp_queue_put(q, one, 0), 0);
    assert_int_equal(mp_queue_put(q, one, 0), 0);
    assert_true(mp_queue_full(q));
    assert_int_equal(mp_queue_qsize(q), 2);
    t0 = tu_now_ms();
    assert_int_equal(mp_queue_put(q, one, 0), MP_EFULL);
    assert_int_equal(mp_queue_put(q, one, 150), MP_EFULL);
    TU_ASSERT_ELAPSED(t0, 150, 100);
    assert_int_equal(mp_queue_get(q, &item, 0), 0);
    assert_true(mp_obj_equal(item, one));
    mp_obj_destroy(&item);
    assert_false(mp_queue_full(q));
    mp_obj_destroy(&one);
    assert_int_equal(mp_queue_task_done(q), MP_EINVAL); /* not joinable */
    mp_queue_destroy(&q);
}

static void test_item_larger_than_queue_fails_at_once(void **state)
{
    mp_queue_opts_t opts = {.capacity = 1024};
    mp_queue_t *q = mp_queue_new(&opts);
    char big[2000] = {0};
    mp_obj_t *o = mp_obj_new_bin(big, sizeof big);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_queue_put(q, o, -1), MP_E2BIG); /* never a hang */
    TU_ASSERT_ELAPSED(t0, 0, 20);
    assert_int_equal(mp_queue_put_bytes(q, big, 1020, -1), 0); /* exactly fits */
    assert_int_equal(mp_queue_put_bytes(q, big, 1021, -1), MP_E2BIG);
    void *data;
    size_t size;
    assert_int_equal(mp_queue_get_bytes(q, &data, &size, 0), 0);
    assert_int_equal(size, 1020);
    free(data);
    mp_obj_destroy(&o);
    mp_queue_destroy(&q);
    assert_null(mp_queue_new(&(mp_queue_opts_t){.capacity = (size_t)1 << 33}));
}

static int get_after_close(void *arg)
{
    mp_queue_t *q = arg;
    mp_queue_close(q);
    mp_obj_t *o = mp_obj_new_int(1), *got = NULL;
    int a = mp_queue_put(q, o, 0), b = mp_queue_get(q, &got, 0);
    mp_obj_destroy(&o);
    return a == MP_ECLOSED && b == MP_ECLOSED ? 0 : 1;
}

static void test_close_is_per_process(void **state)
{
    mp_queue_t *q = mp_simple_queue_new();
    assert_int_equal(tu_run(get_after_close, q), 0);
    mp_obj_t *o = mp_obj_new_int(5), *got = NULL;
    assert_int_equal(mp_queue_put(q, o, 0), 0); /* still open here */
    assert_int_equal(mp_queue_get(q, &got, 0), 0);
    assert_int_equal(mp_obj_int(got), 5);
    mp_obj_destroy(&got);
    mp_obj_destroy(&o);
    mp_queue_destroy(&q);
}

struct joinable {
    mp_queue_t *q;
    mp_value_t *done;
};

static int work_slowly(void *arg)
{
    struct joinable *j = arg;
    for (;;) {
        mp_obj_t *o = NULL;
        if (mp_queue_get(j->q, &o, 2000))
            return 0; /* drained */
        mp_obj_destroy(&o);
        usleep(2000);
        mp_value_add_int(j->done, 1); /* counted before task_done */
        if (mp_queue_task_done(j->q))
            return 1;
    }
}

static void test_joinable_join_waits_for_last_task_done(void **state)
{
    struct joinable j = {mp_joinable_queue_new(NULL), mp_value_new('i', NULL, NULL)};
    assert_int_equal(mp_queue_join(j.q, 0), 0); /* nothing put yet */
    mp_obj_t *o = mp_obj_new_int(1);
    for (int i = 0; i < 50; i++)
        assert_int_equal(mp_queue_put(j.q, o, 0), 0);
    mp_obj_destroy(&o);
    assert_int_equal(mp_queue_join(j.q, 20), MP_ETIMEDOUT);
    mp_process_t *w[2];
    for (int i = 0; i < 2; i++)
        w[i] = tu_start(work_slowly, &j, NULL);
    assert_int_equal(mp_queue_join(j.q, 20000), 0);
    /* join returned only after the 50th task_done */
    assert_int_equal(mp_value_get_int(j.done), 50);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tu_join(&w[i], 10000), 0);
    assert_int_equal(mp_queue_task_done(j.q), MP_EVALUE); /* one too many */
    mp_value_destroy(&j.done);
    mp_queue_destroy(&j.q);
}

static int churn(void *arg)
{
    mp_queue_t *q = arg;
    for (int i = 0; i < 100000000; i++) { /* until killed */
        mp_obj_t *o = item_of_size(i), *got = NULL;
        mp_queue_put(q, o, -1);
        mp_obj_destroy(&o);
        if (i % 2)
            mp_queue_get(q, &got, -1);
        mp_obj_destroy(&got);
    }
    return 0;
}

static void test_sigkill_mid_operation_leaves_queue_consistent(void **state)
{
    mp_queue_opts_t opts = {.capacity = 4096};
    mp_queue_t *q = mp_queue_new(&opts);
    for (int round = 0; round < 20; round++) {
        mp_process_t *p = tu_start(churn, q, NULL);
        usleep(1000 + (useconds_t)(rand() % 5000));
        mp_process_kill(p);
        assert_int_equal(mp_process_join(p, 5000), 0);
        mp_process_destroy(&p);
        /* whatever the kill interrupted, every record left is whole */
        size_t n = mp_queue_qsize(q);
        for (size_t i = 0; i < n; i++) {
            mp_obj_t *got = NULL;
            assert_int_equal(mp_queue_get(q, &got, 1000), 0);
            assert_int_equal(mp_obj_type(got), MP_OBJ_ARRAY);
            mp_obj_destroy(&got);
        }
        mp_obj_t *got = NULL;
        assert_int_equal(mp_queue_get(q, &got, 0), MP_EEMPTY);
    }
    mp_queue_destroy(&q);
}

static int put_big(void *arg)
{
    static char block[600];
    return mp_queue_put_bytes(arg, block, sizeof block, 10000) ? 1 : 0;
}

static int put_small(void *arg)
{
    static char block[400];
    return mp_queue_put_bytes(arg, block, sizeof block, 10000) ? 1 : 0;
}

static void test_freed_room_reaches_the_producer_that_fits(void **state)
{
    /* Two producers wait for different room; one get frees room for the
       small one only. Waking a single producer could pick the big one,
       which goes back to sleep with the wake-up (found in review). */
    mp_queue_opts_t opts = {.capacity = 1024};
    mp_queue_t *q = mp_queue_new(&opts);
    char block[500] = {0};
    assert_int_equal(mp_queue_put_bytes(q, block, sizeof block, 0), 0);
    assert_int_equal(mp_queue_put_bytes(q, block, sizeof block, 0), 0);
    mp_process_t *big = tu_start(put_big, q, NULL);
    usleep(100 * 1000); /* let the big one sleep first: it must not win */
    mp_process_t *small = tu_start(put_small, q, NULL);
    usleep(100 * 1000);
    void *data;
    size_t size;
    assert_int_equal(mp_queue_get_bytes(q, &data, &size, 0), 0);
    free(data);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_process_join(small, 5000), 0);
    assert_true(tu_now_ms() - t0 < 1000);
    int code;
    assert_true(mp_process_exitcode(small, &code));
    assert_int_equal(code, 0);
    assert_int_equal(mp_process_join(big, 0), MP_ETIMEDOUT); /* still no room */
    mp_process_destroy(&big);
    mp_process_destroy(&small);
    mp_queue_destroy(&q);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_4_producers_4_consumers_move_100k_items_exactly,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_fifo_order_across_wraparound, tu_teardown),
        cmocka_unit_test_teardown(test_empty_full_and_timeouts, tu_teardown),
        cmocka_unit_test_teardown(test_item_larger_than_queue_fails_at_once, tu_teardown),
        cmocka_unit_test_teardown(test_close_is_per_process, tu_teardown),
        cmocka_unit_test_teardown(test_joinable_join_waits_for_last_task_done, tu_teardown),
        cmocka_unit_test_teardown(test_freed_room_reaches_the_producer_that_fits, tu_teardown),
        cmocka_unit_test_teardown(test_sigkill_mid_operation_leaves_queue_consistent, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
