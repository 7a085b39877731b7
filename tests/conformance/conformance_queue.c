/*  conformance_queue.c - CPython 3.11's _TestQueue
    (Lib/test/_test_multiprocessing.py) ported to mp/queue.h, one test per
    method with its inputs and assertions.

    How Python maps onto C here: put(x, block, timeout) is
    mp_queue_put(q, x, t) with t = 0 for block=False or put_nowait, -1 for
    block=True without timeout, the timeout in ms otherwise (Python ignores
    the timeout when block is False: t = 0); get likewise. pyqueue.Full and
    Empty are MP_EFULL and MP_EEMPTY, ValueError('is closed') is MP_ECLOSED.
    The queue and events a Python target gets as arguments are globals the
    fork child inherits; children report failures through exit codes.
    CPython's timing checks (assertTimingAlmostEqual) are off by default
    (CHECK_TIMINGS); here they are on, with room for a loaded machine.
*/
#include <stdlib.h>

#include "support.h"

#define DELTA_MS 100    /* CPython's DELTA */
#define TIMEOUT1_MS 100 /* TIMEOUT1, TIMEOUT2, TIMEOUT3 without CHECK_TIMINGS */
#define TIMEOUT2_MS 100
#define TIMEOUT3_MS 100
#define SLACK_MS 500 /* above a stated time, for a loaded or sanitized run */

static mp_queue_t *g_q;
static mp_event_t *g_child_can_start, *g_parent_can_continue;

static int put_int(mp_queue_t *q, int64_t v, int timeout_ms)
{
    mp_obj_t *o = mp_obj_new_int(v);
    int rc = mp_queue_put(q, o, timeout_ms);
    mp_obj_destroy(&o);
    return rc;
}

static int put_nil(mp_queue_t *q, int timeout_ms)
{
    mp_obj_t *o = mp_obj_new_nil();
    int rc = mp_queue_put(q, o, timeout_ms);
    mp_obj_destroy(&o);
    return rc;
}

/* Gets an int (asserting success and type). */
static int64_t get_int(mp_queue_t *q, int timeout_ms)
{
    mp_obj_t *o = NULL;
    assert_int_equal(mp_queue_get(q, &o, timeout_ms), 0);
    assert_int_equal(mp_obj_type(o), MP_OBJ_INT);
    int64_t v = mp_obj_int(o);
    mp_obj_destroy(&o);
    return v;
}

/* A get that must fail with want within [elapsed_ms - 20, + slack]. */
static void assert_get_fails(mp_queue_t *q, int timeout_ms, int want, int elapsed_ms)
{
    mp_obj_t *o = NULL;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_queue_get(q, &o, timeout_ms), want);
    TU_ASSERT_ELAPSED(t0, elapsed_ms, SLACK_MS);
    assert_null(o);
}

static void assert_put_fails(mp_queue_t *q, int timeout_ms, int want, int elapsed_ms)
{
    uint64_t t0 = tu_now_ms();
    assert_int_equal(put_int(q, 7, timeout_ms), want);
    TU_ASSERT_ELAPSED(t0, elapsed_ms, SLACK_MS);
}

static void new_events(void)
{
    g_child_can_start = mp_event_new();
    g_parent_can_continue = mp_event_new();
    assert_non_null(g_child_can_start);
    assert_non_null(g_parent_can_continue);
}

static void destroy_events(void)
{
    mp_event_destroy(&g_child_can_start);
    mp_event_destroy(&g_parent_can_continue);
}

static int child_get_six(void *arg)
{
    (void)arg;
    if (mp_event_wait(g_child_can_start, 10000))
        return 1;
    for (int i = 0; i < 6; i++) {
        mp_obj_t *o = NULL;
        if (mp_queue_get(g_q, &o, 10000))
            return 2;
        mp_obj_destroy(&o);
    }
    return mp_event_set(g_parent_can_continue) ? 3 : 0;
}

