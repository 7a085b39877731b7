/*  vector.h - a list's vector (vector.c): the layout, and what list.c's
    calls, the repair (repair.c) and manager.c need of it. Every call here
    expects the arena lock held. Not installed.
*/
#ifndef MP_MANAGER_VECTOR_H_INCLUDED
#define MP_MANAGER_VECTOR_H_INCLUDED

#include "manager/arena.h"

typedef struct {
    uint32_t len, cap;
    uint32_t items[];
} vec_t;

static inline vec_t *vec(ma_arena_t *a, const struct mp_mobj *o)
{
    return o->data ? ma_at(a, o->data) : NULL;
}

static inline uint32_t vlen(ma_arena_t *a, const struct mp_mobj *o)
{
    vec_t *v = vec(a, o);
    return v ? v->len : 0;
}

/* A new vector: items [0, keep) of the old one, then a gap of `gap` slots
   at `at`, then the rest (items [at, keep) move up by gap); item `skip`
   (or UINT32_MAX) is left out. 0 when the arena is full. */
uint32_t mlist_vec_copy(ma_arena_t *a, const vec_t *old, uint32_t at, uint32_t gap, uint32_t skip,
                        uint32_t *len_p);
/* Commits a new vector and frees the old one. */
void mlist_vec_swap(ma_arena_t *a, struct mp_mobj *o, uint32_t off);

/* The repair's part (repair.c): mark what the list reaches (ma_mark on
   every block). */
void mlist_mark(ma_arena_t *a, struct mp_mobj *o);
/* Frees the list's contents: it is empty afterwards. */
void mlist_free_data(ma_arena_t *a, struct mp_mobj *o);

#endif
