/*  table.c - a dict's table (docs/MANAGER.md section 3), what dict.c's
    calls, the repair (repair.c) and the directory of named objects
    (manager.c) work on. Every function here runs with the arena locked.

    A dict's data is one table block, CPython's compact layout: the entries
    in insertion order (hash, key blob, value blob; a deleted entry has key
    0) followed by an open-addressing index of entry numbers + 1 (0: empty
    slot), with linear probing and at least twice as many slots as entries.

    Commit points (the one word store that makes an operation visible):
      insert   entries[n] and its index slot written, then nentries = n + 1
      replace  the entry's value offset
      delete   the entry's key offset set to 0
      grow     the object's table offset (a new table, compacted)
      clear    the object's table offset set to 0
    `live` and the index are derived: a repair rebuilds them from the
    entries (mdict_rebuild).
*/
#include <string.h>

#include "manager/table.h"
#include "mp/error.h"

/* The entry number of key, or -1; *slot_p is the index slot where it is,
   or the empty slot where it would go. */
long mdict_find(ma_arena_t *a, dtable_t *t, const char *kb, size_t kl, uint32_t h, uint32_t *slot_p)
{
    *slot_p = 0;
    if (!t)
        return -1;
    uint32_t mask = t->nindex - 1, *ix = dindex(t);
    for (uint32_t i = h & mask, n = 0; n < t->nindex; i = (i + 1) & mask, n++) {
        uint32_t e = ix[i];
        if (!e) {
            *slot_p = i;
            return -1;
        }
        if (e - 1 < t->nentries) {
            dentry_t *d = &t->entries[e - 1];
            if (d->key && d->hash == h && ma_blob_eq(a, d->key, kb, kl)) {
                *slot_p = i;
                return (long)(e - 1);
            }
        }
    }
    return -1; /* not reached: the index is never full */
}

static void index_put(dtable_t *t, uint32_t h, uint32_t entry)
{
    uint32_t mask = t->nindex - 1, *ix = dindex(t), i = h & mask;
    while (ix[i])
        i = (i + 1) & mask;
    ix[i] = entry + 1;
}

/* Replaces the table by a compacted one with room for at least `want`
   entries. MP_ENOSPC leaves the dict as it was. */
static int regrow(ma_arena_t *a, struct mp_mobj *o, uint32_t want)
{
    dtable_t *old = dtable(a, o);
    uint32_t cap = 8;
    while (cap < want * 2u && cap < (1u << 28))
        cap *= 2;
    uint32_t nindex = cap * 2;
    size_t size = sizeof(dtable_t) + (size_t)cap * sizeof(dentry_t) + (size_t)nindex * 4;
    uint32_t off = ma_alloc(a, size);
    if (!off)
        return MP_ENOSPC;
    dtable_t *t = ma_at(a, off);
    t->cap = cap;
    t->nindex = nindex;
    t->nentries = t->live = 0;
    memset(dindex(t), 0, (size_t)nindex * 4);
    for (uint32_t e = 0; old && e < old->nentries; e++)
        if (old->entries[e].key) {
            t->entries[t->nentries] = old->entries[e];
            index_put(t, old->entries[e].hash, t->nentries);
            t->nentries++;
            t->live++;
        }
    o->data = off; /* the commit */
    if (old)
        ma_free(a, (uint32_t)((char *)old - (char *)a));
    return 0;
}

/* Inserts an absent key (mdict_find() said so). */
int mdict_insert(ma_arena_t *a, struct mp_mobj *o, const char *kb, size_t kl, uint32_t h,
                 const char *vb, size_t vl)
{
    dtable_t *t = dtable(a, o);
    if (!t || t->nentries == t->cap) {
        int rc = regrow(a, o, t ? t->live + 1 : 1);
        if (rc)
            return rc;
        t = dtable(a, o);
    }
    uint32_t key = ma_blob_new(a, kb, kl), val = key ? ma_blob_new(a, vb, vl) : 0;
    if (!val) {
        ma_free(a, key);
        return MP_ENOSPC;
    }
    uint32_t slot, n = t->nentries;
    mdict_find(a, t, kb, kl, h, &slot);
    t->entries[n] = (dentry_t){h, key, val};
    dindex(t)[slot] = n + 1;
    t->nentries = n + 1; /* the commit */
    t->live++;
    return 0;
}

