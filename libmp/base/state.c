/*  state.c - the base layer's process-wide mutable state, in one place.

    The per-thread kernel id cache (on every lock path) and the log level
    (mp/log.h). The atfork handler resets what a fork child must not
    inherit: the thread id cache. Each layer above that has process-wide
    state keeps it in one file of its own (process/self.c, pool/registry.c);
    no other file of libmp has file-scope mutable state.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/base.h"
#include "mp/error.h"
#include "mp/log.h"

__thread int mp__tid_cache __attribute__((tls_model("initial-exec")));

static void after_fork_child(void)
{
    mp__tid_cache = 0;
}

__attribute__((constructor)) static void state_init(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

int mp__tid_slow(void)
{
    mp__tid_cache = gettid();
    return mp__tid_cache;
}

/* ---- log level (mp/log.h) -------------------------------------------------- */

/* -1: not decided yet; the first reader takes MP_LOG_LEVEL or WARN (a
   library is quiet unless asked) */
static int log_level = -1;

void mp_log_set_level(int level)
{
    if (level < MP_LOG_ERROR)
        level = MP_LOG_ERROR;
    if (level > MP_LOG_DEBUG)
        level = MP_LOG_DEBUG;
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int mp_log_get_level(void)
{
    int level = __atomic_load_n(&log_level, __ATOMIC_RELAXED);
    if (level >= 0)
        return level;
    const char *env = getenv("MP_LOG_LEVEL");
    level = env ? mp_log_level_parse(env) : -1;
    if (level < 0)
        level = MP_LOG_WARN;
    int unset = -1; /* a concurrent mp_log_set_level() wins */
    __atomic_compare_exchange_n(&log_level, &unset, level, false, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
    return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int mp_log_level_parse(const char *name)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; name && i < 4; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}
