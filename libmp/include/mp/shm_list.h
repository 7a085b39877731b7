/*  mp/shm_list.h - ShareableList: a fixed-length list of scalars in one
    SharedMemory block.

    As Python's multiprocessing.shared_memory.ShareableList: one process
    creates it from a sequence, and any process (forked, spawned or
    unrelated) attaches to it by the block's name. Its length never
    changes; each item is an int64 (MP_OBJ_INT), a double (MP_OBJ_FLOAT), a
    bool, nil, a str or bytes (MP_OBJ_STR / MP_OBJ_BIN). Each item has a
    slot sized at creation, as CPython sizes it: 8 bytes for a scalar,
    8 * (len / 8 + 1) bytes for bytes of len bytes and for a str of len
    characters (UTF-8 code points), but never fewer than the str's bytes
    (CPython then truncates it silently). An item may be
    replaced by a value of any storable type that fits its slot, as in
    CPython: any scalar fits any slot; a str or bytes fits when it is no
    longer than the slot (else MP_E2BIG, CPython's "exceeds available
    storage" ValueError). Unlike CPython, a str or bytes keeps its trailing
    NUL bytes (CPython strips them).

    Attaching trusts nothing in the block: a block that is not a
    ShareableList is MP_EINVAL, one whose header and slots do not add up
    (truncated, corrupt, hostile) is MP_EBADMSG. The slots are read once
    at attach; an item whose type or length another process has since
    made invalid reads as MP_EBADMSG. The layout: docs/CORE.md,
    "ShareableList and SharedMemoryManager".

    Thread-safety: none, as in CPython: the list has no lock, and a reader
    racing a writer of the same item may see the old type with the new
    bytes (never out-of-bounds memory). Use a Lock around items that are
    written while read. A handle is not thread-safe. Fork: a child inherits
    the mapping and a copy of the handle. Signals: no.
*/
#ifndef MP_SHM_LIST_H_INCLUDED
#define MP_SHM_LIST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp/export.h"
#include "mp/obj.h"
#include "mp/shm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_shm_list mp_shm_list_t;

/* Creates a ShareableList holding the items of the array items (an
   MP_OBJ_ARRAY; NULL or empty: an empty list) in a new block called name
   (NULL: generated, as mp_shm_create), with options as mp_shm_create_with
   (NULL: untracked). Copies the items. 0; MP_EINVAL (items not an array,
   bad name); MP_ETYPE (an item is an array, map, extension, or an
   unsigned integer above INT64_MAX: no "q" holds it); MP_E2BIG (a str or
   bytes item of 4 GiB - 16 bytes or more); MP_EEXIST; MP_ENOMEM; -errno. */
MP_EXPORT int mp_shm_list_create(mp_shm_list_t **list_p, const char *name, const mp_obj_t *items,
                                 const mp_shm_options_t *options);
/* Attaches to the ShareableList in block name (Python's
   ShareableList(name=name)). 0; MP_ENOENT (no such block); MP_EINVAL (a
   block that is not a ShareableList); MP_EBADMSG (truncated or corrupt);
   MP_ENOMEM; -errno. */
MP_EXPORT int mp_shm_list_attach(mp_shm_list_t **list_p, const char *name);

/* len(sl): fixed at creation. 0 for NULL. */
MP_EXPORT size_t mp_shm_list_len(const mp_shm_list_t *list);

/* sl[index]: a new object in *value_p (the caller owns it). Negative
   indexes count from the end. 0, MP_ERANGE (index out of range),
   MP_EBADMSG (the item was made invalid by another process), MP_ENOMEM,
   MP_EINVAL. */
MP_EXPORT int mp_shm_list_get(const mp_shm_list_t *list, int64_t index, mp_obj_t **value_p);
/* sl[index] = value (copied). 0, MP_ERANGE, MP_ETYPE (not storable, as
   for create), MP_E2BIG (a str or bytes longer than the item's slot;
   nothing changes), MP_EINVAL. */
MP_EXPORT int mp_shm_list_set(mp_shm_list_t *list, int64_t index, const mp_obj_t *value);

