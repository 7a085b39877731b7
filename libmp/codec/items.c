/*  items.c - mp_items_t: msgpack values back to back, plus an index.

    Invariant: buf holds exactly len complete values (plus the members of an
    open tuple, not yet indexed); off[i] is where value i starts; value i
    ends where value i+1 starts, or at buf.size for the last one when no
    tuple is open. Errors are kept sorted by index (insertion keeps order;
    results arrive mostly in order, so that is an append).
*/
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "codec/items_impl.h"
#include "codec/wire.h"

/* ---- large buffers -----------------------------------------------------------

   A map of 10^6 items builds and returns lists of ~15 MiB (an 8-byte index
   entry per item plus the values). glibc gives blocks that large back to
   the kernel when they are freed, so each such list is faulted in afresh,
   page by page: ~10 us per 4 KiB page on the VMs measured in
   BENCHMARKS.md, ~40 ms per list, more than the map's work itself. From
   BIG_BYTES on, a list's index and buffer are mappings of their own,
   aligned and advised for transparent huge pages: one fault per 2 MiB
   (~1.5 ms per 16 MiB there). Where THP is disabled they are ordinary
   anonymous mappings and cost what malloc's would. */

#define BIG_BYTES (4u << 20)
#define HUGE_PAGE (2u << 20)

size_t mp__big_len(size_t n)
{
    return (n + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
}

/* Freed large buffers kept for the next list of the same size: a program
   that maps again and again (a loop of maps, a server) would otherwise pay
   for zeroed fresh pages each time (~1 ms per 16 MiB on the VMs measured,
   more than the map's own work). At most CACHE_SLOTS of them, CACHE_BYTES
   in all, stay resident (MADV_FREE was measured: the kernel drops huge
   pages so advised at once, and every reuse zeroed them again). */
#define CACHE_SLOTS 8
#define CACHE_BYTES (128u << 20)

static struct {
    pthread_mutex_t lock;
    void *p[CACHE_SLOTS];
    size_t len[CACHE_SLOTS];
    size_t bytes;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A child forked while another thread held the lock must not inherit it
   held; the kept mappings themselves are not inherited (MADV_DONTFORK):
   a child would pin copies of memory nobody uses. */
static void cache_after_fork_child(void)
{
    pthread_mutex_init(&cache.lock, NULL);
    memset(cache.p, 0, sizeof cache.p);
    cache.bytes = 0;
}

__attribute__((constructor)) static void cache_init(void)
{
    pthread_atfork(NULL, NULL, cache_after_fork_child);
}

/* The smallest kept mapping of len bytes or more (up to 4 times as
   large: a list that grew last time gets its grown size at once). */
static void *cache_take(size_t len, size_t *got)
{
    int best = -1;
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache.p[i] && cache.len[i] >= len && cache.len[i] / 4 <= len &&
            (best < 0 || cache.len[i] < cache.len[best]))
            best = i;
    void *p = NULL;
    if (best >= 0) {
        p = cache.p[best];
        *got = cache.len[best];
        cache.p[best] = NULL;
        cache.bytes -= *got;
    }
    pthread_mutex_unlock(&cache.lock);
#ifdef MADV_DOFORK
    if (p) /* a list's memory again: inherited like any other */
        madvise(p, *got, MADV_DOFORK);
#endif
    return p;
}

static bool cache_put(void *p, size_t len)
{
#ifdef MADV_DONTFORK
    madvise(p, len, MADV_DONTFORK); /* before a fork can see it in the cache */
#endif
    bool kept = false;
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < CACHE_SLOTS && !kept; i++)
        if (!cache.p[i] && cache.bytes + len <= CACHE_BYTES) {
            cache.p[i] = p;
            cache.len[i] = len;
            cache.bytes += len;
            kept = true;
        }
    pthread_mutex_unlock(&cache.lock);
    return kept;
}