/* test_put: a queue of maxsize 6 takes six puts in every blocking form,
   then is full: every form of put fails with Full, the timed ones after
   their timeout; once a child took the six items it is empty again. */
static void conformance_queue_test_put(void **state)
{
    enum { MAXSIZE = 6 };
    g_q = mp_queue_new(&(mp_queue_opts_t){.maxsize = MAXSIZE});
    new_events();
    mp_process_t *proc = tu_start(child_get_six, NULL, &(mp_process_opts_t){.daemon = true});

    assert_true(mp_queue_empty(g_q));
    assert_false(mp_queue_full(g_q));

    assert_int_equal(put_int(g_q, 1, -1), 0); /* put(1) */
    assert_int_equal(put_int(g_q, 2, -1), 0); /* put(2, True) */
    assert_int_equal(put_int(g_q, 3, -1), 0); /* put(3, True, None) */
    assert_int_equal(put_int(g_q, 4, 0), 0);  /* put(4, False) */
    assert_int_equal(put_int(g_q, 5, 0), 0);  /* put(5, False, None) */
    assert_int_equal(put_int(g_q, 6, 0), 0);  /* put_nowait(6) */

    usleep(DELTA_MS * 1000);

    assert_false(mp_queue_empty(g_q));
    assert_true(mp_queue_full(g_q));

    assert_put_fails(g_q, 0, MP_EFULL, 0);                     /* put(7, False) */
    assert_put_fails(g_q, 0, MP_EFULL, 0);                     /* put(7, False, None) */
    assert_put_fails(g_q, 0, MP_EFULL, 0);                     /* put_nowait(7) */
    assert_put_fails(g_q, TIMEOUT1_MS, MP_EFULL, TIMEOUT1_MS); /* put(7, True, TIMEOUT1) */
    assert_put_fails(g_q, 0, MP_EFULL, 0);                     /* put(7, False, TIMEOUT2) */
    assert_put_fails(g_q, TIMEOUT3_MS, MP_EFULL, TIMEOUT3_MS); /* put(7, True, TIMEOUT3) */

    assert_int_equal(mp_event_set(g_child_can_start), 0);
    assert_int_equal(mp_event_wait(g_parent_can_continue, 10000), 0);

    assert_true(mp_queue_empty(g_q));
    assert_false(mp_queue_full(g_q));

    assert_int_equal(tu_join(&proc, 10000), 0);
    mp_queue_destroy(&g_q);
    destroy_events();
}

static int child_put_2_to_5(void *arg)
{
    (void)arg;
    if (mp_event_wait(g_child_can_start, 10000))
        return 1;
    for (int i = 2; i <= 5; i++)
        if (put_int(g_q, i, -1))
            return 2;
    return mp_event_set(g_parent_can_continue) ? 3 : 0;
}

/* test_get: the items a child put come out in order through every
   blocking form of get; then the queue is empty and every form of get
   fails with Empty, the timed ones after their timeout. */
static void conformance_queue_test_get(void **state)
{
    g_q = mp_queue_new(NULL);
    new_events();
    mp_process_t *proc = tu_start(child_put_2_to_5, NULL, &(mp_process_opts_t){.daemon = true});

    assert_true(mp_queue_empty(g_q));

    assert_int_equal(mp_event_set(g_child_can_start), 0);
    assert_int_equal(mp_event_wait(g_parent_can_continue, 10000), 0);

    usleep(DELTA_MS * 1000);
    assert_false(mp_queue_empty(g_q));

    assert_int_equal(get_int(g_q, -1), 2);   /* get(True, None) */
    assert_int_equal(get_int(g_q, -1), 3);   /* get(True) */
    assert_int_equal(get_int(g_q, 1000), 4); /* get(timeout=1) */
    assert_int_equal(get_int(g_q, 0), 5);    /* get_nowait() */

    assert_true(mp_queue_empty(g_q));

    assert_get_fails(g_q, 0, MP_EEMPTY, 0);                     /* get(False) */
    assert_get_fails(g_q, 0, MP_EEMPTY, 0);                     /* get(False, None) */
    assert_get_fails(g_q, 0, MP_EEMPTY, 0);                     /* get_nowait() */
    assert_get_fails(g_q, TIMEOUT1_MS, MP_EEMPTY, TIMEOUT1_MS); /* get(True, TIMEOUT1) */
    assert_get_fails(g_q, 0, MP_EEMPTY, 0);                     /* get(False, TIMEOUT2) */
    assert_get_fails(g_q, TIMEOUT3_MS, MP_EEMPTY, TIMEOUT3_MS); /* get(timeout=TIMEOUT3) */

    assert_int_equal(tu_join(&proc, 10000), 0);
    mp_queue_destroy(&g_q);
    destroy_events();
}

