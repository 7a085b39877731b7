/*  vector.c - a list's vector (docs/MANAGER.md section 3), what list.c's
    calls, the repair (repair.c) and manager.c work on. Every function here
    runs with the arena locked.

    A list's data is one vector block: a length, a capacity and the offsets
    of its value blobs. list.c changes a vector in place only where one
    word store commits it (the length, an item's offset); anything else
    builds a new vector (mlist_vec_copy) and commits it with one store of
    the object's data offset (mlist_vec_swap), so a process killed in the
    middle leaves the list before or after its operation.
*/
#include "manager/vector.h"

/* A new vector: items [0, keep) of the old one, then a gap of `gap` slots
   at `at`, then the rest (items [at, keep) move up by gap); item `skip`
   (or UINT32_MAX) is left out. 0 when the arena is full. */
uint32_t mlist_vec_copy(ma_arena_t *a, const vec_t *old, uint32_t at, uint32_t gap, uint32_t skip,
                        uint32_t *len_p)
{
    uint32_t n = old ? old->len : 0, len = n + gap - (skip < n), cap = 8;
    while (cap < len + len / 2 + 1)
        cap *= 2;
    uint32_t off = ma_alloc(a, sizeof(vec_t) + (size_t)cap * 4);
    if (!off)
        return 0;
    vec_t *v = ma_at(a, off);
    v->cap = cap;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i == at)
            k += gap;
        if (i != skip)
            v->items[k++] = old->items[i];
    }
    v->len = *len_p = len;
    return off;
}

/* Commits a new vector and frees the old one. */
void mlist_vec_swap(ma_arena_t *a, struct mp_mobj *o, uint32_t off)
{
    uint32_t old = o->data;
    o->data = off; /* the commit */
    ma_free(a, old);
}

/* ---- repair (repair.c), clear and free (list.c, manager.c) ---------------------- */

void mlist_mark(ma_arena_t *a, struct mp_mobj *o)
{
    vec_t *v = vec(a, o);
    if (!v)
        return;
    ma_mark(a, o->data);
    if (v->len > v->cap)
        v->len = v->cap;
    for (uint32_t i = 0; i < v->len; i++)
        ma_mark(a, v->items[i]);
}

void mlist_free_data(ma_arena_t *a, struct mp_mobj *o)
{
    vec_t *v = vec(a, o);
    if (!v)
        return;
    uint32_t off = o->data;
    o->data = 0; /* the commit */
    for (uint32_t i = 0; i < v->len; i++)
        ma_free(a, v->items[i]);
    ma_free(a, off);
}