void *mp__big_alloc(size_t n, size_t *len_p)
{
    size_t len = mp__big_len(n);
    char *p = cache_take(len, len_p);
    if (p)
        return p;
    *len_p = len;
    p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    munmap(a + len, (size_t)(p + len + HUGE_PAGE - (a + len)));
#ifdef MADV_HUGEPAGE
    madvise(a, len, MADV_HUGEPAGE); /* advice: without it the list still works */
#endif
    return a;
}

void *mp__big_grow(void *p, size_t len, size_t new_n, size_t *len_p)
{
    size_t new_len = mp__big_len(new_n);
    /* the pages move with their page tables: nothing is copied or faulted */
    char *q = mremap(p, len, new_len, MREMAP_MAYMOVE);
    if (q == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(q, new_len, MADV_HUGEPAGE);
#endif
    *len_p = new_len;
    return q;
}

void mp__big_free(void *p, size_t len)
{
    if (p && !cache_put(p, len))
        munmap(p, len);
}

mp_items_t *mp_items_new(void)
{
    mp_items_t *l = calloc(1, sizeof *l);
    if (l)
        mp__buf_init(&l->buf, NULL, 0);
    return l;
}

void mp__task_error_free(mp_task_error_t *e)
{
    free((char *)e->message); /* task and host live in the same block */
    memset(e, 0, sizeof *e);
}

void mp_items_destroy(mp_items_t **l_p)
{
    if (!l_p || !*l_p)
        return;
    mp_items_t *l = *l_p;
    mp__buf_release(&l->buf);
    mp__big_free(l->buf_map, l->buf_map_len);
    if (l->off_map)
        mp__big_free(l->off, l->off_map);
    else
        free(l->off);
    for (size_t i = 0; i < l->nerr; i++)
        mp__task_error_free(&l->err[i]);
    free(l->err);
    free(l);
    *l_p = NULL;
}

static int reserve_index(mp_items_t *l, size_t extra)
{
    if (l->cap - l->len >= extra)
        return 0;
    size_t cap = l->cap ? l->cap : 4; /* one-item lists are the common case (applies) */
    while (cap - l->len < extra)
        cap *= 2;
    if (cap * sizeof *l->off < BIG_BYTES) {
        size_t *off = realloc(l->off, cap * sizeof *off);
        if (!off)
            return MP_ENOMEM;
        l->off = off;
        l->cap = cap;
        return 0;
    }
    size_t len;
    size_t *off = l->off_map ? mp__big_grow(l->off, l->off_map, cap * sizeof *off, &len)
                             : mp__big_alloc(cap * sizeof *off, &len);
    if (!off)
        return MP_ENOMEM;
    if (!l->off_map) {
        if (l->cap) /* entries past len may be in use: an open tuple's */
            memcpy(off, l->off, l->cap * sizeof *off);
        free(l->off);
    }
    l->off = off;
    l->off_map = len;
    l->cap = l->off_map / sizeof *off;
    return 0;
}

/* Room for extra bytes at the end of buf (a mapping of its own from
   BIG_BYTES on). */
static int reserve_bytes(mp_items_t *l, size_t extra)
{
    mp__buf_t *b = &l->buf;
    if (b->cap - b->size >= extra)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap - b->size < extra)
        cap *= 2;
    if (cap < BIG_BYTES)
        return mp__buf_reserve(b, extra);
    if (l->buf_map && b->data == l->buf_map) { /* this list's mapping: grown in place */
        char *p = mp__big_grow(l->buf_map, l->buf_map_len, cap, &l->buf_map_len);
        if (!p)
            return MP_ENOMEM;
        l->buf_map = b->data = p;
        b->cap = l->buf_map_len;
        return 0;
    }
    size_t len;
    char *p = mp__big_alloc(cap, &len);
    if (!p)
        return MP_ENOMEM;
    if (b->size)
        memcpy(p, b->data, b->size);
    /* the old storage: malloc'd (owned), this list's mapping, or the
       mapping a writer outgrew (mp__buf_reserve then copied it to malloc) */
    if (b->owned)
        free(b->data);
    mp__big_free(l->buf_map, l->buf_map_len);
    l->buf_map = p;
    l->buf_map_len = len;
    b->data = p;
    b->cap = l->buf_map_len;
    b->owned = false; /* so mp__buf_release leaves it to mp_items_destroy */
    return 0;
}

