/*  mp/barrier.h - Barrier: N parties wait for each other, process-shared.

    As Python's multiprocessing.Barrier (threading.Barrier semantics): the
    barrier trips when `parties` callers have called wait(); the last to
    arrive runs the optional action first. A timeout in any wait, a failing
    action (non-zero return) or abort() breaks the barrier: every current and
    future wait returns MP_EBROKEN until reset(). The barrier is reusable.

    Thread-safety: thread-safe. Fork: shared with children forked after
    mp_barrier_new(); the action and its argument are used in whichever
    process trips the barrier, so they must be valid there (true for fork
    children). Signals: not async-signal-safe.
*/
#ifndef MP_BARRIER_H_INCLUDED
#define MP_BARRIER_H_INCLUDED

#include <stdbool.h>

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_barrier mp_barrier_t;
typedef int(mp_barrier_action_fn)(void *arg); /* non-zero breaks the barrier */

typedef struct {
    mp_barrier_action_fn *action; /* NULL: none */
    void *action_arg;
    int timeout_ms; /* default for wait(..., MP_BARRIER_DEFAULT); < 0 forever */
} mp_barrier_opts_t;

#define MP_BARRIER_DEFAULT (-2) /* wait() timeout: use the barrier's default */

/* parties >= 1; opts may be NULL (no action, no timeout). NULL on error. */
MP_EXPORT mp_barrier_t *mp_barrier_new(int parties, const mp_barrier_opts_t *opts);
MP_EXPORT void mp_barrier_destroy(mp_barrier_t **barrier_p);

/* Waits for the other parties. Returns the caller's arrival index
   (0 .. parties-1, different for each party of one cycle), MP_ETIMEDOUT
   (this caller's timeout expired: the barrier is now broken), MP_EBROKEN. */
MP_EXPORT int mp_barrier_wait(mp_barrier_t *barrier, int timeout_ms);
/* Returns the barrier to its empty, unbroken state; current waiters get
   MP_EBROKEN. */
MP_EXPORT int mp_barrier_reset(mp_barrier_t *barrier);
/* Breaks the barrier: current and future waits return MP_EBROKEN. */
MP_EXPORT int mp_barrier_abort(mp_barrier_t *barrier);

MP_EXPORT int mp_barrier_parties(const mp_barrier_t *barrier);
MP_EXPORT int mp_barrier_n_waiting(mp_barrier_t *barrier);
MP_EXPORT bool mp_barrier_broken(mp_barrier_t *barrier);

#ifdef __cplusplus
}
#endif

#endif
