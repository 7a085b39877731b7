/*  test_process.c - Process: exit codes, signals, join timeouts, daemons,
    sentinels and wait, spawn, identity. */
#include <signal.h>
#include <stdlib.h>
#include <sys/pidfd.h>

#include "support.h"

static int exit_with(void *arg)
{
    return (int)(intptr_t)arg;
}

static int sleep_forever(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return 0;
}

static int sleep_ms(void *arg)
{
    usleep((useconds_t)(intptr_t)arg * 1000);
    return 0;
}

static void test_exitcode_normal_and_nonzero(void **state)
{
    assert_int_equal(tu_run(exit_with, (void *)0), 0);
    assert_int_equal(tu_run(exit_with, (void *)7), 7);
    assert_int_equal(tu_run(exit_with, (void *)255), 255);
}

static void killed_with(int (*signal_fn)(mp_process_t *), int want)
{
    mp_process_t *p = mp_process_new(sleep_forever, NULL, NULL);
    assert_non_null(p);
    int code;
    assert_false(mp_process_exitcode(p, &code)); /* not started: None */
    assert_int_equal(mp_process_start(p), 0);
    assert_true(mp_process_is_alive(p));
    assert_false(mp_process_exitcode(p, &code)); /* running: None */
    assert_int_equal(signal_fn(p), 0);
    assert_int_equal(mp_process_join(p, 5000), 0);
    assert_false(mp_process_is_alive(p));
    assert_true(mp_process_exitcode(p, &code));
    assert_int_equal(code, want);
    mp_process_destroy(&p);
}

static void test_exitcode_is_minus_signal(void **state)
{
    killed_with(mp_process_terminate, -SIGTERM);
    killed_with(mp_process_kill, -SIGKILL);
}

static void test_join_timeout_returns_on_time(void **state)
{
    mp_process_t *p = tu_start(sleep_forever, NULL, NULL);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_process_join(p, 200), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 200, 100);
    t0 = tu_now_ms();
    assert_int_equal(mp_process_join(p, 0), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 0, 20);
    assert_int_equal(mp_process_close(p), MP_EBUSY); /* still running */
    mp_process_kill(p);
    assert_int_equal(mp_process_join(p, -1), 0);
    assert_int_equal(mp_process_close(p), 0);
    /* Python: terminate() or kill() of a closed process is a ValueError */
    assert_int_equal(mp_process_terminate(p), MP_ECLOSED);
    assert_int_equal(mp_process_kill(p), MP_ECLOSED);
    assert_int_equal(mp_process_join(p, 0), MP_ECLOSED);
    assert_int_equal(mp_process_start(p), MP_ECLOSED);
    assert_int_equal(mp_process_sentinel(p), -1);
    mp_process_destroy(&p);
}

static void test_state_errors(void **state)
{
    mp_process_t *p = mp_process_new(exit_with, NULL, NULL);
    assert_int_equal(mp_process_join(p, 0), MP_ENOTSTARTED);
    assert_int_equal(mp_process_terminate(p), MP_ENOTSTARTED);
    assert_int_equal(mp_process_sentinel(p), -1);
    assert_int_equal(mp_process_pid(p), 0);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_start(p), MP_ESTATE);
    assert_int_equal(mp_process_set_name(p, "late"), MP_ESTATE);
    assert_int_equal(mp_process_join(p, 5000), 0);
    assert_int_equal(mp_process_terminate(p), 0); /* ended: nothing to do */
    mp_process_destroy(&p);
    mp_process_destroy(&p); /* safe twice */
    assert_null(mp_process_new(NULL, NULL, NULL));
}

/* Child reports its identity through a pipe: name, parent pid, parent name,
   daemon flag, and its own pid as seen by current_process. */
