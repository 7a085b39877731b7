/*  mp/process.h - Process: run a function in a child process.

    As Python's multiprocessing.Process. Two start methods:

    fork   the child is a copy of the caller and runs fn(arg) directly; it
           sees everything the parent had (heap, shared objects, tasks).
    spawn  the child is a fresh exec of the program (or mp_set_executable's)
           that runs a target registered by name with MP_REGISTER_TARGET;
           it gets only opts.args (an mp_obj_t, encoded across the exec).
           The program must call mp_bootstrap(argc, argv) first thing in
           main(): in a spawned child it runs the target and exits. An exec
           failure, or a target the child does not know, is returned by
           mp_process_start(), not lost.

    A child's exit code is fn's return value (0..255) or, when a signal
    killed it, minus the signal number (Python's convention). A daemon
    child dies with its parent, even when the parent is SIGKILLed (the
    kernel's parent-death signal; note: it fires when the thread that
    started the child exits). At normal exit, libmp terminates a process's
    daemonic children and joins the others, as Python does.

    Fork rule: never fork (start with "fork") while a ZeroMQ context, czmq
    actor or other library thread exists in the process, unless the child
    only execs (spawn does exactly that). The child would inherit locks held
    by threads that do not exist in it.

    Thread-safety: a process handle is used from one thread at a time; the
    process-wide calls (active_children, start method, registry) are
    thread-safe. Signals: none of this is async-signal-safe.
*/
#ifndef MP_PROCESS_H_INCLUDED
#define MP_PROCESS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp/export.h"
#include "mp/obj.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_process mp_process_t;

/* A process body; its return value is the exit code. */
typedef int(mp_target_fn)(void *arg);

typedef enum {
    MP_START_DEFAULT = 0, /* the process-wide default (mp_set_start_method) */
    MP_START_FORK,
    MP_START_SPAWN
} mp_start_method_t;

typedef struct {
    const char *name;               /* NULL: "Process-N" (N: identity path) */
    bool daemon;                    /* dies with its parent */
    mp_start_method_t start_method; /* MP_START_DEFAULT: process-wide */
    const mp_obj_t *args;           /* when set, fn receives (mp_obj_t *) a copy of it,
                                       with either method; required form for spawn */
} mp_process_opts_t;

/* ---- start methods, targets, bootstrap ---------------------------------- */

/* Sets the process-wide default start method (fork unless set). Python's
   set_start_method. Returns 0 or MP_EINVAL. */
MP_EXPORT int mp_set_start_method(mp_start_method_t method);
MP_EXPORT mp_start_method_t mp_get_start_method(void);

/* The program spawn children exec (default: this program, /proc/self/exe).
   NULL restores the default. Returns 0, MP_EINVAL or MP_ENOMEM. */
MP_EXPORT int mp_set_executable(const char *path);

/* Registers fn under name for spawn (names are unique; re-registering the
   same pair is fine). 0, MP_EEXIST, MP_EINVAL or MP_ENOMEM. */
MP_EXPORT int mp_register_target(const char *name, mp_target_fn *fn);

/* Registers fn under its own name before main() runs. */
#define MP_REGISTER_TARGET(fn)                                                                     \
    __attribute__((constructor)) static void mp__register_##fn(void)                               \
    {                                                                                              \
        mp_register_target(#fn, fn);                                                               \
    }

/* Call first in main(). In a process started by spawn this runs the target
   and exits (never returns); otherwise it returns 0 at once. */
MP_EXPORT int mp_bootstrap(int argc, char **argv);

/* ---- processes ------------------------------------------------------------ */

/* New, not yet started process running fn(arg) (or fn(args copy), see
   opts.args). opts may be NULL. Caller owns the result; NULL on bad
   arguments (fn NULL; spawn with arg != NULL) or out of memory. */
MP_EXPORT mp_process_t *mp_process_new(mp_target_fn *fn, void *arg, const mp_process_opts_t *opts);

/* Starts it. 0; MP_ESTATE (already started); MP_ECLOSED (closed); MP_ENOENT (spawn:
   target not registered, in this program or in the child); -errno of a
   failed fork/exec (e.g. MP_ENOENT for a missing executable); MP_ETIMEDOUT
   (spawn: the child did not reach mp_bootstrap within 10 s; it is killed). */
MP_EXPORT int mp_process_start(mp_process_t *p);

/* Waits for the process to end. 0 (ended: exit code available),
   MP_ETIMEDOUT, MP_ENOTSTARTED, MP_ESTATE (not a child), MP_ECLOSED
   (after mp_process_close, as Python's ValueError). */
MP_EXPORT int mp_process_join(mp_process_t *p, int timeout_ms);

MP_EXPORT bool mp_process_is_alive(mp_process_t *p);

/* True when the process has ended, with its exit code in *exitcode:
   >= 0 the code it exited with, < 0 minus the signal that killed it.
   False while it runs or when it never started (Python's None). */
MP_EXPORT bool mp_process_exitcode(mp_process_t *p, int *exitcode);

MP_EXPORT int mp_process_pid(const mp_process_t *p); /* 0 before start */
MP_EXPORT const char *mp_process_name(const mp_process_t *p);
MP_EXPORT bool mp_process_daemon(const mp_process_t *p);
/* Before start only (MP_ESTATE after). */
MP_EXPORT int mp_process_set_name(mp_process_t *p, const char *name);
MP_EXPORT int mp_process_set_daemon(mp_process_t *p, bool daemon);

/* Sends SIGTERM / SIGKILL. 0, MP_ENOTSTARTED, MP_ECLOSED (after
   mp_process_close, as Python's ValueError); 0 as well when it has
   already ended (nothing to do). */
MP_EXPORT int mp_process_terminate(mp_process_t *p);
MP_EXPORT int mp_process_kill(mp_process_t *p);

/* A file descriptor that becomes readable when the process ends (for poll
   or mp_wait); -1 before start or after close. Owned by the handle. */
MP_EXPORT int mp_process_sentinel(const mp_process_t *p);

/* Releases the handle's resources (sentinel). MP_EBUSY while the process
   runs; afterwards only the getters work. */
MP_EXPORT int mp_process_close(mp_process_t *p);

/* Frees the handle. A child still running is killed (SIGKILL) and reaped
   first, so no zombie is left. Safe on NULL; sets *p_p to NULL. */
MP_EXPORT void mp_process_destroy(mp_process_t **p_p);

/* ---- this process --------------------------------------------------------- */

/* The current process (borrowed, never NULL): name "MainProcess" in the
   main program, its own name in a libmp child. */
MP_EXPORT mp_process_t *mp_current_process(void);
/* The parent of a libmp child (borrowed), NULL in the main process. Its
   sentinel and is_alive work (it is not joinable). */
MP_EXPORT mp_process_t *mp_parent_process(void);

/* The live children started by this process (reaping ended ones first):
   fills up to max handles (borrowed) and returns how many are alive. */
MP_EXPORT size_t mp_active_children(mp_process_t **out, size_t max);

/* Number of CPUs online. */
MP_EXPORT int mp_cpu_count(void);

#ifdef __cplusplus
}
#endif

#endif
