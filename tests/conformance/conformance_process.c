/*  conformance_process.c - CPython 3.11's _TestProcess
    (Lib/test/_test_multiprocessing.py) ported to mp/process.h, one test per
    method with its inputs and assertions.

    How Python maps onto C here: a target's args/kwargs become opts.args (an
    mp_obj array the child receives); the queue, pipe end or event a Python
    target gets as an argument is a global the fork child inherits. Python's
    exceptions are MP_E* codes. Python's timeout None is -1 here; Python's
    negative timeouts, which do not wait, have no counterpart: libmp's
    timeout_ms < 0 waits forever (mp/lock.h), so those calls are left out.
    Python has no bound on most waits; here every wait has one (10 s unless
    CPython names another). Children report failures through exit codes.
*/
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "support.h"

#define DELTA_MS 100 /* CPython's DELTA */

static mp_queue_t *g_q;
static mp_conn_t *g_w;
static mp_event_t *g_evt;

static bool in_active_children(mp_process_t *p)
{
    mp_process_t *live[256];
    size_t n = mp_active_children(live, 256);
    for (size_t i = 0; i < n && i < 256; i++)
        if (live[i] == p)
            return true;
    return false;
}

static mp_process_t *new_process(mp_target_fn *fn, void *arg, const mp_obj_t *args, bool daemon)
{
    mp_process_opts_t opts = {.daemon = daemon, .args = args};
    mp_process_t *p = mp_process_new(fn, arg, &opts);
    assert_non_null(p);
    return p;
}

/* Receives one message from c within 10 s (Python: poll(LONG_TIMEOUT) +
   recv). Caller owns the result. */
static mp_obj_t *recv_within(mp_conn_t *c)
{
    assert_int_equal(mp_conn_poll(c, 10000), 1);
    mp_obj_t *o = NULL;
    assert_int_equal(mp_conn_recv(c, &o), 0);
    return o;
}

static int return_zero(void *arg)
{
    (void)arg;
    return 0;
}
MP_REGISTER_TARGET(return_zero)

static int sleep_some(void *arg)
{
    (void)arg;
    sleep(100);
    return 0;
}

static int sleep_ms(void *arg)
{
    usleep((useconds_t)(intptr_t)arg * 1000);
    return 0;
}

/* test_current: the current process is alive, not daemonic, its pid is
   getpid(), its exit code is None. (Its authkey: libmp processes have none.) */
static void conformance_process_test_current(void **state)
{
    mp_process_t *current = mp_current_process();
    assert_true(mp_process_is_alive(current));
    assert_false(mp_process_daemon(current));
    assert_int_equal(mp_process_pid(current), getpid());
    int code;
    assert_false(mp_process_exitcode(current, &code));
}

/* test_set_executable: a spawn child of the executable set with
   set_executable exits 0. Python passes one path as str, bytes and
   PathLike; C has one string type, so: the absolute path, and another
   spelling of the same file. */
static void conformance_process_test_set_executable(void **state)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(len > 0);
    exe[len] = '\0';
    const char *paths[] = {exe, "/proc/self/exe"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(mp_set_executable(paths[i]), 0);
        mp_process_opts_t opts = {.start_method = MP_START_SPAWN};
        mp_process_t *p = mp_process_new(return_zero, NULL, &opts);
        assert_non_null(p);
        assert_int_equal(mp_process_start(p), 0);
        assert_int_equal(tu_join(&p, 10000), 0);
    }
    assert_int_equal(mp_set_executable(NULL), 0);
}

static int put_first_arg(void *arg)
{
    return mp_queue_put(g_q, mp_obj_array_at(arg, 0), -1) ? 1 : 0;
}

/* test_args_argument (bpo-45735): the child gets the argument it was given
   and puts it back. Python's list and tuple args are both an mp_obj array
   in C, and so are its [1] and (1,) cases. */