static int report_identity(void *arg)
{
    mp_conn_t *w = arg;
    mp_process_t *self = mp_current_process();
    mp_process_t *parent = mp_parent_process();
    mp_obj_t *o = mp_obj_new_array();
    mp_obj_array_add(o, mp_obj_new_str(mp_process_name(self)));
    mp_obj_array_add(o, mp_obj_new_int(parent ? mp_process_pid(parent) : -1));
    mp_obj_array_add(o, mp_obj_new_str(parent ? mp_process_name(parent) : ""));
    mp_obj_array_add(o, mp_obj_new_bool(mp_process_daemon(self)));
    mp_obj_array_add(o, mp_obj_new_int(mp_process_pid(self)));
    mp_obj_array_add(o, mp_obj_new_bool(parent && mp_process_is_alive(parent)));
    int rc = mp_conn_send(w, o);
    mp_obj_destroy(&o);
    return rc == 0 ? 0 : 1;
}

static void test_names_and_identity(void **state)
{
    assert_string_equal(mp_process_name(mp_current_process()), "MainProcess");
    assert_null(mp_parent_process());
    assert_int_equal(mp_process_pid(mp_current_process()), getpid());
    assert_true(mp_cpu_count() >= 1);

    mp_conn_t *r, *w;
    assert_int_equal(mp_pipe(&r, &w, false), 0);
    mp_process_opts_t opts = {.name = "worker-x", .daemon = true};
    mp_process_t *p = mp_process_new(report_identity, w, &opts);
    assert_string_equal(mp_process_name(p), "worker-x");
    assert_true(mp_process_daemon(p));
    assert_int_equal(mp_process_start(p), 0);
    mp_obj_t *o = NULL;
    assert_int_equal(mp_conn_recv(r, &o), 0);
    assert_string_equal(mp_obj_str(mp_obj_array_at(o, 0), NULL), "worker-x");
    assert_int_equal(mp_obj_int(mp_obj_array_at(o, 1)), getpid());
    assert_string_equal(mp_obj_str(mp_obj_array_at(o, 2), NULL), "MainProcess");
    assert_true(mp_obj_bool(mp_obj_array_at(o, 3)));
    assert_int_equal(mp_obj_int(mp_obj_array_at(o, 4)), mp_process_pid(p));
    assert_true(mp_obj_bool(mp_obj_array_at(o, 5)));
    mp_obj_destroy(&o);
    assert_int_equal(mp_process_join(p, 5000), 0);
    mp_process_destroy(&p);

    /* default names follow Python: Process-N, N counting up */
    mp_process_t *a = mp_process_new(exit_with, NULL, NULL);
    mp_process_t *b = mp_process_new(exit_with, NULL, NULL);
    int na = atoi(mp_process_name(a) + strlen("Process-"));
    int nb = atoi(mp_process_name(b) + strlen("Process-"));
    assert_int_equal(strncmp(mp_process_name(a), "Process-", 8), 0);
    assert_int_equal(nb, na + 1);
    mp_process_destroy(&a);
    mp_process_destroy(&b);
    mp_conn_destroy(&r);
    mp_conn_destroy(&w);
}

/* The middle process starts a daemon grandchild, sends its pid, waits. */
static int start_daemon_then_wait(void *arg)
{
    mp_conn_t *w = arg;
    mp_process_opts_t opts = {.daemon = true};
    mp_process_t *g = mp_process_new(sleep_forever, NULL, &opts);
    if (!g || mp_process_start(g))
        return 1;
    mp_obj_t *pid = mp_obj_new_int(mp_process_pid(g));
    mp_conn_send(w, pid);
    mp_obj_destroy(&pid);
    for (;;)
        pause();
}

/* The middle process starts a daemon and a short non-daemon child, then
   returns: at exit the daemon is terminated and the other is joined. */
static int start_children_then_return(void *arg)
{
    mp_conn_t *w = arg;
    mp_process_opts_t opts = {.daemon = true};
    mp_process_t *d = mp_process_new(sleep_forever, NULL, &opts);
    mp_process_t *n = mp_process_new(sleep_ms, (void *)100, NULL);
    if (mp_process_start(d) || mp_process_start(n))
        return 1;
    mp_process_t *kids[4];
    if (mp_active_children(kids, 4) != 2)
        return 2;
    mp_obj_t *o = mp_obj_new_array();
    mp_obj_array_add(o, mp_obj_new_int(mp_process_pid(d)));
    mp_obj_array_add(o, mp_obj_new_int(mp_process_pid(n)));
    mp_conn_send(w, o);
    mp_obj_destroy(&o);
    return 0; /* handles deliberately not destroyed: exit cleans up */
}

