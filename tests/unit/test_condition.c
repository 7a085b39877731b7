/*  test_condition.c - Condition across processes: wait_for on a shared
    predicate, timeouts that give the lock back, MP_EPERM without the lock,
    notify(n) and notify_all, over a Lock and over the default RLock. */
#include "support.h"

/* Whether process pid sleeps in the kernel (state S in /proc). */
static bool sleeping(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] == 'S';
}

/* Polls /proc until process pid sleeps in the kernel: past the user-space
   spinning a condition wait does before it blocks. */
static bool until_sleeping(int pid, int timeout_ms)
{
    return TU_WAIT_UNTIL(sleeping(pid), timeout_ms);
}

typedef struct {
    mp_condition_t *cond;
    mp_semaphore_t *ready;   /* released by a child while it holds the lock */
    mp_semaphore_t *checked; /* released at every predicate evaluation */
    mp_semaphore_t *woken;   /* released by a child once its wait returned */
    mp_semaphore_t *go;      /* released by the parent to let a child go on */
    mp_value_t *value;       /* the shared state the predicate looks at */
    mp_value_t *count;       /* counts predicate evaluations or wake-ups */
} cond_arg_t;

static void arg_init(cond_arg_t *a, mp_lock_t *lock)
{
    a->cond = mp_condition_new(lock);
    a->ready = mp_semaphore_new(0);
    a->checked = mp_semaphore_new(0);
    a->woken = mp_semaphore_new(0);
    a->go = mp_semaphore_new(0);
    a->value = mp_value_new('i', NULL, NULL);
    a->count = mp_value_new('i', NULL, NULL);
    assert_non_null(a->cond);
    assert_non_null(a->ready);
    assert_non_null(a->checked);
    assert_non_null(a->woken);
    assert_non_null(a->go);
    assert_non_null(a->value);
    assert_non_null(a->count);
}

static void arg_free(cond_arg_t *a)
{
    mp_condition_destroy(&a->cond);
    mp_semaphore_destroy(&a->ready);
    mp_semaphore_destroy(&a->checked);
    mp_semaphore_destroy(&a->woken);
    mp_semaphore_destroy(&a->go);
    mp_value_destroy(&a->value);
    mp_value_destroy(&a->count);
}

static bool always_false(void *arg)
{
    (void)arg;
    return false;
}

static bool always_true(void *arg)
{
    (void)arg;
    return true;
}

static bool value_nonzero(void *arg)
{
    return mp_value_get_int(arg) != 0;
}

/* ---- wait_for on a shared predicate ------------------------------------------ */

/* value >= 3; counts and announces every evaluation. */
static bool value_reached_3(void *arg)
{
    cond_arg_t *a = arg;
    mp_value_add_int(a->count, 1);
    mp_semaphore_release(a->checked);
    return mp_value_get_int(a->value) >= 3;
}

static int wait_for_value_3(void *arg)
{
    cond_arg_t *a = arg;
    if (mp_condition_acquire(a->cond, 3000) != 0)
        return 1;
    mp_semaphore_release(a->ready);
    int rc = mp_condition_wait_for(a->cond, value_reached_3, a, 3000);
    int64_t seen = mp_value_get_int(a->value);
    int owned = mp_lock_is_owned(mp_condition_lock(a->cond));
    if (mp_condition_release(a->cond) != 0)
        return 2;
    if (rc != 0)
        return 3;
    if (!owned)
        return 4;
    return seen == 3 ? 0 : 10 + (int)seen;
}

/* The parent moves the value 1, 2, 3 with a notify each time; the child's
   wait_for re-checks after each and returns only at 3. */
static void test_wait_for_predicate_set_by_other_process(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    cond_arg_t a;
    arg_init(&a, lock);
    mp_process_t *p;
    tu_start_n(&p, 1, wait_for_value_3, &a);
    assert_int_equal(mp_semaphore_acquire(a.ready, 3000), 0);
    assert_int_equal(mp_semaphore_acquire(a.checked, 3000), 0); /* first check: 0 */
    for (int v = 1; v <= 3; v++) {
        /* we get the lock only once the child waits again */
        assert_int_equal(mp_condition_acquire(a.cond, 3000), 0);
        assert_int_equal(mp_value_set_int(a.value, v), 0);
        assert_int_equal(mp_condition_notify(a.cond, 1), 0);
        assert_int_equal(mp_condition_release(a.cond), 0);
        assert_int_equal(mp_semaphore_acquire(a.checked, 3000), 0);
    }
    int code;
    assert_int_equal(tu_join_n(&p, 1, 3000, &code), 1);
    assert_int_equal(code, 0);
    assert_int_equal(mp_value_get_int(a.count), 4); /* 0, 1, 2, 3 */
    arg_free(&a);
    mp_lock_destroy(&lock);
}

