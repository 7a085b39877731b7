/*  mp/log.h - libmp's log: one line per event on stderr, with a time, a
    level and who speaks:

        2026-11-23T10:00:00.123Z WARN mp-pool[4711]: worker process 4712 died

    The library logs at WARN and above unless told otherwise; the daemons
    (mp-broker, mp-worker) at INFO. The level is process-wide. Before the
    first mp_log_set_level() call it comes from the environment variable
    MP_LOG_LEVEL (error, warn, info or debug) when that is set.

    Thread-safety: every function may be called from any thread. A line is
    written with one write(2), so lines of several processes sharing stderr
    never interleave.
*/
#ifndef MP_LOG_H_INCLUDED
#define MP_LOG_H_INCLUDED

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { MP_LOG_ERROR, MP_LOG_WARN, MP_LOG_INFO, MP_LOG_DEBUG };

/* Sets the process's level: lines above it are dropped. */
MP_EXPORT void mp_log_set_level(int level);
MP_EXPORT int mp_log_get_level(void);

/* "error", "warn", "info", "debug" (any case) -> MP_LOG_*; -1 otherwise. */
MP_EXPORT int mp_log_level_parse(const char *name);

/* Writes one line at `level` on behalf of `who` (a program name). */
MP_EXPORT void mp_log(int level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
