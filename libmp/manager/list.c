/*  list.c - the Manager's list (docs/MANAGER.md): the public mp_mlist_*
    calls. The vector they work on is vector.c's; a call given a remote
    object's proxy sends it instead (proxy.c). Commit points:
      append/extend  items written past the end, then the length
      set            the item's offset
      pop (last)     the length
      anything else  (insert, pop/remove in the middle, growth) a new vector
                     block, then the object's data offset
    so a process killed in the middle leaves the list before or after its
    operation; the repair (repair.c) frees what it left unreachable.
*/
#include <stdlib.h>
#include <string.h>

#include "manager/proxy.h"
#include "manager/repair.h"
#include "manager/vector.h"
#include "mp/error.h"

/* ---- proxies (proxy.c) -------------------------------------------------------------- */

/* A proxy call whose first argument is an index (and second, maybe, a value). */
static int proxy_at(struct mp_mobj *l, int op, int64_t index, const mp_obj_t *value,
                    mp_obj_t **result)
{
    mp_obj_t *i = mp_obj_new_int(index);
    int rc = i ? mr_call(l, op, i, value, NULL, result, NULL) : MP_ENOMEM;
    mp_obj_destroy(&i);
    return rc;
}

/* A proxy call whose answer is a count, an index or a flag. */
static int proxy_n(struct mp_mobj *l, int op, const mp_obj_t *value, size_t *n_p, bool *flag_p)
{
    int64_t n = 0;
    int rc = mr_call(l, op, value, NULL, NULL, NULL, &n);
    if (n_p)
        *n_p = rc ? 0 : (size_t)n;
    if (flag_p)
        *flag_p = !rc && n;
    return rc;
}

/* ---- calls ------------------------------------------------------------------------ */

/* Python's index: negative from the end; -1 outside [0, len). */
static long norm(int64_t index, uint32_t len)
{
    if (index < 0)
        index += len;
    return index >= 0 && index < (int64_t)len ? (long)index : -1;
}

static int lock_list(struct mp_mobj *l, ma_arena_t **a_p)
{
    if (!l || !mo_is_list(l))
        return MP_EINVAL;
    *a_p = ma_of(l);
    return ma_lock(*a_p);
}

/* Appends blobs (already allocated) as one commit. */
static int append_blobs(ma_arena_t *a, struct mp_mobj *o, const uint32_t *blobs, uint32_t n)
{
    vec_t *v = vec(a, o);
    if (!v || v->len + n > v->cap) {
        uint32_t len, off = mlist_vec_copy(a, v, v ? v->len : 0, n, UINT32_MAX, &len);
        if (!off)
            return MP_ENOSPC;
        vec_t *nv = ma_at(a, off);
        memcpy(nv->items + len - n, blobs, (size_t)n * 4);
        mlist_vec_swap(a, o, off);
        return 0;
    }
    memcpy(v->items + v->len, blobs, (size_t)n * 4);
    v->len += n; /* the commit */
    return 0;
}

int mp_mlist_extend(mp_mlist_t *l, const mp_obj_t *array)
{
    if (!l || !array || mp_obj_type(array) != MP_OBJ_ARRAY || !mo_is_list(l))
        return MP_EINVAL;
    if (mo_is_proxy(l))
        return mr_call(l, MR_L_EXTEND, array, NULL, NULL, NULL, NULL);
    size_t n = mp_obj_len(array);
    if (n > UINT32_MAX / 4)
        return MP_ENOSPC;
    mp__buf_t all; /* every item packed, back to back */
    size_t *ends = calloc(n + 1, sizeof *ends);
    uint32_t *blobs = calloc(n + 1, sizeof *blobs);
    mp__buf_init(&all, NULL, 0);
    int rc = ends && blobs ? 0 : MP_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = ma_pack(mp_obj_array_at(array, i), &all);
        ends[i] = all.size;
    }
    ma_arena_t *a;
    if (!rc && !(rc = lock_list(l, &a))) {
        size_t i = 0;
        for (; i < n; i++) {
            size_t start = i ? ends[i - 1] : 0;
            if (!(blobs[i] = ma_blob_new(a, all.data + start, ends[i] - start)))
                break;
        }
        rc = i < n ? MP_ENOSPC : append_blobs(a, l, blobs, (uint32_t)n);
        for (size_t k = 0; rc && k < i; k++)
            ma_free(a, blobs[k]);
        ma_unlock(a);
    }
    mp__buf_release(&all);
    free(ends);
    free(blobs);
    return rc;
}

