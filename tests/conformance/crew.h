/*  crew.h - what the conformance tests of the synchronization primitives
    share (conformance_sync.c, conformance_condition.c,
    conformance_barrier.c): their timing constants and a crew of processes
    and threads running one function (crew.c).

    CPython runs these classes with processes, threads and a manager. Every
    libmp primitive here promises thread use, so where a test starts
    processes or threads we run it as processes and again as threads (the
    "forms"); the manager form has no counterpart.

    Python's blocking calls without a timeout become bounded waits (BOUND_MS)
    so that a lost wake-up fails the test instead of hanging it. Timing
    checks: CPython asserts |elapsed - expected| < 50 ms (when CHECK_TIMINGS
    is on); we allow +SLACK_MS above for loaded or sanitizer runs.
*/
#ifndef CONFORMANCE_CREW_H_INCLUDED
#define CONFORMANCE_CREW_H_INCLUDED

#include <pthread.h>

#include "support.h"

enum {
    BOUND_MS = 10000, /* stands for Python's "no timeout" */
    SLACK_MS = 150,
    DELTA_MS = 100,    /* CPython's DELTA */
    TIMEOUT1_MS = 100, /* CPython's TIMEOUT1..3 (CHECK_TIMINGS off) */
    TIMEOUT2_MS = 100,
    TIMEOUT3_MS = 100,
};

enum form { PROCESSES, THREADS };

/* ---- a crew of processes and threads running one function --------------------------------- */

enum { CREW_MAX = 8 };

typedef struct {
    mp_target_fn *fn;
    void *arg;
} thread_arg_t;

typedef struct {
    mp_process_t *ps[CREW_MAX];
    int np;
    pthread_t ts[CREW_MAX];
    thread_arg_t targs[CREW_MAX];
    int nt;
} crew_t;

/* Starts fn(arg) as a daemon child process or as a thread of this one. */
void crew_add(crew_t *c, enum form form, mp_target_fn *fn, void *arg);

/* Joins everyone within timeout_ms, then asserts that each returned 0. A
   thread that does not end in time is left detached: its waits are all
   bounded, and the test has failed anyway. */
void crew_join(crew_t *c, int timeout_ms);

#endif
