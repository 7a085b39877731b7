/*  mp/manager.h - Manager: shared dict, list and Namespace objects.

    As Python's multiprocessing.Manager() (SyncManager), without the server
    round trip per call: the objects live in one shared-memory arena that
    every process forked after mp_manager_new() maps at the same address,
    and an operation is a robust lock, a few hundred nanoseconds of work and
    an unlock (docs/MANAGER.md). An mp_mdict_t * or mp_mlist_t * is passed
    to a child like any pointer.

    Keys and values are msgpack values (mp_obj_t: nil, bool, int, float,
    str, bin, arrays, maps, nested, and references to other managed objects:
    containers in containers, below), stored as their msgpack bytes. Two keys
    or values are equal when their bytes are: 1 and 1.0 differ, as do "a"
    and b"a". Every getter returns a new mp_obj_t the caller destroys.

    Beyond Python: atomic read-modify-write (mp_mdict_incr, _setdefault,
    _cas, _update_fn, mp_mlist_append_unique), so `d[k] += 1` from many
    processes is not a race.

    Errors: MP_ENOENT (no such key / value), MP_ERANGE (list index out of
    range), MP_ENOSPC (the arena is full: nothing was changed, the object
    stays usable), MP_ETYPE (incr on a value that is not a number),
    MP_EREPAIRED (a process died inside an operation on this manager; the
    objects were repaired and are consistent, each dead operation happened
    entirely or not at all; the call was NOT performed: retry it),
    MP_EINVAL (bad arguments), MP_ENOMEM (this process is out of memory).

    Thread-safety: every call is thread-safe and atomic with respect to all
    others on the same manager, in every process. Fork: shared with
    children forked after mp_manager_new(). Signals: not async-signal-safe.
*/
#ifndef MP_MANAGER_H_INCLUDED
#define MP_MANAGER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp/barrier.h"
#include "mp/condition.h"
#include "mp/event.h"
#include "mp/export.h"
#include "mp/lock.h"
#include "mp/obj.h"
#include "mp/queue.h"
#include "mp/semaphore.h"
#include "mp/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_manager mp_manager_t;
typedef struct mp_mobj mp_mdict_t;
typedef struct mp_mobj mp_mlist_t;
typedef struct mp_mobj mp_mns_t; /* Namespace: a dict with string keys */

typedef struct {
    size_t capacity; /* arena bytes; 0: 64 MiB; at most 4 GiB - 64 KiB */
} mp_manager_options_t;

/* ---- the manager ---------------------------------------------------------- */

MP_EXPORT int mp_manager_new(const mp_manager_options_t *options, mp_manager_t **manager_p);
/* Frees the objects and unmaps this process's view (children keep theirs
   until they exit or destroy it too). */
MP_EXPORT void mp_manager_destroy(mp_manager_t **manager_p);

typedef struct {
    size_t capacity;  /* arena bytes */
    size_t used;      /* bytes in live blocks */
    size_t reserved;  /* bytes ever carved from the arena (free blocks included) */
    size_t objects;   /* live dicts, lists, namespaces */
    unsigned repairs; /* recoveries after a process died inside an operation */
} mp_manager_stats_t;
MP_EXPORT int mp_manager_stats(mp_manager_t *manager, mp_manager_stats_t *stats);

/* New empty objects, owned by the manager. */
MP_EXPORT int mp_manager_dict(mp_manager_t *manager, mp_mdict_t **dict_p);
MP_EXPORT int mp_manager_list(mp_manager_t *manager, mp_mlist_t **list_p);
MP_EXPORT int mp_manager_namespace(mp_manager_t *manager, mp_mns_t **ns_p);
/* Frees one object and its contents, for every process; *object_p = NULL.
   Using it afterwards (in any process) is undefined. */
MP_EXPORT int mp_mobj_free(mp_manager_t *manager, struct mp_mobj **object_p);

/* ---- the SyncManager set -------------------------------------------------- */

/* libmp's shared-memory primitives (mp/lock.h, mp/queue.h, ...), owned by
   the manager: mp_manager_destroy() destroys them, newest first. Use them
   with their own calls (mp_lock_acquire, mp_queue_put, ...). NULL on bad
   arguments or out of memory. */
