/*  mp/pipe.h - Pipe: a connection between two processes.

    As Python's multiprocessing.Pipe(): two connection ends; each send() of
    a value (an mp_obj_t, msgpack-encoded) or of raw bytes arrives whole at
    the other end's recv(). Duplex pipes send both ways; a one-way pipe
    gives a read end and a write end. When every copy of one end is closed
    (also by the death of its process), the other end's recv returns
    MP_EEOF once the data already sent is consumed.

    Create the pipe before starting the process that uses the other end;
    each process closes the end it does not use, so EOF can be seen.

    Thread-safety: one thread per end at a time. Fork: ends are inherited.
    Signals: never raises SIGPIPE (a send to a closed peer is -EPIPE).
*/
#ifndef MP_PIPE_H_INCLUDED
#define MP_PIPE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp/export.h"
#include "mp/obj.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_conn mp_conn_t;

#define MP_CONN_MAX_MESSAGE (1u << 30) /* bytes in one message */

/* Creates a pipe. duplex: both ends send and receive. One-way: *end1_p
   only receives, *end2_p only sends (Python's order). 0, -errno. */
MP_EXPORT int mp_pipe(mp_conn_t **end1_p, mp_conn_t **end2_p, bool duplex);

/* Sends a value / bytes. 0; MP_EINVAL (no item, too large, wrong
   direction); MP_ECLOSED; -EPIPE (the other end is closed); -errno. */
MP_EXPORT int mp_conn_send(mp_conn_t *c, const mp_obj_t *item);
MP_EXPORT int mp_conn_send_bytes(mp_conn_t *c, const void *data, size_t size);

/* Receives one message, waiting for it. recv: *item_p is new, caller owns.
   recv_bytes: *data_p is malloc'd (caller frees); a message larger than
   maxlength (0: MP_CONN_MAX_MESSAGE) is an error (MP_E2BIG) and leaves the
   connection unusable, as in Python. 0; MP_EEOF; MP_EBADMSG; MP_ECLOSED. */
MP_EXPORT int mp_conn_recv(mp_conn_t *c, mp_obj_t **item_p);
MP_EXPORT int mp_conn_recv_bytes(mp_conn_t *c, void **data_p, size_t *size_p, size_t maxlength);

/* Whether a recv would not block: 1 (a message or EOF is there), 0 after
   timeout_ms, or a negative error. */
MP_EXPORT int mp_conn_poll(mp_conn_t *c, int timeout_ms);

MP_EXPORT bool mp_conn_readable(const mp_conn_t *c);
MP_EXPORT bool mp_conn_writable(const mp_conn_t *c);
MP_EXPORT int mp_conn_fileno(const mp_conn_t *c); /* -1 once closed */

/* Closes this process's copy of the end; the handle stays valid (calls
   return MP_ECLOSED) until destroyed. */
MP_EXPORT int mp_conn_close(mp_conn_t *c);
/* Closes and frees. Safe on NULL; sets *c_p to NULL. */
MP_EXPORT void mp_conn_destroy(mp_conn_t **c_p);

#ifdef __cplusplus
}
#endif

#endif
