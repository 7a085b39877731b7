/*  conformance_barrier.c - CPython's _TestBarrier
    (Lib/test/_test_multiprocessing.py, 3.11) ported to mp/barrier.h; the
    rows are in sync.rows.md. Each test runs its N parties as processes,
    then as threads.

    The forms (processes, then threads), the bounded waits and the timing
    slack are those of crew.h.
*/
#include "crew.h"

/* ---- _TestBarrier ------------------------------------------------------------------------- */

enum { N = 5 }; /* CPython's _TestBarrier.N */

/* CPython's default timeout is 30 s; BOUND_MS keeps a broken run short. */
static mp_barrier_t *new_barrier(int parties, int timeout_ms, mp_barrier_action_fn *action,
                                 void *action_arg)
{
    mp_barrier_opts_t opts = {.action = action, .action_arg = action_arg, .timeout_ms = timeout_ms};
    mp_barrier_t *b = mp_barrier_new(parties, &opts);
    assert_non_null(b);
    return b;
}

/* The DummyList of CPython's barrier tests: a shared counter that
   append() increments and len() reads. */
static mp_value_t *dummy_list(void)
{
    mp_value_t *v = mp_value_new('i', NULL, NULL);
    assert_non_null(v);
    return v;
}

static void append(mp_value_t *list)
{
    mp_value_add_int(list, 1);
}

static int len(mp_value_t *list)
{
    return (int)mp_value_get_int(list);
}

typedef struct {
    mp_barrier_t *barrier, *barrier2;
    mp_value_t *results[3];
    mp_array_t *counts; /* test_wait_return: how often each index came back */
    mp_lock_t *lock;
    mp_conn_t *conn;
    int passes;
} bar_arg_t;

/* CPython's run_threads: f in N - 1 processes (or threads) and in this
   one; each must return 0. */
static void run_parties(enum form form, mp_target_fn *f, bar_arg_t *a)
{
    crew_t crew = {0};
    for (int i = 0; i < N - 1; i++)
        crew_add(&crew, form, f, a);
    int mine = f(a);
    crew_join(&crew, BOUND_MS + 5000);
    assert_int_equal(mine, 0);
}

static void free_bar_arg(bar_arg_t *a)
{
    if (a->barrier)
        mp_barrier_abort(a->barrier); /* CPython's tearDown */
    mp_barrier_destroy(&a->barrier);
    mp_barrier_destroy(&a->barrier2);
    for (int i = 0; i < 3; i++)
        mp_value_destroy(&a->results[i]);
    mp_array_destroy(&a->counts);
}

/* CPython's multipass. */
static int multipass(void *arg)
{
    bar_arg_t *a = arg;
    int m = mp_barrier_parties(a->barrier);
    if (m != N)
        return 1;
    for (int i = 0; i < a->passes; i++) {
        append(a->results[0]);
        if (len(a->results[1]) != i * m)
            return 2;
        if (mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT) < 0)
            return 3;
        append(a->results[1]);
        if (len(a->results[0]) != (i + 1) * m)
            return 4;
        if (mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT) < 0)
            return 5;
    }
    if (mp_barrier_n_waiting(a->barrier) != 0)
        return 6;
    return mp_barrier_broken(a->barrier) ? 7 : 0;
}

static void barrier_passes(int passes)
{
    for (enum form form = PROCESSES; form <= THREADS; form++) {
        bar_arg_t a = {.barrier = new_barrier(N, BOUND_MS, NULL, NULL),
                       .results = {dummy_list(), dummy_list()},
                       .passes = passes};
        run_parties(form, multipass, &a);
        free_bar_arg(&a);
    }
}

/* test_barrier: five parties pass the barrier in lockstep (each sees the
   others' appends before and after every wait). */
static void conformance_sync_test_barrier(void **state)
{
    barrier_passes(1);
}

/* test_barrier_10: the same for 10 consecutive passes. */
static void conformance_sync_test_barrier_10(void **state)
{
    barrier_passes(10);
}

