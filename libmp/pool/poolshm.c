/*  poolshm.c - the embedded pool's shared rings (poolshm.h, POOL-SHM.md). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "pool/poolshm.h"

#define MAGIC 0x31304d4853504d4dull /* "MMPSHM01" */
#define POPULATE_STEP (1u << 20)    /* pages mapped ahead at once */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#define IN_RANGES 1024 /* input ranges live at once */
#define HOLD_MAX 64    /* replies the pool keeps in one ring */

typedef struct {
    _Alignas(64) uint64_t head; /* written by the slot's executor */
    /* the executor, when it found its ring empty, went on at the start of
       the ring instead of at head: [skip_from, skip_to) is free while the
       pool's tail is still skip_from */
    uint64_t skip_from, skip_to;
    _Alignas(64) uint64_t tail; /* written by the pool */
} slot_t;

typedef struct {
    uint64_t magic, id;
    uint64_t in_off, in_cap, out_off, out_cap;
    uint32_t nslots;
    slot_t slots[];
} header_t;

typedef struct {
    uint64_t start, end;
    uint32_t ticket;
    bool freed;
} range_t;

struct mp__pshm {
    char *base;
    size_t size;
    header_t *h;
    /* the input ring's allocator: the pool's only (its copy in a forked
       child is never used) */
    uint64_t in_head, in_tail; /* monotonic */
    range_t live[IN_RANGES];   /* by ticket % IN_RANGES */
    uint32_t first, n, next_ticket;
    /* how far from its start each ring is mapped in this process's page
       tables (each process its own: the handle is copied by fork). A
       page fault costs ~10 us on the VMs measured, mapping the same pages
       in one madvise call ~1 us each; the rings restart at their start,
       so this ends at the most a ring has held at once. */
    uint64_t in_mapped;
    /* the pool's view of each output ring: the end of the latest reply it
       has seen, and the replies it keeps there unread (mp__pshm_out_hold) */
    struct pool_slot {
        uint64_t mapped; /* as in_mapped */
        uint64_t seen;
        uint64_t held[HOLD_MAX];
        int nheld;
    } out[];
};

/* Maps [*mapped, upto) of the ring at base ahead of use (rounded up to
   POPULATE_STEP, at most cap); advice: MADV_POPULATE_READ or _WRITE. A
   kernel without them (before 5.14) faults the pages in as they come. */
static void populate(char *base, uint64_t cap, uint64_t *mapped, uint64_t upto, int advice)
{
    if (upto <= *mapped)
        return;
    upto = (upto + POPULATE_STEP - 1) / POPULATE_STEP * POPULATE_STEP;
    if (upto > cap)
        upto = cap;
    madvise(base + *mapped, upto - *mapped, advice);
    *mapped = upto;
}

static size_t page_round(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) / pg * pg;
}

static uint64_t round8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

mp__pshm_t *mp__pshm_new(int nslots, size_t in_cap, size_t out_cap)
{
    if (nslots <= 0 || nslots > 1024 || in_cap == 0 || out_cap == 0)
        return NULL;
    mp__pshm_t *s = calloc(1, sizeof *s + (size_t)nslots * sizeof(struct pool_slot));
    if (!s)
        return NULL;
    size_t hdr = page_round(sizeof(header_t) + (size_t)nslots * sizeof(slot_t));
    in_cap = page_round(in_cap);
    out_cap = page_round(out_cap);
    s->size = hdr + in_cap + (size_t)nslots * out_cap;
    /* sparse: a page costs memory once touched, and stays touched (the
       rings restart at their beginning whenever they are empty) */
    s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s->base == MAP_FAILED) {
        free(s);
        return NULL;
    }
    header_t *h = s->h = (header_t *)s->base;
    h->magic = MAGIC;
    if (getrandom(&h->id, sizeof h->id, GRND_NONBLOCK) != (ssize_t)sizeof h->id) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        h->id = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)s;
    }
    if (h->id == 0)
        h->id = 1;
    h->in_off = hdr;
    h->in_cap = in_cap;
    h->out_off = hdr + in_cap;
    h->out_cap = out_cap;
    h->nslots = (uint32_t)nslots;
    return s;
}

void mp__pshm_destroy(mp__pshm_t **s_p)
{
    mp__pshm_t *s = s_p ? *s_p : NULL;
    if (!s)
        return;
    munmap(s->base, s->size);
    free(s);
    *s_p = NULL;
}

uint64_t mp__pshm_id(const mp__pshm_t *s)
{
    return s ? s->h->id : 0;
}

int mp__pshm_slots(const mp__pshm_t *s)
{
    return s ? (int)s->h->nslots : 0;
}

