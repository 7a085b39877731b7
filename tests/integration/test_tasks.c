/*  test_tasks.c - tasks for the pool tests: built into the test programs
    (embedded pools fork them) and as libtest_tasks.so (mp-worker --tasks).
*/
#include <fcntl.h>
#include <mp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t init_value = -1; /* set by set_init in each executor */

MP_TASK(square)
{
    int64_t x = mp_task_int(task, 0);
    return mp_task_return_int(task, x * x);
}

MP_TASK(add)
{
    return mp_task_return_int(task, mp_task_int(task, 0) + mp_task_int(task, 1));
}

/* fails odd inputs with code 42 */
MP_TASK(even_only)
{
    int64_t x = mp_task_int(task, 0);
    if (x % 2)
        return mp_task_fail(task, 42, "odd input %lld", (long long)x);
    return mp_task_return_int(task, x);
}

/* sleep_ms(ms [, value]) -> value (or ms) after sleeping */
MP_TASK(sleep_ms)
{
    int64_t ms = mp_task_int(task, 0);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    return mp_task_return_int(task, mp_task_argc(task) > 1 ? mp_task_int(task, 1) : ms);
}

/* slow_square(x): x*x after 200 us (a map that takes a while) */
MP_TASK(slow_square)
{
    int64_t x = mp_task_int(task, 0);
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
    return mp_task_return_int(task, x * x);
}

/* crash_on(x, bad): SIGSEGV when x == bad, else x */
MP_TASK(crash_on)
{
    int64_t x = mp_task_int(task, 0), bad = mp_task_int(task, 1);
    if (x == bad)
        raise(SIGSEGV);
    return mp_task_return_int(task, x);
}

/* crash_if_negative(x): SIGSEGV when x < 0, else x (one argument: for imap) */
MP_TASK(crash_if_negative)
{
    int64_t x = mp_task_int(task, 0);
    if (x < 0)
        raise(SIGSEGV);
    return mp_task_return_int(task, x);
}

/* die_once(x, bad): SIGKILL itself on x == bad in attempt 1 only */
MP_TASK(die_once)
{
    int64_t x = mp_task_int(task, 0), bad = mp_task_int(task, 1);
    if (x == bad && mp_task_attempt(task) == 1)
        raise(SIGKILL);
    return mp_task_return_int(task, x);
}

MP_TASK(set_init)
{
    init_value = mp_task_int(task, 0);
    return 0;
}

MP_TASK(get_init)
{
    return mp_task_return_int(task, init_value);
}

MP_TASK(get_pid)
{
    return mp_task_return_int(task, getpid());
}

/* remote_hit(endpoint, key): increments "pool_hits" of the dict "d" of the manager at
   endpoint; one connection per executor process, kept between items. */
MP_TASK(remote_hit)
{
    static mp_remote_t *remote;
    static mp_mdict_t *dict;
    static char at[256];
    size_t n, kl;
    const char *ep = mp_task_str(task, 0, &n), *key = mp_task_str(task, 1, &kl);
    if (!ep || !key || n >= sizeof at)
        return mp_task_fail(task, 1, "bad arguments");
    if (!remote || strncmp(at, ep, n) || at[n]) {
        mp_remote_disconnect(&remote);
        memcpy(at, ep, n);
        at[n] = '\0';
        int rc = mp_manager_connect(at, key, kl, NULL, &remote);
        if (!rc)
            rc = mp_remote_dict(remote, "d", &dict);
        if (rc)
            return mp_task_fail(task, rc, "manager at %s: %s", at, mp_strerror(rc));
    }
    mp_obj_t *k = mp_obj_new_str("pool_hits");
    int64_t v = 0;
    int rc = mp_mdict_incr(dict, k, 1, &v);
    mp_obj_destroy(&k);
    return rc ? mp_task_fail(task, rc, "incr: %s", mp_strerror(rc)) : mp_task_return_int(task, v);
}

/* spin_if_negative(x): x*x, or a loop that never ends when x < 0 (what a
   time limit is for) */
MP_TASK(spin_if_negative)
{
    volatile int64_t x = mp_task_int(task, 0);
    while (x < 0)
        ;
    return mp_task_return_int(task, x * x);
}

/* The worker supervisor running this executor (executor -> zygote ->
   supervisor), from /proc. */