/* Called before writing one value at the end of buf: indexes it unless it
   is a tuple member (the tuple itself was indexed when it was opened). */
static int begin_value(mp_items_t *l)
{
    if (reserve_bytes(l, 16)) /* a scalar fits: writers need not grow buf */
        return MP_ENOMEM;
    if (l->tuple_left) {
        l->tuple_left--;
        return 0;
    }
    if (reserve_index(l, 1))
        return MP_ENOMEM;
    l->off[l->len] = l->buf.size;
    return 1; /* "index it once written" */
}

/* Finishes an append: rc from the writer, idx from begin_value. */
static int end_value(mp_items_t *l, int idx, size_t start, int rc)
{
    if (rc) {
        l->buf.size = start; /* roll back a partial write */
        if (!idx)
            l->tuple_left++;
        return rc;
    }
    if (idx || l->tuple_left == 0) /* a value, or the last member of a tuple */
        l->len++;
    return 0;
}

/* Where the complete items end (an open tuple starts there). */
static size_t items_end(const mp_items_t *l)
{
    return l->tuple_left ? l->off[l->len] : l->buf.size;
}

#define ADD(l, expr)                                                                               \
    do {                                                                                           \
        if (!(l))                                                                                  \
            return MP_EINVAL;                                                                      \
        size_t start_ = (l)->buf.size;                                                             \
        int idx_ = begin_value(l);                                                                 \
        if (idx_ < 0)                                                                              \
            return idx_;                                                                           \
        mp__buf_t *b = &(l)->buf;                                                                  \
        return end_value(l, idx_, start_, (expr));                                                 \
    } while (0)

int mp_items_add_nil(mp_items_t *l)
{
    ADD(l, mp__w_nil(b));
}

int mp_items_add_bool(mp_items_t *l, bool v)
{
    ADD(l, mp__w_bool(b, v));
}

int mp_items_add_int(mp_items_t *l, int64_t v)
{
    ADD(l, mp__w_int(b, v));
}

int mp_items_add_uint(mp_items_t *l, uint64_t v)
{
    ADD(l, mp__w_uint(b, v));
}

int mp_items_add_float(mp_items_t *l, double v)
{
    ADD(l, mp__w_float(b, v));
}

int mp_items_add_str(mp_items_t *l, const char *s)
{
    if (!s)
        return MP_EINVAL;
    ADD(l, mp__w_strn(b, s, strlen(s)));
}

int mp_items_add_strn(mp_items_t *l, const char *s, size_t n)
{
    if (!s && n)
        return MP_EINVAL;
    ADD(l, mp__w_strn(b, s, n));
}

int mp_items_add_bin(mp_items_t *l, const void *p, size_t n)
{
    if (!p && n)
        return MP_EINVAL;
    ADD(l, mp__w_bin(b, p, n));
}

int mp_items_add_obj(mp_items_t *l, const mp_obj_t *o)
{
    if (!o)
        return MP_EINVAL;
    ADD(l, mp__obj_pack_into(o, b));
}

static int check_one_value(const void *data, size_t size)
{
    mp__rd_t r;
    mp__rd_init(&r, data, size);
    if (mp__rd_skip(&r) || mp__rd_left(&r))
        return MP_EINVAL;
    return 0;
}

int mp_items_add_packed(mp_items_t *l, const void *data, size_t size)
{
    if (!data || check_one_value(data, size))
        return MP_EINVAL;
    ADD(l, mp__w_raw(b, data, size));
}

