/*  arena.h - the Manager's shared arena (docs/MANAGER.md sections 3 and 4):
    its layout, the object table, blobs and the block allocator (arena.c).
    The bottom of the manager's files: everything else includes it. Not
    installed.

    Everything in the arena is addressed by a 32-bit offset from its base;
    0 means "none". A block is an 8-byte header and a payload; the offsets
    stored in objects are payload offsets.

    The other internal headers, bottom up:
      table.h, vector.h  a dict's table and a list's vector (table.c, vector.c)
      repair.h           the arena's lock, which repairs (repair.c)
      mpm.h              MPM/1 framing and operation codes (mpm.c)
      proxy.h            calls on a remote object's proxy (proxy.c)
      owned.h            the manager and what it owns (owned.c, manager.c)
*/
#ifndef MP_MANAGER_ARENA_H_INCLUDED
#define MP_MANAGER_ARENA_H_INCLUDED

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
#define MO_PROXY 0x100 /* a remote object's proxy (proxy.c), not in an arena */

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
    uint32_t next_gen;  /* the last generation handed out (atomic; random start) */
    uint32_t objects[MA_MAX_OBJECTS + 1]; /* slot -> object block; slot 0 unused */
} ma_arena_t;

/* An object's block: what an mp_mdict_t * / mp_mlist_t * points to. */
struct mp_mobj {
    uint32_t type;
    uint32_t slot; /* in objects[] */
    uint32_t data; /* dict table / list vector block, 0 when empty (a proxy: gen, below) */
    uint32_t self; /* this block's payload offset: the arena base is self bytes before */
    uint32_t gen;  /* told apart from an earlier object in the same slot (never 0) */
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

/* A generation for a new object or queue: unique in this arena for 2^32
   of them, and unlikely in another (each arena starts at random). */
static inline uint32_t ma_next_gen(ma_arena_t *a)
{
    uint32_t g;
    while ((g = __atomic_add_fetch(&a->next_gen, 1, __ATOMIC_RELAXED)) == 0)
        ;
    return g;
}

/* A reference (docs/MANAGER.md section 7): the msgpack extension value
   MA_REF_EXT holding kind (MO_*), slot and gen, big-endian, 9 bytes. A
   queue's has slot 0 and the queue's id as gen. */
#define MA_REF_EXT 0x4d /* 'M' */
typedef struct {
    uint32_t kind, slot, gen;
} ma_ref_t;
mp_obj_t *ma_ref_new(uint32_t kind, uint32_t slot, uint32_t gen);
/* 0, or MP_ETYPE when o is not a well-formed reference. */
int ma_ref_parse(const mp_obj_t *o, ma_ref_t *r);

/* Allocator (lock held): a payload of at least n bytes, or 0 when the arena
   is full. */
uint32_t ma_alloc(ma_arena_t *a, size_t n);
void ma_free(ma_arena_t *a, uint32_t off);
/* A new blob holding bytes; 0 when full. */
uint32_t ma_blob_new(ma_arena_t *a, const void *bytes, size_t len);
bool ma_blob_eq(const ma_arena_t *a, uint32_t off, const void *bytes, size_t len);
/* An mp_obj_t decoded from a blob (NULL when out of memory). */
int ma_blob_obj(const ma_arena_t *a, uint32_t off, mp_obj_t **o_p);

/* The repair's heap primitives (repair.c drives them): clear every block's
   mark; mark the block of a payload offset (ignored when it is not in the
   heap); then sweep, which rebuilds the free lists and the used count from
   the marks: every block not marked goes back on its free list. */
void ma_heap_unmark(ma_arena_t *a);
void ma_mark(ma_arena_t *a, uint32_t off);
void ma_heap_sweep(ma_arena_t *a);

/* Packs an mp_obj_t into b (which starts on the caller's stack). */
int ma_pack(const mp_obj_t *o, mp__buf_t *b);

/* A key or value packed for a call: its bytes on the caller's stack when
   small. Release p->buf afterwards. */
typedef struct {
    mp__buf_t buf;
    char stack[200];
} packed_t;

static inline int ma_packed(packed_t *p, const mp_obj_t *o)
{
    mp__buf_init(&p->buf, p->stack, sizeof p->stack);
    return ma_pack(o, &p->buf);
}

#endif