static int wait_return_f(void *arg)
{
    bar_arg_t *a = arg;
    int r = mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT);
    if (r < 0 || r >= N)
        return 1;
    /* Python puts r on a Queue; the parent only counts the values */
    mp_lock_t *lock = mp_array_get_lock(a->counts);
    mp_lock_acquire(lock, -1);
    int *counts = mp_array_ptr(a->counts);
    counts[r]++;
    mp_lock_release(lock);
    return 0;
}

/* test_wait_return: exactly one party gets index 0. The Queue that
   collects the indices is a shared array of counts per index. */
static void conformance_sync_test_wait_return(void **state)
{
    for (enum form form = PROCESSES; form <= THREADS; form++) {
        bar_arg_t a = {.barrier = new_barrier(N, BOUND_MS, NULL, NULL),
                       .counts = mp_array_new('i', N, NULL, NULL)};
        run_parties(form, wait_return_f, &a);
        int total = 0;
        for (int i = 0; i < N; i++)
            total += (int)mp_array_get_int(a.counts, (size_t)i);
        assert_int_equal(total, N); /* the N results Python gets */
        assert_int_equal(mp_array_get_int(a.counts, 0), 1);
        free_bar_arg(&a);
    }
}

static int append_true(void *arg)
{
    append(arg);
    return 0;
}

static int action_f(void *arg)
{
    bar_arg_t *a = arg;
    if (mp_barrier_wait(a->barrier, BOUND_MS) < 0)
        return 1;
    return len(a->results[0]) == 1 ? 0 : 2;
}

/* test_action: the action runs once, before any party leaves wait().
   (CPython's barrier here has no timeout; ours is BOUND_MS.) */
static void conformance_sync_test_action(void **state)
{
    for (enum form form = PROCESSES; form <= THREADS; form++) {
        mp_value_t *results = dummy_list();
        bar_arg_t a = {.barrier = new_barrier(N, -1, append_true, results), .results = {results}};
        run_parties(form, action_f, &a);
        assert_int_equal(len(results), 1);
        free_bar_arg(&a);
    }
}

/* CPython's _test_abort_f: the party with index N / 2 aborts instead of
   waiting again; the others must see the barrier broken. */
static int abort_f(void *arg)
{
    bar_arg_t *a = arg;
    int i = mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT);
    if (i == MP_EBROKEN) {
        append(a->results[1]);
        return 0;
    }
    if (i < 0)
        return 1;
    if (i == N / 2)
        return mp_barrier_abort(a->barrier) == 0 ? 0 : 2;
    int rc = mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT);
    if (rc >= 0)
        append(a->results[0]);
    else if (rc == MP_EBROKEN)
        append(a->results[1]);
    else
        return 3;
    return 0;
}

/* test_abort: after one party's abort(), the N - 1 others get
   BrokenBarrierError (MP_EBROKEN) and the barrier stays broken. */
static void conformance_sync_test_abort(void **state)
{
    for (enum form form = PROCESSES; form <= THREADS; form++) {
        bar_arg_t a = {.barrier = new_barrier(N, BOUND_MS, NULL, NULL),
                       .results = {dummy_list(), dummy_list()}};
        run_parties(form, abort_f, &a);
        assert_int_equal(len(a.results[0]), 0);
        assert_int_equal(len(a.results[1]), N - 1);
        assert_true(mp_barrier_broken(a.barrier));
        free_bar_arg(&a);
    }
}

/* CPython's _test_reset_f. */
static int reset_f(void *arg)
{
    bar_arg_t *a = arg;
    int i = mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT);
    if (i < 0)
        return 1;
    if (i == N / 2) {
        if (!TU_WAIT_UNTIL(mp_barrier_n_waiting(a->barrier) >= N - 1, BOUND_MS))
            return 2;
        if (mp_barrier_reset(a->barrier) != 0)
            return 3;
    } else {
        int rc = mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT);
        if (rc >= 0)
            append(a->results[0]);
        else if (rc == MP_EBROKEN)
            append(a->results[1]);
        else
            return 4;
    }
    /* now pass the barrier again */
    if (mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT) < 0)
        return 5;
    append(a->results[2]);
    return 0;
}

