/*  tracker.c - the SharedMemory tracker: removes the tracked blocks a
    process created and never unlinked once it is gone, as Python's
    resource tracker does (docs/CORE.md, "SharedMemory tracking").

    The first tracked block starts one tracker process for this process
    and the children it forks afterwards: a grandchild (double fork, so it
    is nobody's child to reap), in a session of its own, ignoring the
    terminal's signals. The creator keeps one end of a SOCK_SEQPACKET
    socketpair (close-on-exec: a spawned program does not keep the tracker
    waiting) and sends "+NAME" when it creates a tracked block, "-NAME"
    when it unlinks one; each is one record, so records from the creator
    and its children never mix. When every process holding that end has
    exited, the tracker reads end-of-file, unlinks the names still
    registered, says so on stderr, and exits.

    The tracker is forked from a process that may have other threads: until
    it exits it calls only async-signal-safe functions (no malloc, no
    stdio; its table is mmap'ed).
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp/error.h"
#include "mp/shm.h"
#include "shared/tracker.h"

#define ENTRY (MP_SHM_NAME_MAX + 1)

static pthread_mutex_t tracker_mutex = PTHREAD_MUTEX_INITIALIZER;
static int tracker_fd = -1; /* this process's end; inherited by fork */

/* ---- the tracker process (async-signal-safe only) --------------------------------- */

static void say(const char *s)
{
    ssize_t rc = write(2, s, strlen(s));
    (void)rc; /* stderr closed: nothing to do */
}

static void say_int(unsigned long v)
{
    char b[24], *p = b + sizeof b;
    *--p = '\0';
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10) && p > b);
    say(p);
}

/* The table: n names of ENTRY bytes each, in a mapping of cap entries. */
typedef struct {
    char *names;
    size_t n, cap;
} table_t;

static void table_add(table_t *t, const char *name, size_t len)
{
    if (t->n == t->cap) {
        size_t cap = t->cap * 2;
        void *grown = mremap(t->names, t->cap * ENTRY, cap * ENTRY, MREMAP_MAYMOVE);
        if (grown == MAP_FAILED)
            return; /* not tracked: it stays, as an untracked block would */
        t->names = grown;
        t->cap = cap;
    }
    memcpy(t->names + t->n * ENTRY, name, len);
    t->names[t->n * ENTRY + len] = '\0';
    t->n++;
}

static void table_remove(table_t *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n; i++) {
        char *e = t->names + i * ENTRY;
        if (strlen(e) == len && memcmp(e, name, len) == 0) {
            memcpy(e, t->names + --t->n * ENTRY, ENTRY);
            return;
        }
    }
}

static void tracker_main(int fd)
{
    table_t t = {.cap = 64};
    t.names = mmap(NULL, t.cap * ENTRY, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (t.names == MAP_FAILED)
        _exit(1);
    char rec[ENTRY + 1];
    for (;;) {
        ssize_t n = recv(fd, rec, sizeof rec, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) /* every holder of the other end has exited */
            break;
        if (n < 2 || n > ENTRY || (rec[0] != '+' && rec[0] != '-'))
            continue;
        if (rec[0] == '+')
            table_add(&t, rec + 1, (size_t)n - 1);
        else
            table_remove(&t, rec + 1, (size_t)n - 1);
    }
    size_t removed = 0;
    for (size_t i = 0; i < t.n; i++) {
        char path[sizeof "/dev/shm/" + ENTRY];
        memcpy(path, "/dev/shm/", sizeof "/dev/shm/" - 1);
        strcpy(path + sizeof "/dev/shm/" - 1, t.names + i * ENTRY);
        if (unlink(path) == 0)
            removed++;
    }
    if (removed) { /* as Python's resource tracker warns */
        say("mp-shm-tracker: removed ");
        say_int(removed);
        say(removed == 1 ? " shared memory block" : " shared memory blocks");
        say(" its creator left without unlinking:");
        for (size_t i = 0; i < t.n; i++) {
            say(" ");
            say(t.names + i * ENTRY);
        }
        say("\n");
    }
    _exit(0);
}

/* ---- the creator's side ------------------------------------------------------------ */

/* Starts the tracker (mutex held): 0 or -errno. */
static int start(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t mid = _Fork(); /* no atfork handlers: they are not async-signal-safe */
    if (mid < 0) {
        int rc = -errno;
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    if (mid == 0) {
        if (_Fork() != 0) /* the middle process: gone at once, reaped below */
            _exit(0);
        setsid();
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        if (dup2(sv[0], 3) < 0)
            _exit(1);
        close_range(4, ~0u, 0); /* nothing else of the creator's stays open */
        tracker_main(3);
    }
    close(sv[0]);
    int status;
    while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
        ;
    tracker_fd = sv[1];
    return 0;
}

static int tell(char op, const char *name)
{
    char rec[ENTRY + 1];
    size_t len = strlen(name);
    if (len == 0 || len > MP_SHM_NAME_MAX)
        return MP_EINVAL;
    rec[0] = op;
    memcpy(rec + 1, name, len);
    ssize_t n = send(tracker_fd, rec, len + 1, MSG_NOSIGNAL);
    return n == (ssize_t)(len + 1) ? 0 : n < 0 ? -errno : -EIO;
}

int mp__shm_track(const char *name)
{
    pthread_mutex_lock(&tracker_mutex);
    int rc = tracker_fd < 0 ? start() : 0;
    if (!rc)
        rc = tell('+', name);
    if (rc == -EPIPE || rc == -ECONNRESET || rc == -ECONNREFUSED) { /* the tracker was killed */
        close(tracker_fd);
        tracker_fd = -1;
        if (!(rc = start()))
            rc = tell('+', name);
    }
    pthread_mutex_unlock(&tracker_mutex);
    return rc;
}

void mp__shm_untrack(const char *name)
{
    pthread_mutex_lock(&tracker_mutex);
    if (tracker_fd >= 0)
        tell('-', name);
    pthread_mutex_unlock(&tracker_mutex);
}
