/*  test_semaphore.c - Semaphore and BoundedSemaphore across processes:
    counting, zero and timed acquires, wake-ups by another process, the
    concurrency limit, over-release. */
#include "support.h"

typedef struct {
    mp_semaphore_t *sem;
    mp_semaphore_t *done; /* released by a child after its acquire */
    mp_value_t *inside;   /* processes currently holding sem */
    mp_value_t *max_seen; /* the largest value of inside ever seen */
} sem_arg_t;

/* ---- tests ------------------------------------------------------------------ */

static void test_new_rejects_negative(void **state)
{
    assert_null(mp_semaphore_new(-1));
    assert_null(mp_bounded_semaphore_new(-1));
    mp_semaphore_t *s = mp_semaphore_new(0);
    assert_non_null(s);
    assert_int_equal(mp_semaphore_get_value(s), 0);
    mp_semaphore_destroy(&s);
    assert_null(s);
    mp_semaphore_destroy(&s); /* safe twice */
    mp_semaphore_destroy(NULL);
}

/* A child sees the parent's count and drains it; the parent sees that. */
static int drain_three(void *arg)
{
    mp_semaphore_t *s = arg;
    if (mp_semaphore_get_value(s) != 3)
        return 1;
    for (int i = 0; i < 3; i++)
        if (mp_semaphore_acquire(s, 0) != 0)
            return 2;
    if (mp_semaphore_acquire(s, 0) != MP_ETIMEDOUT)
        return 3;
    return mp_semaphore_get_value(s) == 0 ? 0 : 4;
}

static void test_value_counts_down_and_up(void **state)
{
    mp_semaphore_t *s = mp_semaphore_new(5);
    assert_int_equal(mp_semaphore_get_value(s), 5);
    assert_int_equal(mp_semaphore_acquire(s, 0), 0);
    assert_int_equal(mp_semaphore_get_value(s), 4);
    assert_int_equal(mp_semaphore_acquire(s, -1), 0); /* available: no wait */
    assert_int_equal(mp_semaphore_get_value(s), 3);
    assert_int_equal(tu_run(drain_three, s), 0);
    assert_int_equal(mp_semaphore_get_value(s), 0); /* the child's acquires */
    assert_int_equal(mp_semaphore_release(s), 0);
    assert_int_equal(mp_semaphore_get_value(s), 1);
    assert_int_equal(mp_semaphore_release(s), 0);
    assert_int_equal(mp_semaphore_get_value(s), 2);
    mp_semaphore_destroy(&s);
}

static void test_acquire_zero_timeout_is_immediate(void **state)
{
    mp_semaphore_t *s = mp_semaphore_new(1);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_acquire(s, 0), 0);
    assert_int_equal(mp_semaphore_acquire(s, 0), MP_ETIMEDOUT);
    assert_int_equal(mp_semaphore_acquire(s, 0), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 0, 20);
    assert_int_equal(mp_semaphore_get_value(s), 0); /* a failed acquire takes nothing */
    mp_semaphore_destroy(&s);
}

static void test_timed_acquire_times_out(void **state)
{
    mp_semaphore_t *s = mp_semaphore_new(0);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_acquire(s, 200), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 200, 150);
    assert_int_equal(mp_semaphore_get_value(s), 0);
    /* a release in between makes the next timed acquire succeed at once */
    assert_int_equal(mp_semaphore_release(s), 0);
    t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_acquire(s, 200), 0);
    TU_ASSERT_ELAPSED(t0, 0, 20);
    mp_semaphore_destroy(&s);
}

static int release_after_100ms(void *arg)
{
    usleep(100 * 1000);
    return mp_semaphore_release(arg) == 0 ? 0 : 1;
}

static void test_release_in_child_wakes_parent(void **state)
{
    mp_semaphore_t *s = mp_semaphore_new(0);
    mp_process_t *p;
    tu_start_n(&p, 1, release_after_100ms, s);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_acquire(s, 3000), 0);
    TU_ASSERT_ELAPSED(t0, 100, 400);
    assert_int_equal(mp_semaphore_get_value(s), 0); /* we took the child's release */
    int code;
    assert_int_equal(tu_join_n(&p, 1, 3000, &code), 1);
    assert_int_equal(code, 0);
    mp_semaphore_destroy(&s);
}

