/*  arena.c - the Manager's arena (docs/MANAGER.md section 3): the block
    allocator, blobs, and the heap-level halves of the repair (mark, sweep)
    that need the allocator's internals. The mapping and the object table's
    calls are manager.c's; the lock and the repair repair.c's.

    Allocator: a buddy system. Power-of-two size classes, each block aligned
    to its size from the heap's start, a doubly linked free list per class;
    a request takes a free block of its class, else splits the smallest
    larger free block, else carves a new block at the bump pointer; a freed
    block merges with its buddy while that one is free.

    Invariant: the heap can be walked block by block from its start to the
    bump pointer at every instant, which the repair's sweep relies on (a
    process may die anywhere): a split writes the upper half's header
    before shrinking the lower one; a merge is one header store; a carve
    writes the header before moving the bump pointer.
*/
#include <string.h>

#include "manager/arena.h"
#include "mp/error.h"

static inline uint32_t block_size(uint32_t size_class)
{
    return 16u << size_class;
}

static inline ma_block_t *block_at(ma_arena_t *a, uint32_t block)
{
    return (ma_block_t *)ma_at(a, block);
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

/* ---- the repair's heap primitives (repair.c) ------------------------------------ */

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

void ma_heap_unmark(ma_arena_t *a)
{
    walk(a, unmark);
}

void ma_heap_sweep(ma_arena_t *a)
{
    memset(a->free_head, 0, sizeof a->free_head);
    a->used = 0;
    walk(a, sweep);
}

/* ---- references ------------------------------------------------------------------ */

mp_obj_t *ma_ref_new(uint32_t kind, uint32_t slot, uint32_t gen)
{
    uint8_t b[9] = {(uint8_t)kind};
    for (int i = 0; i < 4; i++) {
        b[1 + i] = (uint8_t)(slot >> (24 - 8 * i));
        b[5 + i] = (uint8_t)(gen >> (24 - 8 * i));
    }
    return mp_obj_new_ext(MA_REF_EXT, b, sizeof b);
}

int ma_ref_parse(const mp_obj_t *o, ma_ref_t *r)
{
    int8_t type = 0;
    size_t n = 0;
    const uint8_t *b = mp_obj_ext(o, &type, &n);
    if (!b || type != MA_REF_EXT || n != 9 || b[0] < MO_DICT || b[0] > MO_QUEUE)
        return MP_ETYPE;
    *r = (ma_ref_t){.kind = b[0]};
    for (int i = 0; i < 4; i++) {
        r->slot = r->slot << 8 | b[1 + i];
        r->gen = r->gen << 8 | b[5 + i];
    }
    if (r->gen == 0 || (r->kind == MO_QUEUE) != (r->slot == 0) || r->slot > MA_MAX_OBJECTS)
        return MP_ETYPE;
    return 0;
}
