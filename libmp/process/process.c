/*  process.c - child processes: fork start, join, signals, sentinels.

    Each started child gets a pidfd (Linux >= 5.3) as its sentinel: it
    becomes readable when the child ends, so join(timeout) is a poll() on it
    followed by a reap that cannot block, and mp_wait() can wait for many
    children, pipes and fds at once. Rejected: SIGCHLD handlers (they belong
    to the application) and polling waitpid in a sleep loop (latency, CPU).

    Reaping happens only under the state lock (mp__reap_locked), so join in
    one thread and active_children in another never race for an exit code.

    The process layer (libmp/process/): processes and the state of this one
    (self.c: identity, children, start method, spawn targets), the fork and
    spawn start methods (here, spawn.c), and mp_wait over sentinels, pipes
    and fds (wait.c). Uses the layers below (base, sync, codec, shared).
*/
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "mp/error.h"
#include "process/process_impl.h"

mp_process_t *mp_process_new(mp_target_fn *fn, void *arg, const mp_process_opts_t *opts)
{
    mp_start_method_t method =
        opts && opts->start_method ? opts->start_method : mp_get_start_method();
    if (!fn || (method == MP_START_SPAWN && arg) || (opts && opts->args && arg))
        return NULL;
    mp_process_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->kind = PROC_CHILD;
    p->state = PROC_NEW;
    p->method = method;
    p->fn = fn;
    p->arg = arg;
    p->pidfd = -1;
    p->daemon = opts && opts->daemon;
    if (opts && opts->args && !(p->args = mp_obj_dup(opts->args))) {
        free(p);
        return NULL;
    }
    mp__next_child_ident(p->ident, sizeof p->ident);
    if (opts && opts->name)
        snprintf(p->name, sizeof p->name, "%s", opts->name);
    else
        snprintf(p->name, sizeof p->name, "Process-%s", p->ident);
    return p;
}

static int decode_status(int status)
{
    if (WIFSIGNALED(status))
        return -WTERMSIG(status);
    return WEXITSTATUS(status);
}

void mp__reap_locked(mp_process_t *p)
{
    if (p->kind != PROC_CHILD || p->state != PROC_STARTED)
        return;
    int status;
    pid_t r;
    do
        r = waitpid(p->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid) {
        p->exitcode = decode_status(status);
        p->state = PROC_DONE;
        mp__children_remove(p);
    } else if (r < 0 && errno == ECHILD) {
        /* reaped behind our back (SIGCHLD ignored, or a waitpid(-1) of the
           application): the code is lost; report "killed" honestly */
        p->exitcode = -SIGKILL;
        p->state = PROC_DONE;
        mp__children_remove(p);
    }
}

static void reap(mp_process_t *p)
{
    mp__state_lock();
    mp__reap_locked(p);
    mp__state_unlock();
}

static int start_fork(mp_process_t *p)
{
    char parent_name[MP__NAME_MAX];
    mp_process_t *self = mp_current_process();
    snprintf(parent_name, sizeof parent_name, "%s", self->name);
    int parent_pid = getpid();
    fflush(NULL); /* or buffered output would be written twice */
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        if (p->daemon) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent_pid) /* the parent died before prctl: */
                raise(SIGKILL);          /* die as the signal would have */
        }
        mp__become_child(p, parent_pid, parent_name);
        mp__child_exit(p->fn(p->args ? (void *)p->args : p->arg));
    }
    p->pid = pid;
    return 0;
}

static void exit_children_at_exit(void)
{
    mp__exit_children();
}

int mp_process_start(mp_process_t *p)
{
    if (!p)
        return MP_EINVAL;
    if (p->state == PROC_CLOSED) /* Python: "process object is closed" */
        return MP_ECLOSED;
    if (p->kind != PROC_CHILD || p->state != PROC_NEW)
        return MP_ESTATE;
    if (mp__claim_atexit())
        atexit(exit_children_at_exit);
    int rc = p->method == MP_START_SPAWN ? mp__spawn_start(p) : start_fork(p);
    if (rc)
        return rc;
    p->pidfd = pidfd_open(p->pid, 0);
    p->state = PROC_STARTED;
    mp__children_add(p);
    return 0;
}

