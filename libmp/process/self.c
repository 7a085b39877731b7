/*  self.c - the process layer's process-wide state, in one place.

    Who this process is (name, identity path, daemon flag, its parent), the
    children it started, the default start method and executable, and the
    spawn target registry. A fork child rewrites this state in
    mp__become_child() before running any user code; the atfork handler only
    resets what a bare fork() (not through libmp) would leave wrong: the
    lock. The layer below keeps its own (base/state.c), the pool layer its
    task registry (pool/registry.c); no other file of libmp has file-scope
    mutable state.
*/
#include <pthread.h>
#include <sys/pidfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "mp/error.h"
#include "process/process_impl.h"

static pthread_mutex_t state_mutex = PTHREAD_MUTEX_INITIALIZER;
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

static void after_fork_child(void)
{
    pthread_mutex_init(&state_mutex, NULL);
}

__attribute__((constructor)) static void self_init(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
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

bool mp__claim_atexit(void)
{
    mp__state_lock();
    bool first = !atexit_installed;
    atexit_installed = true;
    mp__state_unlock();
    return first;
}
