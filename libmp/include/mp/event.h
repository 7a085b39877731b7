/*  mp/event.h - Event: a process-shared flag that can be waited for.

    As Python's multiprocessing.Event: set() wakes every waiter, clear()
    resets the flag, wait() returns at once while it is set.

    Thread-safety: thread-safe. Fork: shared with children forked after
    mp_event_new(). Signals: not async-signal-safe.
*/
#ifndef MP_EVENT_H_INCLUDED
#define MP_EVENT_H_INCLUDED

#include <stdbool.h>

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_event mp_event_t;

MP_EXPORT mp_event_t *mp_event_new(void);
MP_EXPORT void mp_event_destroy(mp_event_t **event_p);
MP_EXPORT int mp_event_set(mp_event_t *event);
MP_EXPORT int mp_event_clear(mp_event_t *event);
MP_EXPORT bool mp_event_is_set(const mp_event_t *event);
/* 0 once the flag is set, MP_ETIMEDOUT if it was not set in time. */
MP_EXPORT int mp_event_wait(mp_event_t *event, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
