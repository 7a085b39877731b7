/*  ref.c - references: a dict, list, Namespace or queue stored inside a
    dict or list (docs/MANAGER.md section 7), as Python's nested proxies.

    A reference is a value (the extension value MA_REF_EXT: kind, slot,
    gen; arena.c) stored like any other, so it is written with the usual
    set/append/extend/update calls and survives a repair untouched (it
    owns nothing). Following one checks that its slot still holds an
    object of its kind and generation: a freed object's reference gives
    MP_ENOENT, never another object. Locally the reference leads to the
    object itself (a queue: the handle this process has, found through the
    manager that made it); through a proxy, to a proxy on the same
    connection, which the server checks the same way (serve.c).
*/
#include "manager/owned.h"
#include "manager/proxy.h"
#include "manager/repair.h"
#include "mp/error.h"

static bool referable(const struct mp_mobj *o)
{
    return o && (mo_is_dict(o) || mo_is_list(o));
}

mp_obj_t *mp_mobj_ref(struct mp_mobj *o)
{
    if (!referable(o))
        return NULL;
    if (mo_is_proxy(o)) /* a named object's proxy knows its gen from OPEN */
        return o->data ? ma_ref_new(o->type & ~(uint32_t)MO_PROXY, o->slot, o->data) : NULL;
    return ma_ref_new(o->type, o->slot, o->gen);
}

mp_obj_t *mp_manager_queue_ref(mp_manager_t *m, mp_queue_t *queue)
{
    uint32_t id = m && queue ? ma_queue_id(m, queue) : 0;
    return id ? ma_ref_new(MO_QUEUE, 0, id) : NULL;
}

int mp_mobj_deref(struct mp_mobj *via, const mp_obj_t *ref, struct mp_mobj **o_p)
{
    if (!o_p)
        return MP_EINVAL;
    *o_p = NULL;
    ma_ref_t r;
    if (!referable(via))
        return MP_EINVAL;
    if (!ref || ma_ref_parse(ref, &r))
        return MP_ETYPE;
    if (mo_is_proxy(via))
        return mr_proxy(via, &r, o_p);
    if (r.kind == MO_QUEUE)
        return MP_ETYPE; /* a queue is no mp_mobj locally: mp_mobj_deref_queue */
    ma_arena_t *a = ma_of(via);
    int rc = ma_lock(a);
    if (rc)
        return rc;
    uint32_t off = a->objects[r.slot];
    struct mp_mobj *o = off ? ma_at(a, off) : NULL;
    if (o && o->gen == r.gen && o->type == r.kind)
        *o_p = o;
    else
        rc = MP_ENOENT;
    ma_unlock(a);
    return rc;
}

int mp_mobj_deref_queue(struct mp_mobj *via, const mp_obj_t *ref, mp_queue_t **queue_p)
{
    if (!queue_p)
        return MP_EINVAL;
    *queue_p = NULL;
    ma_ref_t r;
    if (!referable(via) || mo_is_proxy(via))
        return MP_EINVAL; /* a proxy's: mp_mobj_deref gives an mp_rqueue_t */
    if (!ref || ma_ref_parse(ref, &r) || r.kind != MO_QUEUE)
        return MP_ETYPE;
    *queue_p = ma_queue_of(ma_of(via), r.gen);
    return *queue_p ? 0 : MP_ENOENT;
}

/* ---- a container's item, followed ------------------------------------------------ */

int mp_mdict_get_ref(mp_mdict_t *d, const mp_obj_t *key, struct mp_mobj **o_p)
{
    mp_obj_t *v = NULL;
    int rc = o_p ? mp_mdict_get(d, key, NULL, &v) : MP_EINVAL;
    if (!rc)
        rc = mp_mobj_deref(d, v, o_p);
    mp_obj_destroy(&v);
    return rc;
}

int mp_mlist_get_ref(mp_mlist_t *l, int64_t index, struct mp_mobj **o_p)
{
    mp_obj_t *v = NULL;
    int rc = o_p ? mp_mlist_get(l, index, &v) : MP_EINVAL;
    if (!rc)
        rc = mp_mobj_deref(l, v, o_p);
    mp_obj_destroy(&v);
    return rc;
}

int mp_mdict_get_queue(mp_mdict_t *d, const mp_obj_t *key, mp_queue_t **queue_p)
{
    mp_obj_t *v = NULL;
    int rc = queue_p ? mp_mdict_get(d, key, NULL, &v) : MP_EINVAL;
    if (!rc)
        rc = mp_mobj_deref_queue(d, v, queue_p);
    mp_obj_destroy(&v);
    return rc;
}

int mp_mlist_get_queue(mp_mlist_t *l, int64_t index, mp_queue_t **queue_p)
{
    mp_obj_t *v = NULL;
    int rc = queue_p ? mp_mlist_get(l, index, &v) : MP_EINVAL;
    if (!rc)
        rc = mp_mobj_deref_queue(l, v, queue_p);
    mp_obj_destroy(&v);
    return rc;
}
