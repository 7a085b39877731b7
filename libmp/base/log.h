/*  log.h - the library's side of mp/log.h. Not installed. */
#ifndef MP_LOG_IMPL_H_INCLUDED
#define MP_LOG_IMPL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "mp/log.h"

#define mp__log mp_log
#define mp__log_set_level mp_log_set_level
#define mp__log_get_level mp_log_get_level

/* A warning any peer can cause at will (a malformed message) is logged at
   most 20 times per 10 s; the rest are counted and said in one line when
   the window turns over ("... N more WHAT in the last S s"). One limiter
   per kind of warning and per thread that logs it, zero-initialised. */
typedef struct {
    uint64_t start_ns, suppressed;
    unsigned count;
} mp__ratelimit_t;
/* True when this warning may be logged now. */
bool mp__ratelimit(mp__ratelimit_t *rl, const char *who, const char *what);

#endif