static void conformance_process_test_args_argument(void **state)
{
    mp_obj_t *list = mp_obj_new_array(), *tuple = mp_obj_new_array();
    mp_obj_array_add(list, mp_obj_new_int(1));
    mp_obj_array_add(tuple, mp_obj_new_int(1));
    mp_obj_t *cases[] = {mp_obj_new_int(1), mp_obj_new_str("str"), list, tuple};
    for (size_t i = 0; i < 4; i++) {
        g_q = mp_queue_new(&(mp_queue_opts_t){.maxsize = 1});
        assert_non_null(g_q);
        mp_obj_t *args = mp_obj_new_array();
        mp_obj_array_add(args, mp_obj_dup(cases[i]));
        mp_process_t *p = new_process(put_first_arg, NULL, args, true);
        mp_obj_destroy(&args);
        assert_int_equal(mp_process_start(p), 0);
        mp_obj_t *child_args = NULL;
        assert_int_equal(mp_queue_get(g_q, &child_args, 10000), 0);
        assert_true(mp_obj_equal(child_args, cases[i]));
        mp_obj_destroy(&child_args);
        assert_int_equal(tu_join(&p, 10000), 0);
        mp_queue_destroy(&g_q);
        mp_obj_destroy(&cases[i]);
    }
}

/* test_daemon_argument: the daemon flag defaults to the current process's
   and follows the argument. */
static void conformance_process_test_daemon_argument(void **state)
{
    mp_process_t *proc0 = mp_process_new(return_zero, NULL, NULL);
    assert_int_equal(mp_process_daemon(proc0), mp_process_daemon(mp_current_process()));
    mp_process_t *proc1 = new_process(return_zero, NULL, NULL, true);
    assert_true(mp_process_daemon(proc1));
    mp_process_t *proc2 = new_process(return_zero, NULL, NULL, false);
    assert_false(mp_process_daemon(proc2));
    mp_process_destroy(&proc0);
    mp_process_destroy(&proc1);
    mp_process_destroy(&proc2);
}

static int send_parent_process(void *arg)
{
    (void)arg;
    mp_process_t *parent = mp_parent_process();
    if (!parent)
        return 1;
    mp_obj_t *msg = mp_obj_new_array();
    mp_obj_array_add(msg, mp_obj_new_int(mp_process_pid(parent)));
    mp_obj_array_add(msg, mp_obj_new_str(mp_process_name(parent)));
    int rc = mp_conn_send(g_w, msg);
    mp_obj_destroy(&msg);
    return rc ? 2 : 0;
}

/* test_parent_process_attributes: no parent in the main process; a child
   sees our pid and name as its parent's. */
static void conformance_process_test_parent_process_attributes(void **state)
{
    assert_null(mp_parent_process());
    mp_conn_t *rconn, *wconn;
    assert_int_equal(mp_pipe(&rconn, &wconn, false), 0);
    g_w = wconn;
    mp_process_t *p = tu_start(send_parent_process, NULL, NULL);
    assert_int_equal(tu_join(&p, 10000), 0);
    mp_obj_t *msg = recv_within(rconn);
    assert_int_equal(mp_obj_int(mp_obj_array_at(msg, 0)), mp_process_pid(mp_current_process()));
    assert_int_equal(mp_obj_int(mp_obj_array_at(msg, 0)), getpid());
    assert_string_equal(mp_obj_str(mp_obj_array_at(msg, 1), NULL),
                        mp_process_name(mp_current_process()));
    mp_obj_destroy(&msg);
    mp_conn_destroy(&rconn);
    mp_conn_destroy(&wconn);
}

static void send_str(mp_conn_t *c, const char *s)
{
    mp_obj_t *o = mp_obj_new_str(s);
    mp_conn_send(c, o);
    mp_obj_destroy(&o);
}

static int report_parent_status(void *arg)
{
    (void)arg;
    mp_process_t *parent = mp_parent_process();
    send_str(g_w, mp_process_is_alive(parent) ? "alive" : "not alive");
    /* Python joins its parent (SHORT_TIMEOUT); libmp's parent handle is not
       joinable (mp/process.h), its sentinel is what join would wait on */
    mp_waitable_t w = MP_WAITABLE_PROCESS(parent);
    mp_wait(&w, 1, 10000);
    send_str(g_w, mp_process_is_alive(parent) ? "alive" : "not alive");
    return 0;
}