MP_EXPORT mp_lock_t *mp_manager_lock(mp_manager_t *manager);
MP_EXPORT mp_lock_t *mp_manager_rlock(mp_manager_t *manager);
MP_EXPORT mp_semaphore_t *mp_manager_semaphore(mp_manager_t *manager, int value);
MP_EXPORT mp_semaphore_t *mp_manager_bounded_semaphore(mp_manager_t *manager, int value);
MP_EXPORT mp_condition_t *mp_manager_condition(mp_manager_t *manager, mp_lock_t *lock);
MP_EXPORT mp_event_t *mp_manager_event(mp_manager_t *manager);
MP_EXPORT mp_barrier_t *mp_manager_barrier(mp_manager_t *manager, int parties,
                                           const mp_barrier_opts_t *opts);
MP_EXPORT mp_value_t *mp_manager_value(mp_manager_t *manager, char typecode, const void *initial);
MP_EXPORT mp_array_t *mp_manager_array(mp_manager_t *manager, char typecode, size_t length,
                                       const void *initial);
MP_EXPORT mp_queue_t *mp_manager_queue(mp_manager_t *manager, const mp_queue_opts_t *opts);
MP_EXPORT mp_queue_t *mp_manager_joinable_queue(mp_manager_t *manager, const mp_queue_opts_t *opts);

/* ---- named objects and remote managers (docs/MANAGER.md section 6) -------- */

/* The object called name, created when absent: how a program and its
   remote clients meet. */
MP_EXPORT int mp_manager_named_dict(mp_manager_t *manager, const char *name, mp_mdict_t **dict_p);
MP_EXPORT int mp_manager_named_list(mp_manager_t *manager, const char *name, mp_mlist_t **list_p);
MP_EXPORT int mp_manager_named_namespace(mp_manager_t *manager, const char *name, mp_mns_t **ns_p);

typedef struct mp_manager_server mp_manager_server_t;
typedef struct mp_remote mp_remote_t;

/* Serves the manager's objects on endpoint (tcp://HOST:PORT, port 0 or *
   for a free one; ipc://PATH: over ZeroMQ; mpm+tcp://HOST:PORT,
   mpm+ipc://PATH: over a plain socket, 8x faster a call, no CURVE:
   docs/MANAGER.md 6.3) from a thread of this process, to clients
   that know authkey (keylen bytes; the key never crosses the wire).
   Fork rule (mp/process.h): start serving after forking (a Pool, Process
   objects with fork), not before. An endpoint other hosts can reach
   needs CURVE: use mp_manager_serve_with (MP_EINSECURE here unless
   MP_INSECURE=1). */
MP_EXPORT int mp_manager_serve(mp_manager_t *manager, const char *endpoint, const void *authkey,
                               size_t keylen, mp_manager_server_t **server_p);

/* The server's options (docs/MANAGER.md section 6.2). With curve_key and
   allow_dir, MPM/1 runs over CurveZMQ: encrypted, and only the public keys
   in allow_dir/managers/ are admitted (allow_dir is the process's one
   allow-list root, shared with a CURVE broker in the same process: its
   workers/ and clients/ keys are not admitted here). The authkey
   challenge still runs when keylen > 0. */
typedef struct {
    const char *endpoint;
    const void *authkey;
    size_t keylen;
    const char *curve_key; /* the server's NAME.key_secret (mp-client keygen NAME) */
    const char *allow_dir; /* admits allow_dir/managers/ NAME.key files, reread on change */
    bool insecure;         /* allow an endpoint off loopback without CURVE (warned) */
    int spin_us;           /* mpm+tcp/mpm+ipc: after a message, poll this long before sleeping;
                              0: 50, negative: never */
} mp_manager_serve_options_t;

/* As mp_manager_serve; also MP_EINSECURE (off loopback without CURVE, not
   insecure), MP_ENOENT / MP_EINVAL (a key file or the directory; logged). */
MP_EXPORT int mp_manager_serve_with(mp_manager_t *manager,
                                    const mp_manager_serve_options_t *options,
                                    mp_manager_server_t **server_p);
/* The bound endpoint (with the port chosen). */
MP_EXPORT const char *mp_manager_server_endpoint(const mp_manager_server_t *server);
MP_EXPORT void mp_manager_server_stop(mp_manager_server_t **server_p);
/* Calls the server has run, and messages it refused (a CURVE key not in
   allow_dir/managers/), since it started. */
