/*  worker_impl.h - the zygote, the executors, and the supervisor-executor
    framing. Private to the worker engine. */
#ifndef MP_WORKER_IMPL_H_INCLUDED
#define MP_WORKER_IMPL_H_INCLUDED

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "codec/buf.h"
#include "pool/poolshm.h"
#include "pool/task_impl.h"

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

/* Executor i's progress slot is progress[i], one cache line each
   (mp__progress_t, task_impl.h): with the slots side by side one line
   bounced between the executors' cores on every item (maps and starmaps
   ~30% slower, BENCHMARKS.md).

   Executor i builds its replies in results + i * MP__RESULT_AREA: values
   first, then errors (MAP_NORESERVE: pages exist once written), so that
   its supervisor can read what it finished while it is stuck on an item
   (docs/PARTIAL-RESULTS.md). A reply that outgrows an area moves to the
   heap. */
#define MP__RESULT_VALUES ((size_t)16 << 20)
#define MP__RESULT_ERRORS ((size_t)4 << 20)
#define MP__RESULT_AREA (MP__RESULT_VALUES + MP__RESULT_ERRORS)

/* Forks the zygote. progress[i] is executor i's progress slot and results
   its result areas (shared memory made by the caller); shm, when not NULL,
   the embedded pool's rings (executor i writes output ring i); close_fd
   (>= 0) a descriptor of the supervisor's the zygote and executors must
   not hold (its broker's socket pair). Call before any thread exists. 0
   or -errno. */
int mp__zygote_start(mp__zygote_t *z, mp__progress_t *progress, char *results, int maxtasks,
                     const char *host, mp__pshm_t *shm, int close_fd);
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

/* Items [from, to) of a reply being built (partial.c): the values (value
   0 at vals + vstart, vsize bytes written) appended to vout as an items
   array; the error entries (errs: an array32 header, then esize - 5
   bytes of entries) whose index is in the range appended to eout, rebased
   to from, as an errors array of *nerr entries. Parses, never trusts a
   size. 0, MP_EBADMSG (fewer values there, or a malformed entry),
   MP_ENOMEM. */
int mp__partial_slice(const char *vals, size_t vstart, size_t vsize, const char *errs, size_t esize,
                      uint64_t from, uint64_t to, mp__buf_t *vout, mp__buf_t *eout, uint32_t *nerr);

/* Describes a wait status: "exit status 3", "killed by signal 9 (SIGKILL)". */
void mp__describe_status(int status, char *out, size_t size);

#endif