/* Removes item i (lock held): the last one by shrinking, another by a new
   vector. */
static int remove_at(ma_arena_t *a, struct mp_mobj *o, uint32_t i)
{
    vec_t *v = vec(a, o);
    uint32_t blob = v->items[i];
    if (i + 1 == v->len) {
        v->len--; /* the commit */
    } else {
        uint32_t len, off = mlist_vec_copy(a, v, v->len, 0, i, &len);
        if (!off)
            return MP_ENOSPC;
        mlist_vec_swap(a, o, off);
    }
    ma_free(a, blob);
    return 0;
}

/* list[index], and with remove, list.pop(index). */
static int take(mp_mlist_t *l, int64_t index, bool remove, mp_obj_t **value_p)
{
    if (!value_p)
        return MP_EINVAL;
    *value_p = NULL;
    if (mo_is_proxy(l))
        return proxy_at(l, remove ? MR_L_POP : MR_L_GET, index, NULL, value_p);
    ma_arena_t *a;
    int rc = lock_list(l, &a);
    if (rc)
        return rc;
    long i = norm(index, vlen(a, l));
    rc = i < 0 ? MP_ERANGE : ma_blob_obj(a, vec(a, l)->items[i], value_p);
    if (!rc && remove && (rc = remove_at(a, l, (uint32_t)i)))
        mp_obj_destroy(value_p);
    ma_unlock(a);
    return rc;
}

int mp_mlist_get(mp_mlist_t *l, int64_t index, mp_obj_t **value_p)
{
    return take(l, index, false, value_p);
}

int mp_mlist_pop(mp_mlist_t *l, int64_t index, mp_obj_t **value_p)
{
    return take(l, index, true, value_p);
}

/* ---- calls that take a value ----------------------------------------------------- */

/* What those calls pass to their part under the lock, and get back. */
typedef struct {
    int64_t index; /* set, insert */
    size_t n;      /* index, count: the answer */
    bool flag;     /* append_unique: appended */
} vargs_t;

typedef int (*value_fn)(ma_arena_t *a, struct mp_mobj *l, const mp__buf_t *v, vargs_t *x);

/* Packs value (MP_EINVAL when NULL), locks the list, runs fn, undoes both. */
static int with_value(mp_mlist_t *l, const mp_obj_t *value, value_fn fn, vargs_t *x)
{
    packed_t p;
    ma_arena_t *a;
    int rc = ma_packed(&p, value);
    if (!rc && !(rc = lock_list(l, &a))) {
        rc = fn(a, l, &p.buf, x);
        ma_unlock(a);
    }
    mp__buf_release(&p.buf);
    return rc;
}

/* Items equal to v: the first one's index (-1: none); with count_p, how
   many there are. */
static long find_value(ma_arena_t *a, struct mp_mobj *o, const mp__buf_t *v, size_t *count_p)
{
    vec_t *items = vec(a, o);
    long first = -1;
    size_t n = 0;
    for (uint32_t i = 0; items && i < items->len && (count_p || first < 0); i++)
        if (ma_blob_eq(a, items->items[i], v->data, v->size)) {
            first = first < 0 ? (long)i : first;
            n++;
        }
    if (count_p)
        *count_p = n;
    return first;
}

