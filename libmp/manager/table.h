/*  table.h - a dict's table (table.c): the layout and the operations that
    change it, each with its commit point, shared by dict.c (the public
    calls), repair.c (mark, rebuild) and manager.c (free, the directory of
    named objects). Every call here expects the arena lock held. Not
    installed.
*/
#ifndef MP_MANAGER_TABLE_H_INCLUDED
#define MP_MANAGER_TABLE_H_INCLUDED

#include "manager/arena.h"

typedef struct {
    uint32_t hash, key, val;
} dentry_t;

typedef struct {
    uint32_t nentries; /* entries written: an insert's commit point */
    uint32_t cap;      /* entries that fit */
    uint32_t live;     /* entries with a key (derived) */
    uint32_t nindex;   /* index slots, a power of two >= 2 cap */
    dentry_t entries[];
} dtable_t;

static inline uint32_t *dindex(dtable_t *t)
{
    return (uint32_t *)(t->entries + t->cap);
}

static inline dtable_t *dtable(ma_arena_t *a, const struct mp_mobj *o)
{
    return o->data ? ma_at(a, o->data) : NULL;
}

/* A key's hash: of its packed bytes. */
static inline uint32_t mdict_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

/* The entry number of key (packed: kb, kl; hash h), or -1; *slot_p is the
   index slot where it is, or the empty slot where it would go. */
long mdict_find(ma_arena_t *a, dtable_t *t, const char *kb, size_t kl, uint32_t h,
                uint32_t *slot_p);
/* Inserts an absent key (mdict_find() said so); MP_ENOSPC changes nothing. */
int mdict_insert(ma_arena_t *a, struct mp_mobj *o, const char *kb, size_t kl, uint32_t h,
                 const char *vb, size_t vl);
/* Replaces an entry's value; MP_ENOSPC changes nothing. */
int mdict_replace(ma_arena_t *a, dentry_t *d, const char *vb, size_t vl);
/* Deletes an entry of table t. */
void mdict_delete(ma_arena_t *a, dtable_t *t, dentry_t *d);
/* Sets key to value, inserting or replacing. */
int mdict_put(ma_arena_t *a, struct mp_mobj *o, const char *kb, size_t kl, uint32_t h,
              const char *vb, size_t vl);

/* The repair's part (repair.c): mark what the dict reaches (ma_mark on
   every block), and rebuild its derived state (index, live count). */
void mdict_mark(ma_arena_t *a, struct mp_mobj *o);
void mdict_rebuild(ma_arena_t *a, struct mp_mobj *o);
/* Frees the dict's contents: it is empty afterwards. */
void mdict_free_data(ma_arena_t *a, struct mp_mobj *o);

/* The directory of named objects (manager.c): the slot stored for a
   packed name, or 0; and storing one. */
uint32_t mdict_get_slot(ma_arena_t *a, struct mp_mobj *dir, const char *name);
int mdict_put_slot(ma_arena_t *a, struct mp_mobj *dir, const char *name, uint32_t slot);

#endif