static int reap_orphan(int pid, int timeout_ms)
{
    /* we are the subreaper: the orphan is our child now */
    int status = tu_wait_exit(pid, timeout_ms);
    if (status == -1)
        return -1000;
    return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

static void test_daemon_dies_when_parent_is_sigkilled(void **state)
{
    mp_conn_t *r, *w;
    assert_int_equal(mp_pipe(&r, &w, false), 0);
    mp_process_t *mid = tu_start(start_daemon_then_wait, w, NULL);
    mp_obj_t *o = NULL;
    assert_int_equal(mp_conn_recv(r, &o), 0);
    int grandchild = (int)mp_obj_int(o);
    mp_obj_destroy(&o);
    assert_true(grandchild > 0);
    assert_int_equal(kill(grandchild, 0), 0); /* alive */
    assert_int_equal(mp_process_kill(mid), 0);
    assert_int_equal(mp_process_join(mid, 5000), 0);
    /* the kernel's parent-death signal kills it */
    assert_int_equal(reap_orphan(grandchild, 5000), -SIGKILL);
    mp_process_destroy(&mid);
    mp_conn_destroy(&r);
    mp_conn_destroy(&w);
}

static void test_exit_terminates_daemons_and_joins_others(void **state)
{
    mp_conn_t *r, *w;
    assert_int_equal(mp_pipe(&r, &w, false), 0);
    mp_process_t *mid = tu_start(start_children_then_return, w, NULL);
    mp_obj_t *o = NULL;
    assert_int_equal(mp_conn_recv(r, &o), 0);
    int daemon_pid = (int)mp_obj_int(mp_obj_array_at(o, 0));
    mp_obj_destroy(&o);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_process_join(mid, 5000), 0);
    int code;
    assert_true(mp_process_exitcode(mid, &code));
    assert_int_equal(code, 0);
    /* it waited for its 100 ms non-daemon child */
    assert_true(tu_now_ms() - t0 >= 50);
    /* and reaped both itself: neither is left for us */
    assert_int_equal(kill(daemon_pid, 0), -1);
    mp_process_destroy(&mid);
    mp_conn_destroy(&r);
    mp_conn_destroy(&w);
}

static void test_wait_for_any_sentinel(void **state)
{
    mp_process_t *slow = mp_process_new(sleep_ms, (void *)2000, NULL);
    mp_process_t *fast = mp_process_new(sleep_ms, (void *)50, NULL);
    assert_int_equal(mp_process_start(slow), 0);
    assert_int_equal(mp_process_start(fast), 0);
    assert_int_equal(mp_active_children(NULL, 0), 2);
    mp_waitable_t items[] = {MP_WAITABLE_PROCESS(slow), MP_WAITABLE_PROCESS(fast)};
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_wait(items, 2, 5000), 1);
    TU_ASSERT_ELAPSED(t0, 50, 500);
    assert_false(items[0].ready);
    assert_true(items[1].ready);
    assert_int_equal(mp_process_join(fast, 0), 0);
    assert_int_equal(mp_active_children(NULL, 0), 1);
    /* timeout with nothing ready */
    t0 = tu_now_ms();
    assert_int_equal(mp_wait(items, 1, 100), 0);
    TU_ASSERT_ELAPSED(t0, 100, 100);
    mp_process_destroy(&slow); /* kills and reaps a running child */
    mp_process_destroy(&fast);
    assert_int_equal(mp_active_children(NULL, 0), 0);
}

/* ---- spawn ---------------------------------------------------------------- */

/* args: [a, b, "name"]; exits with a + b when its name and parent match. */
static int spawned_sum(void *arg)
{
    mp_obj_t *args = arg;
    const char *want = mp_obj_str(mp_obj_array_at(args, 2), NULL);
    if (!want || strcmp(mp_process_name(mp_current_process()), want) != 0)
        return 101;
    if (!mp_parent_process() || mp_process_pid(mp_parent_process()) != getppid())
        return 102;
    if (getenv("MP_SPAWN"))
        return 103; /* must not leak to grandchildren */
    return (int)(mp_obj_int(mp_obj_array_at(args, 0)) + mp_obj_int(mp_obj_array_at(args, 1)));
}
MP_REGISTER_TARGET(spawned_sum)

