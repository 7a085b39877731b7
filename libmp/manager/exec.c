/*  exec.c - what a remote manager's server runs for a CALL (docs/MANAGER.md
    section 6): the operation an MPM/1 body names, through the public
    local API (dict.c, list.c; manager.c's named objects, owned.c's named
    queues) on the serving process's view of the arena, so remote and local
    callers share one lock and one set of rules. It never blocks on a
    queue: it tries once and the client tries again. The transports that
    carry the bodies are serve.c's.
*/
#include <stdlib.h>
#include <string.h>

#include "manager/exec.h"
#include "manager/owned.h"
#include "mp/error.h"

/* The object a CALL's address names (slot | gen << 16; gen 0: not
   checked), if it exists and has a type the op accepts: else MP_EINVAL, or
   MP_ENOENT when the object a reference reached is gone. */
static int object_at(mp_manager_t *m, int64_t address, bool list, struct mp_mobj **o_p)
{
    ma_arena_t *a = m->arena;
    int64_t slot = address & 0xffff, gen = address >> 16;
    if (address < 1 || slot < 1 || slot > MA_MAX_OBJECTS || gen > UINT32_MAX)
        return MP_EINVAL;
    uint32_t off = __atomic_load_n(&a->objects[slot], __ATOMIC_ACQUIRE);
    struct mp_mobj *o = off ? ma_at(a, off) : NULL;
    if (!o || (gen && o->gen != gen))
        return gen ? MP_ENOENT : MP_EINVAL;
    if ((o->type == MO_LIST) != list)
        return MP_EINVAL;
    *o_p = o;
    return 0;
}

/* ---- calls ------------------------------------------------------------------------- */

/* A CALL body: [id, op, slot, args...]. */
typedef struct {
    int64_t op, slot;
    mp_obj_t *a0, *a1, *a2;
    int64_t i0, i1; /* a0, a1 as integers (-1: not one) */
} request_t;

/* [id, OPEN, kind, name]: the named object's address (slot | gen << 16),
   or the named queue's number, in *extra. */
static int open_named(mp_manager_t *m, const request_t *q, int64_t *extra)
{
    const char *name = q->a1 && mp_obj_type(q->a1) == MP_OBJ_STR ? mp_obj_str(q->a1, NULL) : NULL;
    struct mp_mobj *o = NULL;
    int rc = MP_EINVAL;
    if (name && q->slot == MO_DICT)
        rc = mp_manager_named_dict(m, name, &o);
    else if (name && q->slot == MO_LIST)
        rc = mp_manager_named_list(m, name, &o);
    else if (name && q->slot == MO_NS)
        rc = mp_manager_named_namespace(m, name, &o);
    if (name && q->slot == MO_QUEUE) {
        *extra = ma_queue_named(m, name);
        return *extra ? 0 : MP_ENOMEM;
    }
    *extra = rc ? 0 : (int64_t)o->slot | (int64_t)o->gen << 16;
    return rc;
}

/* A queue op: never blocks the server, the client waits and tries again. */
static int exec_queue(mp_manager_t *m, const request_t *q, mp_obj_t **res, int64_t *extra)
{
    /* a named queue's number, or minus the id a reference gave */
    mp_queue_t *queue = q->slot > 0 ? ma_queue_at(m, q->slot)
                        : q->slot < 0 && q->slot >= -(int64_t)UINT32_MAX
                            ? ma_queue_by_id(m, (uint32_t)-q->slot)
                            : NULL;
    int rc = !queue              ? MP_EINVAL
             : q->op == MR_Q_PUT ? mp_queue_put(queue, q->a0, 0)
             : q->op == MR_Q_GET ? mp_queue_get(queue, res, 0)
                                 : 0;
    if (queue && q->op == MR_Q_QSIZE)
        *extra = (int64_t)mp_queue_qsize(queue);
    return rc;
}

