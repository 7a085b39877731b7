/*  manager_impl.h - the Manager's shared arena (docs/MANAGER.md sections 3
    and 4), shared by marena.c (lock, allocator, repair), mdict.c and
    mlist.c. Not installed.

    Everything in the arena is addressed by a 32-bit offset from its base;
    0 means "none". A block is an 8-byte header and a payload; the offsets
    stored in objects are payload offsets.
*/
#ifndef MP_MANAGER_IMPL_H_INCLUDED
#define MP_MANAGER_IMPL_H_INCLUDED

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "codec/buf.h"
#include "mp/manager.h"

#define MA_MAGIC 0x3152474d4e41504dull /* "MPANMGR1" */
#define MA_CLASSES 28                  /* blocks of 16 B << class: 16 B .. 2 GiB */
#define MA_MAX_OBJECTS 65535
#define MA_DEFAULT_CAPACITY (64u << 20)
#define MA_MAX_CAPACITY ((size_t)UINT32_MAX + 1 - (64u << 10))

enum { MB_FREE = 1, MB_USED = 2, MB_MARK = 0x100 };         /* block states */
enum { MO_DICT = 1, MO_LIST = 2, MO_NS = 3, MO_QUEUE = 4 }; /* object types */
#define MO_PROXY 0x100 /* a remote object's proxy (mremote.c), not in an arena */

static inline bool mo_is_proxy(const struct mp_mobj *o);

/* MPM/1 operations (mremote.c): one per public call; the list ones last. */
enum {
    MR_OPEN = 1,
    MR_D_SET,
    MR_D_GET,
    MR_D_GET_DFLT,
    MR_D_DEL,
    MR_D_CONTAINS,
    MR_D_LEN,
    MR_D_KEYS,
    MR_D_VALUES,
    MR_D_ITEMS,
    MR_D_UPDATE,
    MR_D_POP,
    MR_D_POP_DFLT,
    MR_D_SETDEFAULT,
    MR_D_CLEAR,
    MR_D_INCR,
    MR_D_INCRF,
    MR_D_CAS,
    MR_D_CAS_ABSENT,
    MR_Q_PUT, /* queues: slot is the named queue's number */
    MR_Q_GET,
    MR_Q_QSIZE,
    MR_L_FIRST,
    MR_L_APPEND = MR_L_FIRST,
    MR_L_EXTEND,
    MR_L_GET,
    MR_L_SET,
    MR_L_INSERT,
    MR_L_POP,
    MR_L_REMOVE,
    MR_L_INDEX,
    MR_L_COUNT,
    MR_L_LEN,
    MR_L_SLICE,
    MR_L_CLEAR,
    MR_L_APPEND_UNIQUE,
};

/* A call on a proxy: op with up to three msgpack arguments (NULL ends
   them); *result (may be NULL) and *extra (may be NULL) as the server's
   call returned them. The return value is that call's. */
int mr_call(struct mp_mobj *proxy, int op, const mp_obj_t *a0, const mp_obj_t *a1,
            const mp_obj_t *a2, mp_obj_t **result, int64_t *extra);

typedef struct {
    uint32_t size_class;
    uint32_t state;
} ma_block_t;

typedef struct {
    uint64_t magic;
    uint64_t capacity;
    pthread_mutex_t mutex; /* robust, process-shared: guards everything below */
    uint32_t heap_start, bump;
    uint32_t free_head[MA_CLASSES];
    uint64_t used;     /* bytes in used blocks (rebuilt by a repair) */
    uint32_t nobjects; /* live objects (rebuilt by a repair) */
    uint32_t slot_hint;
    uint32_t repairs;
    uint32_t directory; /* slot of the dict of named objects (name -> slot), 0: none yet */
    uint32_t objects[MA_MAX_OBJECTS + 1]; /* slot -> object block; slot 0 unused */
} ma_arena_t;

/* What mp_manager_new() returns: this process's view, plus the SyncManager
   primitives it created (msync.c), destroyed with it. */
typedef struct {
    int kind;
    void *object;
} ma_owned_t;

struct mp_manager {
    ma_arena_t *arena;
    size_t size; /* mapped bytes */
    pthread_mutex_t owned_mutex;
    ma_owned_t *owned;
    size_t nowned, owned_cap;
    struct ma_named_queue *queues; /* mp_manager_named_queue (this process's) */
    size_t nqueues;
};