static int acquire_then_report(void *arg)
{
    sem_arg_t *a = arg;
    int rc = mp_semaphore_acquire(a->sem, 3000);
    mp_semaphore_release(a->done);
    return rc == 0 ? 0 : 1;
}

/* Two children wait on Semaphore(0): each release by the parent lets
   exactly one of them through. */
static void test_each_release_wakes_one_child(void **state)
{
    sem_arg_t a = {.sem = mp_semaphore_new(0), .done = mp_semaphore_new(0)};
    mp_process_t *ps[2];
    tu_start_n(ps, 2, acquire_then_report, &a);
    /* each wake-up comes at once, not at the end of someone's timeout */
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_release(a.sem), 0);
    assert_int_equal(mp_semaphore_acquire(a.done, 2000), 0);
    TU_ASSERT_ELAPSED(t0, 0, 500);
    assert_int_equal(mp_semaphore_acquire(a.done, 150), MP_ETIMEDOUT); /* the other waits */
    assert_int_equal(mp_semaphore_get_value(a.sem), 0);
    t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_release(a.sem), 0);
    assert_int_equal(mp_semaphore_acquire(a.done, 2000), 0);
    TU_ASSERT_ELAPSED(t0, 0, 500);
    int codes[2];
    assert_int_equal(tu_join_n(ps, 2, 3000, codes), 2);
    assert_int_equal(codes[0], 0);
    assert_int_equal(codes[1], 0);
    assert_int_equal(mp_semaphore_get_value(a.sem), 0);
    mp_semaphore_destroy(&a.sem);
    mp_semaphore_destroy(&a.done);
}

static int limited_worker(void *arg)
{
    sem_arg_t *a = arg;
    if (mp_semaphore_acquire(a->sem, 5000) != 0)
        return 1;
    int64_t now_inside = mp_value_add_int(a->inside, 1);
    mp_lock_t *ml = mp_value_get_lock(a->max_seen);
    if (mp_lock_acquire(ml, 5000) != 0)
        return 2;
    if (now_inside > mp_value_get_int(a->max_seen))
        mp_value_set_int(a->max_seen, now_inside);
    mp_lock_release(ml);
    usleep(20 * 1000);
    mp_value_add_int(a->inside, -1);
    return mp_semaphore_release(a->sem) == 0 ? 0 : 3;
}

