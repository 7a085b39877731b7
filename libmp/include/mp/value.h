/*  mp/value.h - Value and Array: typed scalars and arrays in shared memory.

    As Python's multiprocessing.Value / Array (sharedctypes). The type is a
    ctypes/array-module typecode:

        'c' char        'b' signed char     'B' unsigned char   '?' bool
        'h' short       'H' unsigned short  'i' int             'I' unsigned int
        'l' long        'L' unsigned long   'q' long long       'Q' unsigned long long
        'f' float       'd' double          'u' wchar_t

    By default the object is synchronized: it owns an RLock (get_lock) that
    the typed get/set calls take, and that the caller takes around a
    read-modify-write, exactly as `with v.get_lock(): v.value += 1`.
    opts.raw gives an unsynchronized object (RawValue / RawArray); opts.lock
    uses a caller's lock instead of a new one.

    mp_value_t and mp_array_t are the same object: a Value is an Array of
    length 1, so every mp_array_* call also works on a Value.

    Thread-safety: the typed get/set calls are atomic with respect to each
    other through the lock; raw pointers are the caller's business.
    Fork: shared with children forked after creation. Signals: no.
*/
#ifndef MP_VALUE_H_INCLUDED
#define MP_VALUE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp/export.h"
#include "mp/lock.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_ctype mp_value_t;
typedef struct mp_ctype mp_array_t;

typedef struct {
    bool raw;        /* no lock at all (RawValue / RawArray) */
    mp_lock_t *lock; /* use this lock (borrowed) instead of a new RLock */
} mp_ctype_opts_t;

/* Size in bytes of one item of typecode, 0 when the typecode is unknown. */
MP_EXPORT size_t mp_typecode_size(char typecode);

/* New Value; initial points to one item of the type, or NULL for zero.
   opts may be NULL. NULL on unknown typecode or out of memory. */
MP_EXPORT mp_value_t *mp_value_new(char typecode, const void *initial, const mp_ctype_opts_t *opts);
/* New Array of length items; initial points to length items, or NULL. */
MP_EXPORT mp_array_t *mp_array_new(char typecode, size_t length, const void *initial,
                                   const mp_ctype_opts_t *opts);
MP_EXPORT void mp_value_destroy(mp_value_t **value_p);
MP_EXPORT void mp_array_destroy(mp_array_t **array_p);

/* The lock (borrowed), NULL for a raw object. */
MP_EXPORT mp_lock_t *mp_value_get_lock(mp_value_t *value);
MP_EXPORT mp_lock_t *mp_array_get_lock(mp_array_t *array);
/* Raw access to the items (borrowed, lives as long as the object). */
MP_EXPORT void *mp_value_ptr(mp_value_t *value);
MP_EXPORT void *mp_array_ptr(mp_array_t *array);
MP_EXPORT char mp_array_typecode(const mp_array_t *array);
MP_EXPORT size_t mp_array_len(const mp_array_t *array);

/* Typed access under the lock, converting to/from the item type as C does.
   Integer getters on 'f'/'d' truncate; float getters on integers convert. */
MP_EXPORT int64_t mp_value_get_int(mp_value_t *value);
MP_EXPORT int mp_value_set_int(mp_value_t *value, int64_t v);
MP_EXPORT double mp_value_get_double(mp_value_t *value);
MP_EXPORT int mp_value_set_double(mp_value_t *value, double v);
/* Adds delta under the lock and returns the new value (int types only). */
MP_EXPORT int64_t mp_value_add_int(mp_value_t *value, int64_t delta);

/* Same for item index; out-of-range indices are MP_EINVAL (set) or 0 (get). */
MP_EXPORT int64_t mp_array_get_int(mp_array_t *array, size_t index);
MP_EXPORT int mp_array_set_int(mp_array_t *array, size_t index, int64_t v);
MP_EXPORT double mp_array_get_double(mp_array_t *array, size_t index);
MP_EXPORT int mp_array_set_double(mp_array_t *array, size_t index, double v);

/* Copies count items starting at start out of / into the array under the
   lock (a slice read/write). MP_EINVAL when the range does not fit. */
MP_EXPORT int mp_array_read(mp_array_t *array, size_t start, size_t count, void *out);
MP_EXPORT int mp_array_write(mp_array_t *array, size_t start, size_t count, const void *in);

#ifdef __cplusplus
}
#endif

#endif
