/*  test_barrier.c - Barrier across processes: arrival indices, the action
    once per cycle, reuse, timeouts that break it, abort, reset, failing
    actions, n_waiting and parties. */
#include "support.h"

/* Polls the barrier's state (not a blind sleep) until n parties wait in it.
   Nothing but polling can observe another process blocked inside wait(). */
static bool until_n_waiting(mp_barrier_t *b, int n, int timeout_ms)
{
    return TU_WAIT_UNTIL(mp_barrier_n_waiting(b) == n, timeout_ms);
}

enum { PARTIES = 4, CYCLES = 3 };

typedef struct {
    mp_barrier_t *barrier;
    mp_array_t *indices; /* [cycle * PARTIES + id]: the index wait() returned */
    mp_value_t *actions; /* how many times the action ran */
    int id;
    int cycles;
} bar_arg_t;

static int count_action(void *arg)
{
    mp_value_add_int(arg, 1);
    return 0;
}

static int failing_action(void *arg)
{
    mp_value_add_int(arg, 1);
    return 1;
}

/* Exit code: the index wait() returned, 100 + -rc for an error code that
   fits, 99 otherwise. */
static int code_of(int rc)
{
    if (rc >= 0)
        return rc;
    if (rc == MP_ETIMEDOUT)
        return 101;
    if (rc == MP_EBROKEN)
        return 102;
    return 99;
}

static int wait_3s(void *arg)
{
    return code_of(mp_barrier_wait(arg, 3000));
}

/* ---- cycles: indices, action, reuse --------------------------------------- */

static int cycle_worker(void *arg)
{
    bar_arg_t *a = arg;
    for (int c = 0; c < a->cycles; c++) {
        int r = mp_barrier_wait(a->barrier, 3000);
        if (r < 0)
            return 10 + c;
        if (mp_array_set_int(a->indices, (size_t)(c * PARTIES + a->id), r) != 0)
            return 20 + c;
        /* the action of this cycle ran before anyone left; the next
           cycle's cannot run before we arrive again */
        if (mp_value_get_int(a->actions) != c + 1)
            return 30 + c;
    }
    return 0;
}

/* PARTIES children go through `cycles` cycles of one barrier. */
static void run_cycles(int cycles)
{
    mp_value_t *actions = mp_value_new('i', NULL, NULL);
    int init[PARTIES * CYCLES];
    for (int i = 0; i < PARTIES * CYCLES; i++)
        init[i] = -1;
    mp_array_t *indices = mp_array_new('i', PARTIES * CYCLES, init, NULL);
    assert_non_null(actions);
    assert_non_null(indices);
    mp_barrier_opts_t opts = {.action = count_action, .action_arg = actions, .timeout_ms = -1};
    mp_barrier_t *b = mp_barrier_new(PARTIES, &opts);
    assert_non_null(b);

    bar_arg_t args[PARTIES];
    mp_process_t *ps[PARTIES];
    for (int i = 0; i < PARTIES; i++) {
        args[i] = (bar_arg_t){
            .barrier = b, .indices = indices, .actions = actions, .id = i, .cycles = cycles};
        tu_start_n(&ps[i], 1, cycle_worker, &args[i]);
    }
    int codes[PARTIES];
    assert_int_equal(tu_join_n(ps, PARTIES, 5000, codes), PARTIES);
    for (int i = 0; i < PARTIES; i++)
        assert_int_equal(codes[i], 0);

    for (int c = 0; c < cycles; c++) {
        int seen[PARTIES] = {0};
        for (int i = 0; i < PARTIES; i++) {
            int64_t idx = mp_array_get_int(indices, (size_t)(c * PARTIES + i));
            assert_in_range(idx, 0, PARTIES - 1);
            seen[idx]++;
        }
        for (int i = 0; i < PARTIES; i++)
            assert_int_equal(seen[i], 1); /* a permutation of 0..3 */
    }
    for (int i = cycles * PARTIES; i < PARTIES * CYCLES; i++)
        assert_int_equal(mp_array_get_int(indices, (size_t)i), -1);
    assert_int_equal(mp_value_get_int(actions), cycles);
    assert_false(mp_barrier_broken(b));
    assert_int_equal(mp_barrier_n_waiting(b), 0);
    mp_barrier_destroy(&b);
    mp_value_destroy(&actions);
    mp_array_destroy(&indices);
}

static void test_indices_are_a_permutation_and_action_runs_once(void **state)
{
    run_cycles(1);
}

static void test_reusable_for_three_cycles(void **state)
{
    run_cycles(CYCLES);
}

/* ---- parties, n_waiting ----------------------------------------------------- */