static int create_grandchild_process(void *arg)
{
    (void)arg;
    mp_process_t *p = mp_process_new(report_parent_status, NULL, NULL);
    if (!p || mp_process_start(p))
        return 1;
    sleep(300);
    return 0;
}

/* Reaps children that were reparented to us (we are a subreaper), waiting
   up to timeout_ms for them to exit: how many. */
static int reap_orphans(int timeout_ms)
{
    int n = 0;
    uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid > 0)
            n++;
        else if (pid < 0 || tu_now_ms() >= deadline)
            return n;
        else
            usleep(1000);
    }
}

/* test_parent_process: a grandchild sees its parent alive, then, after we
   terminate that parent, not alive. The grandchild waits on the parent's
   sentinel where Python joins the parent (not joinable in libmp). */
static void conformance_process_test_parent_process(void **state)
{
    mp_conn_t *rconn, *wconn;
    assert_int_equal(mp_pipe(&rconn, &wconn, false), 0);
    g_w = wconn;
    mp_process_t *p = tu_start(create_grandchild_process, NULL, NULL);
    mp_obj_t *status = recv_within(rconn);
    assert_string_equal(mp_obj_str(status, NULL), "alive");
    mp_obj_destroy(&status);
    assert_int_equal(mp_process_terminate(p), 0);
    assert_int_equal(tu_join(&p, 10000), -SIGTERM);
    status = recv_within(rconn);
    assert_string_equal(mp_obj_str(status, NULL), "not alive");
    mp_obj_destroy(&status);
    assert_int_equal(reap_orphans(10000), 1); /* the grandchild */
    mp_conn_destroy(&rconn);
    mp_conn_destroy(&wconn);
}

static int put_process_info(void *arg)
{
    mp_obj_t *args = arg;
    mp_process_t *current = mp_current_process();
    mp_obj_t *name = mp_obj_new_str(mp_process_name(current));
    mp_obj_t *pid = mp_obj_new_int(mp_process_pid(current));
    int rc = mp_queue_put(g_q, mp_obj_array_at(args, 0), -1) ||
             mp_queue_put(g_q, mp_obj_array_at(args, 1), -1) || mp_queue_put(g_q, name, -1) ||
             mp_queue_put(g_q, pid, -1);
    mp_obj_destroy(&name);
    mp_obj_destroy(&pid);
    return rc ? 1 : 0;
}

/* test_process: a daemon child named "SomeProcess" with args (1, 2) and
   kwargs {hello: 23, bye: 2.54} puts back its args, kwargs, name and pid;
   is_alive, exitcode and active_children before, during and after. args
   and kwargs travel as opts.args [[1, 2], {...}]; no authkey in libmp. */
static void conformance_process_test_process(void **state)
{
    g_q = mp_queue_new(&(mp_queue_opts_t){.maxsize = 1});
    mp_obj_t *args = mp_obj_new_array(), *kwargs = mp_obj_new_map();
    mp_obj_array_add(args, mp_obj_new_int(1));
    mp_obj_array_add(args, mp_obj_new_int(2));
    mp_obj_map_add(kwargs, mp_obj_new_str("hello"), mp_obj_new_int(23));
    mp_obj_map_add(kwargs, mp_obj_new_str("bye"), mp_obj_new_float(2.54));
    mp_obj_t *both = mp_obj_new_array();
    mp_obj_array_add(both, mp_obj_dup(args));
    mp_obj_array_add(both, mp_obj_dup(kwargs));
    mp_process_opts_t opts = {.name = "SomeProcess", .args = both};
    mp_process_t *p = mp_process_new(put_process_info, NULL, &opts);
    mp_obj_destroy(&both);
    assert_int_equal(mp_process_set_daemon(p, true), 0);

    int code;
    assert_false(mp_process_is_alive(p));
    assert_true(mp_process_daemon(p));
    assert_false(in_active_children(p));
    assert_false(mp_process_exitcode(p, &code));

    assert_int_equal(mp_process_start(p), 0);

    assert_false(mp_process_exitcode(p, &code));
    assert_true(mp_process_is_alive(p));
    assert_true(in_active_children(p));

    mp_obj_t *got = NULL;
    assert_int_equal(mp_queue_get(g_q, &got, 10000), 0);
    assert_true(mp_obj_equal(got, args));
    mp_obj_destroy(&got);
    assert_int_equal(mp_queue_get(g_q, &got, 10000), 0);
    assert_true(mp_obj_equal(got, kwargs));
    mp_obj_destroy(&got);
    assert_int_equal(mp_queue_get(g_q, &got, 10000), 0);
    assert_string_equal(mp_obj_str(got, NULL), mp_process_name(p));
    mp_obj_destroy(&got);
    assert_int_equal(mp_queue_get(g_q, &got, 10000), 0);
    assert_int_equal(mp_obj_int(got), mp_process_pid(p));
    mp_obj_destroy(&got);

    assert_int_equal(mp_process_join(p, 10000), 0);

    assert_true(mp_process_exitcode(p, &code));
    assert_int_equal(code, 0);
    assert_false(mp_process_is_alive(p));
    assert_false(in_active_children(p));
    mp_process_destroy(&p);
    mp_obj_destroy(&args);
    mp_obj_destroy(&kwargs);
    mp_queue_destroy(&g_q);
}