/* test_reset: reset() frees the N - 1 waiting parties with
   BrokenBarrierError (MP_EBROKEN), and then all N pass it again. */
static void conformance_sync_test_reset(void **state)
{
    for (enum form form = PROCESSES; form <= THREADS; form++) {
        bar_arg_t a = {.barrier = new_barrier(N, BOUND_MS, NULL, NULL),
                       .results = {dummy_list(), dummy_list(), dummy_list()}};
        run_parties(form, reset_f, &a);
        assert_int_equal(len(a.results[0]), 0);
        assert_int_equal(len(a.results[1]), N - 1);
        assert_int_equal(len(a.results[2]), N);
        free_bar_arg(&a);
    }
}

/* CPython's _test_abort_and_reset_f. */
static int abort_and_reset_f(void *arg)
{
    bar_arg_t *a = arg;
    int rc = abort_f(arg);
    if (rc)
        return rc;
    /* everyone has left barrier before the reset, nobody enters it before */
    int i = mp_barrier_wait(a->barrier2, BOUND_MS);
    if (i < 0)
        return 11;
    if (i == N / 2 && mp_barrier_reset(a->barrier) != 0)
        return 12;
    if (mp_barrier_wait(a->barrier2, BOUND_MS) < 0)
        return 13;
    if (mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT) < 0)
        return 14;
    append(a->results[2]);
    return 0;
}

/* test_abort_and_reset: a barrier broken by abort() works again after
   reset(). (barrier2 has no timeout in CPython; ours is BOUND_MS.) */
static void conformance_sync_test_abort_and_reset(void **state)
{
    for (enum form form = PROCESSES; form <= THREADS; form++) {
        bar_arg_t a = {.barrier = new_barrier(N, BOUND_MS, NULL, NULL),
                       .barrier2 = new_barrier(N, -1, NULL, NULL),
                       .results = {dummy_list(), dummy_list(), dummy_list()}};
        run_parties(form, abort_and_reset_f, &a);
        assert_int_equal(len(a.results[0]), 0);
        assert_int_equal(len(a.results[1]), N - 1);
        assert_int_equal(len(a.results[2]), N);
        free_bar_arg(&a);
    }
}

/* CPython's _test_timeout_f / _test_default_timeout_f: the party with
   index N / 2 is 1 s late for a second wait that times out after 0.5 s
   (timeout_ms; MP_BARRIER_DEFAULT: the barrier's own 0.5 s).
   Python's every party gets BrokenBarrierError. libmp returns
   MP_ETIMEDOUT to a party whose own timeout expired (mp/barrier.h) and
   MP_EBROKEN to the others: results[0] counts the first, results[1] the
   second; the late party must see MP_EBROKEN (results[2]). */
static int late_party(bar_arg_t *a, int first_timeout_ms, int timeout_ms)
{
    int i = mp_barrier_wait(a->barrier, first_timeout_ms);
    if (i < 0)
        return 1;
    if (i == N / 2)
        usleep(1000 * 1000);
    int rc = mp_barrier_wait(a->barrier, timeout_ms);
    if (rc == MP_ETIMEDOUT)
        append(a->results[0]);
    else if (rc == MP_EBROKEN)
        append(a->results[1]);
    else
        return 2;
    if (i == N / 2 && rc == MP_EBROKEN)
        append(a->results[2]);
    return 0;
}

static int timeout_f(void *arg)
{
    return late_party(arg, MP_BARRIER_DEFAULT, 500);
}

static int default_timeout_f(void *arg)
{
    return late_party(arg, BOUND_MS, MP_BARRIER_DEFAULT);
}