const char *mp__pshm_in_at(const mp__pshm_t *s, uint64_t off, uint64_t len)
{
    const header_t *h = s->h;
    if (off < h->in_off || off - h->in_off > h->in_cap || len > h->in_cap - (off - h->in_off))
        return NULL;
    return s->base + off;
}

const char *mp__pshm_in_read(mp__pshm_t *s, uint64_t off, uint64_t len)
{
    const char *p = mp__pshm_in_at(s, off, len);
    if (p)
        populate(s->base + s->h->in_off, s->h->in_cap, &s->in_mapped, off - s->h->in_off + len,
                 MADV_POPULATE_READ);
    return p;
}

/* ---- the input ring ------------------------------------------------------------ */

bool mp__pshm_in_alloc(mp__pshm_t *s, size_t bytes, mp__pshm_in_t *r, char **items)
{
    uint64_t cap = s->h->in_cap;
    if (bytes > cap || s->n == IN_RANGES) /* before rounding: SIZE_MAX must not wrap */
        return false;
    uint64_t need = round8(bytes);
    if (need > cap)
        return false;
    if (s->n == 0) /* empty: start again at the beginning, on pages already touched */
        s->in_head = s->in_tail = 0;
    uint64_t start = s->in_head, pos = start % cap;
    if (cap - pos < need) /* does not fit before the end: the next lap */
        start += cap - pos;
    if (start + need - s->in_tail > cap)
        return false;
    s->in_head = start + need;
    uint32_t ticket = s->next_ticket++;
    s->live[ticket % IN_RANGES] = (range_t){start, start + need, ticket, false};
    s->n++;
    uint64_t off = s->h->in_off + start % cap;
    populate(s->base + s->h->in_off, cap, &s->in_mapped, start % cap + need, MADV_POPULATE_WRITE);
    *r = (mp__pshm_in_t){off, bytes, ticket};
    *items = s->base + r->pos;
    return true;
}

void mp__pshm_in_free(mp__pshm_t *s, const mp__pshm_in_t *r)
{
    range_t *e = &s->live[r->ticket % IN_RANGES];
    if (s->n == 0 || e->ticket != r->ticket || e->freed)
        return;
    e->freed = true;
    while (s->n && s->live[s->first % IN_RANGES].freed) {
        s->in_tail = s->live[s->first % IN_RANGES].end;
        s->first++;
        s->n--;
    }
    if (s->n)
        s->in_tail = s->live[s->first % IN_RANGES].start;
    else
        s->in_tail = s->in_head;
}

size_t mp__pshm_in_used(const mp__pshm_t *s)
{
    return (size_t)(s->in_head - s->in_tail);
}

/* ---- the output rings ---------------------------------------------------------- */

static char *ring(const mp__pshm_t *s, int slot)
{
    return s->base + s->h->out_off + (uint64_t)slot * s->h->out_cap;
}

bool mp__pshm_out_contains(const mp__pshm_t *s, int slot, const void *p, size_t n)
{
    if (!s || slot < 0 || (uint32_t)slot >= s->h->nslots)
        return false;
    const char *r = ring(s, slot), *q = p;
    return q >= r && n <= s->h->out_cap && (uint64_t)(q - r) <= s->h->out_cap - n;
}

bool mp__pshm_out_reserve(mp__pshm_t *s, int slot, size_t need, mp__pshm_out_t *o)
{
    header_t *h = s->h;
    if (slot < 0 || (uint32_t)slot >= h->nslots)
        return false;
    uint64_t cap = h->out_cap;
    slot_t *sl = &h->slots[slot];
    uint64_t head = __atomic_load_n(&sl->head, __ATOMIC_RELAXED);
    uint64_t tail = __atomic_load_n(&sl->tail, __ATOMIC_ACQUIRE);
    if (tail > head) /* the pool never publishes past the head: be safe anyway */
        tail = head;
    if (tail == sl->skip_from && sl->skip_to > tail && sl->skip_to <= head)
        tail = sl->skip_to;
    uint64_t from = head;
    if (head == tail && head % cap) /* empty: go on at the ring's start (pages touched before) */
        tail = head += cap - head % cap;
    uint64_t contig = cap - head % cap, avail = cap - (head - tail);
    uint64_t room = (contig < avail ? contig : avail) & ~(uint64_t)7; /* positions stay 8-aligned */
    if (room < need) { /* the next lap, if what is in use leaves room there */
        head += contig;
        if (head - tail >= cap)
            return false;
        room = (cap - (head - tail)) & ~(uint64_t)7;
        if (room < need)
            return false;
    }
    /* mapped ahead: what a reply as large as the room asked for times 4 takes */
    uint64_t want = head % cap + (uint64_t)need * 4;
    populate(ring(s, slot), cap, &s->out[slot].mapped, want < cap ? want : cap,
             MADV_POPULATE_WRITE);
    *o = (mp__pshm_out_t){slot, head, ring(s, slot) + head % cap, (size_t)room, from};
    return true;
}