/* The type of sl[index] (MP_OBJ_NIL, _BOOL, _INT, _FLOAT, _STR or _BIN).
   0, MP_ERANGE, MP_EBADMSG, MP_EINVAL. */
MP_EXPORT int mp_shm_list_type(const mp_shm_list_t *list, int64_t index, mp_obj_type_t *type_p);
/* Typed access without an mp_obj_t. The getters: MP_ETYPE when the item
   has another type (no conversion). mp_shm_list_get_bytes copies a str or
   bytes item into buf (capacity size) and its length into *len_p: MP_E2BIG
   when it does not fit (*len_p still says how long it is); a str is not
   NUL-terminated by it. The setters: as mp_shm_list_set. */
MP_EXPORT int mp_shm_list_get_int(const mp_shm_list_t *list, int64_t index, int64_t *value_p);
MP_EXPORT int mp_shm_list_get_float(const mp_shm_list_t *list, int64_t index, double *value_p);
MP_EXPORT int mp_shm_list_get_bool(const mp_shm_list_t *list, int64_t index, bool *value_p);
MP_EXPORT int mp_shm_list_get_bytes(const mp_shm_list_t *list, int64_t index, void *buf,
                                    size_t size, size_t *len_p);
MP_EXPORT int mp_shm_list_set_int(mp_shm_list_t *list, int64_t index, int64_t value);
MP_EXPORT int mp_shm_list_set_float(mp_shm_list_t *list, int64_t index, double value);
MP_EXPORT int mp_shm_list_set_bool(mp_shm_list_t *list, int64_t index, bool value);
MP_EXPORT int mp_shm_list_set_nil(mp_shm_list_t *list, int64_t index);
/* str (is_str) or bytes of len bytes. */
MP_EXPORT int mp_shm_list_set_bytes(mp_shm_list_t *list, int64_t index, const void *data,
                                    size_t len, bool is_str);

/* list(sl): every item, in a new MP_OBJ_ARRAY (the caller owns it), e.g.
   to create a copy: mp_shm_list_create(&copy, name, items, NULL). 0,
   MP_EBADMSG, MP_ENOMEM, MP_EINVAL. */
MP_EXPORT int mp_shm_list_items(const mp_shm_list_t *list, mp_obj_t **items_p);
/* sl.count(value), sl.index(value) (the first; MP_ENOENT when absent, as
   CPython's ValueError). Equality is mp_obj_equal's: same type and value,
   so 1, 1.0 and true are three values (Python says they are equal), as
   in a managed list. 0, MP_EBADMSG, MP_EINVAL. */
MP_EXPORT int mp_shm_list_count(const mp_shm_list_t *list, const mp_obj_t *value, size_t *count_p);
MP_EXPORT int mp_shm_list_index(const mp_shm_list_t *list, const mp_obj_t *value, size_t *index_p);
/* sl.format: CPython's struct format of the items as they are now, one
   code per item: "q" int, "d" float, "xxxxxxx?" bool, "xxxxxx?x" nil,
   "<slot>s" str and bytes (e.g. "8s8sdqxxxxxx?xxxxxxxx?q"). A new
   NUL-terminated string in *format_p (the caller frees it with free()).
   0, MP_EBADMSG, MP_ENOMEM, MP_EINVAL. */
MP_EXPORT int mp_shm_list_format(const mp_shm_list_t *list, char **format_p);

/* sl.shm: the block (borrowed; lives as long as the list handle), for its
   name, mp_shm_unlink, its size. */
MP_EXPORT mp_shm_t *mp_shm_list_shm(const mp_shm_list_t *list);
MP_EXPORT const char *mp_shm_list_name(const mp_shm_list_t *list);
/* sl.shm.unlink(): mp_shm_unlink on its block. 0, MP_ENOENT, MP_EINVAL. */
MP_EXPORT int mp_shm_list_unlink(mp_shm_list_t *list);

/* sl.shm.close(): unmaps and frees the handle; does not unlink. Safe on
   NULL, sets *list_p to NULL. */
MP_EXPORT void mp_shm_list_destroy(mp_shm_list_t **list_p);

#ifdef __cplusplus
}
#endif

#endif
