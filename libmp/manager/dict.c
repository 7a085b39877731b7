/*  dict.c - the Manager's dict and Namespace (docs/MANAGER.md): the public
    mp_mdict_* and mp_mns_* calls. The table they work on, its layout and
    its commit points are table.c's; a call given a remote object's proxy
    sends it instead (proxy.c).

    Every public call packs its key and value before taking the lock, on
    the caller's stack when they are small.
*/
#include <stdlib.h>
#include <string.h>

#include "manager/proxy.h"
#include "manager/repair.h"
#include "manager/table.h"
#include "mp/error.h"

/* ---- public calls -------------------------------------------------------------------- */

/* A call's prologue: the key packed and hashed, the arena locked. */
typedef struct {
    ma_arena_t *a;
    packed_t key;
    uint32_t hash;
} call_t;

static int begin(struct mp_mobj *o, const mp_obj_t *key, call_t *c)
{
    if (!o || !key || !mo_is_dict(o))
        return MP_EINVAL;
    c->a = ma_of(o);
    int rc = ma_packed(&c->key, key);
    if (rc)
        return rc;
    c->hash = mdict_hash(c->key.buf.data, c->key.buf.size);
    rc = ma_lock(c->a);
    if (rc)
        mp__buf_release(&c->key.buf);
    return rc;
}

static int end(call_t *c, int rc)
{
    ma_unlock(c->a);
    mp__buf_release(&c->key.buf);
    return rc;
}

static long lookup(call_t *c, struct mp_mobj *o, dentry_t **d_p)
{
    uint32_t slot;
    dtable_t *t = dtable(c->a, o);
    long e = mdict_find(c->a, t, c->key.buf.data, c->key.buf.size, c->hash, &slot);
    *d_p = e >= 0 ? &t->entries[e] : NULL;
    return e;
}

int mp_mdict_set(mp_mdict_t *d, const mp_obj_t *key, const mp_obj_t *value)
{
    if (mo_is_proxy(d))
        return mr_call(d, MR_D_SET, key, value, NULL, NULL, NULL);
    packed_t v;
    int rc = value ? ma_packed(&v, value) : MP_EINVAL;
    if (rc)
        return rc;
    call_t c;
    if (!(rc = begin(d, key, &c)))
        rc = end(&c,
                 mdict_put(c.a, d, c.key.buf.data, c.key.buf.size, c.hash, v.buf.data, v.buf.size));
    mp__buf_release(&v.buf);
    return rc;
}

static int copy_default(const mp_obj_t *dflt, mp_obj_t **value_p)
{
    if (!dflt)
        return MP_ENOENT;
    return (*value_p = mp_obj_dup(dflt)) ? 0 : MP_ENOMEM;
}

int mp_mdict_get(mp_mdict_t *d, const mp_obj_t *key, const mp_obj_t *dflt, mp_obj_t **value_p)
{
    if (!value_p)
        return MP_EINVAL;
    *value_p = NULL;
    if (mo_is_proxy(d))
        return mr_call(d, dflt ? MR_D_GET_DFLT : MR_D_GET, key, dflt, NULL, value_p, NULL);
    call_t c;
    int rc = begin(d, key, &c);
    if (rc)
        return rc;
    dentry_t *e;
    if (lookup(&c, d, &e) >= 0)
        return end(&c, ma_blob_obj(c.a, e->val, value_p));
    end(&c, 0);
    return copy_default(dflt, value_p);
}

/* The first per-key code that is an error (MP_ENOENT is an answer). */
static int first_error(const int *rcs, size_t n, bool enoent_ok)
{
    for (size_t i = 0; i < n; i++)
        if (rcs[i] < 0 && !(enoent_ok && rcs[i] == MP_ENOENT))
            return rcs[i];
    return 0;
}

int mp_mdict_get_many(mp_mdict_t *d, const mp_obj_t *const *keys, size_t n, mp_obj_t **values,
                      int *rcs)
{
    if (!d || (!keys && n) || (!values && n))
        return MP_EINVAL;
    if (n)
        memset(values, 0, n * sizeof *values);
    if (mo_is_proxy(d)) {
        int *codes = rcs ? rcs : calloc(n ? n : 1, sizeof *codes);
        int rc = codes ? mr_call_many(d, MR_D_GET, n, keys, NULL, values, codes) : MP_ENOMEM;
        if (!rc)
            rc = first_error(codes, n, true);
        if (codes != rcs)
            free(codes);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = keys[i] ? mp_mdict_get(d, keys[i], NULL, &values[i]) : MP_EINVAL;
        if (rcs)
            rcs[i] = rc;
        if (rc && rc != MP_ENOENT)
            return rc;
    }
    return 0;
}