void mp__pshm_out_expect(mp__pshm_t *s, const mp__pshm_out_t *o, size_t bytes)
{
    uint64_t cap = s->h->out_cap, want = o->at % cap + (bytes < o->room ? bytes : o->room);
    populate(ring(s, o->slot), cap, &s->out[o->slot].mapped, want, MADV_POPULATE_WRITE);
}

void mp__pshm_out_commit(mp__pshm_t *s, const mp__pshm_out_t *o, size_t used)
{
    slot_t *sl = &s->h->slots[o->slot];
    uint64_t tail = __atomic_load_n(&sl->tail, __ATOMIC_ACQUIRE);
    if (o->from != o->at && tail == o->from) { /* went on at the start of an empty ring */
        sl->skip_from = o->from;
        sl->skip_to = o->at;
    }
    __atomic_store_n(&sl->head, o->at + round8(used), __ATOMIC_RELEASE);
}

const char *mp__pshm_out_at(mp__pshm_t *s, int slot, uint64_t at, uint64_t len)
{
    const header_t *h = s->h;
    if (slot < 0 || (uint32_t)slot >= h->nslots || len > h->out_cap)
        return NULL;
    const slot_t *sl = &h->slots[slot];
    uint64_t head = __atomic_load_n(&sl->head, __ATOMIC_ACQUIRE);
    uint64_t tail = __atomic_load_n(&sl->tail, __ATOMIC_RELAXED);
    if (at % 8 || at < tail || at > head || len > head - at || at % h->out_cap + len > h->out_cap)
        return NULL;
    populate(ring(s, slot), h->out_cap, &s->out[slot].mapped, at % h->out_cap + len,
             MADV_POPULATE_READ);
    return ring(s, slot) + at % h->out_cap;
}

/* Publishes what the pool is done with in slot: up to the oldest reply it
   still holds, or everything it has seen. */
static void publish(mp__pshm_t *s, int slot)
{
    struct pool_slot *ps = &s->out[slot];
    uint64_t end = ps->seen;
    for (int i = 0; i < ps->nheld; i++)
        if (ps->held[i] < end)
            end = ps->held[i];
    slot_t *sl = &s->h->slots[slot];
    if (end > __atomic_load_n(&sl->tail, __ATOMIC_RELAXED) &&
        end <= __atomic_load_n(&sl->head, __ATOMIC_ACQUIRE))
        __atomic_store_n(&sl->tail, end, __ATOMIC_RELEASE);
}

void mp__pshm_out_consume(mp__pshm_t *s, int slot, uint64_t end)
{
    if (slot < 0 || (uint32_t)slot >= s->h->nslots)
        return;
    /* past what the executor published: not a reply of its (ignored, so a
       wrong number cannot stop the ring for good) */
    if (end > __atomic_load_n(&s->h->slots[slot].head, __ATOMIC_ACQUIRE))
        return;
    if (end > s->out[slot].seen)
        s->out[slot].seen = end;
    publish(s, slot);
}

void mp__pshm_out_idle(mp__pshm_t *s)
{
    for (int slot = 0; slot < (int)s->h->nslots; slot++) {
        struct pool_slot *ps = &s->out[slot];
        uint64_t head = __atomic_load_n(&s->h->slots[slot].head, __ATOMIC_ACQUIRE);
        if (ps->nheld == 0 && head > ps->seen) {
            ps->seen = head;
            publish(s, slot);
        }
    }
}

bool mp__pshm_out_hold(mp__pshm_t *s, int slot, uint64_t at)
{
    if (slot < 0 || (uint32_t)slot >= s->h->nslots || s->out[slot].nheld == HOLD_MAX)
        return false;
    s->out[slot].held[s->out[slot].nheld++] = at;
    return true;
}

void mp__pshm_out_release(mp__pshm_t *s, int slot, uint64_t at)
{
    if (slot < 0 || (uint32_t)slot >= s->h->nslots)
        return;
    struct pool_slot *ps = &s->out[slot];
    for (int i = 0; i < ps->nheld; i++)
        if (ps->held[i] == at) {
            ps->held[i] = ps->held[--ps->nheld];
            publish(s, slot);
            return;
        }
}
