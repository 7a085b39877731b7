/*  mp/error.h - error codes shared by every libmp call.

    Every fallible call returns 0 or a negative MP_E* code. Codes that have an
    errno equivalent are equal to -errno (as libuv does); the others live in a
    private range below -4000. mp_strerror() always returns a readable string.

    Thread-safety: all functions are thread-safe.
    Fork: no state.
    Signals: mp_strerror is not async-signal-safe (it may call strerror).
*/
#ifndef MP_ERROR_H_INCLUDED
#define MP_ERROR_H_INCLUDED

#include <errno.h>

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MP_OK 0
#define MP_ENOMEM (-ENOMEM)         /* out of memory */
#define MP_EINVAL (-EINVAL)         /* invalid argument (programmer error) */
#define MP_ETIMEDOUT (-ETIMEDOUT)   /* a timed wait expired */
#define MP_EOWNERDEAD (-EOWNERDEAD) /* lock acquired; its previous owner died holding it */
#define MP_EPERM (-EPERM)           /* released a lock this thread does not own */
#define MP_E2BIG (-E2BIG)           /* item larger than the object can ever hold */
#define MP_EBADMSG (-EBADMSG)       /* malformed or unsupported msgpack data */
#define MP_EBUSY (-EBUSY)           /* object in use (e.g. close of a running process) */
#define MP_ENOENT (-ENOENT)         /* no such name (shared memory, spawn target) */
#define MP_EEXIST (-EEXIST)         /* name already exists */
#define MP_EAGAIN (-EAGAIN)         /* would block (non-blocking call) */
#define MP_EINTR (-EINTR)           /* interrupted */
#define MP_ENOSPC (-ENOSPC)         /* the manager's arena is full (nothing changed) */
#define MP_ERANGE (-ERANGE)         /* list index out of range */

#define MP_EEOF (-4001)        /* end of file: the other end of a pipe is closed */
#define MP_EEMPTY (-4002)      /* queue is empty (get with no wait / timeout) */
#define MP_EFULL (-4003)       /* queue is full (put with no wait / timeout) */
#define MP_ECLOSED (-4004)     /* object was closed by this process */
#define MP_EBROKEN (-4005)     /* barrier is broken (aborted, timed out or action failed) */
#define MP_EVALUE (-4006)      /* released or task_done() called too many times */
#define MP_ESTATE (-4007)      /* call not valid in the object's current state */
#define MP_ENOTSTARTED (-4008) /* process was never started */
#define MP_ETYPE (-4009)       /* value has another type than the one asked for */
#define MP_EREPAIRED (-4010)   /* a process died inside a manager operation: repaired, retry */

/* Pool and task outcomes (docs/PROTOCOL.md uses the same numbers on the wire). */
#define MP_EUNKNOWNTASK (-4101) /* no worker serves this task name */
#define MP_EWORKERLOST (-4102)  /* the process running the task died, retries exhausted */
#define MP_ETASK (-4103)        /* the task failed with its own code and message */
#define MP_EBROKERLOST (-4104)  /* the broker went away (silent, or disconnected) */
#define MP_EBADARGS (-4105)     /* the task got arguments of the wrong type or number */
#define MP_EBADREQUEST (-4107)  /* malformed protocol message */
/* the broker is out of memory (libmp keeps within its queue limit, WELCOME
   max-queued): retry later, with fewer calls in flight */
#define MP_EOVERLOADED (-4108)
#define MP_ECANCELLED (-4109)         /* withdrawn (pool terminated, call cancelled) */
#define MP_ESHUTDOWN (-4110)          /* the broker is stopping */
#define MP_EMANAGERLOST (-4111)       /* a remote manager did not answer in time */
#define MP_EAUTH (-4112)              /* refused: a key not admitted, or the wrong key */
#define MP_EHOSTUNKNOWN (-4113)       /* the broker's host name does not resolve */
#define MP_EBROKERUNREACHABLE (-4114) /* no broker ever answered at the address */
#define MP_EINSECURE (-4115)          /* would listen off loopback without CURVE keys */
/* a task ran past its time limit and was killed (not MP_ETIMEDOUT, which is
   a wait of the caller's that expired: mp_async_get tells the two apart) */
#define MP_ETIMELIMIT (-4116)
/* a durable job was submitted to a broker that keeps no journal (mp-broker
   --journal DIR; docs/JOURNAL.md) */
#define MP_ENOJOURNAL (-4117)

/*  Returns a static, human-readable description of rc (0 or an MP_E* code).
    Never returns NULL. */
MP_EXPORT const char *mp_strerror(int rc);

#ifdef __cplusplus
}
#endif

#endif