static int put_main_thread_id(void *arg)
{
    (void)arg;
    mp_obj_t *id = mp_obj_new_int(syscall(SYS_gettid));
    int rc = mp_queue_put(g_q, id, -1);
    mp_obj_destroy(&id);
    return rc ? 1 : 0;
}

/* test_process_mainthread_native_id: the child's main thread has another
   native id (gettid) than ours. */
static void conformance_process_test_process_mainthread_native_id(void **state)
{
    long current_mainthread_native_id = syscall(SYS_gettid); /* main() runs on it */
    g_q = mp_queue_new(&(mp_queue_opts_t){.maxsize = 1});
    mp_process_t *p = tu_start(put_main_thread_id, NULL, NULL);
    mp_obj_t *got = NULL;
    assert_int_equal(mp_queue_get(g_q, &got, 10000), 0);
    assert_int_equal(tu_join(&p, 10000), 0);
    mp_queue_destroy(&g_q);
    assert_int_not_equal(mp_obj_int(got), current_mainthread_native_id);
    mp_obj_destroy(&got);
}

/* CPython's _kill_process: the exit code after meth. Python's join(-1)
   returns at once; libmp's waits forever (negative timeout), so it is not
   called while the process runs. */
static int kill_process(int (*meth)(mp_process_t *))
{
    mp_process_t *p = new_process(sleep_some, NULL, NULL, true);
    assert_int_equal(mp_process_start(p), 0);

    int code;
    assert_true(mp_process_is_alive(p));
    assert_true(in_active_children(p));
    assert_false(mp_process_exitcode(p, &code));

    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_process_join(p, 0), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 0, 200);
    assert_true(mp_process_is_alive(p));

    sleep(1);

    assert_int_equal(meth(p), 0);

    t0 = tu_now_ms();
    assert_int_equal(mp_process_join(p, 10000), 0); /* Python's alarm(10) */
    TU_ASSERT_ELAPSED(t0, 0, 1000);

    assert_false(mp_process_is_alive(p));
    assert_false(in_active_children(p));

    assert_int_equal(mp_process_join(p, -1), 0);
    assert_true(mp_process_exitcode(p, &code));
    mp_process_destroy(&p);
    return code;
}

/* test_terminate: exit code -SIGTERM, through _kill_process. */
static void conformance_process_test_terminate(void **state)
{
    assert_int_equal(kill_process(mp_process_terminate), -SIGTERM);
}

/* test_kill: exit code -SIGKILL, through _kill_process. */
static void conformance_process_test_kill(void **state)
{
    assert_int_equal(kill_process(mp_process_kill), -SIGKILL);
}

/* test_cpu_count: at least 1. */
static void conformance_process_test_cpu_count(void **state)
{
    assert_true(mp_cpu_count() >= 1);
}