static int exec_dict(struct mp_mobj *o, const request_t *q, mp_obj_t **res, int64_t *extra)
{
    mp_obj_t *a0 = q->a0, *a1 = q->a1, *a2 = q->a2;
    int64_t i1 = q->i1;
    size_t n = 0;
    bool flag = false;
    int rc = MP_ENOENT;
    switch (q->op) {
    case MR_D_SET:
        rc = mp_mdict_set(o, a0, a1);
        break;
    case MR_D_GET:
        rc = mp_mdict_get(o, a0, NULL, res);
        break;
    case MR_D_GET_DFLT:
        rc = mp_mdict_get(o, a0, a1, res);
        break;
    case MR_D_DEL:
        rc = mp_mdict_del(o, a0);
        break;
    case MR_D_CONTAINS:
        rc = mp_mdict_contains(o, a0);
        break;
    case MR_D_LEN:
        rc = mp_mdict_len(o, &n);
        *extra = (int64_t)n;
        break;
    case MR_D_KEYS:
        rc = mp_mdict_keys(o, res);
        break;
    case MR_D_VALUES:
        rc = mp_mdict_values(o, res);
        break;
    case MR_D_ITEMS:
        rc = mp_mdict_items(o, res);
        break;
    case MR_D_UPDATE:
        rc = mp_mdict_update(o, a0);
        break;
    case MR_D_POP:
        rc = mp_mdict_pop(o, a0, NULL, res);
        break;
    case MR_D_POP_DFLT:
        rc = mp_mdict_pop(o, a0, a1, res);
        break;
    case MR_D_SETDEFAULT:
        rc = mp_mdict_setdefault(o, a0, a1, res);
        break;
    case MR_D_CLEAR:
        rc = mp_mdict_clear(o);
        break;
    case MR_D_INCR:
        rc = mp_mdict_incr(o, a0, i1, extra);
        break;
    case MR_D_INCRF: {
        double r = 0;
        rc = mp_mdict_incr_float(o, a0, a1 ? mp_obj_float(a1) : 0, &r);
        *res = rc ? NULL : mp_obj_new_float(r);
        break;
    }
    case MR_D_CAS:
        rc = mp_mdict_cas(o, a0, a1, a2, &flag);
        *extra = flag;
        break;
    case MR_D_CAS_ABSENT:
        rc = mp_mdict_cas(o, a0, NULL, a1, &flag);
        *extra = flag;
        break;
    default:
        rc = MP_EINVAL;
    }
    return rc;
}

static int exec_list(struct mp_mobj *o, const request_t *q, mp_obj_t **res, int64_t *extra)
{
    mp_obj_t *a0 = q->a0, *a1 = q->a1;
    int64_t i0 = q->i0, i1 = q->i1;
    size_t n = 0;
    bool flag = false;
    int rc = MP_ENOENT;
    switch (q->op) {
    case MR_L_APPEND:
        rc = mp_mlist_append(o, a0);
        break;
    case MR_L_EXTEND:
        rc = mp_mlist_extend(o, a0);
        break;
    case MR_L_GET:
        rc = mp_mlist_get(o, i0, res);
        break;
    case MR_L_SET:
        rc = mp_mlist_set(o, i0, a1);
        break;
    case MR_L_INSERT:
        rc = mp_mlist_insert(o, i0, a1);
        break;
    case MR_L_POP:
        rc = mp_mlist_pop(o, i0, res);
        break;
    case MR_L_REMOVE:
        rc = mp_mlist_remove(o, a0);
        break;
    case MR_L_INDEX:
        rc = mp_mlist_index(o, a0, &n);
        *extra = (int64_t)n;
        break;
    case MR_L_COUNT:
        rc = mp_mlist_count(o, a0, &n);
        *extra = (int64_t)n;
        break;
    case MR_L_LEN:
        rc = mp_mlist_len(o, &n);
        *extra = (int64_t)n;
        break;
    case MR_L_SLICE:
        rc = mp_mlist_slice(o, i0, i1, res);
        break;
    case MR_L_CLEAR:
        rc = mp_mlist_clear(o);
        break;
    case MR_L_APPEND_UNIQUE:
        rc = mp_mlist_append_unique(o, a0, &flag);
        *extra = flag;
        break;
    default:
        rc = MP_EINVAL;
    }
    return rc;
}