MP_EXPORT int mp_manager_server_stats(const mp_manager_server_t *server, uint64_t *calls,
                                      uint64_t *refused);

typedef struct {
    int timeout_ms;        /* per call; 0: 5000. A call not answered in time is MP_EMANAGERLOST */
    const char *curve_key; /* this client's NAME.key_secret: CURVE on */
    const char *curve_server_key; /* the server's public key: 40 Z85 characters or its NAME.key */
    int spin_us;                  /* mpm+tcp/mpm+ipc: wait for a reply this long without sleeping;
                                     0: 50, negative: never */
} mp_remote_options_t;

/* Connects and authenticates: 0, MP_EAUTH (wrong authkey, or a CURVE
   server that refused this client's key: refused before any operation),
   MP_EMANAGERLOST (no answer within the timeout: also what a wrong
   curve_server_key or a CURVE server met without keys look like). */
MP_EXPORT int mp_manager_connect(const char *endpoint, const void *authkey, size_t keylen,
                                 const mp_remote_options_t *options, mp_remote_t **remote_p);
/* Closes the connection and frees every proxy it handed out. */
MP_EXPORT void mp_remote_disconnect(mp_remote_t **remote_p);
/* Proxies of the server's named objects (created when absent), used with
   the same mp_mdict_* / mp_mlist_* / mp_mns_* calls; each call is one round
   trip. mp_mdict_update_fn is local only (MP_EINVAL on a proxy). */
MP_EXPORT int mp_remote_dict(mp_remote_t *remote, const char *name, mp_mdict_t **dict_p);
MP_EXPORT int mp_remote_list(mp_remote_t *remote, const char *name, mp_mlist_t **list_p);
MP_EXPORT int mp_remote_namespace(mp_remote_t *remote, const char *name, mp_mns_t **ns_p);

/* Queues by name (Python's QueueManager): the serving process makes them
   with mp_manager_named_queue (an mp_queue_t it and its fork children use
   directly; names are this process's), remote clients reach them through
   mp_remote_queue. A remote put/get waits up to timeout_ms (< 0: forever)
   by retrying (1 ms apart at first, at most 20 ms), never blocking the
   server: MP_EFULL / MP_EEMPTY when the time is up. */
typedef struct mp_mobj mp_rqueue_t;
MP_EXPORT int mp_manager_named_queue(mp_manager_t *manager, const char *name, mp_queue_t **queue_p);
MP_EXPORT int mp_remote_queue(mp_remote_t *remote, const char *name, mp_rqueue_t **queue_p);
MP_EXPORT int mp_rqueue_put(mp_rqueue_t *queue, const mp_obj_t *item, int timeout_ms);
MP_EXPORT int mp_rqueue_get(mp_rqueue_t *queue, mp_obj_t **item_p, int timeout_ms);
MP_EXPORT int mp_rqueue_qsize(mp_rqueue_t *queue, size_t *size_p);

/* ---- dict ----------------------------------------------------------------- */

MP_EXPORT int mp_mdict_set(mp_mdict_t *dict, const mp_obj_t *key, const mp_obj_t *value);
/* *value_p = dict[key]; when absent: a copy of dflt, or MP_ENOENT if dflt
   is NULL. */
MP_EXPORT int mp_mdict_get(mp_mdict_t *dict, const mp_obj_t *key, const mp_obj_t *dflt,
                           mp_obj_t **value_p);
MP_EXPORT int mp_mdict_del(mp_mdict_t *dict, const mp_obj_t *key); /* MP_ENOENT */
/* Many gets, or sets, at once: on a remote dict one round trip carries up
   to 4096 of them (MANAGER.md 6, BATCH; fewer when their values would be
   over the 64 MiB message limit), so a loop of calls costs a fraction of
   one call each; on a local dict they are the loop. Not a transaction:
   another client's call may run between two of them. No key or value may
   be NULL (MP_EINVAL). get_many: values[i] (caller owns, also when an
   error is returned) = dict[keys[i]], or NULL with rcs[i] = MP_ENOENT when
   absent; rcs may be NULL. Returns 0 once every key was looked up, else
   the first error (a lost server, MP_E2BIG: one value alone over the
   limit), rcs[i] holding each key's. set_many: each dict[keys[i]] =
   values[i], in order; 0 or the first error (remote: a batch's sets all
   run, later batches are not sent). */
