/*  state.c - the base layer's process-wide mutable state, in one place.

    The per-thread kernel id cache (on every lock path), the task registry
    (mp/task.h), the log level (mp/log.h). The atfork handler resets what a
    fork child must not inherit: the thread id cache and the registry's
    mutex. The process layer keeps its own state (process/self.c); no other
    file of libmp has file-scope mutable state.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/base.h"
#include "mp/error.h"
#include "mp/log.h"
#include "mp/task.h"

static pthread_mutex_t task_mutex = PTHREAD_MUTEX_INITIALIZER; /* the task registry */
__thread int mp__tid_cache __attribute__((tls_model("initial-exec")));

static void after_fork_child(void)
{
    mp__tid_cache = 0;
    pthread_mutex_init(&task_mutex, NULL);
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

/* ---- task registry (mp/task.h) -------------------------------------------
   Its own mutex: constructors register tasks before main() and executors
   look names up once per dispatch; neither should wait on process state. */

static struct task_entry {
    char *name;
    mp_task_fn fn;
} * tasks;
static size_t task_count, task_cap;

int mp_task_register(const char *name, mp_task_fn fn)
{
    size_t len = name ? strlen(name) : 0;
    if (!fn || len == 0 || len > MP_TASK_NAME_MAX)
        return MP_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&task_mutex);
    for (size_t i = 0; i < task_count; i++)
        if (strcmp(tasks[i].name, name) == 0) {
            tasks[i].fn = fn;
            goto out;
        }
    if (task_count == task_cap) {
        size_t cap = task_cap ? task_cap * 2 : 16;
        struct task_entry *grown = realloc(tasks, cap * sizeof *grown);
        if (!grown) {
            rc = MP_ENOMEM;
            goto out;
        }
        tasks = grown;
        task_cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        rc = MP_ENOMEM;
        goto out;
    }
    tasks[task_count].name = copy;
    tasks[task_count].fn = fn;
    task_count++;
out:
    pthread_mutex_unlock(&task_mutex);
    return rc;
}

mp_task_fn mp_task_lookup(const char *name)
{
    mp_task_fn fn = NULL;
    if (!name)
        return NULL;
    pthread_mutex_lock(&task_mutex);
    for (size_t i = 0; i < task_count && !fn; i++)
        if (strcmp(tasks[i].name, name) == 0)
            fn = tasks[i].fn;
    pthread_mutex_unlock(&task_mutex);
    return fn;
}

void mp_task_each(void (*fn)(const char *name, void *arg), void *arg)
{
    pthread_mutex_lock(&task_mutex);
    for (size_t i = 0; i < task_count; i++)
        fn(tasks[i].name, arg);
    pthread_mutex_unlock(&task_mutex);
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
