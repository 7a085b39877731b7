/*  items_impl.h - what the pool and the worker need inside mp_items_t.
    Not installed. */
#ifndef MP_ITEMS_IMPL_H_INCLUDED
#define MP_ITEMS_IMPL_H_INCLUDED

#include "base/base.h"
#include "codec/buf.h"
#include "mp/items.h"

struct mp_items {
    mp__buf_t buf;        /* the items, msgpack, back to back */
    size_t *off;          /* off[i]: where item i starts in buf */
    size_t len, cap;      /* complete items; capacity of off */
    size_t tuple_left;    /* members still to come in an open tuple */
    mp_task_error_t *err; /* failures, kept sorted by index */
    size_t nerr, errcap;
    /* large lists (items.c, "large buffers"): off and buf in their own
       mappings; lengths in bytes, 0 when malloc'd */
    size_t off_map;
    char *buf_map; /* buf.data when it is that mapping (buf.owned false) */
    size_t buf_map_len;
};

/* Appends count values already encoded back to back in data[0..size),
   validating each. 0, MP_EBADMSG (not exactly count values), MP_ENOMEM. */
int mp__items_append_packed(mp_items_t *l, const void *data, size_t size, size_t count);
/* Appends every item of src (already validated: it is a list) to dst with
   one copy and no re-parsing; errors are not moved. 0 or MP_ENOMEM. */
int mp__items_concat(mp_items_t *dst, const mp_items_t *src);
/* Reserves room for bytes and items more. 0 or MP_ENOMEM. */
int mp__items_reserve(mp_items_t *l, size_t bytes, size_t items);
/* Items [a, b) as one contiguous byte range (borrowed). */
void mp__items_span(const mp_items_t *l, size_t a, size_t b, const char **p, size_t *n);
/* Records a failure of item index (copies the strings; NULL means ""). The
   item itself must be added (as nil) by the caller. 0 or MP_ENOMEM. */
int mp__items_add_error(mp_items_t *l, const mp_task_error_t *e);
/* Moves every error of src into dst, adding offset to their indexes. */
int mp__items_take_errors(mp_items_t *dst, mp_items_t *src, size_t offset);
void mp__task_error_free(mp_task_error_t *e);
/* Large buffers (items.c): a private mapping of at least mp__big_len(n)
   bytes (*len: how many), aligned and advised for transparent huge pages
   (page faults are what a large buffer costs, see items.c), or NULL;
   freed with mp__big_free(p, *len), which may keep it for the next one. */
void *mp__big_alloc(size_t n, size_t *len);
size_t mp__big_len(size_t n);
/* The mapping p of len bytes grown to hold new_n (moved, not copied; *len_p
   its new length), or NULL (p unchanged). */
void *mp__big_grow(void *p, size_t len, size_t new_n, size_t *len_p);
void mp__big_free(void *p, size_t len);
int mp__task_error_copy(mp_task_error_t *dst, const mp_task_error_t *src);

#endif
