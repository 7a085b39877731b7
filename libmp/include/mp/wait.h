/*  mp/wait.h - wait for any of several processes, connections or fds.

    As Python's multiprocessing.connection.wait(): returns when at least one
    of the objects is ready: a process has ended (its sentinel), a
    connection has a message or EOF to read, a plain fd is readable.

    Thread-safety: thread-safe for distinct objects. Fork: no state.
    Signals: not async-signal-safe; EINTR is retried within the timeout.
*/
#ifndef MP_WAIT_H_INCLUDED
#define MP_WAIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp/export.h"
#include "mp/pipe.h"
#include "mp/process.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MP_WAIT_FD, MP_WAIT_PROCESS, MP_WAIT_CONN } mp_wait_kind_t;

typedef struct {
    mp_wait_kind_t kind;
    union {
        int fd;
        mp_process_t *process;
        mp_conn_t *conn;
    } u;
    bool ready; /* set by mp_wait */
} mp_waitable_t;

#define MP_WAITABLE_FD(f) ((mp_waitable_t){.kind = MP_WAIT_FD, .u.fd = (f)})
#define MP_WAITABLE_PROCESS(p) ((mp_waitable_t){.kind = MP_WAIT_PROCESS, .u.process = (p)})
#define MP_WAITABLE_CONN(c) ((mp_waitable_t){.kind = MP_WAIT_CONN, .u.conn = (c)})

/* Waits until one or more items are ready and marks them. Returns how many
   are ready (0 when the timeout passed), or MP_EINVAL (an item has no fd:
   a process not started, a closed connection) or -errno. */
MP_EXPORT int mp_wait(mp_waitable_t *items, size_t n, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
