/*  conformance_pool.h - what the two files of the conformance_pool
    executable share: conformance_pool.c (main, the fixtures, the helpers,
    the tests on the class pool) and conformance_pool_errors.c (the tests
    that make their own pools).
*/
#ifndef CONFORMANCE_POOL_H_INCLUDED
#define CONFORMANCE_POOL_H_INCLUDED

#include "support.h"

enum {
    CLASS_PROCESSES = 4, /* _TestPool's class pool: Pool(4) */
    WAIT_MS = 10000,     /* the bound on a wait CPython leaves unbounded */
    SAY_WHEN = -5001,    /* SayWhenError: the generator's own error code */
};

/* ---- the mode and the pools (conformance_pool.c) --------------------------------------- */

extern bool tcp_mode;      /* `conformance_pool tcp` */
extern char endpoint[256]; /* tcp: the broker's */

mp_pool_t *new_pool(int processes, const mp_pool_options_t *extra);

/* ---- helpers (conformance_pool.c) ------------------------------------------------------ */

mp_obj_t *int_args(int n, ...);
mp_obj_t *sqr_args(int64_t x, double wait);

/* A list for imap: C's imap takes a generator, so a Python list becomes a
   generator over range(next, end). */
typedef struct {
    int next, end;
} range_gen_t;

int range_gen(void *arg, mp_items_t *out);

/* CPython's exception_throwing_generator(total, when): SayWhenError is the
   generator's own code SAY_WHEN. */
typedef struct {
    int total, when, next;
} saywhen_gen_t;

int saywhen_gen(void *arg, mp_items_t *out);

/* ---- the tests of conformance_pool_errors.c, for main ---------------------------------- */

void conformance_pool_test_make_pool(void **state);
void conformance_pool_test_empty_iterable(void **state);
void conformance_pool_test_context(void **state);
void conformance_pool_test_traceback(void **state);
void conformance_pool_test_wrapped_exception(void **state);
void conformance_pool_test_map_no_failfast(void **state);
void conformance_pool_test_async_error_callback(void **state);
void conformance_pool_test_unpickleable_result(void **state);
void conformance_pool_test_pool_worker_lifetime(void **state);
void conformance_pool_test_pool_worker_lifetime_early_close(void **state);
void conformance_pool_test_pool_maxtasksperchild_invalid(void **state);
void conformance_pool_test_worker_finalization_via_atexit_handler_of_multiprocessing(void **state);

#endif
