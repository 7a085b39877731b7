/*  worker_shm.h - the worker as an embedded pool runs it. Not installed.

    Thread-safety, Fork, Signals: as mp_worker_run (run it in a forked
    child that has no other thread).
*/
#ifndef MP_WORKER_SHM_H_INCLUDED
#define MP_WORKER_SHM_H_INCLUDED

#include <stdbool.h>

#include "mp/worker.h"
#include "pool/poolshm.h"

/* mp_worker_run for an embedded pool (embedded: its parent is the pool):
   its executors use shm (NULL: frames only), and when the pool's process
   dies it removes the pool's ipc socket (PROTOCOL.md 9). With stream_fd >=
   0 (taken over) it speaks to its broker on that socket pair end
   (codec/mpps.h, PROTOCOL.md 9.2) instead of connecting to o->broker. */
int mp__worker_run_embedded(const mp_worker_options_t *o, mp__pshm_t *shm, bool embedded,
                            int stream_fd);

#endif
