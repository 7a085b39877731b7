/*  mp/obj.h - mp_obj_t, the dynamic value that crosses process boundaries.

    Queues, pipes, spawn arguments (and later Pool tasks) carry values of this
    type, encoded as msgpack: nil, bool, signed and unsigned integers, doubles,
    UTF-8 strings, byte strings, arrays and maps of them, nested, and
    msgpack's extension values (a type code and bytes: the Manager's
    references to its objects are one, mp/manager.h). It is the C
    counterpart of "a picklable Python object" for libmp.

    Ownership: every mp_obj_new_* returns a new object the caller owns; free it
    with mp_obj_destroy(&o). Containers take ownership of what is added to them
    in every case (on failure the item is destroyed), so nested values can be
    built in one expression. Getters return borrowed pointers that live as
    long as their container.

    Decoding (mp_obj_unpack) treats its input as untrusted: declared lengths
    must fit in the bytes present, nesting is bounded by MP_OBJ_MAX_DEPTH, and
    any error is MP_EBADMSG without partial results.

    Thread-safety: an object may be read from many threads; writes need the
    caller's locking. Fork: plain heap memory. Signals: not async-signal-safe.
*/
#ifndef MP_OBJ_H_INCLUDED
#define MP_OBJ_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MP_OBJ_MAX_DEPTH 64

typedef enum {
    MP_OBJ_NIL,
    MP_OBJ_BOOL,
    MP_OBJ_INT,   /* fits in int64_t */
    MP_OBJ_UINT,  /* above INT64_MAX */
    MP_OBJ_FLOAT, /* double */
    MP_OBJ_STR,
    MP_OBJ_BIN,
    MP_OBJ_ARRAY,
    MP_OBJ_MAP,
    MP_OBJ_EXT /* msgpack's extension type: an application type code and bytes */
} mp_obj_type_t;

typedef struct mp_obj mp_obj_t;

/* Constructors: return NULL only when out of memory. */
MP_EXPORT mp_obj_t *mp_obj_new_nil(void);
MP_EXPORT mp_obj_t *mp_obj_new_bool(bool value);
MP_EXPORT mp_obj_t *mp_obj_new_int(int64_t value);
MP_EXPORT mp_obj_t *mp_obj_new_uint(uint64_t value); /* MP_OBJ_INT when it fits */
MP_EXPORT mp_obj_t *mp_obj_new_float(double value);
MP_EXPORT mp_obj_t *mp_obj_new_str(const char *nul_terminated);
MP_EXPORT mp_obj_t *mp_obj_new_strn(const char *data, size_t size);
MP_EXPORT mp_obj_t *mp_obj_new_bin(const void *data, size_t size);
MP_EXPORT mp_obj_t *mp_obj_new_array(void);
MP_EXPORT mp_obj_t *mp_obj_new_map(void);
/* An extension value: type -128 .. 127 (msgpack reserves the negative
   codes), size bytes of data (at most 2^32 - 1). */
MP_EXPORT mp_obj_t *mp_obj_new_ext(int8_t type, const void *data, size_t size);

/* Destroys o and everything it contains; sets *o_p to NULL. Safe on NULL. */
MP_EXPORT void mp_obj_destroy(mp_obj_t **o_p);

/* Deep copy. Caller owns the result; NULL when out of memory. */
MP_EXPORT mp_obj_t *mp_obj_dup(const mp_obj_t *o);

/* Appends item to array (takes ownership of item in every case).
   Returns 0, MP_EINVAL (not an array, or item NULL) or MP_ENOMEM. */
MP_EXPORT int mp_obj_array_add(mp_obj_t *array, mp_obj_t *item);

/* Adds key -> value to map (takes ownership of both in every case). Keys are
   not deduplicated: msgpack maps may repeat keys, mp_obj_map_get finds the
   first. Returns 0, MP_EINVAL or MP_ENOMEM. */
MP_EXPORT int mp_obj_map_add(mp_obj_t *map, mp_obj_t *key, mp_obj_t *value);

/* Getters. Type mismatches return 0 / NULL / false; check mp_obj_type first
   when the input is not trusted. */
MP_EXPORT mp_obj_type_t mp_obj_type(const mp_obj_t *o);
MP_EXPORT bool mp_obj_bool(const mp_obj_t *o);
MP_EXPORT int64_t mp_obj_int(const mp_obj_t *o);   /* INT, or UINT truncated */
MP_EXPORT uint64_t mp_obj_uint(const mp_obj_t *o); /* UINT, or INT cast */
MP_EXPORT double mp_obj_float(const mp_obj_t *o);  /* FLOAT, INT or UINT */
/* STR: NUL-terminated bytes, size in *size_p when not NULL. */
MP_EXPORT const char *mp_obj_str(const mp_obj_t *o, size_t *size_p);
/* BIN (or STR): the bytes, size in *size_p. */
MP_EXPORT const void *mp_obj_bin(const mp_obj_t *o, size_t *size_p);
/* EXT: its data, its type code in *type_p and size in *size_p (either may
   be NULL); NULL for other types. */
MP_EXPORT const void *mp_obj_ext(const mp_obj_t *o, int8_t *type_p, size_t *size_p);
/* ARRAY: number of items; MAP: number of pairs; STR/BIN/EXT: bytes; else 0. */
MP_EXPORT size_t mp_obj_len(const mp_obj_t *o);
MP_EXPORT mp_obj_t *mp_obj_array_at(const mp_obj_t *array, size_t index);
MP_EXPORT mp_obj_t *mp_obj_map_key_at(const mp_obj_t *map, size_t index);
MP_EXPORT mp_obj_t *mp_obj_map_value_at(const mp_obj_t *map, size_t index);
/* First value whose key is the string key; NULL when absent. */
MP_EXPORT mp_obj_t *mp_obj_map_get(const mp_obj_t *map, const char *key);

/* Structural equality: same types and values, arrays and maps in the same
   order. INT and UINT never compare equal (they never hold the same value). */
MP_EXPORT bool mp_obj_equal(const mp_obj_t *a, const mp_obj_t *b);

/* Encodes o as msgpack into a new buffer (*data_p, caller frees with free()).
   Returns 0, MP_EINVAL or MP_ENOMEM. */
MP_EXPORT int mp_obj_pack(const mp_obj_t *o, char **data_p, size_t *size_p);

/* Decodes exactly one msgpack value filling all of data[0..size).
   On success *o_p is a new object the caller owns. Returns 0, MP_EBADMSG
   (malformed, truncated, trailing bytes, too deep) or MP_ENOMEM. */
MP_EXPORT int mp_obj_unpack(const void *data, size_t size, mp_obj_t **o_p);

#ifdef __cplusplus
}
#endif

#endif
