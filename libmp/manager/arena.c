/*  marena.c - the Manager's arena: one shared mapping, one robust lock, a
    block allocator, and the repair that runs when a process died holding
    the lock (docs/MANAGER.md sections 3 and 4).

    Allocator: a buddy system. Power-of-two size classes, each block aligned
    to its size from the heap's start, a doubly linked free list per class;
    a request takes a free block of its class, else splits the smallest
    larger free block, else carves a new block at the bump pointer; a freed
    block merges with its buddy while that one is free.

    Crash safety: every mutation in mdict.c / mlist.c becomes visible with
    one aligned word store, after its new blocks are complete, and frees the
    old blocks only afterwards. So a process killed in the middle leaves the
    objects either before or after its operation, plus unreachable blocks
    and stale derived data (free lists, counts, dict indexes). The repair
    rebuilds all of those from what the object table reaches: mark, then
    sweep the heap block by block. A block split or carved is written so
    that the heap stays walkable at every instant (a split writes the upper
    half's header before shrinking the lower one; a merge is one header
    store; a carve writes the header before moving the bump pointer).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "manager/manager_impl.h"
#include "mp/error.h"

static inline uint32_t block_size(uint32_t size_class)
{
    return 16u << size_class;
}

static inline ma_block_t *block_at(ma_arena_t *a, uint32_t block)
{
    return (ma_block_t *)ma_at(a, block);
}

/* ---- lock ------------------------------------------------------------------- */

static void repair(ma_arena_t *a);

int ma_lock(ma_arena_t *a)
{
    int rc = mp__mutex_lock(&a->mutex, NULL);
    if (rc == MP_EOWNERDEAD) {
        /* the mutex is consistent again; if this process dies while
           repairing, the next one starts over (the repair is idempotent) */
        repair(a);
        a->repairs++;
        mp__mutex_unlock(&a->mutex);
        return MP_EREPAIRED;
    }
    return rc;
}

void ma_unlock(ma_arena_t *a)
{
    mp__mutex_unlock(&a->mutex);
}

/* ---- allocator ---------------------------------------------------------------- */

static int class_for(size_t n)
{
    size_t need = n + sizeof(ma_block_t);
    for (int c = 0; c < MA_CLASSES; c++)
        if (block_size((uint32_t)c) >= need)
            return c;
    return -1;
}

/* Free lists are doubly linked through the payload (next, prev), so that a
   buddy can be taken off its list when it merges. */
static inline uint32_t *link(ma_arena_t *a, uint32_t block)
{
    return (uint32_t *)(block_at(a, block) + 1);
}

static void push_free(ma_arena_t *a, uint32_t block, uint32_t size_class)
{
    ma_block_t *b = block_at(a, block);
    b->size_class = size_class;
    b->state = MB_FREE;
    uint32_t head = a->free_head[size_class];
    link(a, block)[0] = head;
    link(a, block)[1] = 0;
    if (head)
        link(a, head)[1] = block;
    a->free_head[size_class] = block;
}

static void unlink_free(ma_arena_t *a, uint32_t block, uint32_t size_class)
{
    uint32_t next = link(a, block)[0], prev = link(a, block)[1];
    if (prev)
        link(a, prev)[0] = next;
    else
        a->free_head[size_class] = next;
    if (next)
        link(a, next)[1] = prev;
}

/* Puts a block on its free list, merged with its buddy (the block it was
   split from or carved next to: blocks are aligned to their size from the
   heap's start) while that one is free too. `upward` false: merge only
   with buddies below (the repair's sweep has not judged those above yet).
   A merge is one header store, so the heap stays walkable. */
static void release(ma_arena_t *a, uint32_t block, uint32_t c, bool upward)
{
    while (c + 1 < MA_CLASSES) {
        uint32_t rel = block - a->heap_start;
        uint64_t buddy = a->heap_start + (uint64_t)(rel ^ block_size(c));
        if (buddy + block_size(c) > a->bump || (!upward && buddy > block))
            break;
        ma_block_t *bb = block_at(a, (uint32_t)buddy);
        if (bb->state != MB_FREE || bb->size_class != c)
            break;
        unlink_free(a, (uint32_t)buddy, c);
        if (buddy < block)
            block = (uint32_t)buddy;
        block_at(a, block)->size_class = ++c;
    }
    push_free(a, block, c);
}