MP_EXPORT int mp_mdict_get_many(mp_mdict_t *dict, const mp_obj_t *const *keys, size_t n,
                                mp_obj_t **values, int *rcs);
MP_EXPORT int mp_mdict_set_many(mp_mdict_t *dict, const mp_obj_t *const *keys,
                                const mp_obj_t *const *values, size_t n);
/* 1 present, 0 absent, or an error < 0. */
MP_EXPORT int mp_mdict_contains(mp_mdict_t *dict, const mp_obj_t *key);
MP_EXPORT int mp_mdict_len(mp_mdict_t *dict, size_t *len_p);
/* Snapshots, in insertion order: an array of keys, an array of values, a
   map of items. Taken under the lock: iterating them never breaks, whatever
   other processes write meanwhile. */
MP_EXPORT int mp_mdict_keys(mp_mdict_t *dict, mp_obj_t **array_p);
MP_EXPORT int mp_mdict_values(mp_mdict_t *dict, mp_obj_t **array_p);
MP_EXPORT int mp_mdict_items(mp_mdict_t *dict, mp_obj_t **map_p);
/* dict.update(map): every pair, atomically (all or, on MP_ENOSPC, none). */
MP_EXPORT int mp_mdict_update(mp_mdict_t *dict, const mp_obj_t *map);
/* dict.pop(key[, dflt]). */
MP_EXPORT int mp_mdict_pop(mp_mdict_t *dict, const mp_obj_t *key, const mp_obj_t *dflt,
                           mp_obj_t **value_p);
/* Inserts key: value when absent; *current_p (may be NULL) gets what is
   there afterwards. */
MP_EXPORT int mp_mdict_setdefault(mp_mdict_t *dict, const mp_obj_t *key, const mp_obj_t *value,
                                  mp_obj_t **current_p);
MP_EXPORT int mp_mdict_clear(mp_mdict_t *dict);

/* dict[key] = dict.get(key, 0) + delta, atomically; *result_p (may be
   NULL) gets the new value. MP_ETYPE when the value is not an int. */
MP_EXPORT int mp_mdict_incr(mp_mdict_t *dict, const mp_obj_t *key, int64_t delta,
                            int64_t *result_p);
/* The same for doubles (an int value is promoted). */
MP_EXPORT int mp_mdict_incr_float(mp_mdict_t *dict, const mp_obj_t *key, double delta,
                                  double *result_p);
/* Compare-and-set: dict[key] = value only if dict[key] equals expected
   (expected NULL: only if key is absent). *swapped_p tells which. */
MP_EXPORT int mp_mdict_cas(mp_mdict_t *dict, const mp_obj_t *key, const mp_obj_t *expected,
                           const mp_obj_t *value, bool *swapped_p);
/* Any read-modify-write: fn(current or NULL, &next, arg) runs under the
   lock and returns 0 with *next set (a new object the manager takes; NULL
   deletes the key) or an error code, which is returned and changes nothing.
   fn must be quick and must not call into this manager. */
typedef int (*mp_mdict_fn)(const mp_obj_t *current, mp_obj_t **next, void *arg);
MP_EXPORT int mp_mdict_update_fn(mp_mdict_t *dict, const mp_obj_t *key, mp_mdict_fn fn, void *arg);

/* ---- list ----------------------------------------------------------------- */

