/*  proxy.h - calls on a remote object's proxy (proxy.c): what dict.c and
    list.c send when given a proxy instead of a local object. Not
    installed.
*/
#ifndef MP_MANAGER_PROXY_H_INCLUDED
#define MP_MANAGER_PROXY_H_INCLUDED

#include "manager/arena.h"
#include "manager/mpm.h"

/* A call on a proxy: op (MR_*) with up to three msgpack arguments (NULL ends
   them); *result (may be NULL) and *extra (may be NULL) as the server's
   call returned them. The return value is that call's. */
int mr_call(struct mp_mobj *proxy, int op, const mp_obj_t *a0, const mp_obj_t *a1,
            const mp_obj_t *a2, mp_obj_t **result, int64_t *extra);

/* op (MR_D_*) on n keys in one round trip per MR_BATCH_MAX (a BATCH):
   call i has the arguments a0[i] and, when a1 is not NULL, a1[i];
   results[i] (may be NULL: not wanted) its result (NULL for nil) and
   rcs[i] (may be NULL) its code. Returns 0, or the error that stopped the
   calls (a lost server, MP_EINVAL: not a dict's proxy). */
int mr_call_many(struct mp_mobj *proxy, int op, size_t n, const mp_obj_t *const *a0,
                 const mp_obj_t *const *a1, mp_obj_t **results, int *rcs);

/* The proxy, on via's connection, of the object ref refers to (handed
   out once per object, freed with the connection). */
int mr_proxy(struct mp_mobj *via, const ma_ref_t *ref, struct mp_mobj **o_p);

#endif
