/*  conformance_sync.c - CPython's _TestLock, _TestSemaphore and _TestEvent
    (Lib/test/_test_multiprocessing.py, 3.11) ported to mp/lock.h,
    semaphore.h and event.h. _TestCondition is in conformance_condition.c,
    _TestBarrier in conformance_barrier.c (one table: sync.rows.md).

    The forms (processes, then threads), the bounded waits and the timing
    slack are those of crew.h.
*/
#include "crew.h"

/* ---- _TestLock ---------------------------------------------------------------------------- */

/* test_lock: acquire, a non-blocking acquire fails (timeout 0 is
   Python's block=False), release, and a second release is an error
   (ValueError -> MP_EVALUE). */
static void conformance_sync_test_lock(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    assert_non_null(lock);
    assert_int_equal(mp_lock_acquire(lock, -1), 0);
    assert_int_equal(mp_lock_acquire(lock, 0), MP_ETIMEDOUT);
    assert_int_equal(mp_lock_release(lock), 0);
    assert_int_equal(mp_lock_release(lock), MP_EVALUE);
    mp_lock_destroy(&lock);
}

/* test_rlock: three acquires, three releases, and a fourth release is an
   error (AssertionError/RuntimeError -> MP_EVALUE: not held by anyone). */
static void conformance_sync_test_rlock(void **state)
{
    mp_lock_t *lock = mp_rlock_new();
    assert_non_null(lock);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mp_lock_acquire(lock, -1), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mp_lock_release(lock), 0);
    assert_int_equal(mp_lock_release(lock), MP_EVALUE);
    mp_lock_destroy(&lock);
}

/* test_lock_context: `with Lock(): pass`; C has no with-statement, so it
   is the acquire/release pair it stands for, both succeeding. */
static void conformance_sync_test_lock_context(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    assert_int_equal(mp_lock_acquire(lock, -1), 0);
    assert_int_equal(mp_lock_release(lock), 0);
    mp_lock_destroy(&lock);
}

/* ---- _TestSemaphore ----------------------------------------------------------------------- */

/* CPython's _test_semaphore on a semaphore of value 2. */
static void check_semaphore(mp_semaphore_t *sem)
{
    assert_int_equal(mp_semaphore_get_value(sem), 2);
    assert_int_equal(mp_semaphore_acquire(sem, -1), 0);
    assert_int_equal(mp_semaphore_get_value(sem), 1);
    assert_int_equal(mp_semaphore_acquire(sem, -1), 0);
    assert_int_equal(mp_semaphore_get_value(sem), 0);
    assert_int_equal(mp_semaphore_acquire(sem, 0), MP_ETIMEDOUT);
    assert_int_equal(mp_semaphore_get_value(sem), 0);
    assert_int_equal(mp_semaphore_release(sem), 0);
    assert_int_equal(mp_semaphore_get_value(sem), 1);
    assert_int_equal(mp_semaphore_release(sem), 0);
    assert_int_equal(mp_semaphore_get_value(sem), 2);
}

/* test_semaphore: the sequence above, then releases past the initial
   value go on counting (3, 4). */
static void conformance_sync_test_semaphore(void **state)
{
    mp_semaphore_t *sem = mp_semaphore_new(2);
    assert_non_null(sem);
    check_semaphore(sem);
    assert_int_equal(mp_semaphore_release(sem), 0);
    assert_int_equal(mp_semaphore_get_value(sem), 3);
    assert_int_equal(mp_semaphore_release(sem), 0);
    assert_int_equal(mp_semaphore_get_value(sem), 4);
    mp_semaphore_destroy(&sem);
}

/* test_bounded_semaphore: the same sequence on a BoundedSemaphore(2)
   (CPython leaves its over-release check commented out, so do we). */
static void conformance_sync_test_bounded_semaphore(void **state)
{
    mp_semaphore_t *sem = mp_bounded_semaphore_new(2);
    assert_non_null(sem);
    check_semaphore(sem);
    mp_semaphore_destroy(&sem);
}

/* _TestSemaphore.test_timeout: acquiring Semaphore(0) fails at once when
   not blocking (block=False ignores the timeout, so it is timeout 0 here)
   and after the timeout when blocking. */
static void conformance_sync_semaphore_test_timeout(void **state)
{
    mp_semaphore_t *sem = mp_semaphore_new(0);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_acquire(sem, 0), MP_ETIMEDOUT); /* acquire(False) */
    TU_ASSERT_ELAPSED(t0, 0, 50);
    t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_acquire(sem, 0), MP_ETIMEDOUT); /* acquire(False, None) */
    TU_ASSERT_ELAPSED(t0, 0, 50);
    t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_acquire(sem, 0), MP_ETIMEDOUT); /* acquire(False, TIMEOUT1) */
    TU_ASSERT_ELAPSED(t0, 0, 50);
    t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_acquire(sem, TIMEOUT2_MS), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, TIMEOUT2_MS, SLACK_MS);
    t0 = tu_now_ms();
    assert_int_equal(mp_semaphore_acquire(sem, TIMEOUT3_MS), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, TIMEOUT3_MS, SLACK_MS);
    mp_semaphore_destroy(&sem);
}

/* ---- _TestEvent --------------------------------------------------------------------------- */

static int event_setter(void *arg)
{
    usleep(TIMEOUT2_MS * 1000);
    return mp_event_set(arg) == 0 ? 0 : 1;
}

static void event_form(enum form form)
{
    mp_event_t *event = mp_event_new();
    assert_non_null(event);
    assert_false(mp_event_is_set(event));
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_event_wait(event, 0), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 0, 50);
    t0 = tu_now_ms();
    assert_int_equal(mp_event_wait(event, TIMEOUT1_MS), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, TIMEOUT1_MS, SLACK_MS);

    assert_int_equal(mp_event_set(event), 0);
    assert_true(mp_event_is_set(event));
    t0 = tu_now_ms();
    assert_int_equal(mp_event_wait(event, BOUND_MS), 0);
    TU_ASSERT_ELAPSED(t0, 0, 50);
    t0 = tu_now_ms();
    assert_int_equal(mp_event_wait(event, TIMEOUT1_MS), 0);
    TU_ASSERT_ELAPSED(t0, 0, 50);

    assert_int_equal(mp_event_clear(event), 0);
    crew_t crew = {0};
    crew_add(&crew, form, event_setter, event);
    assert_int_equal(mp_event_wait(event, BOUND_MS), 0);
    crew_join(&crew, 5000);
    mp_event_destroy(&event);
}

/* test_event: wait() with and without timeouts on a clear and a set
   event (False -> MP_ETIMEDOUT, True -> 0), then a wait ended by a set()
   from another process. */
static void conformance_sync_test_event(void **state)
{
    event_form(PROCESSES);
    event_form(THREADS);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    /* Not carried over (see sync.rows.md): _TestEvent.test_repr. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(conformance_sync_test_lock, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_rlock, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_lock_context, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_semaphore, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_bounded_semaphore, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_semaphore_test_timeout, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_event, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