/* ---- timeouts ------------------------------------------------------------------ */

static int try_lock_now(void *arg)
{
    return mp_lock_acquire(arg, 0) == MP_ETIMEDOUT ? 0 : 1;
}

/* Held depth times: timed waits return MP_ETIMEDOUT on time with the lock
   held again at the same depth (another process cannot take it). */
static void timeouts_keep_lock(mp_condition_t *cond, int depth)
{
    mp_lock_t *lock = mp_condition_lock(cond);
    for (int i = 0; i < depth; i++)
        assert_int_equal(mp_condition_acquire(cond, 0), 0);

    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_condition_wait(cond, 200), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 200, 150);
    assert_true(mp_lock_is_owned(lock));
    assert_int_equal(tu_run(try_lock_now, lock), 0);

    t0 = tu_now_ms();
    assert_int_equal(mp_condition_wait_for(cond, always_false, NULL, 200), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 200, 150);
    assert_true(mp_lock_is_owned(lock));

    t0 = tu_now_ms();
    assert_int_equal(mp_condition_wait(cond, 0), MP_ETIMEDOUT);
    assert_int_equal(mp_condition_wait_for(cond, always_false, NULL, 0), MP_ETIMEDOUT);
    assert_int_equal(mp_condition_wait_for(cond, always_true, NULL, 0), 0);
    assert_int_equal(mp_condition_wait_for(cond, always_true, NULL, -1), 0);
    TU_ASSERT_ELAPSED(t0, 0, 20);
    assert_true(mp_lock_is_owned(lock));
    assert_int_equal(tu_run(try_lock_now, lock), 0);

    for (int i = 0; i < depth; i++)
        assert_int_equal(mp_condition_release(cond), 0);
    assert_false(mp_lock_is_owned(lock));
    assert_int_equal(mp_condition_release(cond), MP_EVALUE);
}

static void test_wait_timeout_returns_with_lock_held(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    mp_condition_t *cond = mp_condition_new(lock);
    assert_ptr_equal(mp_condition_lock(cond), lock);
    timeouts_keep_lock(cond, 1);
    mp_condition_destroy(&cond);
    mp_lock_destroy(&lock);

    cond = mp_condition_new(NULL);
    timeouts_keep_lock(cond, 2);
    mp_condition_destroy(&cond);
}

/* ---- MP_EPERM ------------------------------------------------------------------- */

static void calls_without_lock_are_eperm(mp_condition_t *cond)
{
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_condition_notify(cond, 1), MP_EPERM);
    assert_int_equal(mp_condition_notify_all(cond), MP_EPERM);
    assert_int_equal(mp_condition_wait(cond, 500), MP_EPERM);
    assert_int_equal(mp_condition_wait(cond, -1), MP_EPERM);
    assert_int_equal(mp_condition_wait_for(cond, always_false, NULL, 500), MP_EPERM);
    /* the predicate is evaluated with the lock held only: no lock, no answer */
    assert_int_equal(mp_condition_wait_for(cond, always_true, NULL, 500), MP_EPERM);
    TU_ASSERT_ELAPSED(t0, 0, 20); /* none of them waited */
}

static int hold_lock_until_go(void *arg)
{
    cond_arg_t *a = arg;
    if (mp_condition_acquire(a->cond, 3000) != 0)
        return 1;
    mp_semaphore_release(a->ready);
    int rc = mp_semaphore_acquire(a->go, 3000);
    if (mp_condition_release(a->cond) != 0)
        return 2;
    return rc == 0 ? 0 : 3;
}

