/*  results.h - result lists the client makes itself (results.c): failures
    made here, and the errors frame of a RESULT decoded. The bottom of the
    client: it knows nothing of pools, jobs or sockets. */
#ifndef MP_CLIENT_RESULTS_H_INCLUDED
#define MP_CLIENT_RESULTS_H_INCLUDED

#include <stddef.h>

#include "mp/pool.h"

/* A result list of count nils, each failed with code/message (indexes from
   first_index). NULL on ENOMEM. */
mp_items_t *mp__pool_failed_items(const char *task, size_t count, size_t first_index, int code,
                                  const char *msg);
/* Decodes a RESULT's errors frame into items (index relative to base).
   0, MP_EBADMSG, or MP_ENOMEM. (tests/fuzz/fuzz_wire.c calls it.) */
int mp__pool_decode_errors(mp_items_t *items, const char *task, const void *data, size_t size,
                           size_t base);

#endif
