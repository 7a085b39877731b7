/*  mp/task.h - tasks: C functions that Pool workers run by name.

    C cannot pickle a function, so a Pool call names its task and a worker
    runs the function registered under that name. One line registers one:

        MP_TASK(square)
        {
            int64_t x = mp_task_int(task, 0);       // argument 0 as an int
            return mp_task_return_int(task, x * x);
        }

    MP_TASK(name) defines `static int name(mp_task_t *task)` and registers it
    as "name" before main() runs (a constructor), so it is known in the
    program that defines it, in the workers an embedded pool forks from it,
    and in mp-worker after `--tasks libyours.so` loads the library.
    mp_task_register() does the same at run time.

    Arguments: map() passes each input item as argument 0; starmap() and
    apply() pass the members of an argument tuple. Typed readers cover ints,
    doubles, strings, bytes and arrays of ints or doubles; mp_task_arg()
    decodes any value as an mp_obj_t, mp_task_packed() gives raw msgpack.
    A typed reader used on an argument of another type (or past the end)
    returns 0/NULL and fails the item with MP_EBADARGS and a message saying
    which argument and what it was, so a simple task needs no checks.

    Result: return mp_task_return_<type>(task, v) (they return 0), or fail:
    return mp_task_fail(task, code, "format", ...) - the code and message
    reach the caller as an MP_ETASK error. A task that returns 0 without a
    value returns nil; one that returns another int fails with that code.
    Memory from readers is borrowed until the task returns.

    Thread-safety: register from any thread (a mutex guards the registry);
    a task context belongs to the executor running it. Fork: the registry
    is inherited. Signals: nothing here is async-signal-safe.
*/
#ifndef MP_TASK_H_INCLUDED
#define MP_TASK_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp/export.h"
#include "mp/obj.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_task mp_task_t;
typedef int (*mp_task_fn)(mp_task_t *task);

#define MP_TASK_NAME_MAX 255

/* Registers fn under name (1..255 bytes). Registering a name again replaces
   its function. 0, MP_EINVAL or MP_ENOMEM. */
MP_EXPORT int mp_task_register(const char *name, mp_task_fn fn);
/* The function registered under name, or NULL. */
MP_EXPORT mp_task_fn mp_task_lookup(const char *name);
/* Calls fn(name, arg) for every registered task, in registration order. */
MP_EXPORT void mp_task_each(void (*fn)(const char *name, void *arg), void *arg);

#define MP_TASK(name)                                                                              \
    static int name(mp_task_t *task);                                                              \
    __attribute__((constructor)) static void mp__register_task_##name(void)                        \
    {                                                                                              \
        mp_task_register(#name, name);                                                             \
    }                                                                                              \
    static int name(mp_task_t *task)

/* ---- arguments ------------------------------------------------------------ */

MP_EXPORT size_t mp_task_argc(const mp_task_t *task);
/* Type of argument i; MP_OBJ_NIL past the end. */
MP_EXPORT mp_obj_type_t mp_task_type(const mp_task_t *task, size_t i);
MP_EXPORT int64_t mp_task_int(mp_task_t *task, size_t i);
MP_EXPORT double mp_task_float(mp_task_t *task, size_t i); /* ints too */
MP_EXPORT bool mp_task_bool(mp_task_t *task, size_t i);
/* NUL-terminated copy; size in *n when n is not NULL. */
MP_EXPORT const char *mp_task_str(mp_task_t *task, size_t i, size_t *n);
/* BIN or STR bytes. */
MP_EXPORT const void *mp_task_bin(mp_task_t *task, size_t i, size_t *n);
/* An array of ints (or doubles, ints accepted): *v points to n values. */
MP_EXPORT size_t mp_task_ints(mp_task_t *task, size_t i, const int64_t **v);
MP_EXPORT size_t mp_task_floats(mp_task_t *task, size_t i, const double **v);
/* Any value, decoded; NULL (and MP_EBADARGS) past the end. */
MP_EXPORT const mp_obj_t *mp_task_arg(mp_task_t *task, size_t i);
/* Raw msgpack of argument i. 0 or MP_EINVAL. */
MP_EXPORT int mp_task_packed(const mp_task_t *task, size_t i, const void **p, size_t *n);

/* ---- result --------------------------------------------------------------- */

MP_EXPORT int mp_task_return_nil(mp_task_t *task);
MP_EXPORT int mp_task_return_bool(mp_task_t *task, bool v);
MP_EXPORT int mp_task_return_int(mp_task_t *task, int64_t v);
MP_EXPORT int mp_task_return_uint(mp_task_t *task, uint64_t v);
MP_EXPORT int mp_task_return_float(mp_task_t *task, double v);
MP_EXPORT int mp_task_return_str(mp_task_t *task, const char *s);
MP_EXPORT int mp_task_return_strn(mp_task_t *task, const char *s, size_t n);
MP_EXPORT int mp_task_return_bin(mp_task_t *task, const void *p, size_t n);
MP_EXPORT int mp_task_return_ints(mp_task_t *task, const int64_t *v, size_t n);
MP_EXPORT int mp_task_return_floats(mp_task_t *task, const double *v, size_t n);
MP_EXPORT int mp_task_return_obj(mp_task_t *task, const mp_obj_t *o); /* copies o */
/* One msgpack value (validated); MP_EINVAL when it is not exactly one. */
MP_EXPORT int mp_task_return_packed(mp_task_t *task, const void *p, size_t n);

/* Fails the item: code (any int, the task's own) and a printf message reach
   the caller, whole up to MP_TASK_MESSAGE_MAX bytes (longer ones are cut
   there). Returns code, or MP_ETASK when code is 0, so
   `return mp_task_fail(...)` is never mistaken for success. */
#define MP_TASK_MESSAGE_MAX 65536
MP_EXPORT int mp_task_fail(mp_task_t *task, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The running task's name, and the attempt number (1 = first try). */
MP_EXPORT const char *mp_task_name(const mp_task_t *task);
MP_EXPORT unsigned mp_task_attempt(const mp_task_t *task);

#ifdef __cplusplus
}
#endif

#endif