static void test_calls_without_the_lock_are_eperm(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    cond_arg_t a;
    arg_init(&a, lock);
    calls_without_lock_are_eperm(a.cond); /* nobody holds it */

    /* another process holds it: still not ours */
    mp_process_t *p;
    tu_start_n(&p, 1, hold_lock_until_go, &a);
    assert_int_equal(mp_semaphore_acquire(a.ready, 3000), 0);
    calls_without_lock_are_eperm(a.cond);
    assert_int_equal(mp_condition_release(a.cond), MP_EPERM);
    assert_int_equal(mp_condition_acquire(a.cond, 0), MP_ETIMEDOUT);
    assert_int_equal(mp_semaphore_release(a.go), 0);
    int code;
    assert_int_equal(tu_join_n(&p, 1, 3000, &code), 1);
    assert_int_equal(code, 0);
    arg_free(&a);
    mp_lock_destroy(&lock);

    /* the default RLock too */
    mp_condition_t *cond = mp_condition_new(NULL);
    calls_without_lock_are_eperm(cond);
    assert_int_equal(mp_condition_notify(cond, -1), MP_EINVAL);
    mp_condition_destroy(&cond);
}

/* ---- notify_all and notify(n) --------------------------------------------------- */

static int wait_flag_then_count(void *arg)
{
    cond_arg_t *a = arg;
    if (mp_condition_acquire(a->cond, 3000) != 0)
        return 1;
    /* released under the lock: the parent gets the lock once we wait */
    mp_semaphore_release(a->ready);
    int rc = mp_condition_wait_for(a->cond, value_nonzero, a->value, 3000);
    int owned = mp_lock_is_owned(mp_condition_lock(a->cond));
    mp_value_add_int(a->count, 1);
    if (mp_condition_release(a->cond) != 0)
        return 2;
    return rc == 0 && owned ? 0 : 3;
}