/* What a BATCH may carry: a dict call on one key whose reply is small or a
   value read (a reply too large is refused whole, MP_E2BIG: nothing may
   have been taken out by then, so no pop and no queue call). */
static bool batchable(int64_t op)
{
    switch (op) {
    case MR_D_SET:
    case MR_D_GET:
    case MR_D_GET_DFLT:
    case MR_D_DEL:
    case MR_D_CONTAINS:
    case MR_D_SETDEFAULT:
    case MR_D_INCR:
    case MR_D_INCRF:
    case MR_D_CAS:
    case MR_D_CAS_ABSENT:
        return true;
    default:
        return false;
    }
}

/* BATCH: each sub-call [0, op, address, args...] run in order as a CALL of
   its own (no BATCH in a BATCH); *res the array of their [rc, result,
   extra], *extra their count. */
static int exec_batch(mp_manager_t *m, const mp_obj_t *subs, mp_obj_t **res, int64_t *extra)
{
    size_t n = subs && mp_obj_type(subs) == MP_OBJ_ARRAY ? mp_obj_len(subs) : 0;
    if (!n || n > MR_BATCH_MAX)
        return MP_EINVAL;
    mp_obj_t *out = mp_obj_new_array();
    for (size_t i = 0; out && i < n; i++) {
        const mp_obj_t *b = mp_obj_array_at(subs, i);
        mp_obj_t *r = NULL, *one = mp_obj_new_array();
        int64_t x = 0;
        int rc = b && mp_obj_type(b) == MP_OBJ_ARRAY && batchable(mpm_arg_int(b, 1))
                     ? mpm_execute(m, b, &r, &x)
                     : MP_EINVAL;
        /* each add takes its item, also when it fails: nothing leaks */
        int bad = mp_obj_array_add(one, mp_obj_new_int(rc)) != 0;
        bad |= mp_obj_array_add(one, r ? r : mp_obj_new_nil()) != 0;
        bad |= mp_obj_array_add(one, mp_obj_new_int(x)) != 0;
        bad |= mp_obj_array_add(out, one) != 0;
        if (bad) {
            mp_obj_destroy(&out); /* out of memory: the whole batch fails */
            return MP_ENOMEM;
        }
    }
    if (!out)
        return MP_ENOMEM;
    *res = out;
    *extra = (int64_t)n;
    return 0;
}

/* Runs one CALL body [id, op, slot, args...]: its rc; *res and *extra the
   result and the extra integer the REPLY carries. */
int mpm_execute(mp_manager_t *m, const mp_obj_t *b, mp_obj_t **res, int64_t *extra)
{
    request_t q = {.op = mpm_arg_int(b, 1),
                   .slot = mpm_arg_int(b, 2),
                   .a0 = mpm_arg(b, 3),
                   .a1 = mpm_arg(b, 4),
                   .a2 = mpm_arg(b, 5),
                   .i0 = mpm_arg_int(b, 3),
                   .i1 = mpm_arg_int(b, 4)};
    *res = NULL;
    *extra = 0;
    if (q.op == MR_BATCH)
        return exec_batch(m, q.a0, res, extra);
    if (q.op == MR_OPEN)
        return open_named(m, &q, extra);
    if (q.op == MR_Q_PUT || q.op == MR_Q_GET || q.op == MR_Q_QSIZE)
        return exec_queue(m, &q, res, extra);
    bool list = q.op >= MR_L_FIRST;
    struct mp_mobj *o = NULL;
    int rc = object_at(m, q.slot, list, &o);
    if (rc)
        return rc;
    return list ? exec_list(o, &q, res, extra) : exec_dict(o, &q, res, extra);
}
