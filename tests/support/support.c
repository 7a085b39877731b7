/*  support.c - time, what a test leaves behind, and the processes a test
    starts (mp_process children, and plain fork / exec children).
*/
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "support.h"

uint64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- what a test must leave behind: nothing -------------------------------------- */

int tu_shm_count(const char *prefix)
{
    DIR *d = opendir("/dev/shm");
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

void tu_assert_no_children(void)
{
    pid_t r = waitpid(-1, NULL, WNOHANG);
    assert_int_equal(r, -1);
    assert_int_equal(errno, ECHILD);
}

int tu_teardown(void **state)
{
    (void)state;
    tu_assert_no_children();
    /* this process's blocks only: ctest runs test programs in parallel
       (test_shm checks its own named "mptest" blocks itself) */
    char own[32];
    snprintf(own, sizeof own, "mp_%d_", (int)getpid());
    assert_int_equal(tu_shm_count(own), 0);
    return 0;
}

const char *tu_ipc_dir(void)
{
    const char *dir = getenv("XDG_RUNTIME_DIR");
    return dir && access(dir, W_OK) == 0 ? dir : "/tmp";
}

int tu_ipc_files(pid_t pid, char *path, size_t size)
{
    DIR *d = opendir(tu_ipc_dir());
    int n = 0;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "mp-pool-%d-", (int)pid);
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            if (n++ == 0 && path)
                snprintf(path, size, "%s/%s", tu_ipc_dir(), e->d_name);
        }
    closedir(d);
    return n;
}

int tu_pool_teardown(void **state)
{
    assert_int_equal(tu_ipc_files(getpid(), NULL, 0), 0);
    return tu_teardown(state);
}

/* A socket or block named after our pid that exists before main() is not
   ours: a process that had this pid before was killed before it could
   unlink it. Removed here, so the checks "nothing left behind" see only
   what this process made (CI once failed on four such sockets). */
__attribute__((constructor)) static void tu_remove_stale_names(void)
{
    char path[512];
    while (tu_ipc_files(getpid(), path, sizeof path) > 0)
        if (unlink(path) != 0)
            break;
    char own[32];
    snprintf(own, sizeof own, "mp_%d_", (int)getpid());
    DIR *d = opendir("/dev/shm");
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, own, strlen(own)) == 0)
            shm_unlink(e->d_name);
    if (d)
        closedir(d);
}

/* ---- mp_process children ---------------------------------------------------------- */

mp_process_t *tu_start(mp_target_fn *fn, void *arg, const mp_process_opts_t *opts)
{
    mp_process_t *p = mp_process_new(fn, arg, opts);
    assert_non_null(p);
    assert_int_equal(mp_process_start(p), 0);
    return p;
}

int tu_join(mp_process_t **p, int timeout_ms)
{
    assert_int_equal(mp_process_join(*p, timeout_ms), 0);
    int code = -1000;
    assert_true(mp_process_exitcode(*p, &code));
    mp_process_destroy(p);
    return code;
}

int tu_run(mp_target_fn *fn, void *arg)
{
    mp_process_t *p = tu_start(fn, arg, NULL);
    return tu_join(&p, 30000);
}

void tu_start_n(mp_process_t **ps, int n, mp_target_fn *fn, void *arg)
{
    mp_process_opts_t opts = {.daemon = true};
    for (int i = 0; i < n; i++)
        ps[i] = tu_start(fn, arg, &opts);
}

int tu_join_n(mp_process_t **ps, int n, int timeout_ms, int *codes)
{
    uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
    int ended = 0;
    for (int i = 0; i < n; i++) {
        uint64_t now = tu_now_ms();
        codes[i] = -1000;
        if (mp_process_join(ps[i], now < deadline ? (int)(deadline - now) : 0) == 0 &&
            mp_process_exitcode(ps[i], &codes[i]))
            ended++;
        mp_process_destroy(&ps[i]);
    }
    return ended;
}

/* ---- plain children (fork, exec) ---------------------------------------------------- */

#define MAXCHILDREN 16
static pid_t children[MAXCHILDREN];
static int nchildren;

static void forget(pid_t pid)
{
    for (int i = 0; i < nchildren; i++)
        if (children[i] == pid) {
            children[i] = children[--nchildren];
            return;
        }
}

pid_t tu_fork(void)
{
    assert_true(nchildren < MAXCHILDREN);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        nchildren = 0; /* the parent's */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        return 0;
    }
    children[nchildren++] = pid;
    return pid;
}

pid_t tu_spawn(char *const argv[], int out_fd)
{
    pid_t pid = tu_fork();
    if (pid == 0) {
        if (out_fd >= 0)
            dup2(out_fd, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int tu_wait_exit(pid_t pid, int timeout_ms)
{
    int status = -1;
    if (!TU_WAIT_UNTIL(waitpid(pid, &status, WNOHANG) == pid, timeout_ms))
        return -1;
    forget(pid);
    return status;
}

int tu_reap(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    forget(pid);
    return status;
}

void tu_kill_children(void)
{
    for (int i = 0; i < nchildren; i++)
        kill(children[i], SIGKILL);
    while (nchildren) {
        waitpid(children[0], NULL, 0);
        forget(children[0]);
    }
}

int tu_kill_teardown(void **state)
{
    tu_kill_children();
    return tu_teardown(state);
}