/* Waits for fd to become readable. 0, or MP_ETIMEDOUT. */
static int wait_readable(int fd, const struct timespec *deadline)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    for (;;) {
        int n = poll(&pfd, 1, mp__remaining_ms(deadline));
        if (n > 0)
            return 0;
        if (n == 0)
            return MP_ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int mp_process_join(mp_process_t *p, int timeout_ms)
{
    if (!p)
        return MP_EINVAL;
    if (p->state == PROC_CLOSED) /* Python: "process object is closed" */
        return MP_ECLOSED;
    if (p->kind != PROC_CHILD)
        return MP_ESTATE;
    if (p->state == PROC_NEW)
        return MP_ENOTSTARTED;
    if (p->state == PROC_DONE)
        return 0;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    if (p->pidfd >= 0) {
        int rc = wait_readable(p->pidfd, deadline);
        if (rc)
            return rc;
        reap(p);
    } else {
        /* no pidfd (very old kernel): poll the exit status */
        for (reap(p); p->state == PROC_STARTED; reap(p)) {
            if (mp__remaining_ms(deadline) == 0)
                return MP_ETIMEDOUT;
            usleep(1000);
        }
    }
    return p->state == PROC_DONE ? 0 : MP_ETIMEDOUT;
}

bool mp_process_is_alive(mp_process_t *p)
{
    if (!p)
        return false;
    if (p->kind == PROC_SELF)
        return true;
    if (p->kind == PROC_PARENT) {
        struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
        if (p->pidfd >= 0)
            return poll(&pfd, 1, 0) == 0;
        return kill(p->pid, 0) == 0 || errno == EPERM;
    }
    reap(p);
    return p->state == PROC_STARTED;
}

bool mp_process_exitcode(mp_process_t *p, int *exitcode)
{
    if (!p || p->kind != PROC_CHILD)
        return false;
    reap(p);
    if (p->state != PROC_DONE && p->state != PROC_CLOSED)
        return false;
    if (exitcode)
        *exitcode = p->exitcode;
    return true;
}

int mp_process_pid(const mp_process_t *p)
{
    if (!p)
        return 0;
    return p->kind == PROC_SELF ? (int)getpid() : p->pid;
}

const char *mp_process_name(const mp_process_t *p)
{
    return p ? p->name : NULL;
}

bool mp_process_daemon(const mp_process_t *p)
{
    return p && p->daemon;
}

int mp_process_set_name(mp_process_t *p, const char *name)
{
    if (!p || !name)
        return MP_EINVAL;
    if (p->kind != PROC_CHILD || p->state != PROC_NEW)
        return MP_ESTATE;
    snprintf(p->name, sizeof p->name, "%s", name);
    return 0;
}

int mp_process_set_daemon(mp_process_t *p, bool daemon)
{
    if (!p)
        return MP_EINVAL;
    if (p->kind != PROC_CHILD || p->state != PROC_NEW)
        return MP_ESTATE;
    p->daemon = daemon;
    return 0;
}

static int send_signal(mp_process_t *p, int sig)
{
    if (!p)
        return MP_EINVAL;
    if (p->kind != PROC_CHILD)
        return MP_ESTATE;
    if (p->state == PROC_NEW)
        return MP_ENOTSTARTED;
    if (p->state == PROC_CLOSED) /* Python: "process object is closed" */
        return MP_ECLOSED;
    if (p->state != PROC_STARTED)
        return 0;
    /* through the pidfd when we have one: it can never hit a recycled pid */
    int rc = p->pidfd >= 0 ? pidfd_send_signal(p->pidfd, sig, NULL, 0) : kill(p->pid, sig);
    return rc < 0 && errno != ESRCH ? -errno : 0;
}

int mp_process_terminate(mp_process_t *p)
{
    return send_signal(p, SIGTERM);
}

int mp_process_kill(mp_process_t *p)
{
    return send_signal(p, SIGKILL);
}

int mp_process_sentinel(const mp_process_t *p)
{
    return p ? p->pidfd : -1;
}

int mp_process_close(mp_process_t *p)
{
    if (!p)
        return MP_EINVAL;
    if (p->kind != PROC_CHILD)
        return MP_ESTATE;
    reap(p);
    if (p->state == PROC_STARTED)
        return MP_EBUSY;
    if (p->pidfd >= 0)
        close(p->pidfd);
    p->pidfd = -1;
    if (p->state == PROC_DONE)
        p->state = PROC_CLOSED;
    return 0;
}

void mp_process_destroy(mp_process_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    mp_process_t *p = *p_p;
    *p_p = NULL;
    if (p->kind != PROC_CHILD)
        return; /* the current and parent objects are static */
    if (p->state == PROC_STARTED) {
        send_signal(p, SIGKILL);
        mp_process_join(p, -1);
    }
    mp__state_lock();
    mp__children_remove(p);
    mp__state_unlock();
    if (p->pidfd >= 0)
        close(p->pidfd);
    mp_obj_destroy(&p->args);
    free(p);
}

size_t mp_active_children(mp_process_t **out, size_t max)
{
    size_t alive = 0;
    mp__state_lock();
    mp_process_t *next;
    for (mp_process_t *p = mp__children_head(); p; p = next) {
        next = p->next; /* reaping unlinks p */
        mp__reap_locked(p);
        if (p->state == PROC_STARTED) {
            if (out && alive < max)
                out[alive] = p;
            alive++;
        }
    }
    mp__state_unlock();
    return alive;
}

void mp__exit_children(void)
{
    /* as Python's _exit_function: terminate daemonic children, then join
       every child still running */
    mp_process_t *p;
    mp__state_lock();
    for (p = mp__children_head(); p; p = p->next)
        if (p->daemon)
            send_signal(p, SIGTERM);
    mp__state_unlock();
    for (;;) {
        mp__state_lock();
        p = mp__children_head();
        mp__state_unlock();
        if (!p)
            break;
        mp_process_join(p, -1);
    }
}

_Noreturn void mp__child_exit(int rc)
{
    mp__exit_children();
    fflush(NULL);
    _exit(rc & 0xff);
}

int mp_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