static int append_value(ma_arena_t *a, struct mp_mobj *l, const mp__buf_t *v, vargs_t *x)
{
    (void)x;
    uint32_t blob = ma_blob_new(a, v->data, v->size);
    int rc = blob ? append_blobs(a, l, &blob, 1) : MP_ENOSPC;
    if (rc)
        ma_free(a, blob);
    return rc;
}

static int append_unique_value(ma_arena_t *a, struct mp_mobj *l, const mp__buf_t *v, vargs_t *x)
{
    if (find_value(a, l, v, NULL) >= 0)
        return 0;
    int rc = append_value(a, l, v, x);
    x->flag = !rc;
    return rc;
}

static int set_value(ma_arena_t *a, struct mp_mobj *l, const mp__buf_t *v, vargs_t *x)
{
    long i = norm(x->index, vlen(a, l));
    if (i < 0)
        return MP_ERANGE;
    uint32_t blob = ma_blob_new(a, v->data, v->size);
    if (!blob)
        return MP_ENOSPC;
    vec_t *items = vec(a, l);
    uint32_t old = items->items[i];
    items->items[i] = blob; /* the commit */
    ma_free(a, old);
    return 0;
}

static int insert_value(ma_arena_t *a, struct mp_mobj *l, const mp__buf_t *v, vargs_t *x)
{
    uint32_t n = vlen(a, l), len;
    int64_t at = x->index < 0 ? x->index + n : x->index; /* Python clamps */
    at = at < 0 ? 0 : at > n ? n : at;
    if (at == n)
        return append_value(a, l, v, x);
    uint32_t blob = ma_blob_new(a, v->data, v->size);
    uint32_t off = blob ? mlist_vec_copy(a, vec(a, l), (uint32_t)at, 1, UINT32_MAX, &len) : 0;
    if (!off) {
        ma_free(a, blob);
        return MP_ENOSPC;
    }
    ((vec_t *)ma_at(a, off))->items[at] = blob;
    mlist_vec_swap(a, l, off);
    return 0;
}

static int remove_value(ma_arena_t *a, struct mp_mobj *l, const mp__buf_t *v, vargs_t *x)
{
    (void)x;
    long i = find_value(a, l, v, NULL);
    return i < 0 ? MP_ENOENT : remove_at(a, l, (uint32_t)i);
}

static int index_value(ma_arena_t *a, struct mp_mobj *l, const mp__buf_t *v, vargs_t *x)
{
    long i = find_value(a, l, v, NULL);
    x->n = i < 0 ? 0 : (size_t)i;
    return i < 0 ? MP_ENOENT : 0;
}

static int count_value(ma_arena_t *a, struct mp_mobj *l, const mp__buf_t *v, vargs_t *x)
{
    find_value(a, l, v, &x->n);
    return 0;
}

int mp_mlist_append(mp_mlist_t *l, const mp_obj_t *value)
{
    if (mo_is_proxy(l))
        return mr_call(l, MR_L_APPEND, value, NULL, NULL, NULL, NULL);
    vargs_t x = {0};
    return with_value(l, value, append_value, &x);
}

int mp_mlist_append_unique(mp_mlist_t *l, const mp_obj_t *value, bool *appended_p)
{
    if (mo_is_proxy(l))
        return proxy_n(l, MR_L_APPEND_UNIQUE, value, NULL, appended_p);
    vargs_t x = {0};
    int rc = with_value(l, value, append_unique_value, &x);
    if (appended_p)
        *appended_p = x.flag;
    return rc;
}

int mp_mlist_set(mp_mlist_t *l, int64_t index, const mp_obj_t *value)
{
    if (mo_is_proxy(l))
        return value ? proxy_at(l, MR_L_SET, index, value, NULL) : MP_EINVAL;
    vargs_t x = {.index = index};
    return with_value(l, value, set_value, &x);
}