int mdict_replace(ma_arena_t *a, dentry_t *d, const char *vb, size_t vl)
{
    uint32_t val = ma_blob_new(a, vb, vl);
    if (!val)
        return MP_ENOSPC;
    uint32_t old = d->val;
    d->val = val; /* the commit */
    ma_free(a, old);
    return 0;
}

void mdict_delete(ma_arena_t *a, dtable_t *t, dentry_t *d)
{
    uint32_t key = d->key, val = d->val;
    d->key = 0; /* the commit */
    t->live--;
    ma_free(a, key);
    ma_free(a, val);
}

/* Sets key to value, inserting or replacing. */
int mdict_put(ma_arena_t *a, struct mp_mobj *o, const char *kb, size_t kl, uint32_t h,
              const char *vb, size_t vl)
{
    uint32_t slot;
    dtable_t *t = dtable(a, o);
    long e = mdict_find(a, t, kb, kl, h, &slot);
    return e >= 0 ? mdict_replace(a, &t->entries[e], vb, vl)
                  : mdict_insert(a, o, kb, kl, h, vb, vl);
}

/* ---- repair (repair.c), clear and free (dict.c, manager.c) ----------------------- */

void mdict_mark(ma_arena_t *a, struct mp_mobj *o)
{
    dtable_t *t = dtable(a, o);
    if (!t)
        return;
    ma_mark(a, o->data);
    for (uint32_t e = 0; e < t->nentries && e < t->cap; e++)
        if (t->entries[e].key) {
            ma_mark(a, t->entries[e].key);
            ma_mark(a, t->entries[e].val);
        }
}

void mdict_rebuild(ma_arena_t *a, struct mp_mobj *o)
{
    dtable_t *t = dtable(a, o);
    if (!t)
        return;
    if (t->nentries > t->cap)
        t->nentries = t->cap;
    memset(dindex(t), 0, (size_t)t->nindex * 4);
    t->live = 0;
    for (uint32_t e = 0; e < t->nentries; e++)
        if (t->entries[e].key) {
            index_put(t, t->entries[e].hash, e);
            t->live++;
        }
}

void mdict_free_data(ma_arena_t *a, struct mp_mobj *o)
{
    dtable_t *t = dtable(a, o);
    if (!t)
        return;
    uint32_t off = o->data;
    o->data = 0; /* the commit */
    for (uint32_t e = 0; e < t->nentries; e++)
        if (t->entries[e].key) {
            ma_free(a, t->entries[e].key);
            ma_free(a, t->entries[e].val);
        }
    ma_free(a, off);
}

/* ---- the directory of named objects (manager.c) --------------------------------- */

static int pack_name(packed_t *p, const char *name)
{
    mp_obj_t *k = mp_obj_new_str(name);
    int rc = k ? ma_packed(p, k) : MP_ENOMEM;
    mp_obj_destroy(&k);
    return rc;
}

uint32_t mdict_get_slot(ma_arena_t *a, struct mp_mobj *dir, const char *name)
{
    packed_t k;
    uint32_t slot = 0, at;
    if (pack_name(&k, name))
        return 0;
    dtable_t *t = dtable(a, dir);
    long e = mdict_find(a, t, k.buf.data, k.buf.size, mdict_hash(k.buf.data, k.buf.size), &at);
    if (e >= 0) {
        const ma_blob_t *v = ma_blob(a, t->entries[e].val);
        if (v->len == 5 && (uint8_t)v->bytes[0] == 0xce) /* msgpack uint32 */
            slot = (uint32_t)(uint8_t)v->bytes[1] << 24 | (uint32_t)(uint8_t)v->bytes[2] << 16 |
                   (uint32_t)(uint8_t)v->bytes[3] << 8 | (uint8_t)v->bytes[4];
    }
    mp__buf_release(&k.buf);
    return slot;
}

int mdict_put_slot(ma_arena_t *a, struct mp_mobj *dir, const char *name, uint32_t slot)
{
    packed_t k;
    int rc = pack_name(&k, name);
    if (rc)
        return rc;
    char v[5] = {(char)0xce, (char)(slot >> 24), (char)(slot >> 16), (char)(slot >> 8), (char)slot};
    rc = mdict_put(a, dir, k.buf.data, k.buf.size, mdict_hash(k.buf.data, k.buf.size), v, sizeof v);
    mp__buf_release(&k.buf);
    return rc;
}
