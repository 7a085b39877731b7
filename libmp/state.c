/*  state.c - all of libmp's process-wide mutable state, in one place.

    Who this process is (name, identity path, daemon flag, its parent), the
    children it started, the default start method and executable, the spawn
    target registry, and the per-thread id cache. A fork child rewrites this
    state in mp__become_child() before running any user code; the atfork
    handler only resets what a bare fork() (not through libmp) would leave
    wrong: the thread id cache and the lock.
*/
#include <pthread.h>
#include <sys/pidfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "mp/error.h"
#include "mp/task.h"
#include "process_impl.h"

static pthread_mutex_t state_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t task_mutex = PTHREAD_MUTEX_INITIALIZER; /* the task registry */
static mp_process_t self_process = {
    .kind = PROC_SELF, .state = PROC_STARTED, .name = "MainProcess", .pidfd = -1};
static mp_process_t parent_process = {.kind = PROC_PARENT, .state = PROC_STARTED, .pidfd = -1};
static bool has_parent;
static mp_process_t *children;
static int child_counter;
static mp_start_method_t start_method = MP_START_FORK;
static char *executable;
static struct target {
    char *name;
    mp_target_fn *fn;
} * targets;
static size_t target_count;
static bool atexit_installed;
__thread int mp__tid_cache __attribute__((tls_model("initial-exec")));

static void after_fork_child(void)
{
    mp__tid_cache = 0;
    pthread_mutex_init(&state_mutex, NULL);
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

void mp__state_lock(void)
{
    pthread_mutex_lock(&state_mutex);
}

void mp__state_unlock(void)
{
    pthread_mutex_unlock(&state_mutex);
}

mp_process_t *mp__children_head(void)
{
    return children;
}

void mp__children_add(mp_process_t *p)
{
    mp__state_lock();
    p->next = children;
    children = p;
    mp__state_unlock();
}

void mp__children_remove(mp_process_t *p)
{
    /* the caller holds the state lock */
    for (mp_process_t **it = &children; *it; it = &(*it)->next)
        if (*it == p) {
            *it = p->next;
            p->next = NULL;
            return;
        }
}

void mp__next_child_ident(char *ident, size_t size)
{
    mp__state_lock();
    int n = ++child_counter;
    mp__state_unlock();
    if (self_process.ident[0])
        snprintf(ident, size, "%s:%d", self_process.ident, n);
    else
        snprintf(ident, size, "%d", n);
}

void mp__become_child(const mp_process_t *self, int parent_pid, const char *parent_name)
{
    children = NULL; /* the parent's children are not ours */
    child_counter = 0;
    has_parent = true;
    memset(&parent_process, 0, sizeof parent_process);
    parent_process.kind = PROC_PARENT;
    parent_process.state = PROC_STARTED;
    parent_process.pid = parent_pid;
    parent_process.pidfd = -1;
    snprintf(parent_process.name, sizeof parent_process.name, "%s", parent_name);
    snprintf(self_process.name, sizeof self_process.name, "%s", self->name);
    snprintf(self_process.ident, sizeof self_process.ident, "%s", self->ident);
    self_process.daemon = self->daemon;
    self_process.pidfd = -1;
}

mp_process_t *mp_current_process(void)
{
    self_process.pid = getpid();
    return &self_process;
}

mp_process_t *mp_parent_process(void)
{
    if (!has_parent)
        return NULL;
    mp__state_lock();
    if (parent_process.pidfd < 0) /* lazily: most children never ask */
        parent_process.pidfd = pidfd_open(parent_process.pid, 0);
    mp__state_unlock();
    return &parent_process;
}

int mp_set_start_method(mp_start_method_t method)
{
    if (method != MP_START_FORK && method != MP_START_SPAWN)
        return MP_EINVAL;
    mp__state_lock();
    start_method = method;
    mp__state_unlock();
    return 0;
}

mp_start_method_t mp_get_start_method(void)
{
    return start_method;
}

int mp_set_executable(const char *path)
{
    if (path && !*path)
        return MP_EINVAL;
    char *copy = path ? strdup(path) : NULL;
    if (path && !copy)
        return MP_ENOMEM;
    mp__state_lock();
    free(executable);
    executable = copy;
    mp__state_unlock();
    return 0;
}

const char *mp__executable(void)
{
    return executable ? executable : "/proc/self/exe";
}

int mp_register_target(const char *name, mp_target_fn *fn)
{
    if (!name || !*name || !fn)
        return MP_EINVAL;
    int rc = 0;
    mp__state_lock();
    for (size_t i = 0; i < target_count; i++)
        if (strcmp(targets[i].name, name) == 0) {
            rc = targets[i].fn == fn ? 0 : MP_EEXIST;
            goto done;
        }
    struct target *grown = realloc(targets, (target_count + 1) * sizeof *grown);
    char *copy = strdup(name);
    if (!grown || !copy) {
        if (grown)
            targets = grown;
        free(copy);
        rc = MP_ENOMEM;
        goto done;
    }
    targets = grown;
    targets[target_count].name = copy;
    targets[target_count].fn = fn;
    target_count++;
done:
    mp__state_unlock();
    return rc;
}

mp_target_fn *mp__target_lookup(const char *name)
{
    mp_target_fn *fn = NULL;
    mp__state_lock();
    for (size_t i = 0; i < target_count && !fn; i++)
        if (strcmp(targets[i].name, name) == 0)
            fn = targets[i].fn;
    mp__state_unlock();
    return fn;
}

const char *mp__target_name(mp_target_fn *fn)
{
    const char *name = NULL;
    mp__state_lock();
    for (size_t i = 0; i < target_count && !name; i++)
        if (targets[i].fn == fn)
            name = targets[i].name;
    mp__state_unlock();
    return name;
}

static void at_exit(void)
{
    mp__exit_children();
}

void mp__install_atexit(void)
{
    mp__state_lock();
    bool install = !atexit_installed;
    atexit_installed = true;
    mp__state_unlock();
    if (install)
        atexit(at_exit);
}

int mp_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
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