/* test_active_children: a process is among them only while it runs. */
static void conformance_process_test_active_children(void **state)
{
    mp_process_t *p = new_process(sleep_ms, (void *)(intptr_t)DELTA_MS, NULL, false);
    assert_false(in_active_children(p));
    assert_int_equal(mp_process_set_daemon(p, true), 0);
    assert_int_equal(mp_process_start(p), 0);
    assert_true(in_active_children(p));
    assert_int_equal(mp_process_join(p, 10000), 0);
    assert_false(in_active_children(p));
    mp_process_destroy(&p);
}

static int recursion(void *arg)
{
    mp_obj_t *id = arg;
    mp_conn_send(g_w, id);
    if (mp_obj_len(id) < 2) {
        for (int i = 0; i < 2; i++) {
            mp_obj_t *child_id = mp_obj_dup(id);
            mp_obj_array_add(child_id, mp_obj_new_int(i));
            mp_process_t *p = new_process(recursion, NULL, child_id, false);
            mp_obj_destroy(&child_id);
            mp_process_start(p);
            mp_process_join(p, 10000);
            mp_process_destroy(&p);
        }
    }
    return 0;
}

/* test_recursion: processes started by processes, two levels deep, each
   sends its id path; the order is depth first. */
static void conformance_process_test_recursion(void **state)
{
    mp_conn_t *rconn, *wconn;
    assert_int_equal(mp_pipe(&rconn, &wconn, false), 0);
    g_w = wconn;
    mp_obj_t *root = mp_obj_new_array();
    recursion(root);
    mp_obj_destroy(&root);

    usleep(DELTA_MS * 1000);
    static const int expected[7][3] = {{0},    {1, 0},    {2, 0, 0}, {2, 0, 1},
                                       {1, 1}, {2, 1, 0}, {2, 1, 1}}; /* length, items */
    int n = 0;
    while (n < 20 && mp_conn_poll(rconn, 0) == 1) {
        mp_obj_t *id = NULL;
        assert_int_equal(mp_conn_recv(rconn, &id), 0);
        assert_true(n < 7);
        assert_int_equal(mp_obj_len(id), expected[n][0]);
        for (int k = 0; k < expected[n][0]; k++)
            assert_int_equal(mp_obj_int(mp_obj_array_at(id, k)), expected[n][k + 1]);
        mp_obj_destroy(&id);
        n++;
    }
    assert_int_equal(n, 7);
    mp_conn_destroy(&rconn);
    mp_conn_destroy(&wconn);
}

static int wait_event(void *arg)
{
    (void)arg;
    mp_event_wait(g_evt, 10000);
    return 0;
}

/* test_sentinel: no sentinel before start (Python's ValueError; -1 here);
   the sentinel is not ready while the child runs and ready once it ended. */
static void conformance_process_test_sentinel(void **state)
{
    g_evt = mp_event_new();
    mp_process_t *p = mp_process_new(wait_event, NULL, NULL);
    assert_int_equal(mp_process_sentinel(p), -1);
    assert_int_equal(mp_process_start(p), 0);
    int sentinel = mp_process_sentinel(p);
    assert_true(sentinel >= 0);
    mp_waitable_t w = MP_WAITABLE_FD(sentinel);
    assert_int_equal(mp_wait(&w, 1, 0), 0);
    assert_int_equal(mp_event_set(g_evt), 0);
    assert_int_equal(mp_process_join(p, 10000), 0);
    assert_int_equal(mp_wait(&w, 1, 1000), 1);
    mp_process_destroy(&p);
    mp_event_destroy(&g_evt);
}

static int get_then_exit(void *arg)
{
    (void)arg;
    mp_obj_t *o = NULL;
    int rc = mp_queue_get(g_q, &o, 10000);
    mp_obj_destroy(&o);
    return rc ? 1 : 0;
}

/* test_close: close of a running process fails (MP_EBUSY for ValueError);
   after it ended close works, then start, join and terminate fail
   (ValueError: MP_ECLOSED), and a second close is fine. Python's is_alive of
   a closed process raises ValueError; the C getter returns a bool, false.
   The weakref check (the object is freed) does not carry over. */