static void test_parties_and_n_waiting(void **state)
{
    assert_null(mp_barrier_new(0, NULL));
    assert_null(mp_barrier_new(-1, NULL));

    mp_barrier_t *b = mp_barrier_new(3, NULL);
    assert_non_null(b);
    assert_int_equal(mp_barrier_parties(b), 3);
    assert_int_equal(mp_barrier_n_waiting(b), 0);
    assert_false(mp_barrier_broken(b));
    mp_process_t *ps[2];
    tu_start_n(&ps[0], 1, wait_3s, b);
    assert_true(until_n_waiting(b, 1, 2000));
    tu_start_n(&ps[1], 1, wait_3s, b);
    assert_true(until_n_waiting(b, 2, 2000));
    /* we arrive last: index 2, and the two children are released */
    assert_int_equal(mp_barrier_wait(b, 3000), 2);
    int codes[2];
    assert_int_equal(tu_join_n(ps, 2, 2000, codes), 2);
    assert_int_equal(codes[0], 0); /* first to arrive */
    assert_int_equal(codes[1], 1);
    assert_int_equal(mp_barrier_n_waiting(b), 0);
    assert_int_equal(mp_barrier_parties(b), 3);
    assert_false(mp_barrier_broken(b));
    mp_barrier_destroy(&b);
    mp_barrier_destroy(&b); /* safe twice */
}

static void test_single_party_never_blocks(void **state)
{
    mp_value_t *actions = mp_value_new('i', NULL, NULL);
    mp_barrier_opts_t opts = {.action = count_action, .action_arg = actions, .timeout_ms = -1};
    mp_barrier_t *b = mp_barrier_new(1, &opts);
    uint64_t t0 = tu_now_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(mp_barrier_wait(b, 0), 0);
    TU_ASSERT_ELAPSED(t0, 0, 20);
    assert_int_equal(mp_value_get_int(actions), 3);
    /* broken: even the party that would trip it alone gets MP_EBROKEN, and
       the action does not run */
    assert_int_equal(mp_barrier_abort(b), 0);
    assert_int_equal(mp_barrier_wait(b, 0), MP_EBROKEN);
    assert_int_equal(mp_value_get_int(actions), 3);
    assert_int_equal(mp_barrier_reset(b), 0);
    assert_int_equal(mp_barrier_wait(b, 0), 0);
    assert_int_equal(mp_value_get_int(actions), 4);
    mp_barrier_destroy(&b);
    mp_value_destroy(&actions);
}

/* ---- timeouts, reset, abort --------------------------------------------------- */

static void test_timeout_breaks_barrier_until_reset(void **state)
{
    mp_barrier_t *b = mp_barrier_new(2, NULL);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_barrier_wait(b, 200), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 200, 150);
    assert_true(mp_barrier_broken(b));
    assert_int_equal(mp_barrier_n_waiting(b), 0);
    t0 = tu_now_ms();
    assert_int_equal(mp_barrier_wait(b, 1000), MP_EBROKEN);
    assert_int_equal(mp_barrier_wait(b, -1), MP_EBROKEN);
    TU_ASSERT_ELAPSED(t0, 0, 20); /* broken: no waiting at all */
    /* another process sees it broken too */
    assert_int_equal(tu_run(wait_3s, b), 102);

    assert_int_equal(mp_barrier_reset(b), 0);
    assert_false(mp_barrier_broken(b));
    assert_int_equal(mp_barrier_n_waiting(b), 0);
    /* usable again: a child and we pass it together */
    mp_process_t *p;
    tu_start_n(&p, 1, wait_3s, b);
    int mine = mp_barrier_wait(b, 3000);
    int code;
    assert_int_equal(tu_join_n(&p, 1, 3000, &code), 1);
    assert_in_range(mine, 0, 1);
    assert_int_equal(code, 1 - mine);
    assert_false(mp_barrier_broken(b));
    mp_barrier_destroy(&b);
}

static void test_default_timeout_from_opts(void **state)
{
    mp_barrier_opts_t opts = {.timeout_ms = 150};
    mp_barrier_t *b = mp_barrier_new(2, &opts);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_barrier_wait(b, MP_BARRIER_DEFAULT), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 150, 150);
    assert_true(mp_barrier_broken(b));
    mp_barrier_destroy(&b);
}

/* A timeout in one party breaks the barrier for the party already waiting
   in another process. */
static void test_timeout_breaks_other_waiters(void **state)
{
    mp_barrier_t *b = mp_barrier_new(3, NULL);
    mp_process_t *p;
    tu_start_n(&p, 1, wait_3s, b);
    assert_true(until_n_waiting(b, 1, 2000));
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_barrier_wait(b, 200), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 200, 150);
    int code;
    assert_int_equal(tu_join_n(&p, 1, 1000, &code), 1);
    assert_int_equal(code, 102); /* MP_EBROKEN, not its own timeout */
    assert_true(mp_barrier_broken(b));
    mp_barrier_destroy(&b);
}