/* A new block of class c at the bump pointer, aligned to its size: the gap
   below it is carved into smaller free blocks first. 0 when full. */
static uint32_t carve(ma_arena_t *a, uint32_t c)
{
    for (;;) {
        uint32_t rel = a->bump - a->heap_start;
        uint32_t k = rel % block_size(c) ? (uint32_t)__builtin_ctz(rel) - 4 : c;
        if ((uint64_t)a->bump + block_size(k) > a->capacity)
            return 0;
        uint32_t block = a->bump;
        ma_block_t *b = block_at(a, block);
        b->size_class = k; /* the header first, then the bump pointer */
        b->state = k == c ? MB_USED : MB_FREE;
        a->bump += block_size(k);
        if (k == c)
            return block;
        release(a, block, k, false);
    }
}

uint32_t ma_alloc(ma_arena_t *a, size_t n)
{
    int c = class_for(n);
    if (c < 0)
        return 0;
    uint32_t block = 0;
    int k = c;
    while (k < MA_CLASSES && !a->free_head[k])
        k++;
    if (k < MA_CLASSES) { /* a free block, split down to class c */
        block = a->free_head[k];
        unlink_free(a, block, (uint32_t)k);
        while (k > c) {
            k--;
            push_free(a, block + block_size((uint32_t)k), (uint32_t)k);
            block_at(a, block)->size_class = (uint32_t)k;
        }
    } else if (!(block = carve(a, (uint32_t)c))) {
        return 0;
    }
    ma_block_t *b = block_at(a, block);
    b->size_class = (uint32_t)c;
    b->state = MB_USED;
    a->used += block_size((uint32_t)c);
    return block + (uint32_t)sizeof(ma_block_t);
}

void ma_free(ma_arena_t *a, uint32_t off)
{
    if (!off)
        return;
    uint32_t block = off - (uint32_t)sizeof(ma_block_t);
    uint32_t c = block_at(a, block)->size_class;
    a->used -= block_size(c);
    release(a, block, c, true);
}

uint32_t ma_blob_new(ma_arena_t *a, const void *bytes, size_t len)
{
    if (len > UINT32_MAX)
        return 0;
    uint32_t off = ma_alloc(a, sizeof(ma_blob_t) + len);
    if (off) {
        ma_blob_t *blob = ma_blob(a, off);
        blob->len = (uint32_t)len;
        memcpy(blob->bytes, bytes, len);
    }
    return off;
}

bool ma_blob_eq(const ma_arena_t *a, uint32_t off, const void *bytes, size_t len)
{
    const ma_blob_t *blob = ma_blob(a, off);
    return blob->len == len && memcmp(blob->bytes, bytes, len) == 0;
}

int ma_blob_obj(const ma_arena_t *a, uint32_t off, mp_obj_t **o_p)
{
    const ma_blob_t *blob = ma_blob(a, off);
    return mp_obj_unpack(blob->bytes, blob->len, o_p);
}

int ma_pack(const mp_obj_t *o, mp__buf_t *b)
{
    return o ? mp__obj_pack_into(o, b) : MP_EINVAL;
}

/* ---- repair -------------------------------------------------------------------- */

void ma_mark(ma_arena_t *a, uint32_t off)
{
    if (off >= a->heap_start + sizeof(ma_block_t) && off < a->bump)
        block_at(a, off - (uint32_t)sizeof(ma_block_t))->state |= MB_MARK;
}

/* The heap, block by block from its start. A header that cannot be (nothing
   writes one, but a repair must not trust what it repairs) ends the heap
   there. */
static void walk(ma_arena_t *a, void (*fn)(ma_arena_t *a, uint32_t block, ma_block_t *b))
{
    for (uint32_t block = a->heap_start; block < a->bump;) {
        ma_block_t *b = block_at(a, block);
        if (b->size_class >= MA_CLASSES || (uint64_t)block + block_size(b->size_class) > a->bump) {
            a->bump = block;
            return;
        }
        uint32_t next = block + block_size(b->size_class);
        fn(a, block, b);
        block = next;
    }
}

