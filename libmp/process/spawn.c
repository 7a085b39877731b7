/*  spawn.c - the spawn start method: fork, then exec a fresh program image.

    Parent                                  Child (after exec)
    ------                                  ------------------
    encode [sig, target, name, ident,       mp_bootstrap(): read MP_SPAWN,
      daemon, ppid, parent name, args]        decode the payload from its fd,
      into a memfd                            look the target up,
    pipe2(status, O_CLOEXEC)                  write status (0 or MP_ENOENT),
    fork; child: clear CLOEXEC on the         close it, run target, _exit
      payload fd and status write end,
      execve(exe, {argv0, "--mp-spawn"})
      on failure: write errno, _exit(127)
    read status: 4 bytes or EOF

    The status pipe is libuv's exec-status pipe extended one step: it also
    carries the child's verdict on the target, so mp_process_start() can
    report "no such target" instead of a child that exits mysteriously.
    Everything the child needs between fork and exec (envp, argv) is built
    before fork: only async-signal-safe calls run in that window.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "mp/error.h"
#include "process/process_impl.h"

#define SPAWN_SIGNATURE "libmp-spawn/1"
#define SPAWN_ENV "MP_SPAWN"
#define SPAWN_ACK_TIMEOUT_MS 10000

extern char **environ;

static int write_payload(const mp_process_t *p, const char *target, int *fd_p)
{
    mp_obj_t *msg = mp_obj_new_array();
    mp_process_t *self = mp_current_process();
    if (!msg)
        return MP_ENOMEM;
    int rc = mp_obj_array_add(msg, mp_obj_new_str(SPAWN_SIGNATURE));
    rc = rc ? rc : mp_obj_array_add(msg, mp_obj_new_str(target));
    rc = rc ? rc : mp_obj_array_add(msg, mp_obj_new_str(p->name));
    rc = rc ? rc : mp_obj_array_add(msg, mp_obj_new_str(p->ident));
    rc = rc ? rc : mp_obj_array_add(msg, mp_obj_new_bool(p->daemon));
    rc = rc ? rc : mp_obj_array_add(msg, mp_obj_new_int(getpid()));
    rc = rc ? rc : mp_obj_array_add(msg, mp_obj_new_str(self->name));
    rc = rc ? rc : mp_obj_array_add(msg, p->args ? mp_obj_dup(p->args) : mp_obj_new_nil());
    char *data = NULL;
    size_t size = 0;
    rc = rc ? rc : mp_obj_pack(msg, &data, &size);
    mp_obj_destroy(&msg);
    if (rc)
        return rc;
    int fd = memfd_create("libmp-spawn", MFD_CLOEXEC);
    if (fd < 0)
        rc = -errno;
    for (size_t off = 0; !rc && off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    free(data);
    if (rc) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    *fd_p = fd;
    return 0;
}

/* environ without any MP_SPAWN=..., plus our own. Caller frees envp[0..]. */
static char **build_env(int payload_fd, int status_fd)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **envp = calloc(n + 2, sizeof *envp);
    if (!envp)
        return NULL;
    size_t j = 0;
    if (asprintf(&envp[j++], SPAWN_ENV "=%d,%d", payload_fd, status_fd) < 0) {
        free(envp);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], SPAWN_ENV "=", sizeof SPAWN_ENV) != 0)
            envp[j++] = environ[i];
    return envp;
}

static int read_status(int fd, int *status)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(SPAWN_ACK_TIMEOUT_MS, &ts);
    size_t got = 0;
    while (got < sizeof *status) {
        int r = poll(&pfd, 1, mp__remaining_ms(deadline));
        if (r == 0)
            return MP_ETIMEDOUT;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        ssize_t n = read(fd, (char *)status + got, sizeof *status - got);
        if (n == 0)
            return MP_EEOF;
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            got += (size_t)n;
    }
    return 0;
}

