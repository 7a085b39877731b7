/*  mp/worker.h - the worker engine: a supervisor that holds the broker
    connection, plus N executor processes that run tasks.

    mp_worker_run() is what mp-worker runs, what an embedded pool's worker
    process runs, and what `yourprogram --mp-worker ENDPOINT` runs (through
    mp_bootstrap, so a program's own MP_TASKs are served without a separate
    library). It returns when told to stop (SIGTERM/SIGINT, or the broker
    going away when exit_on_broker_loss is set).

    Process model (docs/PROTOCOL.md section 9): before it creates any ZeroMQ
    context the supervisor forks a single-threaded zygote; executors are
    forked by the zygote, so no executor is ever forked from a process that
    has ZeroMQ threads. The supervisor sees an executor die at once (its
    socket closes; the zygote reports the wait status), reports which item of
    which task died and how (LOST), and starts a new executor.

    Thread-safety: call from the main thread of a process that has no other
    threads (it forks). Fork: see above. Signals: blocks SIGTERM, SIGINT and
    SIGCHLD in the calling thread while it runs (read through a signalfd).
*/
#ifndef MP_WORKER_H_INCLUDED
#define MP_WORKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *broker;           /* endpoint, e.g. tcp://host:5555 (required) */
    int processes;                /* executors; 0: mp_cpu_count() */
    int maxtasksperchild;         /* dispatches per executor; 0: unlimited */
    int heartbeat_ms;             /* 0: 1000 */
    int credit_per_process;       /* dispatches held per executor; 0: 2 */
    const char *const *task_libs; /* shared libraries to dlopen first */
    size_t ntask_libs;
    bool exit_on_broker_loss; /* embedded pools: no reconnecting */
    int verbose;              /* as mp_broker_options_t.verbose */
    int stop_fd;              /* >= 0: readable/closed means stop */
    int connect_timeout_ms;   /* > 0: give up (MP_EBROKERUNREACHABLE) when no
                                 broker has answered this long after the
                                 start; 0: wait for it forever */
    /* CURVE (docs/PROTOCOL.md 10), both or neither: this worker's
       certificate (a NAME.key_secret file) and the broker's public key (40
       Z85 characters, or its NAME.key file) */
    const char *curve_key;
    const char *curve_server_key;
    /* No hoarding (docs/PROTOCOL.md 5): dispatches queued here while every
       executor is busy are handed back to the broker once the oldest has
       waited hold_ms, so an idle worker can start them; the credit comes
       back when an executor is free again. 0: 250; < 0: never. */
    int hold_ms;
    /* Partial results (docs/PARTIAL-RESULTS.md): when an executor has been
       on one item for flush_ms, the items of its dispatch it finished
       before are sent at once (W-PARTIAL), so one stuck item holds only
       itself. 0: 200; < 0: never. */
    int flush_ms;
} mp_worker_options_t;

/* Runs until stopped. Returns 0 after a clean stop, or a negative MP_E*
   code when it could not start (bad options, a task library that does not
   load, a key file that cannot be read, MP_EBROKERUNREACHABLE after
   connect_timeout_ms: the message is logged). */
MP_EXPORT int mp_worker_run(const mp_worker_options_t *options);

#ifdef __cplusplus
}
#endif

#endif