static void test_abort_breaks_a_waiting_child(void **state)
{
    mp_barrier_t *b = mp_barrier_new(2, NULL);
    mp_process_t *p;
    tu_start_n(&p, 1, wait_3s, b);
    assert_true(until_n_waiting(b, 1, 2000));
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_barrier_abort(b), 0);
    int code;
    assert_int_equal(tu_join_n(&p, 1, 1000, &code), 1);
    TU_ASSERT_ELAPSED(t0, 0, 500);
    assert_int_equal(code, 102);
    assert_true(mp_barrier_broken(b));
    assert_int_equal(mp_barrier_wait(b, 1000), MP_EBROKEN);
    assert_int_equal(mp_barrier_reset(b), 0);
    assert_false(mp_barrier_broken(b));
    assert_int_equal(mp_barrier_n_waiting(b), 0);
    mp_barrier_destroy(&b);
}

static void test_reset_releases_a_waiting_child(void **state)
{
    mp_barrier_t *b = mp_barrier_new(2, NULL);
    mp_process_t *p;
    tu_start_n(&p, 1, wait_3s, b);
    assert_true(until_n_waiting(b, 1, 2000));
    assert_int_equal(mp_barrier_reset(b), 0);
    int code;
    assert_int_equal(tu_join_n(&p, 1, 1000, &code), 1);
    assert_int_equal(code, 102);
    /* once the waiter has left, the barrier is whole and empty again */
    assert_false(mp_barrier_broken(b));
    assert_int_equal(mp_barrier_n_waiting(b), 0);
    tu_start_n(&p, 1, wait_3s, b);
    int mine = mp_barrier_wait(b, 3000);
    assert_int_equal(tu_join_n(&p, 1, 3000, &code), 1);
    assert_in_range(mine, 0, 1);
    assert_int_equal(code, 1 - mine);
    mp_barrier_destroy(&b);
}

static void test_failing_action_breaks_barrier(void **state)
{
    enum { N = 3 };
    mp_value_t *actions = mp_value_new('i', NULL, NULL);
    mp_barrier_opts_t opts = {.action = failing_action, .action_arg = actions, .timeout_ms = -1};
    mp_barrier_t *b = mp_barrier_new(N, &opts);
    mp_process_t *ps[N];
    tu_start_n(ps, N, wait_3s, b);
    int codes[N];
    assert_int_equal(tu_join_n(ps, N, 3000, codes), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(codes[i], 102); /* every party, the action's runner too */
    assert_int_equal(mp_value_get_int(actions), 1);
    assert_true(mp_barrier_broken(b));
    assert_int_equal(mp_barrier_wait(b, 0), MP_EBROKEN);
    assert_int_equal(mp_value_get_int(actions), 1);
    mp_barrier_destroy(&b);
    mp_value_destroy(&actions);
}

/* reset() "returns the barrier to its empty, unbroken state": also after a
   party was SIGKILLed inside wait(), which never leaves. Then two live
   parties must pass it together. */
static void test_reset_after_a_party_died_in_wait(void **state)
{
    mp_barrier_t *b = mp_barrier_new(2, NULL);
    mp_process_t *victim;
    tu_start_n(&victim, 1, wait_3s, b);
    assert_true(until_n_waiting(b, 1, 2000));
    assert_int_equal(mp_process_kill(victim), 0);
    assert_int_equal(mp_process_join(victim, 3000), 0);
    mp_process_destroy(&victim);

    assert_int_equal(mp_barrier_reset(b), 0);
    assert_false(mp_barrier_broken(b));
    assert_int_equal(mp_barrier_n_waiting(b), 0);
    mp_process_t *p;
    tu_start_n(&p, 1, wait_3s, b);
    int mine = mp_barrier_wait(b, 1000);
    int code;
    int ended = tu_join_n(&p, 1, 4000, &code);
    /* everything is reaped: now judge */
    assert_int_equal(ended, 1);
    assert_in_range(mine, 0, 1); /* not MP_ETIMEDOUT */
    assert_int_equal(code, 1 - mine);
    mp_barrier_destroy(&b);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_indices_are_a_permutation_and_action_runs_once, tu_teardown),
        cmocka_unit_test_teardown(test_reusable_for_three_cycles, tu_teardown),
        cmocka_unit_test_teardown(test_parties_and_n_waiting, tu_teardown),
        cmocka_unit_test_teardown(test_single_party_never_blocks, tu_teardown),
        cmocka_unit_test_teardown(test_timeout_breaks_barrier_until_reset, tu_teardown),
        cmocka_unit_test_teardown(test_default_timeout_from_opts, tu_teardown),
        cmocka_unit_test_teardown(test_timeout_breaks_other_waiters, tu_teardown),
        cmocka_unit_test_teardown(test_abort_breaks_a_waiting_child, tu_teardown),
        cmocka_unit_test_teardown(test_reset_releases_a_waiting_child, tu_teardown),
        cmocka_unit_test_teardown(test_failing_action_breaks_barrier, tu_teardown),
        cmocka_unit_test_teardown(test_reset_after_a_party_died_in_wait, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