int mp_items_add_tuple(mp_items_t *l, size_t argc)
{
    if (!l)
        return MP_EINVAL;
    if (l->tuple_left)
        return MP_ESTATE;
    size_t start = l->buf.size;
    if (reserve_index(l, 1) || reserve_bytes(l, 16))
        return MP_ENOMEM;
    int rc = mp__w_array(&l->buf, argc);
    if (rc) {
        l->buf.size = start;
        return rc;
    }
    l->off[l->len] = start;
    if (argc == 0)
        l->len++;
    else
        l->tuple_left = argc;
    return 0;
}

int mp_items_add_ints(mp_items_t *l, const int64_t *v, size_t n)
{
    if (!l || (!v && n) || l->tuple_left)
        return l && l->tuple_left ? MP_ESTATE : MP_EINVAL;
    if (reserve_index(l, n) || reserve_bytes(l, n * 9))
        return MP_ENOMEM;
    uint8_t *base = (uint8_t *)l->buf.data, *p = base + l->buf.size; /* room reserved */
    size_t *off = l->off + l->len;
    for (size_t i = 0; i < n; i++) {
        off[i] = (size_t)(p - base);
        p += mp__put_int(p, v[i]);
    }
    l->buf.size = (size_t)(p - base);
    l->len += n;
    return 0;
}

/* ntuples fixarrays of arity ints from v, written at base + at (room
   reserved), their offsets into off: the new size. */
static inline size_t put_fixtuples(uint8_t *base, size_t at, size_t *off, const int64_t *v,
                                   size_t ntuples, size_t arity)
{
    uint8_t *p = base + at;
    for (size_t t = 0; t < ntuples; t++, v += arity) {
        off[t] = (size_t)(p - base);
        *p++ = (uint8_t)(0x90 | arity);
        for (size_t k = 0; k < arity; k++)
            p += mp__put_int(p, v[k]);
    }
    return (size_t)(p - base);
}

int mp_items_add_int_tuples(mp_items_t *l, const int64_t *v, size_t ntuples, size_t arity)
{
    if (!l || (!v && ntuples && arity))
        return MP_EINVAL;
    if (l->tuple_left)
        return MP_ESTATE;
    /* at most 5 bytes of array header and 9 per int */
    if (arity > (SIZE_MAX - 5) / 9 || arity > UINT32_MAX ||
        (ntuples && (5 + 9 * arity) > SIZE_MAX / ntuples))
        return MP_ENOMEM;
    if (reserve_index(l, ntuples) || reserve_bytes(l, ntuples * (5 + 9 * arity)))
        return MP_ENOMEM;
    /* room reserved: the writes below cannot fail */
    if (arity <= 15) { /* a fixarray header: one octet */
        uint8_t *base = (uint8_t *)l->buf.data;
        size_t *off = l->off + l->len;
        /* pairs and triples with the arity a constant: the inner loop unrolled */
        l->buf.size = arity == 2   ? put_fixtuples(base, l->buf.size, off, v, ntuples, 2)
                      : arity == 3 ? put_fixtuples(base, l->buf.size, off, v, ntuples, 3)
                                   : put_fixtuples(base, l->buf.size, off, v, ntuples, arity);
        l->len += ntuples;
        return 0;
    }
    for (size_t t = 0; t < ntuples; t++, v += arity) {
        l->off[l->len++] = l->buf.size;
        mp__w_array(&l->buf, arity);
        for (size_t k = 0; k < arity; k++)
            mp__w_int(&l->buf, v[k]);
    }
    return 0;
}

size_t mp_items_len(const mp_items_t *l)
{
    return l ? l->len : 0;
}

static int item_reader(const mp_items_t *l, size_t i, mp__rd_t *r)
{
    if (!l || i >= l->len)
        return MP_EINVAL;
    size_t end = i + 1 < l->len ? l->off[i + 1] : items_end(l);
    mp__rd_init(r, l->buf.data + l->off[i], end - l->off[i]);
    return 0;
}