static void unmark(ma_arena_t *a, uint32_t block, ma_block_t *b)
{
    (void)a;
    (void)block;
    b->state &= ~(uint32_t)MB_MARK;
}

static void sweep(ma_arena_t *a, uint32_t block, ma_block_t *b)
{
    if (b->state & MB_MARK) {
        b->state = MB_USED;
        a->used += block_size(b->size_class);
    } else {
        release(a, block, b->size_class, false);
    }
}

static void repair(ma_arena_t *a)
{
    walk(a, unmark);
    a->nobjects = 0;
    for (uint32_t slot = 1; slot <= MA_MAX_OBJECTS; slot++) {
        uint32_t off = a->objects[slot];
        if (!off)
            continue;
        struct mp_mobj *o = ma_at(a, off);
        a->nobjects++;
        ma_mark(a, off);
        if (o->type == MO_LIST)
            mlist_mark(a, o);
        else
            mdict_mark(a, o);
    }
    memset(a->free_head, 0, sizeof a->free_head);
    a->used = 0;
    walk(a, sweep);
    /* derived dict state (indexes, counts) last: rewritten in place */
    for (uint32_t slot = 1; slot <= MA_MAX_OBJECTS; slot++)
        if (a->objects[slot]) {
            struct mp_mobj *o = ma_at(a, a->objects[slot]);
            if (o->type != MO_LIST)
                mdict_rebuild(a, o);
        }
}

/* ---- the manager --------------------------------------------------------------- */

int mp_manager_new(const mp_manager_options_t *options, mp_manager_t **manager_p)
{
    if (!manager_p)
        return MP_EINVAL;
    *manager_p = NULL;
    size_t cap = options && options->capacity ? options->capacity : MA_DEFAULT_CAPACITY;
    size_t head = (sizeof(ma_arena_t) + 15) & ~(size_t)15;
    if (cap > MA_MAX_CAPACITY || cap < head + 4096)
        return MP_EINVAL;
    mp_manager_t *m = calloc(1, sizeof *m);
    if (!m)
        return MP_ENOMEM;
    /* untouched pages cost nothing: capacity is a limit, not a reservation */
    void *p =
        mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        free(m);
        return MP_ENOMEM;
    }
    ma_arena_t *a = p;
    a->magic = MA_MAGIC;
    a->capacity = cap;
    a->heap_start = a->bump = (uint32_t)head;
    a->slot_hint = 1;
    int rc = mp__mutex_init(&a->mutex);
    if (rc) {
        munmap(p, cap);
        free(m);
        return rc;
    }
    m->arena = a;
    m->size = cap;
    pthread_mutex_init(&m->owned_mutex, NULL);
    *manager_p = m;
    return 0;
}

void mp_manager_destroy(mp_manager_t **manager_p)
{
    if (!manager_p || !*manager_p)
        return;
    mp_manager_t *m = *manager_p;
    ma_destroy_owned(m);
    pthread_mutex_destroy(&m->owned_mutex);
    munmap(m->arena, m->size);
    free(m);
    *manager_p = NULL;
}

int mp_manager_stats(mp_manager_t *m, mp_manager_stats_t *st)
{
    if (!m || !st)
        return MP_EINVAL;
    ma_arena_t *a = m->arena;
    int rc = ma_lock(a);
    if (rc)
        return rc;
    *st = (mp_manager_stats_t){.capacity = a->capacity,
                               .used = a->used,
                               .reserved = a->bump - a->heap_start,
                               .objects = a->nobjects,
                               .repairs = a->repairs};
    ma_unlock(a);
    return 0;
}

