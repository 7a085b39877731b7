/*  test_lock.c - Lock and RLock across processes, including a holder that
    is SIGKILLed. */
#include <pthread.h>
#include <signal.h>

#include "support.h"

static int hold_and_die(void *arg)
{
    mp_lock_t *lock = arg;
    if (mp_lock_acquire(lock, -1) != 0)
        return 1;
    if (mp_lock_is_recursive(lock) && mp_lock_acquire(lock, -1) != 0)
        return 2;
    raise(SIGKILL);
    return 3;
}

static int try_once(void *arg)
{
    /* exit 0: acquired at once; 1: busy; 2: other */
    int rc = mp_lock_acquire(arg, 0);
    if (rc == 0)
        return mp_lock_release(arg) == 0 ? 0 : 2;
    return rc == MP_ETIMEDOUT ? 1 : 2;
}

static int hold_for_300ms(void *arg)
{
    mp_lock_t *lock = arg;
    if (mp_lock_acquire(lock, -1))
        return 1;
    usleep(300 * 1000);
    return mp_lock_release(lock) ? 2 : 0;
}

static void robust_after_sigkill(mp_lock_t *lock)
{
    mp_process_t *p = tu_start(hold_and_die, lock, NULL);
    assert_int_equal(tu_join(&p, 5000), -SIGKILL);
    /* the holder is dead: we get the lock, and are told */
    assert_int_equal(mp_lock_acquire(lock, 2000), MP_EOWNERDEAD);
    assert_true(mp_lock_is_owned(lock));
    assert_int_equal(mp_lock_release(lock), 0);
    /* and then it is an ordinary lock again */
    assert_int_equal(mp_lock_acquire(lock, 0), 0);
    assert_int_equal(mp_lock_release(lock), 0);
    assert_int_equal(tu_run(try_once, lock), 0);
}

static void test_lock_holder_sigkilled_is_recovered(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    robust_after_sigkill(lock);
    mp_lock_destroy(&lock);
}

static void test_rlock_holder_sigkilled_is_recovered(void **state)
{
    mp_lock_t *lock = mp_rlock_new();
    robust_after_sigkill(lock);
    mp_lock_destroy(&lock);
}

static void test_lock_excludes_other_processes(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    assert_false(mp_lock_is_recursive(lock));
    assert_int_equal(mp_lock_acquire(lock, -1), 0);
    assert_int_equal(tu_run(try_once, lock), 1);
    /* a non-recursive lock is not re-entrant: a second acquire times out */
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_lock_acquire(lock, 100), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 100, 100);
    assert_int_equal(mp_lock_release(lock), 0);
    assert_int_equal(mp_lock_release(lock), MP_EVALUE); /* too many */
    assert_int_equal(tu_run(try_once, lock), 0);
    mp_lock_destroy(&lock);
    mp_lock_destroy(&lock);
    assert_int_equal(mp_lock_acquire(NULL, 0), MP_EINVAL);
}

static void test_acquire_timeout_returns_on_time(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    mp_process_t *p = tu_start(hold_for_300ms, lock, NULL);
    /* wait until the child holds it */
    while (mp_lock_acquire(lock, 0) == 0) {
        mp_lock_release(lock);
        usleep(1000);
    }
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_lock_acquire(lock, 100), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 100, 80);
    /* a long enough timeout gets it once the child lets go */
    assert_int_equal(mp_lock_acquire(lock, 5000), 0);
    assert_int_equal(mp_lock_release(lock), 0);
    assert_int_equal(tu_join(&p, 5000), 0);
    mp_lock_destroy(&lock);
}

static void test_rlock_is_reentrant_and_counts(void **state)
{
    mp_lock_t *lock = mp_rlock_new();
    assert_true(mp_lock_is_recursive(lock));
    for (int i = 0; i < 3; i++)
        assert_int_equal(mp_lock_acquire(lock, 0), 0);
    assert_true(mp_lock_is_owned(lock));
    assert_int_equal(mp_lock_release(lock), 0);
    assert_int_equal(mp_lock_release(lock), 0);
    assert_int_equal(tu_run(try_once, lock), 1); /* still held once */
    assert_int_equal(mp_lock_release(lock), 0);
    assert_false(mp_lock_is_owned(lock));
    assert_int_equal(mp_lock_release(lock), MP_EVALUE);
    assert_int_equal(tu_run(try_once, lock), 0);
    mp_lock_destroy(&lock);
}

static void *release_from_thread(void *arg)
{
    return (void *)(intptr_t)mp_lock_release(arg);
}

static void test_release_by_non_owner_is_eperm(void **state)
{
    mp_lock_t *kinds[] = {mp_lock_new(), mp_rlock_new()};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(mp_lock_acquire(kinds[k], -1), 0);
        pthread_t t;
        void *ret;
        pthread_create(&t, NULL, release_from_thread, kinds[k]);
        pthread_join(t, &ret);
        assert_int_equal((int)(intptr_t)ret, MP_EPERM);
        assert_int_equal(mp_lock_release(kinds[k]), 0);
        mp_lock_destroy(&kinds[k]);
    }
}

struct count_arg {
    mp_lock_t *lock;
    long *counter; /* in shared memory */
};

static int add_under_lock(void *arg)
{
    struct count_arg *a = arg;
    for (int i = 0; i < 50000; i++) {
        if (mp_lock_acquire(a->lock, -1))
            return 1;
        long v = *a->counter; /* a torn read-modify-write without the lock */
        *a->counter = v + 1;
        mp_lock_release(a->lock);
    }
    return 0;
}

static void test_lock_makes_increments_exact(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    mp_value_t *raw = mp_value_new('l', NULL, &(mp_ctype_opts_t){.raw = true});
    struct count_arg a = {lock, mp_value_ptr(raw)};
    mp_process_t *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = tu_start(add_under_lock, &a, NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tu_join(&p[i], 60000), 0);
    assert_int_equal(*a.counter, 200000);
    mp_value_destroy(&raw);
    mp_lock_destroy(&lock);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_lock_holder_sigkilled_is_recovered, tu_teardown),
        cmocka_unit_test_teardown(test_rlock_holder_sigkilled_is_recovered, tu_teardown),
        cmocka_unit_test_teardown(test_lock_excludes_other_processes, tu_teardown),
        cmocka_unit_test_teardown(test_acquire_timeout_returns_on_time, tu_teardown),
        cmocka_unit_test_teardown(test_rlock_is_reentrant_and_counts, tu_teardown),
        cmocka_unit_test_teardown(test_release_by_non_owner_is_eperm, tu_teardown),
        cmocka_unit_test_teardown(test_lock_makes_increments_exact, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
