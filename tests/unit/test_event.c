/*  test_event.c - Event across processes: the flag, waits on a set flag,
    timeouts, set() waking every waiting process, set/clear seen by others. */
#include "support.h"

typedef struct {
    mp_event_t *event;
    mp_semaphore_t *ready; /* released by a child just before it waits */
} event_arg_t;

/* ---- tests ------------------------------------------------------------------ */

static void test_set_clear_is_set(void **state)
{
    mp_event_t *e = mp_event_new();
    assert_non_null(e);
    assert_false(mp_event_is_set(e));
    assert_int_equal(mp_event_set(e), 0);
    assert_true(mp_event_is_set(e));
    assert_int_equal(mp_event_set(e), 0); /* again: still set */
    assert_true(mp_event_is_set(e));
    assert_int_equal(mp_event_clear(e), 0);
    assert_false(mp_event_is_set(e));
    assert_int_equal(mp_event_clear(e), 0);
    assert_false(mp_event_is_set(e));
    mp_event_destroy(&e);
    assert_null(e);
    mp_event_destroy(&e); /* safe twice */
}

static void test_wait_on_set_event_returns_at_once(void **state)
{
    mp_event_t *e = mp_event_new();
    assert_int_equal(mp_event_set(e), 0);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_event_wait(e, 0), 0);
    assert_int_equal(mp_event_wait(e, 1000), 0);
    assert_int_equal(mp_event_wait(e, -1), 0);
    TU_ASSERT_ELAPSED(t0, 0, 20);
    assert_true(mp_event_is_set(e)); /* a wait does not consume the flag */
    mp_event_destroy(&e);
}

static void test_wait_times_out(void **state)
{
    mp_event_t *e = mp_event_new();
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_event_wait(e, 0), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 0, 20);
    t0 = tu_now_ms();
    assert_int_equal(mp_event_wait(e, 200), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 200, 150);
    assert_false(mp_event_is_set(e));
    /* set then cleared: waits time out again */
    assert_int_equal(mp_event_set(e), 0);
    assert_int_equal(mp_event_clear(e), 0);
    t0 = tu_now_ms();
    assert_int_equal(mp_event_wait(e, 100), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 100, 150);
    mp_event_destroy(&e);
}

/* Exit 0 only when the wait returned 0, the flag is set, and the wait
   really blocked (the parent sets it ~100 ms after our "ready"). */
static int wait_for_set(void *arg)
{
    event_arg_t *a = arg;
    if (mp_event_is_set(a->event))
        return 1;
    mp_semaphore_release(a->ready);
    uint64_t t0 = tu_now_ms();
    int rc = mp_event_wait(a->event, 3000);
    uint64_t waited = tu_now_ms() - t0;
    if (rc != 0)
        return 2;
    if (!mp_event_is_set(a->event))
        return 3;
    return waited >= 30 ? 0 : 4;
}

static void test_set_wakes_all_waiting_processes(void **state)
{
    enum { N = 3 };
    event_arg_t a = {.event = mp_event_new(), .ready = mp_semaphore_new(0)};
    mp_process_t *ps[N];
    tu_start_n(ps, N, wait_for_set, &a);
    for (int i = 0; i < N; i++)
        assert_int_equal(mp_semaphore_acquire(a.ready, 3000), 0);
    usleep(100 * 1000); /* the delay before set(): the children are blocked */
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_event_set(a.event), 0);
    int codes[N];
    assert_int_equal(tu_join_n(ps, N, 2000, codes), N);
    TU_ASSERT_ELAPSED(t0, 0, 500); /* woken by set, not by their timeout */
    for (int i = 0; i < N; i++)
        assert_int_equal(codes[i], 0);
    assert_true(mp_event_is_set(a.event));
    mp_event_destroy(&a.event);
    mp_semaphore_destroy(&a.ready);
}

static int set_after_100ms(void *arg)
{
    usleep(100 * 1000);
    return mp_event_set(arg) == 0 ? 0 : 1;
}

static void test_set_in_child_wakes_parent(void **state)
{
    mp_event_t *e = mp_event_new();
    mp_process_t *p;
    tu_start_n(&p, 1, set_after_100ms, e);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_event_wait(e, 3000), 0);
    TU_ASSERT_ELAPSED(t0, 100, 400);
    assert_true(mp_event_is_set(e));
    int code;
    assert_int_equal(tu_join_n(&p, 1, 3000, &code), 1);
    assert_int_equal(code, 0);
    mp_event_destroy(&e);
}

/* The child sees the flag cleared by the parent, then sets it. */
static int sees_clear_then_sets(void *arg)
{
    mp_event_t *e = arg;
    if (mp_event_is_set(e))
        return 1;
    if (mp_event_wait(e, 50) != MP_ETIMEDOUT)
        return 2;
    return mp_event_set(e) == 0 ? 0 : 3;
}

static int sees_set_then_clears(void *arg)
{
    mp_event_t *e = arg;
    if (!mp_event_is_set(e) || mp_event_wait(e, 0) != 0)
        return 1;
    return mp_event_clear(e) == 0 ? 0 : 2;
}

static void test_set_and_clear_cross_processes(void **state)
{
    mp_event_t *e = mp_event_new();
    assert_int_equal(mp_event_set(e), 0);
    assert_int_equal(mp_event_clear(e), 0);
    assert_int_equal(tu_run(sees_clear_then_sets, e), 0);
    assert_true(mp_event_is_set(e));
    assert_int_equal(mp_event_wait(e, 0), 0);
    assert_int_equal(tu_run(sees_set_then_clears, e), 0);
    assert_false(mp_event_is_set(e));
    assert_int_equal(mp_event_wait(e, 0), MP_ETIMEDOUT);
    mp_event_destroy(&e);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_set_clear_is_set, tu_teardown),
        cmocka_unit_test_teardown(test_wait_on_set_event_returns_at_once, tu_teardown),
        cmocka_unit_test_teardown(test_wait_times_out, tu_teardown),
        cmocka_unit_test_teardown(test_set_wakes_all_waiting_processes, tu_teardown),
        cmocka_unit_test_teardown(test_set_in_child_wakes_parent, tu_teardown),
        cmocka_unit_test_teardown(test_set_and_clear_cross_processes, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