static void conformance_process_test_close(void **state)
{
    g_q = mp_queue_new(NULL);
    mp_process_t *p = new_process(get_then_exit, NULL, NULL, true);
    assert_int_equal(mp_process_start(p), 0);
    assert_true(mp_process_is_alive(p));
    assert_int_equal(mp_process_close(p), MP_EBUSY);

    mp_obj_t *none = mp_obj_new_nil();
    assert_int_equal(mp_queue_put(g_q, none, -1), 0);
    mp_obj_destroy(&none);
    assert_int_equal(mp_process_join(p, 10000), 0);
    assert_false(mp_process_is_alive(p));
    int code;
    assert_true(mp_process_exitcode(p, &code));
    assert_int_equal(code, 0);
    assert_int_equal(mp_process_close(p), 0);
    assert_false(mp_process_is_alive(p));
    assert_int_equal(mp_process_join(p, -1), MP_ECLOSED); /* join() */
    assert_int_equal(mp_process_start(p), MP_ECLOSED);
    assert_int_equal(mp_process_terminate(p), MP_ECLOSED);
    assert_int_equal(mp_process_close(p), 0);
    mp_process_destroy(&p);
    mp_queue_destroy(&g_q);
}

/* test_many_processes: 100 fork children (CPython's N for fork) sleeping
   10 ms all exit 0; 100 sleeping ones terminated right after start all
   exit -SIGTERM. Python's join_process bound is SHORT_TIMEOUT (30 s). */
static void conformance_process_test_many_processes(void **state)
{
    enum { N = 100 };
    mp_process_t *procs[N];
    for (int i = 0; i < N; i++) {
        procs[i] = new_process(sleep_ms, (void *)(intptr_t)10, NULL, false);
        assert_int_equal(mp_process_start(procs[i]), 0);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(tu_join(&procs[i], 30000), 0);

    for (int i = 0; i < N; i++) {
        procs[i] = new_process(sleep_some, NULL, NULL, false);
        assert_int_equal(mp_process_start(procs[i]), 0);
    }
    usleep(1000);
    for (int i = 0; i < N; i++)
        assert_int_equal(mp_process_terminate(procs[i]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(tu_join(&procs[i], 30000), -SIGTERM);
}

static int count_fds(void *arg)
{
    int n = -1; /* the directory's own fd */
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 255;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    /* stay alive until the parent has started them all (Python: evt.wait) */
    const char *path = mp_obj_str(mp_obj_array_at(arg, 0), NULL);
    for (int i = 0; i < 10000 && access(path, F_OK) != 0; i++)
        usleep(1000);
    return n;
}
MP_REGISTER_TARGET(count_fds)

/* test_child_fd_inflation: the fds of a spawned child do not grow with the
   number of running children. CPython skips it for fork (fork inherits
   every fd by design), so it runs with spawn. A spawn child gets no queue
   or event: it reports its fd count as its exit code and waits for a file
   the parent creates once all are started. */
static void conformance_process_test_child_fd_inflation(void **state)
{
    enum { N = 5 };
    char path[512];
    snprintf(path, sizeof path, "%s/conformance-fd-%d", tu_ipc_dir(), (int)getpid());
    unlink(path);
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_str(path));
    mp_process_opts_t opts = {.start_method = MP_START_SPAWN, .args = args};
    mp_process_t *procs[N];
    for (int i = 0; i < N; i++) {
        procs[i] = mp_process_new(count_fds, NULL, &opts);
        assert_int_equal(mp_process_start(procs[i]), 0);
    }
    mp_obj_destroy(&args);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    int fd_counts[N];
    for (int i = 0; i < N; i++)
        fd_counts[i] = tu_join(&procs[i], 10000);
    unlink(path);
    for (int i = 0; i < N; i++) {
        assert_true(fd_counts[i] > 0 && fd_counts[i] < 255);
        assert_int_equal(fd_counts[i], fd_counts[0]);
    }
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* test_parent_process reaps the grandchild */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(conformance_process_test_current, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_set_executable, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_args_argument, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_daemon_argument, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_parent_process_attributes, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_parent_process, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_process, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_process_mainthread_native_id,
                                  tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_terminate, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_kill, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_cpu_count, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_active_children, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_recursion, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_sentinel, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_close, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_many_processes, tu_teardown),
        cmocka_unit_test_teardown(conformance_process_test_child_fd_inflation, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