int mp_mdict_set_many(mp_mdict_t *d, const mp_obj_t *const *keys, const mp_obj_t *const *values,
                      size_t n)
{
    if (!d || ((!keys || !values) && n))
        return MP_EINVAL;
    if (mo_is_proxy(d)) {
        int *rcs = calloc(n ? n : 1, sizeof *rcs);
        int rc = rcs ? mr_call_many(d, MR_D_SET, n, keys, values, NULL, rcs) : MP_ENOMEM;
        if (!rc)
            rc = first_error(rcs, n, false);
        free(rcs);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = mp_mdict_set(d, keys[i], values[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int mp_mdict_del(mp_mdict_t *d, const mp_obj_t *key)
{
    if (mo_is_proxy(d))
        return mr_call(d, MR_D_DEL, key, NULL, NULL, NULL, NULL);
    call_t c;
    int rc = begin(d, key, &c);
    if (rc)
        return rc;
    dentry_t *e;
    if (lookup(&c, d, &e) < 0)
        return end(&c, MP_ENOENT);
    mdict_delete(c.a, dtable(c.a, d), e);
    return end(&c, 0);
}

int mp_mdict_contains(mp_mdict_t *d, const mp_obj_t *key)
{
    if (mo_is_proxy(d))
        return mr_call(d, MR_D_CONTAINS, key, NULL, NULL, NULL, NULL);
    call_t c;
    int rc = begin(d, key, &c);
    if (rc)
        return rc;
    dentry_t *e;
    return end(&c, lookup(&c, d, &e) >= 0);
}

int mp_mdict_len(mp_mdict_t *d, size_t *len_p)
{
    if (!d || !len_p || !mo_is_dict(d))
        return MP_EINVAL;
    if (mo_is_proxy(d)) {
        int64_t n = 0;
        int rc = mr_call(d, MR_D_LEN, NULL, NULL, NULL, NULL, &n);
        *len_p = rc ? 0 : (size_t)n;
        return rc;
    }
    ma_arena_t *a = ma_of(d);
    int rc = ma_lock(a);
    if (rc)
        return rc;
    dtable_t *t = dtable(a, d);
    *len_p = t ? t->live : 0;
    ma_unlock(a);
    return 0;
}

enum { SNAP_KEYS, SNAP_VALUES, SNAP_ITEMS };

static int snapshot(mp_mdict_t *d, int what, mp_obj_t **out_p)
{
    if (!d || !out_p || !mo_is_dict(d))
        return MP_EINVAL;
    *out_p = NULL;
    if (mo_is_proxy(d))
        return mr_call(d,
                       what == SNAP_KEYS     ? MR_D_KEYS
                       : what == SNAP_VALUES ? MR_D_VALUES
                                             : MR_D_ITEMS,
                       NULL, NULL, NULL, out_p, NULL);
    mp_obj_t *out = what == SNAP_ITEMS ? mp_obj_new_map() : mp_obj_new_array();
    if (!out)
        return MP_ENOMEM;
    ma_arena_t *a = ma_of(d);
    int rc = ma_lock(a);
    if (rc) {
        mp_obj_destroy(&out);
        return rc;
    }
    dtable_t *t = dtable(a, d);
    for (uint32_t e = 0; t && e < t->nentries && !rc; e++) {
        dentry_t *en = &t->entries[e];
        if (!en->key)
            continue;
        mp_obj_t *k = NULL, *v = NULL;
        if (what != SNAP_VALUES)
            rc = ma_blob_obj(a, en->key, &k);
        if (!rc && what != SNAP_KEYS)
            rc = ma_blob_obj(a, en->val, &v);
        if (!rc)
            rc = what == SNAP_ITEMS ? mp_obj_map_add(out, k, v)
                                    : mp_obj_array_add(out, what == SNAP_KEYS ? k : v);
        else {
            mp_obj_destroy(&k);
            mp_obj_destroy(&v);
        }
    }
    ma_unlock(a);
    if (rc)
        mp_obj_destroy(&out);
    *out_p = out;
    return rc;
}

int mp_mdict_keys(mp_mdict_t *d, mp_obj_t **array_p)
{
    return snapshot(d, SNAP_KEYS, array_p);
}

int mp_mdict_values(mp_mdict_t *d, mp_obj_t **array_p)
{
    return snapshot(d, SNAP_VALUES, array_p);
}

int mp_mdict_items(mp_mdict_t *d, mp_obj_t **map_p)
{
    return snapshot(d, SNAP_ITEMS, map_p);
}

/* dict.update: each pair in turn. On MP_ENOSPC the applied pairs are undone,
   newest first, found again by key (an insert may have compacted the
   table); replaced values are kept until the end for that. */
static void undo_pairs(ma_arena_t *a, struct mp_mobj *o, packed_t *kv, uint32_t *old, size_t n)
{
    while (n-- > 0) {
        mp__buf_t *k = &kv[2 * n].buf;
        uint32_t slot;
        dtable_t *t = dtable(a, o);
        long e = mdict_find(a, t, k->data, k->size, mdict_hash(k->data, k->size), &slot);
        if (e < 0)
            continue; /* not reached: it was applied */
        dentry_t *en = &t->entries[e];
        if (old[n]) {
            uint32_t val = en->val;
            en->val = old[n];
            ma_free(a, val);
        } else {
            mdict_delete(a, t, en);
        }
    }
}

static int apply_pairs(ma_arena_t *a, struct mp_mobj *o, packed_t *kv, uint32_t *old, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mp__buf_t *k = &kv[2 * i].buf, *v = &kv[2 * i + 1].buf;
        uint32_t h = mdict_hash(k->data, k->size), slot;
        dtable_t *t = dtable(a, o);
        long e = mdict_find(a, t, k->data, k->size, h, &slot);
        int rc = 0;
        old[i] = 0;
        if (e >= 0) {
            uint32_t val = ma_blob_new(a, v->data, v->size);
            if (val) {
                old[i] = t->entries[e].val;
                t->entries[e].val = val;
            } else {
                rc = MP_ENOSPC;
            }
        } else {
            rc = mdict_insert(a, o, k->data, k->size, h, v->data, v->size);
        }
        if (rc) {
            undo_pairs(a, o, kv, old, i);
            return rc;
        }
    }
    for (size_t i = 0; i < n; i++)
        ma_free(a, old[i]);
    return 0;
}

int mp_mdict_update(mp_mdict_t *d, const mp_obj_t *map)
{
    if (!d || !map || mp_obj_type(map) != MP_OBJ_MAP || !mo_is_dict(d))
        return MP_EINVAL;
    if (mo_is_proxy(d))
        return mr_call(d, MR_D_UPDATE, map, NULL, NULL, NULL, NULL);
    size_t n = mp_obj_len(map), packed = 0;
    packed_t *kv = calloc(2 * n + 1, sizeof *kv);
    uint32_t *old = calloc(n + 1, sizeof *old);
    int rc = kv && old ? 0 : MP_ENOMEM;
    for (; !rc && packed < 2 * n; packed++)
        rc = ma_packed(&kv[packed], packed % 2 ? mp_obj_map_value_at(map, packed / 2)
                                               : mp_obj_map_key_at(map, packed / 2));
    ma_arena_t *a = ma_of(d);
    if (!rc && !(rc = ma_lock(a))) {
        rc = apply_pairs(a, d, kv, old, n);
        ma_unlock(a);
    }
    for (size_t i = 0; kv && i < 2 * n; i++) /* zeroed ones own nothing */
        mp__buf_release(&kv[i].buf);
    free(kv);
    free(old);
    return rc;
}

int mp_mdict_pop(mp_mdict_t *d, const mp_obj_t *key, const mp_obj_t *dflt, mp_obj_t **value_p)
{
    if (!value_p)
        return MP_EINVAL;
    *value_p = NULL;
    if (mo_is_proxy(d))
        return mr_call(d, dflt ? MR_D_POP_DFLT : MR_D_POP, key, dflt, NULL, value_p, NULL);
    call_t c;
    int rc = begin(d, key, &c);
    if (rc)
        return rc;
    dentry_t *e;
    if (lookup(&c, d, &e) < 0) {
        end(&c, 0);
        return copy_default(dflt, value_p);
    }
    if (!(rc = ma_blob_obj(c.a, e->val, value_p)))
        mdict_delete(c.a, dtable(c.a, d), e);
    return end(&c, rc);
}

int mp_mdict_setdefault(mp_mdict_t *d, const mp_obj_t *key, const mp_obj_t *value,
                        mp_obj_t **current_p)
{
    if (mo_is_proxy(d)) {
        mp_obj_t *cur = NULL;
        int rc = mr_call(d, MR_D_SETDEFAULT, key, value, NULL, &cur, NULL);
        if (current_p)
            *current_p = cur;
        else
            mp_obj_destroy(&cur);
        return rc;
    }
    packed_t v;
    int rc = value ? ma_packed(&v, value) : MP_EINVAL;
    if (rc)
        return rc;
    if (current_p)
        *current_p = NULL;
    call_t c;
    if (!(rc = begin(d, key, &c))) {
        dentry_t *e;
        if (lookup(&c, d, &e) >= 0)
            rc = current_p ? ma_blob_obj(c.a, e->val, current_p) : 0;
        else if (!(rc = mdict_insert(c.a, d, c.key.buf.data, c.key.buf.size, c.hash, v.buf.data,
                                     v.buf.size)) &&
                 current_p)
            rc = (*current_p = mp_obj_dup(value)) ? 0 : MP_ENOMEM;
        end(&c, 0);
    }
    mp__buf_release(&v.buf);
    return rc;
}

int mp_mdict_clear(mp_mdict_t *d)
{
    if (!d || !mo_is_dict(d))
        return MP_EINVAL;
    if (mo_is_proxy(d))
        return mr_call(d, MR_D_CLEAR, NULL, NULL, NULL, NULL, NULL);
    ma_arena_t *a = ma_of(d);
    int rc = ma_lock(a);
    if (rc)
        return rc;
    mdict_free_data(a, d);
    ma_unlock(a);
    return 0;
}

/* ---- read-modify-write ------------------------------------------------------------ */

/* Under the lock: fn(current value or NULL) -> next (NULL: delete). */
static int modify(call_t *c, struct mp_mobj *o, mp_mdict_fn fn, void *arg)
{
    dentry_t *e;
    mp_obj_t *cur = NULL, *next = NULL;
    long at = lookup(c, o, &e);
    int rc = at >= 0 ? ma_blob_obj(c->a, e->val, &cur) : 0;
    if (!rc)
        rc = fn(cur, &next, arg);
    mp_obj_destroy(&cur);
    if (rc || (!next && at < 0))
        return rc;
    if (!next) {
        mdict_delete(c->a, dtable(c->a, o), e);
        return 0;
    }
    packed_t v;
    rc = ma_packed(&v, next);
    mp_obj_destroy(&next);
    if (!rc)
        rc = at >= 0 ? mdict_replace(c->a, e, v.buf.data, v.buf.size)
                     : mdict_insert(c->a, o, c->key.buf.data, c->key.buf.size, c->hash, v.buf.data,
                                    v.buf.size);
    mp__buf_release(&v.buf);
    return rc;
}

int mp_mdict_update_fn(mp_mdict_t *d, const mp_obj_t *key, mp_mdict_fn fn, void *arg)
{
    if (!fn || mo_is_proxy(d)) /* a C callback cannot travel */
        return MP_EINVAL;
    call_t c;
    int rc = begin(d, key, &c);
    return rc ? rc : end(&c, modify(&c, d, fn, arg));
}

typedef struct {
    int64_t delta, result;
} incr_t;

static int add_int(const mp_obj_t *cur, mp_obj_t **next, void *arg)
{
    incr_t *in = arg;
    int64_t base = 0;
    if (cur) {
        if (mp_obj_type(cur) != MP_OBJ_INT && mp_obj_type(cur) != MP_OBJ_UINT)
            return MP_ETYPE;
        base = mp_obj_int(cur);
    }
    in->result = (int64_t)((uint64_t)base + (uint64_t)in->delta); /* wraps, never UB */
    return (*next = mp_obj_new_int(in->result)) ? 0 : MP_ENOMEM;
}

int mp_mdict_incr(mp_mdict_t *d, const mp_obj_t *key, int64_t delta, int64_t *result_p)
{
    if (mo_is_proxy(d)) {
        mp_obj_t *dl = mp_obj_new_int(delta);
        int64_t r = 0;
        int rc = dl ? mr_call(d, MR_D_INCR, key, dl, NULL, NULL, &r) : MP_ENOMEM;
        mp_obj_destroy(&dl);
        if (!rc && result_p)
            *result_p = r;
        return rc;
    }
    incr_t in = {delta, 0};
    int rc = mp_mdict_update_fn(d, key, add_int, &in);
    if (!rc && result_p)
        *result_p = in.result;
    return rc;
}

typedef struct {
    double delta, result;
} incrf_t;

static int add_float(const mp_obj_t *cur, mp_obj_t **next, void *arg)
{
    incrf_t *in = arg;
    double base = 0;
    if (cur) {
        mp_obj_type_t t = mp_obj_type(cur);
        if (t != MP_OBJ_INT && t != MP_OBJ_UINT && t != MP_OBJ_FLOAT)
            return MP_ETYPE;
        base = mp_obj_float(cur);
    }
    in->result = base + in->delta;
    return (*next = mp_obj_new_float(in->result)) ? 0 : MP_ENOMEM;
}

int mp_mdict_incr_float(mp_mdict_t *d, const mp_obj_t *key, double delta, double *result_p)
{
    if (mo_is_proxy(d)) {
        mp_obj_t *dl = mp_obj_new_float(delta), *r = NULL;
        int rc = dl ? mr_call(d, MR_D_INCRF, key, dl, NULL, &r, NULL) : MP_ENOMEM;
        if (!rc && result_p)
            *result_p = r ? mp_obj_float(r) : 0;
        mp_obj_destroy(&dl);
        mp_obj_destroy(&r);
        return rc;
    }
    incrf_t in = {delta, 0};
    int rc = mp_mdict_update_fn(d, key, add_float, &in);
    if (!rc && result_p)
        *result_p = in.result;
    return rc;
}

int mp_mdict_cas(mp_mdict_t *d, const mp_obj_t *key, const mp_obj_t *expected,
                 const mp_obj_t *value, bool *swapped_p)
{
    if (mo_is_proxy(d)) {
        int64_t swapped = 0;
        int rc = expected ? mr_call(d, MR_D_CAS, key, expected, value, NULL, &swapped)
                          : mr_call(d, MR_D_CAS_ABSENT, key, value, NULL, NULL, &swapped);
        if (swapped_p)
            *swapped_p = !rc && swapped;
        return rc;
    }
    packed_t v, x;
    int rc = value ? ma_packed(&v, value) : MP_EINVAL;
    if (rc)
        return rc;
    if (expected && (rc = ma_packed(&x, expected))) {
        mp__buf_release(&v.buf);
        return rc;
    }
    bool swapped = false;
    call_t c;
    if (!(rc = begin(d, key, &c))) {
        dentry_t *e;
        long at = lookup(&c, d, &e);
        if (at >= 0 && expected && ma_blob_eq(c.a, e->val, x.buf.data, x.buf.size))
            swapped = !(rc = mdict_replace(c.a, e, v.buf.data, v.buf.size));
        else if (at < 0 && !expected)
            swapped = !(rc = mdict_insert(c.a, d, c.key.buf.data, c.key.buf.size, c.hash,
                                          v.buf.data, v.buf.size));
        end(&c, 0);
    }
    if (swapped_p)
        *swapped_p = swapped;
    mp__buf_release(&v.buf);
    if (expected)
        mp__buf_release(&x.buf);
    return rc;
}

/* ---- Namespace: a dict with string keys ------------------------------------------- */

static int name_key(const char *name, mp_obj_t **key_p)
{
    if (!name)
        return MP_EINVAL;
    return (*key_p = mp_obj_new_str(name)) ? 0 : MP_ENOMEM;
}

int mp_mns_set(mp_mns_t *ns, const char *name, const mp_obj_t *value)
{
    mp_obj_t *k;
    int rc = name_key(name, &k);
    if (!rc)
        rc = mp_mdict_set(ns, k, value);
    mp_obj_destroy(&k);
    return rc;
}

int mp_mns_get(mp_mns_t *ns, const char *name, mp_obj_t **value_p)
{
    mp_obj_t *k;
    int rc = name_key(name, &k);
    if (!rc)
        rc = mp_mdict_get(ns, k, NULL, value_p);
    mp_obj_destroy(&k);
    return rc;
}

int mp_mns_del(mp_mns_t *ns, const char *name)
{
    mp_obj_t *k;
    int rc = name_key(name, &k);
    if (!rc)
        rc = mp_mdict_del(ns, k);
    mp_obj_destroy(&k);
    return rc;
}