static int not_registered(void *arg)
{
    return 0;
}

static void test_spawn_runs_registered_target(void **state)
{
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(40));
    mp_obj_array_add(args, mp_obj_new_int(2));
    mp_obj_array_add(args, mp_obj_new_str("spawned-one"));
    mp_process_opts_t opts = {.name = "spawned-one", .start_method = MP_START_SPAWN, .args = args};
    mp_process_t *p = mp_process_new(spawned_sum, NULL, &opts);
    mp_obj_destroy(&args); /* the process keeps its own copy */
    assert_non_null(p);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(tu_join(&p, 10000), 42);
}

static void test_spawn_reports_exec_failure(void **state)
{
    assert_int_equal(mp_set_executable("/nonexistent/program"), 0);
    mp_process_opts_t opts = {.start_method = MP_START_SPAWN};
    mp_process_t *p = mp_process_new(spawned_sum, NULL, &opts);
    assert_int_equal(mp_process_start(p), MP_ENOENT);
    assert_int_equal(mp_set_executable("/dev/null"), 0); /* not a program */
    assert_int_equal(mp_process_start(p), -EACCES);
    assert_int_equal(mp_set_executable(NULL), 0);
    int code;
    assert_false(mp_process_exitcode(p, &code)); /* never started */
    mp_process_destroy(&p);
}

static void test_spawn_unknown_target(void **state)
{
    mp_process_opts_t opts = {.start_method = MP_START_SPAWN};
    /* unknown here */
    mp_process_t *p = mp_process_new(not_registered, NULL, &opts);
    assert_int_equal(mp_process_start(p), MP_ENOENT);
    mp_process_destroy(&p);
    /* known here only (registered at run time): the child says no */
    assert_int_equal(mp_register_target("late_target", not_registered), 0);
    assert_int_equal(mp_register_target("late_target", exit_with), MP_EEXIST);
    p = mp_process_new(not_registered, NULL, &opts);
    assert_int_equal(mp_process_start(p), MP_ENOENT);
    mp_process_destroy(&p);
    /* a pointer argument cannot cross an exec */
    assert_null(mp_process_new(spawned_sum, (void *)1, &opts));
}

static void test_default_start_method(void **state)
{
    assert_int_equal(mp_get_start_method(), MP_START_FORK);
    assert_int_equal(mp_set_start_method(MP_START_SPAWN), 0);
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(1));
    mp_obj_array_add(args, mp_obj_new_int(2));
    mp_obj_array_add(args, mp_obj_new_str("via-default"));
    mp_process_opts_t opts = {.name = "via-default", .args = args};
    mp_process_t *p = mp_process_new(spawned_sum, NULL, &opts);
    mp_obj_destroy(&args);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(tu_join(&p, 10000), 3);
    assert_int_equal(mp_set_start_method(MP_START_FORK), 0);
    assert_int_equal(mp_set_start_method((mp_start_method_t)42), MP_EINVAL);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_exitcode_normal_and_nonzero, tu_teardown),
        cmocka_unit_test_teardown(test_exitcode_is_minus_signal, tu_teardown),
        cmocka_unit_test_teardown(test_join_timeout_returns_on_time, tu_teardown),
        cmocka_unit_test_teardown(test_state_errors, tu_teardown),
        cmocka_unit_test_teardown(test_names_and_identity, tu_teardown),
        cmocka_unit_test_teardown(test_daemon_dies_when_parent_is_sigkilled, tu_teardown),
        cmocka_unit_test_teardown(test_exit_terminates_daemons_and_joins_others, tu_teardown),
        cmocka_unit_test_teardown(test_wait_for_any_sentinel, tu_teardown),
        cmocka_unit_test_teardown(test_spawn_runs_registered_target, tu_teardown),
        cmocka_unit_test_teardown(test_spawn_reports_exec_failure, tu_teardown),
        cmocka_unit_test_teardown(test_spawn_unknown_target, tu_teardown),
        cmocka_unit_test_teardown(test_default_start_method, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