mp_obj_type_t mp_items_type(const mp_items_t *l, size_t i)
{
    mp__rd_t r;
    if (item_reader(l, i, &r))
        return MP_OBJ_NIL;
    int t = mp__rd_peek(&r);
    return t < 0 ? MP_OBJ_NIL : (mp_obj_type_t)t;
}

int mp_items_int(const mp_items_t *l, size_t i, int64_t *v)
{
    mp__rd_t r;
    int rc = item_reader(l, i, &r);
    return rc ? rc : mp__rd_int(&r, v);
}

int mp_items_float(const mp_items_t *l, size_t i, double *v)
{
    mp__rd_t r;
    int rc = item_reader(l, i, &r);
    return rc ? rc : mp__rd_float(&r, v);
}

int mp_items_str(const mp_items_t *l, size_t i, const char **s, size_t *n)
{
    mp__rd_t r;
    int rc = item_reader(l, i, &r);
    return rc ? rc : mp__rd_str(&r, s, n);
}

int mp_items_bin(const mp_items_t *l, size_t i, const void **p, size_t *n)
{
    mp__rd_t r;
    int rc = item_reader(l, i, &r);
    return rc ? rc : mp__rd_bin(&r, p, n);
}

int mp_items_get(const mp_items_t *l, size_t i, mp_obj_t **o_p)
{
    mp__rd_t r;
    int rc = item_reader(l, i, &r);
    return rc ? rc : mp__rd_obj(&r, o_p);
}

int mp_items_packed(const mp_items_t *l, size_t i, const void **p, size_t *n)
{
    mp__rd_t r;
    int rc = item_reader(l, i, &r);
    if (rc)
        return rc;
    *p = r.p;
    *n = mp__rd_left(&r);
    return 0;
}

int mp_items_ints(const mp_items_t *l, int64_t *out)
{
    if (!l || (!out && l->len))
        return MP_EINVAL;
    const uint8_t *p = (const uint8_t *)l->buf.data, *end = p + items_end(l);
    for (size_t i = 0; i < l->len; i++) {
        size_t k = mp__get_int(p, (size_t)(end - p), &out[i]);
        if (!k) { /* not an int (or one that does not fit): the reader says which */
            mp__rd_t r;
            mp__rd_init(&r, p, (size_t)(end - p));
            int rc = mp__rd_int(&r, &out[i]);
            if (rc)
                return rc;
            k = (size_t)(r.p - p);
        }
        p += k;
    }
    return 0;
}

int mp__items_append_packed(mp_items_t *l, const void *data, size_t size, size_t count)
{
    if (l->tuple_left)
        return MP_ESTATE;
    if (size == 0 || count == 0) /* nothing (an empty list has no buffers: no NULL + 0) */
        return size || count ? MP_EBADMSG : 0; /* items need bytes, bytes need items */
    if (reserve_index(l, count) || reserve_bytes(l, size))
        return MP_ENOMEM;
    /* copied first, then checked and indexed in one pass: what is checked is
       what the list keeps, whatever the source (shared memory) does */
    size_t base = l->buf.size;
    const uint8_t *start = memcpy(l->buf.data + base, data, size), *p = start, *end = start + size;
    size_t *off = l->off + l->len;
    for (size_t i = 0; i < count; i++) {
        off[i] = base + (size_t)(p - start);
        size_t k = p < end ? mp__scalar_len(*p) : 0; /* ints, most often */
        if (k && k <= (size_t)(end - p)) {
            p += k;
            continue;
        }
        mp__rd_t r;
        mp__rd_init(&r, p, (size_t)(end - p));
        if (mp__rd_skip(&r))
            return MP_EBADMSG; /* nothing committed: len and size unchanged */
        p = r.p;
    }
    if (p != end)
        return MP_EBADMSG;
    l->buf.size += size;
    l->len += count;
    return 0;
}

int mp__items_reserve(mp_items_t *l, size_t bytes, size_t items)
{
    return reserve_index(l, items) || reserve_bytes(l, bytes) ? MP_ENOMEM : 0;
}

