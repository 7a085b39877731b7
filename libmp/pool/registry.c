/*  registry.c - the task registry (mp/task.h): names to task functions.

    The pool layer's only process-wide state. Constructors (MP_TASK)
    register tasks before main(), task libraries when mp-worker loads them;
    executors look a name up once per dispatch. Its own mutex, reset in a
    fork child (a fork may happen while another thread holds it). A short
    array: a program registers tens of tasks, not thousands.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mp/error.h"
#include "mp/task.h"

static pthread_mutex_t task_mutex = PTHREAD_MUTEX_INITIALIZER;

static void after_fork_child(void)
{
    pthread_mutex_init(&task_mutex, NULL);
}

__attribute__((constructor)) static void registry_init(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

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