static int child_put_10_to_19(void *arg)
{
    (void)arg;
    for (int i = 10; i < 20; i++)
        if (put_int(g_q, i, -1))
            return 1;
    return 0;
}

/* test_fork: items put before a fork and by the forked child all arrive,
   in order, and then the queue is empty. (Python's point, the feeder
   thread surviving fork, has no counterpart: there is no feeder.) */
static void conformance_queue_test_fork(void **state)
{
    g_q = mp_queue_new(NULL);
    for (int i = 0; i < 10; i++)
        assert_int_equal(put_int(g_q, i, -1), 0);
    usleep(DELTA_MS * 1000);

    mp_process_t *p = tu_start(child_put_10_to_19, NULL, &(mp_process_opts_t){.daemon = true});
    for (int i = 0; i < 20; i++)
        assert_int_equal(get_int(g_q, 10000), i);
    assert_get_fails(g_q, 0, MP_EEMPTY, 0);

    assert_int_equal(tu_join(&p, 10000), 0);
    mp_queue_destroy(&g_q);
}

/* test_qsize: qsize follows puts and gets. */
static void conformance_queue_test_qsize(void **state)
{
    mp_queue_t *q = mp_queue_new(NULL);
    assert_int_equal(mp_queue_qsize(q), 0);
    assert_int_equal(put_int(q, 1, -1), 0);
    assert_int_equal(mp_queue_qsize(q), 1);
    assert_int_equal(put_int(q, 5, -1), 0);
    assert_int_equal(mp_queue_qsize(q), 2);
    get_int(q, 0);
    assert_int_equal(mp_queue_qsize(q), 1);
    get_int(q, 0);
    assert_int_equal(mp_queue_qsize(q), 0);
    mp_queue_destroy(&q);
}

static int task_done_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) { /* iter(q.get, None) */
        mp_obj_t *o = NULL;
        if (mp_queue_get(g_q, &o, 10000))
            return 1;
        bool end = mp_obj_type(o) == MP_OBJ_NIL;
        mp_obj_destroy(&o);
        if (end)
            return 0;
        usleep(DELTA_MS * 1000);
        if (mp_queue_task_done(g_q))
            return 2;
    }
    return 3;
}

/* test_task_done: four workers mark ten items done; join returns; a None
   each stops them. */