static pid_t supervisor_pid(void)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)getppid());
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *close = strrchr(buf, ')'); /* "pid (comm) state ppid ..." */
    int ppid = 0;
    char state;
    if (!close || sscanf(close + 1, " %c %d", &state, &ppid) != 2)
        return 0;
    return (pid_t)ppid;
}

/* kill_my_worker(x, bad): x, or, when x == bad, one byte appended to the
   file $MP_TEST_HITS (each execution counted) and the whole worker
   process SIGKILLed: supervisor, zygote and this executor */
MP_TASK(kill_my_worker)
{
    int64_t x = mp_task_int(task, 0), bad = mp_task_int(task, 1);
    if (x != bad)
        return mp_task_return_int(task, x);
    const char *hits = getenv("MP_TEST_HITS");
    int fd = hits ? open(hits, O_WRONLY | O_APPEND | O_CREAT, 0600) : -1;
    if (fd >= 0) {
        ssize_t w = write(fd, "x", 1);
        (void)w;
        close(fd);
    }
    pid_t zygote = getppid(), sup = supervisor_pid();
    if (sup > 1)
        kill(sup, SIGKILL);
    kill(zygote, SIGKILL);
    raise(SIGKILL);
    return 0;
}

/* fail_long(n): fails with a message of n 'x' characters (Python carries a
   1 MiB exception message whole; libmp up to MP_TASK_MESSAGE_MAX). */
MP_TASK(fail_long)
{
    int64_t n = mp_task_int(task, 0);
    char *s = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (!s)
        return mp_task_fail(task, MP_ENOMEM, "out of memory");
    memset(s, 'x', n > 0 ? (size_t)n : 0);
    s[n > 0 ? n : 0] = '\0';
    int rc = mp_task_fail(task, -7, "%s", s);
    free(s);
    return rc;
}

/* ---- the tasks of CPython's _TestPool (tests/conformance/conformance_pool.c) ---- */

/* The task codes that stand for the Python exception classes they raise. */
enum { TT_VALUE_ERROR = 1001, TT_KEY_ERROR = 1002, TT_RUNTIME_ERROR = 1003 };

static void sleep_seconds(double s)
{
    if (s > 0) {
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* sqr(x [, wait]): x*x after sleeping wait seconds (CPython's sqr) */
MP_TASK(sqr)
{
    int64_t x = mp_task_int(task, 0);
    if (mp_task_argc(task) > 1)
        sleep_seconds(mp_task_float(task, 1));
    return mp_task_return_int(task, x * x);
}

/* mul(x, y): x*y */
MP_TASK(mul)
{
    return mp_task_return_int(task, mp_task_int(task, 0) * mp_task_int(task, 1));
}

/* parse_int(s): Python's int(s) for a decimal string; TT_VALUE_ERROR with
   Python's message otherwise */
MP_TASK(parse_int)
{
    const char *s = mp_task_str(task, 0, NULL);
    char *end = NULL;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end)
        return mp_task_fail(task, TT_VALUE_ERROR, "invalid literal for int() with base 10: '%s'",
                            s ? s : "");
    return mp_task_return_int(task, v);
}

/* raise_large_valuerror(wait): after wait seconds, TT_VALUE_ERROR with a
   message of 1 MiB 'x' (cut to MP_TASK_MESSAGE_MAX on the way) */
MP_TASK(raise_large_valuerror)
{
    sleep_seconds(mp_task_float(task, 0));
    enum { N = 1 << 20 };
    char *s = malloc(N + 1);
    if (!s)
        return mp_task_fail(task, MP_ENOMEM, "out of memory");
    memset(s, 'x', N);
    s[N] = '\0';
    int rc = mp_task_fail(task, TT_VALUE_ERROR, "%s", s);
    free(s);
    return rc;
}

/* raising(): CPython's raise KeyError("key") */
MP_TASK(raising)
{
    return mp_task_fail(task, TT_KEY_ERROR, "'key'");
}

/* fail_with(code, message): fails with that code and message */
MP_TASK(fail_with)
{
    return mp_task_fail(task, (int)mp_task_int(task, 0), "%s", mp_task_str(task, 1, NULL));
}

/* unencodable_result(): a result that cannot be encoded (0xc1 is no msgpack
   value), CPython's unpickleable_result */
MP_TASK(unencodable_result)
{
    return mp_task_return_packed(task, "\xc1", 1);
}