static void check_late_party(mp_target_fn *f, int default_timeout_ms)
{
    for (enum form form = PROCESSES; form <= THREADS; form++) {
        bar_arg_t a = {.barrier = new_barrier(N, default_timeout_ms, NULL, NULL),
                       .results = {dummy_list(), dummy_list(), dummy_list()}};
        run_parties(form, f, &a);
        /* CPython: len(results) == parties, all BrokenBarrierError */
        assert_int_equal(len(a.results[0]) + len(a.results[1]), mp_barrier_parties(a.barrier));
        assert_in_range(len(a.results[0]), 1, N - 1);
        assert_int_equal(len(a.results[2]), 1);
        free_bar_arg(&a);
    }
}

/* _TestBarrier.test_timeout: wait(0.5) breaks the barrier for everyone
   when one party is late (divergence in the error code, see above). */
static void conformance_sync_barrier_test_timeout(void **state)
{
    check_late_party(timeout_f, BOUND_MS);
}

/* test_default_timeout: the same with the barrier's default timeout of
   0.5 s (Barrier(N, timeout=0.5) -> opts.timeout_ms). */
static void conformance_sync_test_default_timeout(void **state)
{
    check_late_party(default_timeout_f, 500);
}

/* test_single_thread: a Barrier(1) never blocks. */
static void conformance_sync_test_single_thread(void **state)
{
    mp_barrier_t *b = mp_barrier_new(1, NULL);
    assert_non_null(b);
    assert_int_equal(mp_barrier_wait(b, BOUND_MS), 0);
    assert_int_equal(mp_barrier_wait(b, BOUND_MS), 0);
    mp_barrier_destroy(&b);
}

enum { THOUSAND = 1000 };

static int thousand_f(void *arg)
{
    bar_arg_t *a = arg;
    for (int i = 0; i < THOUSAND; i++) {
        if (mp_barrier_wait(a->barrier, MP_BARRIER_DEFAULT) < 0)
            return 1;
        mp_obj_t *o = mp_obj_new_int(i);
        if (mp_lock_acquire(a->lock, BOUND_MS) != 0)
            return 2;
        int rc = mp_conn_send(a->conn, o);
        mp_lock_release(a->lock);
        mp_obj_destroy(&o);
        if (rc)
            return 3;
    }
    return 0;
}

/* test_thousand: N parties pass one barrier 1000 times, each sending the
   pass number through a one-way Pipe under a Lock; the reader gets N
   copies of 0, then N of 1, ... */
static void conformance_sync_test_thousand(void **state)
{
    for (enum form form = PROCESSES; form <= THREADS; form++) {
        bar_arg_t a = {.barrier = new_barrier(N, BOUND_MS, NULL, NULL), .lock = mp_lock_new()};
        mp_conn_t *reader = NULL;
        assert_int_equal(mp_pipe(&reader, &a.conn, false), 0);
        crew_t crew = {0};
        for (int j = 0; j < N; j++)
            crew_add(&crew, form, thousand_f, &a);
        int bad_at = -1, got = -1;
        for (int i = 0; i < THOUSAND && bad_at < 0; i++) {
            for (int j = 0; j < N && bad_at < 0; j++) {
                mp_obj_t *o = NULL;
                if (mp_conn_poll(reader, BOUND_MS) != 1 || mp_conn_recv(reader, &o) != 0)
                    bad_at = i;
                else if ((got = (int)mp_obj_int(o)) != i)
                    bad_at = i;
                mp_obj_destroy(&o);
            }
        }
        if (bad_at >= 0)
            mp_barrier_abort(a.barrier); /* let the parties end */
        crew_join(&crew, BOUND_MS);
        assert_int_equal(bad_at, -1);
        mp_conn_destroy(&reader);
        mp_conn_destroy(&a.conn);
        mp_lock_destroy(&a.lock);
        free_bar_arg(&a);
    }
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(conformance_sync_test_barrier, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_barrier_10, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_wait_return, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_action, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_abort, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_reset, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_abort_and_reset, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_barrier_test_timeout, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_default_timeout, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_single_thread, tu_teardown),
        cmocka_unit_test_teardown(conformance_sync_test_thousand, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
