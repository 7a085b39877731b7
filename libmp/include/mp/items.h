/*  mp/items.h - mp_items_t, a packed list of values: the input and the output
    of Pool.map / starmap / imap.

    A map over a million ints must not allocate a million objects, so the
    items of a map are kept as one msgpack buffer plus an index of where each
    item starts. Appending an int is a few stores; reading one is a few
    loads. mp_obj_t values can be added and read back too (encoded/decoded).

    For starmap, each item is an argument tuple: call mp_items_add_tuple(l, n)
    and the next n values added become the members of one item.

    A result list also records per-item failures: a failed item reads as nil
    and mp_items_error(l, i) describes why (code, message, task, host, pid).

    Ownership: mp_items_new returns a list the caller owns; free it with
    mp_items_destroy(&l). Pointers returned by readers are borrowed from the
    list and live until it is destroyed or appended to.

    Thread-safety: reads from many threads are fine; appends need the
    caller's locking. Fork: plain heap memory. Signals: not async-signal-safe.
*/
#ifndef MP_ITEMS_H_INCLUDED
#define MP_ITEMS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp/export.h"
#include "mp/obj.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_items mp_items_t;

/* What a failed task, or a lost one, reports. Strings are owned by the list
   (or the AsyncResult) the error came from. */
typedef struct {
    int code;            /* MP_ETASK, MP_EWORKERLOST, MP_EUNKNOWNTASK, MP_EBADARGS, ... */
    int task_code;       /* MP_ETASK: the code the task gave mp_task_fail; else = code */
    const char *message; /* never NULL */
    const char *task;    /* task name, never NULL */
    const char *host;    /* worker host, "" when unknown */
    int pid;             /* executor pid, 0 when unknown */
    size_t index;        /* item index in the call's input */
} mp_task_error_t;

/* NULL when out of memory. */
MP_EXPORT mp_items_t *mp_items_new(void);
MP_EXPORT void mp_items_destroy(mp_items_t **l_p);

/* Appending: 0, MP_ENOMEM, or MP_EINVAL (bad pointer; packed data that is
   not exactly one valid msgpack value). */
MP_EXPORT int mp_items_add_nil(mp_items_t *l);
MP_EXPORT int mp_items_add_bool(mp_items_t *l, bool v);
MP_EXPORT int mp_items_add_int(mp_items_t *l, int64_t v);
MP_EXPORT int mp_items_add_uint(mp_items_t *l, uint64_t v);
MP_EXPORT int mp_items_add_float(mp_items_t *l, double v);
MP_EXPORT int mp_items_add_str(mp_items_t *l, const char *s);
MP_EXPORT int mp_items_add_strn(mp_items_t *l, const char *s, size_t n);
MP_EXPORT int mp_items_add_bin(mp_items_t *l, const void *p, size_t n);
MP_EXPORT int mp_items_add_obj(mp_items_t *l, const mp_obj_t *o); /* copies o */
MP_EXPORT int mp_items_add_packed(mp_items_t *l, const void *msgpack, size_t size);
/* The next argc values added form one item, an argument tuple (starmap).
   MP_ESTATE while a tuple is still open. */
MP_EXPORT int mp_items_add_tuple(mp_items_t *l, size_t argc);
/* Appends n ints at once (one item each). */
MP_EXPORT int mp_items_add_ints(mp_items_t *l, const int64_t *v, size_t n);
/* Appends ntuples argument tuples of arity ints each at once (starmap's
   input): tuple t is (v[t*arity], ..., v[t*arity + arity-1]), as
   mp_items_add_tuple(l, arity) and arity mp_items_add_int calls would add
   it, without a call per value. v may be NULL when ntuples or arity is 0
   (arity 0: empty tuples). 0, MP_EINVAL (l NULL, or v NULL with values to
   read), MP_ESTATE (a tuple is open), MP_ENOMEM (nothing is added). */
MP_EXPORT int mp_items_add_int_tuples(mp_items_t *l, const int64_t *v, size_t ntuples,
                                      size_t arity);

/* Number of complete items (an open tuple is not counted yet). */
MP_EXPORT size_t mp_items_len(const mp_items_t *l);

/* Readers: 0, MP_EINVAL (index out of range), MP_ETYPE (another type; the
   item's type is mp_items_type), MP_ENOMEM (mp_items_get). */
MP_EXPORT mp_obj_type_t mp_items_type(const mp_items_t *l, size_t i);
MP_EXPORT int mp_items_int(const mp_items_t *l, size_t i, int64_t *v);
MP_EXPORT int mp_items_float(const mp_items_t *l, size_t i, double *v); /* ints too */
/* STR: bytes borrowed from the list, NOT NUL-terminated; size in *n. */
MP_EXPORT int mp_items_str(const mp_items_t *l, size_t i, const char **s, size_t *n);
MP_EXPORT int mp_items_bin(const mp_items_t *l, size_t i, const void **p, size_t *n);
/* Decodes item i; the caller owns *o_p. */
MP_EXPORT int mp_items_get(const mp_items_t *l, size_t i, mp_obj_t **o_p);
/* The msgpack encoding of item i, borrowed. */
MP_EXPORT int mp_items_packed(const mp_items_t *l, size_t i, const void **p, size_t *n);
/* Reads every item as an int into out[0..len): 0, or MP_ETYPE at the first
   item that is not an int (out is filled up to it). */
MP_EXPORT int mp_items_ints(const mp_items_t *l, int64_t *out);

/* Failures recorded in a result list. */
MP_EXPORT size_t mp_items_nerrors(const mp_items_t *l);
/* The error of item i, or NULL when it succeeded. */
MP_EXPORT const mp_task_error_t *mp_items_error(const mp_items_t *l, size_t i);
/* The k-th error in index order (k < mp_items_nerrors), or NULL. */
MP_EXPORT const mp_task_error_t *mp_items_error_at(const mp_items_t *l, size_t k);

#ifdef __cplusplus
}
#endif

#endif