int mp_mlist_insert(mp_mlist_t *l, int64_t index, const mp_obj_t *value)
{
    if (mo_is_proxy(l))
        return value ? proxy_at(l, MR_L_INSERT, index, value, NULL) : MP_EINVAL;
    vargs_t x = {.index = index};
    return with_value(l, value, insert_value, &x);
}

int mp_mlist_remove(mp_mlist_t *l, const mp_obj_t *value)
{
    if (mo_is_proxy(l))
        return mr_call(l, MR_L_REMOVE, value, NULL, NULL, NULL, NULL);
    vargs_t x = {0};
    return with_value(l, value, remove_value, &x);
}

int mp_mlist_index(mp_mlist_t *l, const mp_obj_t *value, size_t *index_p)
{
    if (!index_p)
        return MP_EINVAL;
    if (mo_is_proxy(l))
        return proxy_n(l, MR_L_INDEX, value, index_p, NULL);
    vargs_t x = {0};
    int rc = with_value(l, value, index_value, &x);
    if (!rc)
        *index_p = x.n;
    return rc;
}

int mp_mlist_count(mp_mlist_t *l, const mp_obj_t *value, size_t *count_p)
{
    if (!count_p)
        return MP_EINVAL;
    if (mo_is_proxy(l))
        return proxy_n(l, MR_L_COUNT, value, count_p, NULL);
    vargs_t x = {0};
    int rc = with_value(l, value, count_value, &x);
    if (!rc)
        *count_p = x.n;
    return rc;
}

int mp_mlist_len(mp_mlist_t *l, size_t *len_p)
{
    if (!len_p)
        return MP_EINVAL;
    if (mo_is_proxy(l))
        return proxy_n(l, MR_L_LEN, NULL, len_p, NULL);
    ma_arena_t *a;
    int rc = lock_list(l, &a);
    if (rc)
        return rc;
    *len_p = vlen(a, l);
    ma_unlock(a);
    return 0;
}

int mp_mlist_slice(mp_mlist_t *l, int64_t start, int64_t stop, mp_obj_t **array_p)
{
    if (!array_p)
        return MP_EINVAL;
    if (mo_is_proxy(l)) {
        mp_obj_t *a0 = mp_obj_new_int(start), *a1 = mp_obj_new_int(stop);
        int rc = a0 && a1 ? mr_call(l, MR_L_SLICE, a0, a1, NULL, array_p, NULL) : MP_ENOMEM;
        mp_obj_destroy(&a0);
        mp_obj_destroy(&a1);
        return rc;
    }
    mp_obj_t *out = *array_p = mp_obj_new_array();
    if (!out)
        return MP_ENOMEM;
    ma_arena_t *a;
    int rc = lock_list(l, &a);
    if (rc) {
        mp_obj_destroy(array_p);
        return rc;
    }
    int64_t n = vlen(a, l);
    start = start < 0 ? start + n : start;
    stop = stop < 0 ? stop + n : stop;
    start = start < 0 ? 0 : start > n ? n : start;
    stop = stop < 0 ? 0 : stop > n ? n : stop;
    for (int64_t i = start; i < stop && !rc; i++) {
        mp_obj_t *item = NULL;
        if (!(rc = ma_blob_obj(a, vec(a, l)->items[i], &item)))
            rc = mp_obj_array_add(out, item);
    }
    ma_unlock(a);
    if (rc)
        mp_obj_destroy(array_p);
    return rc;
}

int mp_mlist_copy(mp_mlist_t *l, mp_obj_t **array_p)
{
    return mp_mlist_slice(l, 0, INT64_MAX, array_p);
}

int mp_mlist_clear(mp_mlist_t *l)
{
    if (mo_is_proxy(l))
        return mr_call(l, MR_L_CLEAR, NULL, NULL, NULL, NULL, NULL);
    ma_arena_t *a;
    int rc = lock_list(l, &a);
    if (rc)
        return rc;
    mlist_free_data(a, l);
    ma_unlock(a);
    return 0;
}