/* Destroys the primitives the manager created, newest first (msync.c). */
void ma_destroy_owned(struct mp_manager *m);
/* The named queue number n (1-based), or NULL (msync.c). */
mp_queue_t *ma_queue_at(struct mp_manager *m, int64_t n);
/* The number of the queue called name, made when absent; 0 when it cannot
   be made. */
int64_t ma_queue_named(struct mp_manager *m, const char *name);

/* An object's block: what an mp_mdict_t * / mp_mlist_t * points to. */
struct mp_mobj {
    uint32_t type;
    uint32_t slot; /* in objects[] */
    uint32_t data; /* dict table / list vector block, 0 when empty */
    uint32_t self; /* this block's payload offset: the arena base is self bytes before */
};

/* A key or value: its msgpack bytes. */
typedef struct {
    uint32_t len;
    char bytes[];
} ma_blob_t;

static inline bool mo_is_proxy(const struct mp_mobj *o)
{
    return o && (o->type & MO_PROXY);
}

/* What calls an object accepts (a proxy's kind counts, too): a Namespace is
   a dict. */
static inline bool mo_is_dict(const struct mp_mobj *o)
{
    uint32_t t = o->type & ~(uint32_t)MO_PROXY;
    return t == MO_DICT || t == MO_NS;
}

static inline bool mo_is_list(const struct mp_mobj *o)
{
    return (o->type & ~(uint32_t)MO_PROXY) == MO_LIST;
}

static inline ma_arena_t *ma_of(const struct mp_mobj *o)
{
    return (ma_arena_t *)((char *)o - o->self);
}
static inline void *ma_at(const ma_arena_t *a, uint32_t off)
{
    return (char *)a + off;
}
static inline ma_blob_t *ma_blob(const ma_arena_t *a, uint32_t off)
{
    return (ma_blob_t *)ma_at(a, off);
}

/* Locks the arena. 0, or MP_EREPAIRED after a repair (the lock is then
   released again: the caller does not hold it). */
int ma_lock(ma_arena_t *a);
void ma_unlock(ma_arena_t *a);

/* Allocator (lock held): a payload of at least n bytes, or 0 when the arena
   is full. */
uint32_t ma_alloc(ma_arena_t *a, size_t n);
void ma_free(ma_arena_t *a, uint32_t off);
/* A new blob holding bytes; 0 when full. */
uint32_t ma_blob_new(ma_arena_t *a, const void *bytes, size_t len);
bool ma_blob_eq(const ma_arena_t *a, uint32_t off, const void *bytes, size_t len);
/* An mp_obj_t decoded from a blob (NULL when out of memory). */
int ma_blob_obj(const ma_arena_t *a, uint32_t off, mp_obj_t **o_p);

/* The repair's part for each object type: mark what the object reaches
   (ma_mark on every block), and rebuild derived state. */
void ma_mark(ma_arena_t *a, uint32_t off);
void mdict_mark(ma_arena_t *a, struct mp_mobj *o);
void mdict_rebuild(ma_arena_t *a, struct mp_mobj *o);
void mlist_mark(ma_arena_t *a, struct mp_mobj *o);
/* Frees the object's contents (lock held). */
void mdict_free_data(ma_arena_t *a, struct mp_mobj *o);
void mlist_free_data(ma_arena_t *a, struct mp_mobj *o);

/* The directory of named objects (lock held): the slot stored for a
   packed name, or 0; and storing one. */
uint32_t mdict_get_slot(ma_arena_t *a, struct mp_mobj *dir, const char *name);
int mdict_put_slot(ma_arena_t *a, struct mp_mobj *dir, const char *name, uint32_t slot);

/* Packs an mp_obj_t into b (which starts on the caller's stack). */
int ma_pack(const mp_obj_t *o, mp__buf_t *b);

/* A key or value packed for a call: its bytes on the caller's stack when
   small. Release p->buf afterwards. */
typedef struct {
    mp__buf_t buf;
    char stack[200];
} packed_t;

static inline int pack(packed_t *p, const mp_obj_t *o)
{
    mp__buf_init(&p->buf, p->stack, sizeof p->stack);
    return ma_pack(o, &p->buf);
}

#endif