int mp__spawn_start(mp_process_t *p)
{
    const char *target = mp__target_name(p->fn);
    if (!target)
        return MP_ENOENT;
    int payload_fd = -1, pipefd[2] = {-1, -1};
    int rc = write_payload(p, target, &payload_fd);
    if (rc)
        return rc;
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        close(payload_fd);
        return -errno;
    }
    char **envp = build_env(payload_fd, pipefd[1]);
    char *argv[] = {program_invocation_name, "--mp-spawn", NULL};
    const char *exe = mp__executable();
    int parent_pid = getpid();
    pid_t pid = envp ? (fflush(NULL), fork()) : -1;
    if (pid == 0) {
        if (p->daemon) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent_pid) /* the parent died before prctl: */
                raise(SIGKILL);          /* die as the signal would have */
        }
        fcntl(payload_fd, F_SETFD, 0);
        fcntl(pipefd[1], F_SETFD, 0);
        execve(exe, argv, envp);
        int err = errno;
        ssize_t ignored = write(pipefd[1], &err, sizeof err);
        (void)ignored;
        _exit(127);
    }
    rc = pid < 0 ? (envp ? -errno : MP_ENOMEM) : 0;
    if (envp)
        free(envp[0]);
    free(envp);
    close(payload_fd);
    close(pipefd[1]);
    if (rc) {
        close(pipefd[0]);
        return rc;
    }
    int status = 0;
    rc = read_status(pipefd[0], &status);
    close(pipefd[0]);
    if (rc == MP_EEOF) {
        /* the child ended (or lost the fd) before its verdict: it was
           started; join will tell how it ended */
        rc = 0;
    } else if (rc == 0 && status != 0) {
        rc = status > 0 ? -status : status; /* errno of exec, or MP_E* */
    }
    p->pid = pid;
    if (rc) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        p->pid = 0;
    }
    return rc;
}

static int read_all(int fd, char **data_p, size_t *size_p)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > (1 << 30))
        return MP_EBADMSG;
    char *data = malloc((size_t)st.st_size);
    if (!data)
        return MP_ENOMEM;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, data + got, (size_t)st.st_size - got, (off_t)got);
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            free(data);
            return MP_EBADMSG;
        }
        if (n > 0)
            got += (size_t)n;
    }
    *data_p = data;
    *size_p = got;
    return 0;
}

static _Noreturn void bootstrap_fail(int status_fd, int rc, const char *what)
{
    fprintf(stderr, "libmp: spawn bootstrap failed: %s: %s\n", what, mp_strerror(rc));
    if (status_fd >= 0) {
        ssize_t ignored = write(status_fd, &rc, sizeof rc);
        (void)ignored;
    }
    _exit(1);
}

bool mp__spawn_child(int *code_p)
{
    const char *env = getenv(SPAWN_ENV);
    if (!env)
        return false;
    int payload_fd = -1, status_fd = -1;
    if (sscanf(env, "%d,%d", &payload_fd, &status_fd) != 2)
        bootstrap_fail(-1, MP_EINVAL, SPAWN_ENV " is malformed");
    unsetenv(SPAWN_ENV); /* our own children must not see it */
    fcntl(status_fd, F_SETFD, FD_CLOEXEC);

    char *data = NULL;
    size_t size = 0;
    mp_obj_t *msg = NULL;
    int rc = read_all(payload_fd, &data, &size);
    close(payload_fd);
    if (!rc)
        rc = mp_obj_unpack(data, size, &msg);
    free(data);
    const char *sig = mp_obj_str(mp_obj_array_at(msg, 0), NULL);
    if (rc || mp_obj_len(msg) != 8 || !sig || strcmp(sig, SPAWN_SIGNATURE) != 0)
        bootstrap_fail(status_fd, rc ? rc : MP_EBADMSG, "bad payload");

    const char *target = mp_obj_str(mp_obj_array_at(msg, 1), NULL);
    mp_target_fn *fn = target ? mp__target_lookup(target) : NULL;
    if (!fn)
        bootstrap_fail(status_fd, MP_ENOENT, "target not registered in this program");

    mp_process_t self = {.kind = PROC_SELF, .pidfd = -1};
    const char *name = mp_obj_str(mp_obj_array_at(msg, 2), NULL);
    const char *ident = mp_obj_str(mp_obj_array_at(msg, 3), NULL);
    snprintf(self.name, sizeof self.name, "%s", name ? name : "Process");
    snprintf(self.ident, sizeof self.ident, "%s", ident ? ident : "");
    self.daemon = mp_obj_bool(mp_obj_array_at(msg, 4));
    int parent_pid = (int)mp_obj_int(mp_obj_array_at(msg, 5));
    const char *parent_name = mp_obj_str(mp_obj_array_at(msg, 6), NULL);
    mp__become_child(&self, parent_pid, parent_name ? parent_name : "");

    int ok = 0;
    if (write(status_fd, &ok, sizeof ok) != sizeof ok)
        _exit(1); /* the parent gave up on us */
    close(status_fd);

    mp_obj_t *args = mp_obj_array_at(msg, 7);
    *code_p = fn(mp_obj_type(args) == MP_OBJ_NIL ? NULL : args);
    mp_obj_destroy(&msg);
    return true;
}
