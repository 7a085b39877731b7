/*  worker_impl.h - the zygote, the executors, and the supervisor-executor
    framing. Private to the worker engine. */
#ifndef MP_WORKER_IMPL_H_INCLUDED
#define MP_WORKER_IMPL_H_INCLUDED

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pool/poolshm.h"

typedef struct {
    int ctl; /* SOCK_SEQPACKET to the zygote */
    pid_t pid;
} mp__zygote_t;

enum { ZYGOTE_SPAWNED = 1, ZYGOTE_EXITED = 2, ZYGOTE_FAILED = 3 };

typedef struct {
    int type;
    int slot;
    pid_t pid;
    int status; /* EXITED: wait status; FAILED: -errno */
    int fd;     /* SPAWNED: the supervisor's end of the executor's socket */
} mp__zygote_event_t;

/* Executor i's progress slot is progress[i * MP__PROGRESS_STRIDE]: a cache
   line each. An executor stores into its slot before every item; with the
   slots side by side one line bounced between the executors' cores on
   every item (maps and starmaps ~30% slower, BENCHMARKS.md). */
#define MP__PROGRESS_STRIDE 16

/* Forks the zygote. progress[i * MP__PROGRESS_STRIDE] is executor i's
   "running item" slot (shared memory made by the caller); shm, when not
   NULL, the embedded pool's rings (executor i writes output ring i). Call
   before any thread exists. 0 or -errno. */
int mp__zygote_start(mp__zygote_t *z, uint32_t *progress, int maxtasks, const char *host,
                     mp__pshm_t *shm);
/* Asks for an executor in slot. 0 or -errno. */
int mp__zygote_spawn(mp__zygote_t *z, int slot);
/* One event; 0, MP_EAGAIN (none now), MP_EEOF (the zygote is gone). */
int mp__zygote_read(mp__zygote_t *z, mp__zygote_event_t *ev);
/* Closes the control socket (the zygote kills its executors and exits)
   and reaps the zygote. */
void mp__zygote_stop(mp__zygote_t *z);

/* Writes all of iov (blocking, EINTR-safe, no SIGPIPE). 0 or -errno. */
int mp__write_all(int fd, struct iovec *iov, int n);
/* Reads exactly n bytes. 0, MP_EEOF (clean EOF before any byte), -errno. */
int mp__read_all(int fd, void *p, size_t n);

/* Describes a wait status: "exit status 3", "killed by signal 9 (SIGKILL)". */
void mp__describe_status(int status, char *out, size_t size);

#endif