static void test_limits_concurrency_to_its_value(void **state)
{
    enum { N = 6 };
    sem_arg_t a = {.sem = mp_semaphore_new(2),
                   .inside = mp_value_new('i', NULL, NULL),
                   .max_seen = mp_value_new('i', NULL, NULL)};
    assert_non_null(a.inside);
    assert_non_null(a.max_seen);
    mp_process_t *ps[N];
    uint64_t t0 = tu_now_ms();
    tu_start_n(ps, N, limited_worker, &a);
    int codes[N];
    assert_int_equal(tu_join_n(ps, N, 5000, codes), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(codes[i], 0);
    /* 6 x 20 ms two at a time: at least 3 rounds */
    assert_true(tu_now_ms() - t0 >= 55);
    assert_int_equal(mp_value_get_int(a.max_seen), 2);
    assert_int_equal(mp_value_get_int(a.inside), 0);
    assert_int_equal(mp_semaphore_get_value(a.sem), 2);
    mp_semaphore_destroy(&a.sem);
    mp_value_destroy(&a.inside);
    mp_value_destroy(&a.max_seen);
}

static int churn_300ms(void *arg)
{
    sem_arg_t *a = arg;
    uint64_t end = tu_now_ms() + 300;
    int rc = 0;
    while (rc == 0 && tu_now_ms() < end)
        for (int i = 0; i < 100 && rc == 0; i++)
            rc = mp_semaphore_release(a->sem) || mp_semaphore_acquire(a->sem, 5000);
    mp_value_add_int(a->inside, 1); /* one more churner done */
    return rc == 0 ? 0 : 1;
}

/* acquire(0) must fail only when the value is 0, not merely because another
   process is inside release/acquire at that instant. Here the value never
   drops below 999 while 4 processes (more than the cores, so one is now and
   then preempted inside a call) release and acquire. */
static void test_zero_timeout_acquire_fails_only_at_zero(void **state)
{
    enum { N = 4 };
    sem_arg_t a = {.sem = mp_semaphore_new(1000), .inside = mp_value_new('i', NULL, NULL)};
    mp_process_t *ps[N];
    tu_start_n(ps, N, churn_300ms, &a);
    long tries = 0, timeouts = 0, other = 0;
    uint64_t give_up = tu_now_ms() + 3000;
    while (mp_value_get_int(a.inside) < N && tu_now_ms() < give_up) {
        int rc = mp_semaphore_acquire(a.sem, 0);
        tries++;
        if (rc == 0)
            mp_semaphore_release(a.sem);
        else if (rc == MP_ETIMEDOUT)
            timeouts++;
        else
            other++;
    }
    int codes[N];
    assert_int_equal(tu_join_n(ps, N, 3000, codes), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(codes[i], 0);
    if (timeouts)
        print_message("acquire(0) gave MP_ETIMEDOUT %ld times in %ld tries, value >= 999\n",
                      timeouts, tries);
    assert_true(tries > 0);
    assert_int_equal(other, 0);
    assert_int_equal(timeouts, 0);
    assert_int_equal(mp_semaphore_get_value(a.sem), 1000);
    mp_semaphore_destroy(&a.sem);
    mp_value_destroy(&a.inside);
}

static int over_release(void *arg)
{
    return mp_semaphore_release(arg) == MP_EVALUE ? 0 : 1;
}

static void test_bounded_refuses_over_release(void **state)
{
    mp_semaphore_t *b = mp_bounded_semaphore_new(2);
    assert_int_equal(mp_semaphore_release(b), MP_EVALUE);
    assert_int_equal(mp_semaphore_get_value(b), 2);
    assert_int_equal(mp_semaphore_acquire(b, 0), 0);
    assert_int_equal(mp_semaphore_acquire(b, 0), 0);
    assert_int_equal(mp_semaphore_acquire(b, 0), MP_ETIMEDOUT);
    assert_int_equal(mp_semaphore_release(b), 0);
    assert_int_equal(mp_semaphore_release(b), 0);
    assert_int_equal(mp_semaphore_release(b), MP_EVALUE);
    assert_int_equal(mp_semaphore_get_value(b), 2);
    /* the bound holds for another process too */
    assert_int_equal(tu_run(over_release, b), 0);
    assert_int_equal(mp_semaphore_get_value(b), 2);
    mp_semaphore_destroy(&b);

    /* BoundedSemaphore(0) can never be released */
    b = mp_bounded_semaphore_new(0);
    assert_non_null(b);
    assert_int_equal(mp_semaphore_release(b), MP_EVALUE);
    assert_int_equal(mp_semaphore_get_value(b), 0);
    assert_int_equal(mp_semaphore_acquire(b, 0), MP_ETIMEDOUT);
    mp_semaphore_destroy(&b);

    /* a plain Semaphore goes above its initial value */
    mp_semaphore_t *s = mp_semaphore_new(2);
    assert_int_equal(mp_semaphore_release(s), 0);
    assert_int_equal(mp_semaphore_release(s), 0);
    assert_int_equal(mp_semaphore_get_value(s), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(mp_semaphore_acquire(s, 0), 0);
    assert_int_equal(mp_semaphore_acquire(s, 0), MP_ETIMEDOUT);
    mp_semaphore_destroy(&s);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_new_rejects_negative, tu_teardown),
        cmocka_unit_test_teardown(test_value_counts_down_and_up, tu_teardown),
        cmocka_unit_test_teardown(test_acquire_zero_timeout_is_immediate, tu_teardown),
        cmocka_unit_test_teardown(test_timed_acquire_times_out, tu_teardown),
        cmocka_unit_test_teardown(test_release_in_child_wakes_parent, tu_teardown),
        cmocka_unit_test_teardown(test_each_release_wakes_one_child, tu_teardown),
        cmocka_unit_test_teardown(test_limits_concurrency_to_its_value, tu_teardown),
        cmocka_unit_test_teardown(test_zero_timeout_acquire_fails_only_at_zero, tu_teardown),
        cmocka_unit_test_teardown(test_bounded_refuses_over_release, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