static void test_notify_all_wakes_every_process(void **state)
{
    enum { N = 3 };
    mp_lock_t *lock = mp_lock_new();
    cond_arg_t a;
    arg_init(&a, lock);
    mp_process_t *ps[N];
    tu_start_n(ps, N, wait_flag_then_count, &a);
    for (int i = 0; i < N; i++)
        assert_int_equal(mp_semaphore_acquire(a.ready, 3000), 0);
    assert_int_equal(mp_condition_acquire(a.cond, 3000), 0); /* all 3 wait now */
    assert_int_equal(mp_value_get_int(a.count), 0);
    assert_int_equal(mp_value_set_int(a.value, 1), 0);
    assert_int_equal(mp_condition_notify_all(a.cond), 0);
    assert_int_equal(mp_condition_release(a.cond), 0);
    /* well before the children's own 3 s timeout */
    int codes[N];
    assert_int_equal(tu_join_n(ps, N, 1500, codes), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(codes[i], 0);
    assert_int_equal(mp_value_get_int(a.count), N);
    arg_free(&a);
    mp_lock_destroy(&lock);
}

static int wait_once(void *arg)
{
    cond_arg_t *a = arg;
    if (mp_condition_acquire(a->cond, 3000) != 0)
        return 1;
    mp_semaphore_release(a->ready);
    int rc = mp_condition_wait(a->cond, 3000);
    mp_semaphore_release(a->woken);
    if (mp_condition_release(a->cond) != 0)
        return 2;
    return rc == 0 ? 0 : 3;
}

static void notify_and_release(mp_condition_t *cond, int n)
{
    assert_int_equal(mp_condition_acquire(cond, 3000), 0);
    assert_int_equal(mp_condition_notify(cond, n), 0);
    assert_int_equal(mp_condition_release(cond), 0);
}

/* Three processes in a single wait(): notify(0) wakes none, notify(1)
   exactly one, notify(2) the other two. */
static void test_notify_n_wakes_exactly_n(void **state)
{
    enum { N = 3 };
    cond_arg_t a;
    arg_init(&a, NULL); /* default RLock */
    mp_process_t *ps[N];
    tu_start_n(ps, N, wait_once, &a);
    for (int i = 0; i < N; i++)
        assert_int_equal(mp_semaphore_acquire(a.ready, 3000), 0);
    notify_and_release(a.cond, 0);
    assert_int_equal(mp_semaphore_acquire(a.woken, 100), MP_ETIMEDOUT);
    notify_and_release(a.cond, 1);
    assert_int_equal(mp_semaphore_acquire(a.woken, 2000), 0);
    assert_int_equal(mp_semaphore_acquire(a.woken, 150), MP_ETIMEDOUT);
    notify_and_release(a.cond, 2);
    assert_int_equal(mp_semaphore_acquire(a.woken, 2000), 0);
    assert_int_equal(mp_semaphore_acquire(a.woken, 2000), 0);
    int codes[N];
    assert_int_equal(tu_join_n(ps, N, 2000, codes), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(codes[i], 0);
    arg_free(&a);
}

/* ---- the wait releases the lock fully, and restores it -------------------------- */

static int take_lock_set_notify(void *arg)
{
    cond_arg_t *a = arg;
    if (mp_condition_acquire(a->cond, 1000) != 0)
        return 1; /* the waiter did not release the lock */
    mp_value_set_int(a->value, 1);
    int rc = mp_condition_notify(a->cond, 1);
    if (mp_condition_release(a->cond) != 0)
        return 2;
    return rc == 0 ? 0 : 3;
}

/* The parent holds the condition's lock depth times and waits; a child
   must be able to take the lock meanwhile; afterwards the depth is back. */
static void wait_hands_lock_over(mp_lock_t *explicit_lock, int depth)
{
    cond_arg_t a;
    arg_init(&a, explicit_lock);
    mp_lock_t *lock = mp_condition_lock(a.cond);
    if (explicit_lock)
        assert_ptr_equal(lock, explicit_lock);
    else
        assert_true(mp_lock_is_recursive(lock));
    for (int i = 0; i < depth; i++)
        assert_int_equal(mp_condition_acquire(a.cond, 0), 0);
    mp_process_t *p;
    tu_start_n(&p, 1, take_lock_set_notify, &a);
    assert_int_equal(mp_condition_wait_for(a.cond, value_nonzero, a.value, 3000), 0);
    assert_int_equal(mp_value_get_int(a.value), 1);
    int code;
    assert_int_equal(tu_join_n(&p, 1, 3000, &code), 1);
    assert_int_equal(code, 0);
    /* depth restored: depth releases, then the next is MP_EVALUE */
    for (int i = 0; i < depth; i++) {
        assert_true(mp_lock_is_owned(lock));
        assert_int_equal(mp_condition_release(a.cond), 0);
    }
    assert_false(mp_lock_is_owned(lock));
    assert_int_equal(mp_condition_release(a.cond), MP_EVALUE);
    arg_free(&a);
}

static void test_over_explicit_lock(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    assert_false(mp_lock_is_recursive(lock));
    wait_hands_lock_over(lock, 1);
    mp_lock_destroy(&lock);
}

static void test_over_default_rlock_held_twice(void **state)
{
    wait_hands_lock_over(NULL, 2);
}

static void test_over_explicit_rlock_held_three_times(void **state)
{
    mp_lock_t *lock = mp_rlock_new();
    wait_hands_lock_over(lock, 3);
    mp_lock_destroy(&lock);
}

/* ---- no lost wake-up -------------------------------------------------------------- */

enum { ROUNDS = 20000 };

static bool is_turn_0(void *arg)
{
    return mp_value_get_int(arg) == 0;
}

static bool is_turn_1(void *arg)
{
    return mp_value_get_int(arg) == 1;
}

/* Waits for turn `mine`, hands the turn to the other side, ROUNDS times.
   Returns how many rounds completed; a lost wake-up stops it at a timeout. */
static int ping_pong(cond_arg_t *a, int mine)
{
    mp_predicate_fn *my_turn = mine ? is_turn_1 : is_turn_0;
    int done = 0;
    for (; done < ROUNDS; done++) {
        if (mp_condition_acquire(a->cond, 1000) != 0)
            break;
        int rc = mp_condition_wait_for(a->cond, my_turn, a->value, 500);
        if (rc == 0) {
            mp_value_set_int(a->value, !mine);
            rc = mp_condition_notify(a->cond, 1);
        }
        mp_condition_release(a->cond);
        if (rc != 0)
            break;
    }
    return done;
}

static int pong(void *arg)
{
    return ping_pong(arg, 1) == ROUNDS ? 0 : 1;
}

/* Two processes hand a turn back and forth: every notify must reach the
   other side, also when it comes just as the waiter gives up the lock. */
static void test_ping_pong_loses_no_wakeup(void **state)
{
    mp_lock_t *lock = mp_lock_new();
    cond_arg_t a;
    arg_init(&a, lock);
    mp_process_t *p;
    tu_start_n(&p, 1, pong, &a);
    int done = ping_pong(&a, 0);
    int code;
    int ended = tu_join_n(&p, 1, 2000, &code);
    assert_int_equal(done, ROUNDS);
    assert_int_equal(ended, 1);
    assert_int_equal(code, 0);
    arg_free(&a);
    mp_lock_destroy(&lock);
}

/* ---- a waiter killed inside wait() ------------------------------------------------ */

static int notify_all_once(void *arg)
{
    cond_arg_t *a = arg;
    if (mp_condition_acquire(a->cond, 1000) != 0)
        return 1;
    int rc = mp_condition_notify_all(a->cond);
    if (mp_condition_release(a->cond) != 0)
        return 2;
    return rc == 0 ? 0 : 3;
}

/* Starts one wait_once child and returns once it blocks in the wait. */
static mp_process_t *start_blocked_waiter(cond_arg_t *a)
{
    mp_process_t *p;
    tu_start_n(&p, 1, wait_once, a);
    assert_int_equal(mp_semaphore_acquire(a->ready, 3000), 0);
    assert_int_equal(mp_condition_acquire(a->cond, 3000), 0); /* it waits now */
    assert_int_equal(mp_condition_release(a->cond), 0);
    assert_true(until_sleeping(mp_process_pid(p), 2000));
    return p;
}

/* A process SIGKILLed while blocked in wait() must not take the others
   with it: later notifies return, later waiters wake (the promise lock.h
   makes for a dead lock holder, cpython gh-88304). The notifies run in
   children so that a hang costs a kill, not this test program. */
static void test_waiter_killed_in_wait_does_not_block_others(void **state)
{
    cond_arg_t a;
    arg_init(&a, NULL);
    mp_process_t *victim = start_blocked_waiter(&a);
    assert_int_equal(mp_process_kill(victim), 0);
    assert_int_equal(mp_process_join(victim, 3000), 0);
    mp_process_destroy(&victim);

    mp_process_t *n1, *n2, *live;
    int n1_code, n2_code, live_code;
    tu_start_n(&n1, 1, notify_all_once, &a); /* wakes nobody alive */
    int n1_ended = tu_join_n(&n1, 1, 1500, &n1_code);
    live = start_blocked_waiter(&a);
    tu_start_n(&n2, 1, notify_all_once, &a); /* must wake live */
    int n2_ended = tu_join_n(&n2, 1, 1500, &n2_code);
    int live_ended = tu_join_n(&live, 1, 1500, &live_code);
    /* everything is reaped: now judge */
    assert_int_equal(n1_ended, 1);
    assert_int_equal(n1_code, 0);
    assert_int_equal(n2_ended, 1); /* glibc pshared pthread_cond_t: blocked here forever */
    assert_int_equal(n2_code, 0);
    assert_int_equal(live_ended, 1);
    assert_int_equal(live_code, 0);
    arg_free(&a);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_wait_for_predicate_set_by_other_process, tu_teardown),
        cmocka_unit_test_teardown(test_wait_timeout_returns_with_lock_held, tu_teardown),
        cmocka_unit_test_teardown(test_calls_without_the_lock_are_eperm, tu_teardown),
        cmocka_unit_test_teardown(test_notify_all_wakes_every_process, tu_teardown),
        cmocka_unit_test_teardown(test_notify_n_wakes_exactly_n, tu_teardown),
        cmocka_unit_test_teardown(test_over_explicit_lock, tu_teardown),
        cmocka_unit_test_teardown(test_over_default_rlock_held_twice, tu_teardown),
        cmocka_unit_test_teardown(test_over_explicit_rlock_held_three_times, tu_teardown),
        cmocka_unit_test_teardown(test_ping_pong_loses_no_wakeup, tu_teardown),
        cmocka_unit_test_teardown(test_waiter_killed_in_wait_does_not_block_others, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