/* A new object (lock held). */
static int new_object_locked(ma_arena_t *a, uint32_t type, struct mp_mobj **o_p)
{
    uint32_t slot = 0;
    for (uint32_t i = 0; i < MA_MAX_OBJECTS && !slot; i++) {
        uint32_t s = (a->slot_hint + i - 1) % MA_MAX_OBJECTS + 1;
        if (!a->objects[s])
            slot = s;
    }
    uint32_t off = slot ? ma_alloc(a, sizeof(struct mp_mobj)) : 0;
    if (!off)
        return MP_ENOSPC;
    struct mp_mobj *o = ma_at(a, off);
    *o = (struct mp_mobj){.type = type, .slot = slot, .data = 0, .self = off};
    __atomic_store_n(&a->objects[slot], off, __ATOMIC_RELEASE); /* the commit */
    a->slot_hint = slot % MA_MAX_OBJECTS + 1;
    a->nobjects++;
    *o_p = o;
    return 0;
}

static int new_object(mp_manager_t *m, uint32_t type, struct mp_mobj **o_p)
{
    if (!m || !o_p)
        return MP_EINVAL;
    *o_p = NULL;
    int rc = ma_lock(m->arena);
    if (rc)
        return rc;
    rc = new_object_locked(m->arena, type, o_p);
    ma_unlock(m->arena);
    return rc;
}

/* The object called name, made when there is none (or when the one of that
   name was freed or has another type). A process killed between making it
   and naming it leaves an unnamed object behind, nothing worse. */
static int named_object(mp_manager_t *m, uint32_t type, const char *name, struct mp_mobj **o_p)
{
    if (!m || !name || !o_p)
        return MP_EINVAL;
    *o_p = NULL;
    ma_arena_t *a = m->arena;
    int rc = ma_lock(a);
    if (rc)
        return rc;
    uint32_t dir_off = a->directory ? a->objects[a->directory] : 0;
    struct mp_mobj *dir = dir_off ? ma_at(a, dir_off) : NULL;
    if (!dir && !(rc = new_object_locked(a, MO_DICT, &dir)))
        a->directory = dir->slot; /* the commit */
    uint32_t slot = rc ? 0 : mdict_get_slot(a, dir, name);
    struct mp_mobj *o = slot && a->objects[slot] ? ma_at(a, a->objects[slot]) : NULL;
    if (!rc && (!o || o->type != type)) {
        o = NULL;
        rc = new_object_locked(a, type, &o);
        if (!rc && (rc = mdict_put_slot(a, dir, name, o->slot))) {
            a->objects[o->slot] = 0; /* no room to name it: take it back */
            a->nobjects--;
            ma_free(a, o->self);
            o = NULL;
        }
    }
    ma_unlock(a);
    *o_p = o;
    return rc;
}

int mp_manager_named_dict(mp_manager_t *m, const char *name, mp_mdict_t **dict_p)
{
    return named_object(m, MO_DICT, name, dict_p);
}

int mp_manager_named_list(mp_manager_t *m, const char *name, mp_mlist_t **list_p)
{
    return named_object(m, MO_LIST, name, list_p);
}

int mp_manager_named_namespace(mp_manager_t *m, const char *name, mp_mns_t **ns_p)
{
    return named_object(m, MO_NS, name, ns_p);
}

int mp_manager_dict(mp_manager_t *m, mp_mdict_t **dict_p)
{
    return new_object(m, MO_DICT, dict_p);
}

int mp_manager_list(mp_manager_t *m, mp_mlist_t **list_p)
{
    return new_object(m, MO_LIST, list_p);
}

int mp_manager_namespace(mp_manager_t *m, mp_mns_t **ns_p)
{
    return new_object(m, MO_NS, ns_p);
}

int mp_mobj_free(mp_manager_t *m, struct mp_mobj **o_p)
{
    if (!m || !o_p || !*o_p || ma_of(*o_p) != m->arena)
        return MP_EINVAL;
    struct mp_mobj *o = *o_p;
    ma_arena_t *a = m->arena;
    int rc = ma_lock(a);
    if (rc)
        return rc;
    a->objects[o->slot] = 0; /* the commit: unreachable from here on */
    a->nobjects--;
    if (o->type == MO_LIST)
        mlist_free_data(a, o);
    else
        mdict_free_data(a, o);
    ma_free(a, o->self);
    ma_unlock(a);
    *o_p = NULL;
    return 0;
}