int mp__items_concat(mp_items_t *dst, const mp_items_t *src)
{
    if (dst->tuple_left || src->tuple_left)
        return MP_ESTATE;
    size_t bytes = src->buf.size, base = dst->buf.size;
    if (mp__items_reserve(dst, bytes, src->len))
        return MP_ENOMEM;
    if (bytes) /* an empty src may have no buffer at all: no memcpy from NULL */
        memcpy(dst->buf.data + base, src->buf.data, bytes);
    for (size_t i = 0; i < src->len; i++)
        dst->off[dst->len + i] = base + src->off[i];
    dst->buf.size += bytes;
    dst->len += src->len;
    return 0;
}

void mp__items_span(const mp_items_t *l, size_t a, size_t b, const char **p, size_t *n)
{
    size_t start = a < l->len ? l->off[a] : items_end(l);
    size_t end = b < l->len ? l->off[b] : items_end(l);
    *p = l->buf.data + start;
    *n = end - start;
}

int mp__task_error_copy(mp_task_error_t *dst, const mp_task_error_t *src)
{
    /* one block for the three strings: a map that fails a million items
       makes a million of these (one malloc each, not three) */
    const char *m = src->message ? src->message : "", *t = src->task ? src->task : "",
               *h = src->host ? src->host : "";
    size_t lm = strlen(m) + 1, lt = strlen(t) + 1, lh = strlen(h) + 1;
    char *block = malloc(lm + lt + lh);
    if (!block) {
        memset(dst, 0, sizeof *dst);
        return MP_ENOMEM;
    }
    *dst = *src;
    dst->message = memcpy(block, m, lm);
    dst->task = memcpy(block + lm, t, lt);
    dst->host = memcpy(block + lm + lt, h, lh);
    return 0;
}

static int reserve_errors(mp_items_t *l, size_t extra)
{
    if (l->errcap - l->nerr >= extra)
        return 0;
    size_t cap = l->errcap ? l->errcap : 8;
    while (cap - l->nerr < extra)
        cap *= 2;
    mp_task_error_t *e = realloc(l->err, cap * sizeof *e);
    if (!e)
        return MP_ENOMEM;
    l->err = e;
    l->errcap = cap;
    return 0;
}

/* Inserts an owned error keeping index order. */
static void insert_error(mp_items_t *l, const mp_task_error_t *e)
{
    size_t k = l->nerr;
    while (k > 0 && l->err[k - 1].index > e->index)
        k--;
    memmove(&l->err[k + 1], &l->err[k], (l->nerr - k) * sizeof *e);
    l->err[k] = *e;
    l->nerr++;
}

int mp__items_add_error(mp_items_t *l, const mp_task_error_t *e)
{
    mp_task_error_t copy;
    if (reserve_errors(l, 1) || mp__task_error_copy(&copy, e))
        return MP_ENOMEM;
    insert_error(l, &copy);
    return 0;
}

int mp__items_take_errors(mp_items_t *dst, mp_items_t *src, size_t offset)
{
    if (reserve_errors(dst, src->nerr))
        return MP_ENOMEM;
    for (size_t k = 0; k < src->nerr; k++) {
        src->err[k].index += offset;
        insert_error(dst, &src->err[k]);
    }
    src->nerr = 0;
    return 0;
}

size_t mp_items_nerrors(const mp_items_t *l)
{
    return l ? l->nerr : 0;
}

const mp_task_error_t *mp_items_error(const mp_items_t *l, size_t i)
{
    if (!l)
        return NULL;
    size_t lo = 0, hi = l->nerr;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->err[mid].index < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->nerr && l->err[lo].index == i ? &l->err[lo] : NULL;
}

const mp_task_error_t *mp_items_error_at(const mp_items_t *l, size_t k)
{
    return l && k < l->nerr ? &l->err[k] : NULL;
}