MP_EXPORT int mp_mlist_append(mp_mlist_t *list, const mp_obj_t *value);
/* Appends every item of an array, atomically. */
MP_EXPORT int mp_mlist_extend(mp_mlist_t *list, const mp_obj_t *array);
/* Negative indexes count from the end, as in Python; MP_ERANGE outside. */
MP_EXPORT int mp_mlist_get(mp_mlist_t *list, int64_t index, mp_obj_t **value_p);
MP_EXPORT int mp_mlist_set(mp_mlist_t *list, int64_t index, const mp_obj_t *value);
/* list.insert(index, value): index clamped to [0, len] as in Python. */
MP_EXPORT int mp_mlist_insert(mp_mlist_t *list, int64_t index, const mp_obj_t *value);
/* list.pop(index) (-1: the last); MP_ERANGE on an empty list. */
MP_EXPORT int mp_mlist_pop(mp_mlist_t *list, int64_t index, mp_obj_t **value_p);
/* Removes the first item equal to value; MP_ENOENT when there is none. */
MP_EXPORT int mp_mlist_remove(mp_mlist_t *list, const mp_obj_t *value);
MP_EXPORT int mp_mlist_index(mp_mlist_t *list, const mp_obj_t *value, size_t *index_p);
MP_EXPORT int mp_mlist_count(mp_mlist_t *list, const mp_obj_t *value, size_t *count_p);
MP_EXPORT int mp_mlist_len(mp_mlist_t *list, size_t *len_p);
/* list[start:stop] as an array (Python's clamping; negative from the end). */
MP_EXPORT int mp_mlist_slice(mp_mlist_t *list, int64_t start, int64_t stop, mp_obj_t **array_p);
MP_EXPORT int mp_mlist_copy(mp_mlist_t *list, mp_obj_t **array_p);
MP_EXPORT int mp_mlist_clear(mp_mlist_t *list);
/* Appends value unless an equal item is present; *appended_p tells which. */
MP_EXPORT int mp_mlist_append_unique(mp_mlist_t *list, const mp_obj_t *value, bool *appended_p);

/* ---- containers in containers (docs/MANAGER.md section 7) ----------------- */

/* Python's nested proxies: d['supplies']['water'] = 7 where d['supplies'] is
   another managed dict. A reference is a value (an mp_obj_t of type
   MP_OBJ_EXT) that refers to a dict, list, Namespace or queue of the
   manager; store it with any call that stores values (set, append,
   extend, update, ...). It does not own what it refers to: the object
   lives until mp_mobj_free() or mp_manager_destroy(), and a reference to a
   freed object reads as MP_ENOENT, never as another object. A repair
   (MP_EREPAIRED) keeps references as it keeps any value.

   A reference to object (a local dict/list/Namespace, or a proxy of a
   named one). NULL on bad arguments or out of memory. */
MP_EXPORT mp_obj_t *mp_mobj_ref(struct mp_mobj *object);
/* A reference to a queue this manager made (mp_manager_queue,
   _joinable_queue, _named_queue); NULL for any other queue. */
MP_EXPORT mp_obj_t *mp_manager_queue_ref(mp_manager_t *manager, mp_queue_t *queue);
/* Follows ref as reached through via (an object of the same manager, or a
   proxy: then *object_p is a proxy on the same connection, and a queue's
   reference gives an mp_rqueue_t). MP_ETYPE (ref is not a reference, or
   locally a queue's: use mp_mobj_deref_queue), MP_ENOENT (the object was
   freed), MP_EINVAL. */
MP_EXPORT int mp_mobj_deref(struct mp_mobj *via, const mp_obj_t *ref, struct mp_mobj **object_p);
/* Follows a queue's reference locally: this process's handle, which
   exists in the process that made the queue and in children it forked
   afterwards (MP_ENOENT elsewhere). MP_ETYPE when ref is not a queue's. */
MP_EXPORT int mp_mobj_deref_queue(struct mp_mobj *via, const mp_obj_t *ref, mp_queue_t **queue_p);
/* dict[key] / list[index] followed: mp_mdict_get + mp_mobj_deref. */
MP_EXPORT int mp_mdict_get_ref(mp_mdict_t *dict, const mp_obj_t *key, struct mp_mobj **object_p);
MP_EXPORT int mp_mlist_get_ref(mp_mlist_t *list, int64_t index, struct mp_mobj **object_p);
/* dict[key] / list[index] as a queue: mp_mdict_get + mp_mobj_deref_queue. */
MP_EXPORT int mp_mdict_get_queue(mp_mdict_t *dict, const mp_obj_t *key, mp_queue_t **queue_p);
MP_EXPORT int mp_mlist_get_queue(mp_mlist_t *list, int64_t index, mp_queue_t **queue_p);

/* ---- Namespace ------------------------------------------------------------ */

MP_EXPORT int mp_mns_set(mp_mns_t *ns, const char *name, const mp_obj_t *value);
/* MP_ENOENT when the attribute does not exist. */
MP_EXPORT int mp_mns_get(mp_mns_t *ns, const char *name, mp_obj_t **value_p);
MP_EXPORT int mp_mns_del(mp_mns_t *ns, const char *name);

#ifdef __cplusplus
}
#endif

#endif