static void conformance_queue_test_task_done(void **state)
{
    enum { WORKERS = 4 };
    g_q = mp_joinable_queue_new(NULL);
    mp_process_t *workers[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        workers[i] = tu_start(task_done_worker, NULL, &(mp_process_opts_t){.daemon = true});

    for (int i = 0; i < 10; i++)
        assert_int_equal(put_int(g_q, i, -1), 0);

    assert_int_equal(mp_queue_join(g_q, 10000), 0);

    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(put_nil(g_q, -1), 0);

    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(tu_join(&workers[i], 10000), 0);
    mp_queue_destroy(&g_q);
}

/* test_timeout: get(True, 0.200) on an empty queue fails with Empty after
   at least 100 ms (CPython's bound, bpo-30317). */
static void conformance_queue_test_timeout(void **state)
{
    mp_queue_t *q = mp_queue_new(NULL);
    mp_obj_t *o = NULL;
    uint64_t start = tu_now_ms();
    assert_int_equal(mp_queue_get(q, &o, 200), MP_EEMPTY);
    assert_true(tu_now_ms() - start >= 100);
    mp_queue_destroy(&q);
}

/* Puts an item the queue cannot carry: it fails, and no slot is used. */
static void put_not_serializable(mp_queue_t *q)
{
    size_t size = MP_QUEUE_DEFAULT_CAPACITY;
    void *big = calloc(1, size);
    mp_obj_t *o = mp_obj_new_bin(big, size);
    free(big);
    assert_int_equal(mp_queue_put(q, o, -1), MP_E2BIG);
    mp_obj_destroy(&o);
}

static bool get_true(mp_queue_t *q)
{
    mp_obj_t *o = NULL;
    assert_int_equal(mp_queue_get(q, &o, 10000), 0); /* SHORT_TIMEOUT is 30 s */
    bool v = mp_obj_type(o) == MP_OBJ_BOOL && mp_obj_bool(o);
    mp_obj_destroy(&o);
    return v;
}

/* test_queue_feeder_donot_stop_onexc (bpo-30414, bpo-33078): after a put
   of an object that cannot be serialized, the queue still works and its
   size is right, also with maxsize 1. Python's feeder thread fails later
   and logs; libmp encodes in put, so the failure is put's own return value.
   The object that cannot go: one larger than the queue's capacity
   (MP_E2BIG). */
static void conformance_queue_test_queue_feeder_donot_stop_onexc(void **state)
{
    mp_obj_t *yes = mp_obj_new_bool(true);
    mp_queue_t *q = mp_queue_new(NULL);
    put_not_serializable(q);
    assert_int_equal(mp_queue_put(q, yes, -1), 0);
    assert_true(get_true(q));
    mp_queue_destroy(&q);

    q = mp_queue_new(&(mp_queue_opts_t){.maxsize = 1});
    put_not_serializable(q);
    assert_int_equal(mp_queue_put(q, yes, 0), 0); /* Python blocks here if the slot leaked */
    assert_int_equal(mp_queue_qsize(q), 1);
    assert_true(get_true(q));
    assert_true(mp_queue_empty(q));
    mp_queue_destroy(&q);
    mp_obj_destroy(&yes);
}

/* test_closed_queue_put_get_exceptions: put and get on a closed Queue or
   JoinableQueue fail (ValueError 'is closed': MP_ECLOSED). */
static void conformance_queue_test_closed_queue_put_get_exceptions(void **state)
{
    mp_queue_t *queues[] = {mp_queue_new(NULL), mp_joinable_queue_new(NULL)};
    mp_obj_t *foo = mp_obj_new_str("foo");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(mp_queue_close(queues[i]), 0);
        assert_int_equal(mp_queue_put(queues[i], foo, -1), MP_ECLOSED);
        mp_obj_t *o = NULL;
        assert_int_equal(mp_queue_get(queues[i], &o, -1), MP_ECLOSED);
        mp_queue_destroy(&queues[i]);
    }
    mp_obj_destroy(&foo);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(conformance_queue_test_put, tu_teardown),
        cmocka_unit_test_teardown(conformance_queue_test_get, tu_teardown),
        cmocka_unit_test_teardown(conformance_queue_test_fork, tu_teardown),
        cmocka_unit_test_teardown(conformance_queue_test_qsize, tu_teardown),
        cmocka_unit_test_teardown(conformance_queue_test_task_done, tu_teardown),
        cmocka_unit_test_teardown(conformance_queue_test_timeout, tu_teardown),
        cmocka_unit_test_teardown(conformance_queue_test_queue_feeder_donot_stop_onexc,
                                  tu_teardown),
        cmocka_unit_test_teardown(conformance_queue_test_closed_queue_put_get_exceptions,
                                  tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
