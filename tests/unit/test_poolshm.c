/*  test_poolshm.c - the embedded pool's shared rings (libmp/poolshm.h)
    through their internal API: the input ring's allocator (in-order
    allocation, out-of-order frees, reuse only behind the oldest live
    range, wrap-around, restart when empty, the live-range limit, bad
    frees, bounds checks) and the output rings (reserve / commit / out_at /
    consume / hold / release, simulated for many random rounds in one
    process and for real across a fork: a reply is never placed over bytes
    the pool has not consumed or still holds).

    Links the static library: poolshm is internal.
*/
#include <poll.h>
#include <stdlib.h>

#include "pool/poolshm.h"
#include "support.h"

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static uint64_t r8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

/* xorshift: the same sequence on every run */
static uint64_t rng_state;
static void rng_seed(uint64_t s)
{
    rng_state = s ? s : 1;
}
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static uint64_t rng_in(uint64_t lo, uint64_t hi) /* [lo, hi] */
{
    return lo + rng() % (hi - lo + 1);
}

static void fill(char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (char)(x >> 16);
    }
}

/* the area a test uses, destroyed by the teardown when the test failed */
static mp__pshm_t *g_area;

static mp__pshm_t *area(int nslots, size_t in_cap, size_t out_cap)
{
    mp__pshm_t *s = mp__pshm_new(nslots, in_cap, out_cap);
    assert_non_null(s);
    g_area = s;
    return s;
}

static void done(mp__pshm_t **s)
{
    mp__pshm_destroy(s);
    g_area = NULL;
}

static int teardown(void **state)
{
    tu_kill_children(); /* the fork test's child, when it failed */
    mp__pshm_destroy(&g_area);
    return tu_teardown(state);
}

/* ---- the area ----------------------------------------------------------------- */

static void test_pshm_new_checks_its_arguments_and_ids_differ(void **state)
{
    (void)state;
    assert_null(mp__pshm_new(0, page(), page()));
    assert_null(mp__pshm_new(-1, page(), page()));
    assert_null(mp__pshm_new(1025, page(), page()));
    assert_null(mp__pshm_new(1, 0, page()));
    assert_null(mp__pshm_new(1, page(), 0));
    mp__pshm_t *a = mp__pshm_new(3, 1, 1), *b = mp__pshm_new(1, page(), page());
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(mp__pshm_slots(a), 3);
    assert_int_equal(mp__pshm_slots(b), 1);
    assert_int_not_equal(mp__pshm_id(a), 0);
    assert_int_not_equal(mp__pshm_id(b), 0);
    assert_int_not_equal(mp__pshm_id(a), mp__pshm_id(b));
    assert_int_equal(mp__pshm_id(NULL), 0);
    assert_int_equal(mp__pshm_slots(NULL), 0);
    /* 1 byte asked: a whole page each */
    mp__pshm_in_t r;
    char *items;
    assert_true(mp__pshm_in_alloc(a, page(), &r, &items));
    memset(items, 0x5a, page());
    mp__pshm_in_free(a, &r);
    mp__pshm_out_t o;
    assert_true(mp__pshm_out_reserve(a, 2, page(), &o));
    assert_true(o.room == page());
    memset(o.base, 0x5a, page());
    mp__pshm_destroy(&a);
    assert_null(a);
    mp__pshm_destroy(&a); /* safe twice */
    mp__pshm_destroy(NULL);
    mp__pshm_destroy(&b);
}

/* ---- the input ring ------------------------------------------------------------- */

typedef struct {
    mp__pshm_in_t r;
    char *items;
} in_t;

/* *a is written only on success */
static bool in_alloc(mp__pshm_t *s, size_t bytes, in_t *a)
{
    in_t t;
    memset(&t, 0, sizeof t);
    if (!mp__pshm_in_alloc(s, bytes, &t.r, &t.items))
        return false;
    *a = t;
    return true;
}

static void test_pshm_in_allocates_in_order_and_frees_in_any_order(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(2, cap, page());
    assert_int_equal(mp__pshm_in_used(s), 0);

    in_t a, b, c, d, e;
    assert_true(in_alloc(s, 10, &a)); /* 16 bytes */
    const uint64_t in_off = a.r.pos;  /* the ring's start: the first range is there */
    assert_int_equal(a.r.len, 10);
    assert_ptr_equal(a.items, mp__pshm_in_at(s, a.r.pos, a.r.len));
    assert_int_equal(mp__pshm_in_used(s), 16);
    memcpy(a.items, "0123456789", 10);

    assert_true(in_alloc(s, 1000, &b));
    assert_int_equal(b.r.pos, in_off + 16);
    assert_true(in_alloc(s, 1, &c)); /* 8 */
    assert_int_equal(c.r.pos, in_off + 1016);
    assert_int_equal(c.r.len, 1);
    assert_int_equal(mp__pshm_in_used(s), 1024);
    assert_int_not_equal(a.r.ticket, b.r.ticket);
    assert_int_not_equal(b.r.ticket, c.r.ticket);

    /* b and c freed first: nothing comes back while a is live */
    memset(b.items, 0xbb, 1000);
    mp__pshm_in_free(s, &c.r);
    assert_int_equal(mp__pshm_in_used(s), 1024);
    mp__pshm_in_free(s, &b.r);
    assert_int_equal(mp__pshm_in_used(s), 1024);
    assert_memory_equal(a.items, "0123456789", 10); /* untouched by the others */
    assert_true(in_alloc(s, 8, &d));
    assert_int_equal(d.r.pos, in_off + 1024); /* after c, not in b's place */
    /* a freed: everything up to d comes back */
    mp__pshm_in_free(s, &a.r);
    assert_int_equal(mp__pshm_in_used(s), 8);
    assert_true(in_alloc(s, 8, &e));
    assert_int_equal(e.r.pos, in_off + 1032);
    mp__pshm_in_free(s, &e.r); /* the newest first: d still holds the ring */
    assert_int_equal(mp__pshm_in_used(s), 16);
    mp__pshm_in_free(s, &d.r);
    assert_int_equal(mp__pshm_in_used(s), 0);

    /* empty: the next range starts at the ring's start again */
    assert_true(in_alloc(s, 100, &a));
    assert_int_equal(a.r.pos, in_off);
    mp__pshm_in_free(s, &a.r);
    assert_int_equal(mp__pshm_in_used(s), 0);
    done(&s);
}

static void test_pshm_in_space_is_reused_only_after_the_oldest_is_freed(void **state)
{
    (void)state;
    const size_t cap = 4 * page(), q = cap / 4;
    mp__pshm_t *s = area(1, cap, page());
    in_t r[4], x, y, z;
    for (int i = 0; i < 4; i++) {
        assert_true(in_alloc(s, q, &r[i]));
        memset(r[i].items, 'A' + i, q);
    }
    const uint64_t in_off = r[0].r.pos;
    assert_int_equal(r[3].r.pos, in_off + 3 * q);
    assert_int_equal(mp__pshm_in_used(s), cap);
    assert_false(in_alloc(s, 8, &x)); /* full */
    assert_false(in_alloc(s, 1, &x));
    mp__pshm_in_free(s, &r[1].r);
    mp__pshm_in_free(s, &r[2].r);
    assert_int_equal(mp__pshm_in_used(s), cap);
    assert_false(in_alloc(s, 8, &x)); /* r[0] still holds the ring's start */
    assert_false(in_alloc(s, q, &x));
    mp__pshm_in_free(s, &r[0].r);
    assert_int_equal(mp__pshm_in_used(s), q); /* only r[3] */
    /* r[3] ends at the ring's end: the next range wraps to the start */
    assert_true(in_alloc(s, 2 * q, &x));
    assert_int_equal(x.r.pos, in_off);
    memset(x.items, 'X', 2 * q);
    assert_true(in_alloc(s, q, &y));
    assert_int_equal(y.r.pos, in_off + 2 * q);
    memset(y.items, 'Y', q);
    assert_int_equal(mp__pshm_in_used(s), cap);
    assert_false(in_alloc(s, 8, &z));
    for (size_t i = 0; i < q; i++)
        if (r[3].items[i] != 'D')
            fail_msg("the live range was overwritten at %zu", i);
    mp__pshm_in_free(s, &r[3].r);
    mp__pshm_in_free(s, &x.r);
    mp__pshm_in_free(s, &y.r);
    assert_int_equal(mp__pshm_in_used(s), 0);
    done(&s);
}

static void test_pshm_in_wraps_when_a_range_does_not_fit_before_the_end(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(1, cap, page());
    in_t a, b, c, d;
    assert_true(in_alloc(s, cap - 1000, &a));
    const uint64_t in_off = a.r.pos;
    assert_true(in_alloc(s, 200, &b)); /* ends 800 before the end */
    assert_int_equal(b.r.pos, in_off + cap - 1000);
    memset(b.items, 'b', 200);
    /* does not fit in the 800 left while a is live */
    assert_false(in_alloc(s, 1000, &c));
    mp__pshm_in_free(s, &a.r);
    assert_int_equal(mp__pshm_in_used(s), 200);
    /* 1000 bytes: not before the end (800 left), so at the start */
    assert_true(in_alloc(s, 995, &c)); /* 1000 with its padding */
    assert_int_equal(c.r.pos, in_off);
    memset(c.items, 'c', 995);
    /* the 800 skipped count as used until b goes */
    assert_int_equal(mp__pshm_in_used(s), 200 + 800 + 1000);
    /* up to b's start is free now: cap - 1000 - 1000 bytes */
    assert_false(in_alloc(s, cap - 2000 + 8, &d));
    assert_true(in_alloc(s, cap - 2000, &d));
    assert_int_equal(d.r.pos, in_off + 1000);
    memset(d.items, 'd', cap - 2000);
    for (int i = 0; i < 200; i++)
        assert_int_equal(b.items[i], 'b');
    for (int i = 0; i < 995; i++)
        assert_int_equal(c.items[i], 'c');
    assert_false(in_alloc(s, 8, &a));
    mp__pshm_in_free(s, &b.r);
    assert_int_equal(mp__pshm_in_used(s), cap - 1000);
    mp__pshm_in_free(s, &c.r);
    mp__pshm_in_free(s, &d.r);
    assert_int_equal(mp__pshm_in_used(s), 0);
    done(&s);
}

static void test_pshm_in_a_range_larger_than_the_ring_fails(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(1, cap, page());
    in_t a, x;
    assert_false(in_alloc(s, cap + 1, &a));
    assert_false(in_alloc(s, 2 * cap, &a));
    assert_false(in_alloc(s, SIZE_MAX / 2, &a));
    assert_false(in_alloc(s, (size_t)UINT32_MAX + 1, &a));
    assert_int_equal(mp__pshm_in_used(s), 0);
    assert_true(in_alloc(s, cap - 3, &a)); /* padded: exactly the ring */
    assert_int_equal(mp__pshm_in_used(s), cap);
    memset(a.items, 1, cap - 3);
    assert_false(in_alloc(s, 1, &x));
    mp__pshm_in_free(s, &a.r);
    assert_int_equal(mp__pshm_in_used(s), 0);
    done(&s);
}

/* Sizes whose padding to 8 would wrap around zero are larger than the ring
   too: no range, nothing used. */
static void test_pshm_in_a_size_near_SIZE_MAX_fails(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(1, cap, page());
    in_t a;
    for (size_t k = 0; k < 8; k++)
        if (in_alloc(s, SIZE_MAX - k, &a))
            fail_msg("a range of SIZE_MAX - %zu bytes was given: pos %llu, len %llu", k,
                     (unsigned long long)a.r.pos, (unsigned long long)a.r.len);
    assert_int_equal(mp__pshm_in_used(s), 0);
    done(&s);
}

static void test_pshm_in_at_most_1024_ranges_live(void **state)
{
    (void)state;
    const size_t cap = 64 * page();
    mp__pshm_t *s = area(1, cap, page());
    static in_t r[1024];
    in_t x;
    for (int i = 0; i < 1024; i++) {
        assert_true(in_alloc(s, 8, &r[i]));
        memcpy(r[i].items, &i, sizeof i);
    }
    assert_int_equal(mp__pshm_in_used(s), 1024 * 8);
    assert_false(in_alloc(s, 8, &x)); /* the ring has room, the table has not */
    mp__pshm_in_free(s, &r[500].r);
    assert_false(in_alloc(s, 8, &x)); /* a range freed behind the oldest stays counted */
    mp__pshm_in_free(s, &r[0].r);
    assert_true(in_alloc(s, 8, &x)); /* the oldest gone: one more */
    in_t y;
    assert_false(in_alloc(s, 8, &y)); /* 1024 again */
    for (int i = 1; i < 1024; i++) {
        int v;
        memcpy(&v, r[i].items, sizeof v);
        assert_int_equal(v, i);
    }
    /* the new range's ticket shares a table entry with r[0]'s: freeing r[0]
       again must not free it */
    mp__pshm_in_free(s, &r[0].r);
    for (int i = 1; i < 1024; i++)
        mp__pshm_in_free(s, &r[i].r);
    assert_int_equal(mp__pshm_in_used(s), 8);
    assert_false(in_alloc(s, cap, &r[0])); /* x is still live */
    mp__pshm_in_free(s, &x.r);
    assert_int_equal(mp__pshm_in_used(s), 0);
    assert_true(in_alloc(s, cap, &r[0]));
    mp__pshm_in_free(s, &r[0].r);
    done(&s);
}

static void test_pshm_in_double_free_and_bad_tickets_are_ignored(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(1, cap, page());
    in_t a, b, c, bad;
    /* nothing live: any free is ignored */
    memset(&bad, 0, sizeof bad);
    mp__pshm_in_free(s, &bad.r);
    assert_int_equal(mp__pshm_in_used(s), 0);

    assert_true(in_alloc(s, 100, &a));
    assert_true(in_alloc(s, 100, &b));
    assert_true(in_alloc(s, 100, &c));
    assert_int_equal(mp__pshm_in_used(s), 312); /* 3 x 104 */
    mp__pshm_in_free(s, &b.r);
    mp__pshm_in_free(s, &b.r); /* twice: still only b */
    assert_int_equal(mp__pshm_in_used(s), 312);
    bad = a;
    bad.r.ticket += 1024; /* same table entry, another ticket */
    mp__pshm_in_free(s, &bad.r);
    bad.r.ticket = c.r.ticket + 1; /* never given */
    mp__pshm_in_free(s, &bad.r);
    bad.r.ticket = 0xffffffffu;
    mp__pshm_in_free(s, &bad.r);
    assert_int_equal(mp__pshm_in_used(s), 312);
    in_t d;
    assert_true(in_alloc(s, 8, &d));
    assert_int_equal(d.r.pos, a.r.pos + 312); /* a is still live */
    mp__pshm_in_free(s, &a.r);
    assert_int_equal(mp__pshm_in_used(s), 112); /* c and d */
    mp__pshm_in_free(s, &a.r);                  /* a retired: ignored */
    mp__pshm_in_free(s, &b.r);
    assert_int_equal(mp__pshm_in_used(s), 112);
    mp__pshm_in_free(s, &c.r);
    assert_int_equal(mp__pshm_in_used(s), 8);
    mp__pshm_in_free(s, &c.r);
    assert_int_equal(mp__pshm_in_used(s), 8);
    mp__pshm_in_free(s, &d.r);
    assert_int_equal(mp__pshm_in_used(s), 0);
    mp__pshm_in_free(s, &d.r);
    assert_int_equal(mp__pshm_in_used(s), 0);
    /* a stale ticket after the ring restarted does not free the new range */
    in_t e;
    assert_true(in_alloc(s, 8, &e));
    assert_int_equal(e.r.pos, a.r.pos);
    mp__pshm_in_free(s, &a.r);
    mp__pshm_in_free(s, &d.r);
    assert_int_equal(mp__pshm_in_used(s), 8);
    mp__pshm_in_free(s, &e.r);
    assert_int_equal(mp__pshm_in_used(s), 0);
    done(&s);
}

static void test_pshm_in_at_rejects_what_is_outside_the_input_ring(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(2, cap, 2 * page());
    in_t a;
    assert_true(in_alloc(s, 8, &a));
    const uint64_t in_off = a.r.pos;
    mp__pshm_in_free(s, &a.r);
    assert_true(in_off > 0); /* the header is before the ring */
    const char *start = mp__pshm_in_at(s, in_off, cap);
    assert_non_null(start);
    assert_ptr_equal(mp__pshm_in_at(s, in_off + 100, 10), start + 100);
    assert_ptr_equal(mp__pshm_in_at(s, in_off + cap - 8, 8), start + cap - 8);
    assert_ptr_equal(mp__pshm_in_read(s, in_off + 8, cap - 8), start + 8);
    /* before the ring: the header */
    assert_null(mp__pshm_in_at(s, 0, 8));
    assert_null(mp__pshm_in_at(s, in_off - 1, 1));
    assert_null(mp__pshm_in_at(s, in_off - 8, 16));
    /* after it: the output rings */
    assert_null(mp__pshm_in_at(s, in_off + cap - 8, 9));
    assert_null(mp__pshm_in_at(s, in_off + cap, 1));
    assert_null(mp__pshm_in_at(s, in_off + cap + 1, 0));
    assert_null(mp__pshm_in_at(s, in_off + cap + page(), 8));
    assert_null(mp__pshm_in_at(s, in_off, cap + 1));
    assert_null(mp__pshm_in_at(s, in_off + 1, cap));
    /* overflowing numbers */
    assert_null(mp__pshm_in_at(s, in_off, UINT64_MAX));
    assert_null(mp__pshm_in_at(s, in_off + 8, UINT64_MAX - 7));
    assert_null(mp__pshm_in_at(s, UINT64_MAX, 1));
    assert_null(mp__pshm_in_at(s, UINT64_MAX, 0));
    assert_null(mp__pshm_in_at(s, UINT64_MAX - 7, 8));
    assert_null(mp__pshm_in_at(s, in_off + cap / 2, UINT64_MAX - cap / 2 + 1)); /* wraps to 0 */
    assert_null(mp__pshm_in_at(s, (uint64_t)1 << 63, (uint64_t)1 << 63));
    assert_null(mp__pshm_in_read(s, in_off, UINT64_MAX));
    assert_null(mp__pshm_in_read(s, 0, 8));
    assert_null(mp__pshm_in_read(s, in_off + cap, 8));
    done(&s);
}

/* ---- the output rings ------------------------------------------------------------ */

/* One reply: reserve need, write used bytes of pattern seed, commit. */
static bool put(mp__pshm_t *s, int slot, size_t need, size_t used, uint32_t seed, mp__pshm_out_t *o)
{
    if (!mp__pshm_out_reserve(s, slot, need, o))
        return false;
    assert_true(o->room >= need);
    assert_true(used <= o->room);
    fill(o->base, r8(used) <= o->room ? r8(used) : used, seed);
    mp__pshm_out_commit(s, o, used);
    return true;
}

static void check(mp__pshm_t *s, int slot, uint64_t at, size_t len, uint32_t seed)
{
    const char *p = mp__pshm_out_at(s, slot, at, len);
    assert_non_null(p);
    char *want = malloc(len ? len : 1);
    assert_non_null(want);
    fill(want, len, seed);
    assert_memory_equal(p, want, len);
    free(want);
}

static void test_pshm_out_reserve_commit_out_at_consume(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(2, page(), cap);
    mp__pshm_out_t a, b, c, d;

    /* bad slots */
    assert_false(mp__pshm_out_reserve(s, -1, 8, &a));
    assert_false(mp__pshm_out_reserve(s, 2, 8, &a));
    assert_false(mp__pshm_out_reserve(s, INT32_MAX, 8, &a));
    assert_null(mp__pshm_out_at(s, -1, 0, 0));
    assert_null(mp__pshm_out_at(s, 2, 0, 0));
    mp__pshm_out_consume(s, -1, 8);
    mp__pshm_out_consume(s, 2, 8);
    /* nothing published yet */
    assert_null(mp__pshm_out_at(s, 0, 0, 8));
    assert_false(mp__pshm_out_reserve(s, 0, cap + 1, &a));

    assert_true(put(s, 0, 100, 100, 1, &a));
    assert_int_equal(a.slot, 0);
    assert_int_equal(a.at, 0);
    assert_int_equal(a.room, cap);
    char *ring0 = a.base;
    assert_ptr_equal(mp__pshm_out_at(s, 0, 0, 104), ring0);
    check(s, 0, 0, 100, 1);
    assert_non_null(mp__pshm_out_at(s, 0, 8, 96)); /* inside what was published */
    assert_null(mp__pshm_out_at(s, 0, 0, 105));    /* beyond the head */
    assert_null(mp__pshm_out_at(s, 0, 8, 97));
    assert_null(mp__pshm_out_at(s, 0, 112, 8));
    assert_null(mp__pshm_out_at(s, 0, 0, cap + 1));
    assert_null(mp__pshm_out_at(s, 0, 0, UINT64_MAX));
    assert_null(mp__pshm_out_at(s, 0, UINT64_MAX, 8));
    assert_null(mp__pshm_out_at(s, 0, UINT64_MAX - 7, 8));
    assert_null(mp__pshm_out_at(s, 1, 0, 8)); /* the other slot published nothing */

    /* slot 1's ring is its own, after slot 0's */
    assert_true(put(s, 1, 64, 64, 2, &b));
    assert_int_equal(b.at, 0);
    assert_ptr_equal(b.base, ring0 + cap);
    check(s, 0, 0, 100, 1);

    /* a second reply in slot 0 right after the first */
    assert_true(put(s, 0, 1000, 1000, 3, &c));
    assert_int_equal(c.at, 104);
    assert_ptr_equal(c.base, ring0 + 104);
    assert_int_equal(c.room, cap - 104);
    assert_ptr_equal(mp__pshm_out_at(s, 0, 104, 1000), ring0 + 104);
    assert_non_null(mp__pshm_out_at(s, 0, 0, 1104)); /* both */

    /* consumed: the first is gone, the second is still there */
    mp__pshm_out_consume(s, 0, 104);
    assert_null(mp__pshm_out_at(s, 0, 0, 104));
    assert_null(mp__pshm_out_at(s, 0, 96, 16));
    check(s, 0, 104, 1000, 3);
    /* consume never goes back */
    mp__pshm_out_consume(s, 0, 8);
    assert_null(mp__pshm_out_at(s, 0, 8, 8));
    check(s, 0, 104, 1000, 3);
    mp__pshm_out_consume(s, 0, 1104);
    assert_null(mp__pshm_out_at(s, 0, 104, 1000));
    check(s, 1, 0, 64, 2);

    /* slot 0 is empty at 1104: the next reply restarts at the ring's start */
    assert_true(put(s, 0, 200, 200, 4, &d));
    assert_int_equal(d.at, cap);
    assert_ptr_equal(d.base, ring0);
    assert_int_equal(d.room, cap);
    check(s, 0, cap, 200, 4);
    /* and the one after it follows it, the skip not counted as used */
    assert_true(put(s, 0, cap - 200, cap - 200, 5, &a));
    assert_int_equal(a.at, cap + 200);
    assert_int_equal(a.room, cap - 200);
    check(s, 0, cap, 200, 4);
    assert_false(mp__pshm_out_reserve(s, 0, 8, &b)); /* full */
    mp__pshm_out_consume(s, 0, cap + 200);
    check(s, 0, cap + 200, cap - 200, 5);
    assert_true(mp__pshm_out_reserve(s, 0, 200, &b)); /* room again, at the next lap */
    assert_int_equal(b.at, 2 * cap);
    assert_int_equal(b.room, 200);
    assert_false(mp__pshm_out_reserve(s, 0, 208, &b));
    done(&s);
}

static void test_pshm_out_next_lap_and_ranges_across_the_end(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(1, page(), cap);
    mp__pshm_out_t a, b, c, d;
    const size_t la = cap - 6000, lb = 4000;
    assert_true(put(s, 0, la, la, 11, &a));
    char *ring = a.base;
    assert_true(put(s, 0, lb, lb, 12, &b)); /* up to 2000 before the end */
    assert_int_equal(b.at, la);
    mp__pshm_out_consume(s, 0, la);
    /* 5000 bytes: not in the 2000 before the end, so at the start of the
       next lap, not over b */
    assert_true(put(s, 0, 5000, 5000, 13, &c));
    assert_int_equal(c.at, cap);
    assert_ptr_equal(c.base, ring);
    assert_true(c.room <= la); /* stops where b starts */
    assert_int_equal(c.room, la);
    check(s, 0, la, lb, 12);
    check(s, 0, cap, 5000, 13);
    /* a range across the ring's end is refused, even when published */
    assert_null(mp__pshm_out_at(s, 0, la, cap - la + 5000));
    assert_null(mp__pshm_out_at(s, 0, la, cap - la + 8));
    assert_non_null(mp__pshm_out_at(s, 0, la, cap - la)); /* b and the skipped end */
    /* more than fits before b: fails */
    assert_false(mp__pshm_out_reserve(s, 0, la - 5000 + 8, &d));
    assert_true(mp__pshm_out_reserve(s, 0, la - 5000, &d));
    assert_int_equal(d.at, cap + 5000);
    assert_int_equal(d.room, la - 5000);
    /* b consumed: at least as much room, still after c */
    mp__pshm_out_consume(s, 0, la + lb);
    assert_null(mp__pshm_out_at(s, 0, la, lb));
    assert_true(mp__pshm_out_reserve(s, 0, la - 5000, &d));
    assert_int_equal(d.at, cap + 5000);
    assert_true(d.at + d.room <= cap + cap); /* never over c (at cap) */
    check(s, 0, cap, 5000, 13);
    /* c consumed too: the whole ring */
    mp__pshm_out_consume(s, 0, cap + 5000);
    assert_true(mp__pshm_out_reserve(s, 0, cap, &d));
    assert_int_equal(d.at, 2 * cap);
    assert_int_equal(d.room, cap);
    done(&s);
}

/* The pool consumes by the numbers a RESULT carries, also when they were
   wrong (recv.c, on_result_piece): an end beyond what the executor published is
   ignored, and does not stop later replies from being consumed. */
static void test_pshm_out_a_consume_beyond_the_head_is_ignored(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(1, page(), cap);
    mp__pshm_out_t a, b;
    assert_true(put(s, 0, 1000, 1000, 41, &a));
    mp__pshm_out_consume(s, 0, 1008);              /* 8 beyond the head */
    mp__pshm_out_consume(s, 0, (uint64_t)1 << 60); /* far beyond */
    mp__pshm_out_consume(s, 0, UINT64_MAX);
    check(s, 0, 0, 1000, 41);
    /* the real end: consumed */
    mp__pshm_out_consume(s, 0, 1000);
    assert_null(mp__pshm_out_at(s, 0, 0, 1000));
    /* and the next replies are consumed as they come */
    assert_true(put(s, 0, 2000, 2000, 42, &b));
    assert_int_equal(b.at, cap); /* the ring was empty: its start */
    mp__pshm_out_consume(s, 0, b.at + 2000);
    assert_null(mp__pshm_out_at(s, 0, b.at, 2000));
    assert_true(mp__pshm_out_reserve(s, 0, cap, &b));
    assert_int_equal(b.room, cap);
    done(&s);
}

/* A reply the pool never consumed (its RESULT was discarded) is consumed
   with the next one. */
static void test_pshm_out_a_reply_is_consumed_implicitly_by_a_later_one(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(1, page(), cap);
    mp__pshm_out_t a, b, c, d;
    assert_true(put(s, 0, 3000, 3000, 21, &a));
    assert_true(put(s, 0, 3000, 3000, 22, &b));
    assert_true(put(s, 0, 3000, 3000, 23, &c));
    check(s, 0, b.at, 3000, 22);
    mp__pshm_out_consume(s, 0, b.at + 3000); /* a never consumed on its own */
    assert_null(mp__pshm_out_at(s, 0, a.at, 3000));
    assert_null(mp__pshm_out_at(s, 0, b.at, 3000));
    check(s, 0, c.at, 3000, 23);
    /* a's and b's bytes are free: room up to c from the next lap */
    assert_true(put(s, 0, cap - 9000, cap - 9000, 24, &d));
    assert_int_equal(d.at, 9000);
    assert_true(mp__pshm_out_reserve(s, 0, 6000, &d));
    assert_int_equal(d.at, cap);
    assert_int_equal(d.room, 6000);
    assert_false(mp__pshm_out_reserve(s, 0, 6008, &d));
    check(s, 0, c.at, 3000, 23);
    done(&s);
}

/* With no chunk in flight the pool consumes every ring up to its head
   (mp__pshm_out_idle): replies it never saw (discarded by the broker) do
   not keep a ring full for good; a ring with held replies keeps them. */
static void test_pshm_out_idle_consumes_replies_nobody_will_read(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(2, page(), cap);
    mp__pshm_out_t a, b, c;
    /* slot 0: three replies the pool never sees fill the ring */
    assert_true(put(s, 0, cap / 4, cap / 4, 31, &a));
    assert_true(put(s, 0, cap / 4, cap / 4, 32, &b));
    assert_true(put(s, 0, cap / 4, cap / 4, 33, &c));
    assert_false(mp__pshm_out_reserve(s, 0, cap / 2, &c));
    /* slot 1: one reply held */
    mp__pshm_out_t h;
    assert_true(put(s, 1, 1000, 1000, 34, &h));
    assert_true(mp__pshm_out_hold(s, 1, h.at));
    mp__pshm_out_consume(s, 1, h.at + 1000);
    mp__pshm_out_idle(s);
    /* slot 0 is free again: the whole ring from its start */
    assert_null(mp__pshm_out_at(s, 0, a.at, cap / 4));
    assert_true(mp__pshm_out_reserve(s, 0, cap, &c));
    assert_int_equal(c.room, cap);
    /* slot 1's held reply is intact and readable until released */
    check(s, 1, h.at, 1000, 34);
    mp__pshm_out_release(s, 1, h.at);
    assert_null(mp__pshm_out_at(s, 1, h.at, 1000));
    done(&s);
}

/* Positions are multiples of 8: an unaligned one is refused, and the room
   a reserve gives is a multiple of 8 (so a full reply keeps the next
   position aligned). */
static void test_pshm_out_positions_stay_aligned(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(1, page(), cap);
    mp__pshm_out_t a, b;
    assert_true(put(s, 0, 1000, 1000, 41, &a));
    assert_null(mp__pshm_out_at(s, 0, a.at + 4, 8));
    assert_non_null(mp__pshm_out_at(s, 0, a.at, 1000));
    mp__pshm_out_consume(s, 0, a.at + 1000); /* consumed to 1000: not a multiple of 8 */
    assert_true(put(s, 0, 100, 100, 42, &b));
    assert_int_equal(b.at % 8, 0);
    assert_int_equal(b.room % 8, 0);
    done(&s);
}

/* The pool keeps a reply that came before the pieces ahead of it in the
   ring (mp__pshm_out_hold): consuming later replies stops at it until it is
   released; there is a bound on how many it may hold. */
static void test_pshm_out_held_replies_stay_until_released(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(2, page(), cap);
    mp__pshm_out_t a, b, c, d;
    assert_false(mp__pshm_out_hold(s, -1, 0));
    assert_false(mp__pshm_out_hold(s, 2, 0));
    mp__pshm_out_release(s, -1, 0);
    mp__pshm_out_release(s, 2, 0);
    assert_true(put(s, 0, 3000, 3000, 31, &a));
    assert_true(put(s, 0, 3000, 3000, 32, &b));
    assert_true(put(s, 0, 3000, 3000, 33, &c));
    /* b is held, a and b seen, then c: a's bytes come back, b's do not */
    assert_true(mp__pshm_out_hold(s, 0, b.at));
    mp__pshm_out_consume(s, 0, a.at + 3000);
    mp__pshm_out_consume(s, 0, b.at + 3000);
    mp__pshm_out_consume(s, 0, c.at + 3000);
    assert_null(mp__pshm_out_at(s, 0, a.at, 3000));
    check(s, 0, b.at, 3000, 32);
    check(s, 0, c.at, 3000, 33); /* behind b, so readable still */
    /* room: from c's end up to b's start, one lap on */
    assert_false(mp__pshm_out_reserve(s, 0, cap - 9000 + 3000 + 8, &d));
    assert_true(put(s, 0, cap - 9000, cap - 9000, 34, &d));
    assert_int_equal(d.at, 9000);
    assert_true(mp__pshm_out_reserve(s, 0, 3000, &d));
    assert_int_equal(d.at, cap);
    assert_int_equal(d.room, 3000); /* a's place only */
    assert_false(mp__pshm_out_reserve(s, 0, 3008, &d));
    mp__pshm_out_consume(s, 0, 9000 + cap - 9000);
    check(s, 0, b.at, 3000, 32);
    /* releasing what is not held changes nothing */
    mp__pshm_out_release(s, 0, c.at);
    mp__pshm_out_release(s, 1, b.at);
    check(s, 0, b.at, 3000, 32);
    assert_false(mp__pshm_out_reserve(s, 0, 3008, &d));
    /* released: everything seen comes back, the ring is empty */
    mp__pshm_out_release(s, 0, b.at);
    assert_null(mp__pshm_out_at(s, 0, b.at, 3000));
    assert_true(mp__pshm_out_reserve(s, 0, cap, &d));
    assert_int_equal(d.at, cap);
    assert_int_equal(d.room, cap);

    /* the bound: holding fails at some point, and works again after a release */
    assert_true(put(s, 1, 8, 8, 35, &a));
    int held = 0;
    while (held < 100000 && mp__pshm_out_hold(s, 1, a.at))
        held++;
    assert_true(held >= 1 && held < 100000);
    mp__pshm_out_release(s, 1, a.at);
    assert_true(mp__pshm_out_hold(s, 1, a.at));
    mp__pshm_out_consume(s, 1, a.at + 8);
    check(s, 1, a.at, 8, 35); /* still held (held times) */
    for (int i = 0; i < held; i++)
        mp__pshm_out_release(s, 1, a.at);
    assert_null(mp__pshm_out_at(s, 1, a.at, 8));
    done(&s);
}

/* Many random rounds, two slots, one process playing executor and pool:
   every reply's bytes stay as written until the pool is done with them
   (consumed and not held), a reservation never covers such a byte, and
   every path of reserve is taken. */
enum { UNSEEN, HELD, DONE };

typedef struct {
    uint64_t at, len;
    int state;
    char *copy;
} rep_t;

#define MAXREP 4096

typedef struct {
    rep_t q[MAXREP]; /* by position; DONE ones are dropped from the front */
    size_t first, n;
    size_t next_unseen; /* index (from first) of the oldest reply the pool has not seen */
    uint64_t head;      /* the model's: the end of the last reply */
    char *ring;
    int nheld;
} model_t;

static rep_t *rep(model_t *m, size_t k)
{
    return &m->q[(m->first + k) % MAXREP];
}

static void model_trim(model_t *m)
{
    while (m->n && rep(m, 0)->state == DONE) {
        free(rep(m, 0)->copy);
        rep(m, 0)->copy = NULL;
        m->first = (m->first + 1) % MAXREP;
        m->n--;
        m->next_unseen--;
    }
}

/* the oldest byte the pool still needs, or none (false) */
static bool model_oldest(model_t *m, uint64_t *at)
{
    for (size_t k = 0; k < m->n; k++)
        if (rep(m, k)->state != DONE) {
            *at = rep(m, k)->at;
            return true;
        }
    return false;
}

static void sim_check_all(mp__pshm_t *s, int slot, model_t *m)
{
    for (size_t k = 0; k < m->n; k++) {
        rep_t *p = rep(m, k);
        if (p->state == DONE)
            continue;
        const char *at = mp__pshm_out_at(s, slot, p->at, p->len);
        if (!at)
            fail_msg("slot %d: reply at %llu (%llu bytes) no longer readable", slot,
                     (unsigned long long)p->at, (unsigned long long)p->len);
        if (memcmp(at, p->copy, p->len) != 0)
            fail_msg("slot %d: reply at %llu (%llu bytes) overwritten", slot,
                     (unsigned long long)p->at, (unsigned long long)p->len);
    }
}

static void test_pshm_out_random_rounds_never_overwrite_unconsumed_replies(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(2, page(), cap);
    static model_t m[2];
    memset(m, 0, sizeof m);
    rng_seed(0x5eed1234abcdULL);
    unsigned in_place = 0, restarts = 0, next_laps = 0, fulls = 0, implicit = 0, consumed = 0,
             holds = 0, releases = 0, hold_refused = 0;
    uint32_t seq = 0;
    for (int it = 0; it < 10000; it++) {
        int slot = (int)(rng() % 2);
        model_t *md = &m[slot];
        size_t unseen = md->n - md->next_unseen;
        unsigned dice = (unsigned)(rng() % 100);
        bool can_see = unseen > 0, can_release = md->nheld > 0;
        if ((!can_see && !can_release) || (md->n < MAXREP - 1 && dice < 50)) {
            /* the executor */
            size_t need = (size_t)rng_in(1, rng() % 8 ? cap / 4 : cap);
            mp__pshm_out_t o;
            uint64_t oldest;
            bool busy = model_oldest(md, &oldest);
            if (!mp__pshm_out_reserve(s, slot, need, &o)) {
                assert_true(busy); /* an empty ring has room for anything up to its size */
                fulls++;
                continue;
            }
            assert_int_equal(o.slot, slot);
            assert_true(o.room >= need);
            assert_true(o.at >= md->head);
            assert_int_equal(o.at % 8, 0);
            assert_true(o.at % cap + o.room <= cap); /* contiguous */
            if (!md->ring) {
                assert_int_equal(o.at, 0);
                md->ring = o.base;
            }
            assert_ptr_equal(o.base, md->ring + o.at % cap);
            if (busy && o.at + o.room > oldest + cap)
                fail_msg("iteration %d: reservation [%llu, +%zu) covers the reply at %llu", it,
                         (unsigned long long)o.at, o.room, (unsigned long long)oldest);
            if (o.at == md->head)
                in_place++;
            else if (!busy)
                restarts++;
            else
                next_laps++;
            /* the executor writes anything up to the room */
            size_t used = rng() % 4 ? (size_t)rng_in(1, need) : (size_t)rng_in(1, o.room);
            rep_t *p = rep(md, md->n);
            p->at = o.at;
            p->len = r8(used);
            p->state = UNSEEN;
            assert_true(p->len <= o.room);
            p->copy = malloc(p->len);
            assert_non_null(p->copy);
            fill(p->copy, p->len, ++seq);
            memcpy(o.base, p->copy, p->len);
            mp__pshm_out_commit(s, &o, used);
            md->n++;
            md->head = p->at + p->len;
            assert_ptr_equal(mp__pshm_out_at(s, slot, p->at, p->len), o.base);
            assert_null(mp__pshm_out_at(s, slot, p->at, p->len + 8));
        } else if (can_release && (!can_see || dice < 60)) {
            /* the pool: a held reply's turn came, it is read and released */
            size_t pick = (size_t)(rng() % (uint64_t)md->nheld), k = 0;
            rep_t *p = NULL;
            for (; k < md->n; k++)
                if (rep(md, k)->state == HELD && pick-- == 0) {
                    p = rep(md, k);
                    break;
                }
            assert_non_null(p);
            const char *at = mp__pshm_out_at(s, slot, p->at, p->len);
            assert_non_null(at);
            assert_memory_equal(at, p->copy, p->len);
            mp__pshm_out_release(s, slot, p->at);
            p->state = DONE;
            md->nheld--;
            releases++;
        } else {
            /* the pool: the next RESULT; sometimes the one after it (the
               broker discarded one), sometimes held for later */
            size_t k = md->next_unseen;
            if (unseen >= 2 && rng() % 20 == 0) {
                rep(md, k)->state = DONE; /* never seen, consumed with the next */
                k++;
                implicit++;
            }
            rep_t *p = rep(md, k);
            const char *at = mp__pshm_out_at(s, slot, p->at, p->len);
            assert_non_null(at);
            assert_memory_equal(at, p->copy, p->len);
            bool hold = rng() % 4 == 0;
            if (hold && !mp__pshm_out_hold(s, slot, p->at)) {
                hold = false;
                hold_refused++;
            }
            mp__pshm_out_consume(s, slot, p->at + p->len);
            md->next_unseen = k + 1;
            if (hold) {
                p->state = HELD;
                md->nheld++;
                holds++;
                assert_ptr_equal(mp__pshm_out_at(s, slot, p->at, p->len), at);
            } else {
                p->state = DONE;
                consumed++;
            }
        }
        model_trim(md);
        uint64_t oldest;
        if (!model_oldest(md, &oldest) && md->n == md->next_unseen) {
            /* nothing needed: a reply as large as the ring fits */
            mp__pshm_out_t o;
            assert_true(mp__pshm_out_reserve(s, slot, cap, &o));
            assert_int_equal(o.room, cap);
        }
        sim_check_all(s, 0, &m[0]);
        sim_check_all(s, 1, &m[1]);
        if (m[0].ring && m[1].ring)
            assert_true(m[0].ring + cap <= m[1].ring || m[1].ring + cap <= m[0].ring);
    }
    /* every path was taken */
    print_message("in place %u, restarts %u, next laps %u, full %u, implicit %u, consumed %u, "
                  "held %u, released %u, hold refused %u\n",
                  in_place, restarts, next_laps, fulls, implicit, consumed, holds, releases,
                  hold_refused);
    assert_true(in_place > 100);
    assert_true(restarts > 10);
    assert_true(next_laps > 10);
    assert_true(fulls > 10);
    assert_true(implicit > 10);
    assert_true(consumed > 1000);
    assert_true(holds > 100);
    assert_true(releases > 100);
    (void)hold_refused;
    for (int sl = 0; sl < 2; sl++) { /* everything seen and released: room again */
        for (size_t k = 0; k < m[sl].n; k++) {
            rep_t *p = rep(&m[sl], k);
            if (p->state == HELD)
                mp__pshm_out_release(s, sl, p->at);
            free(p->copy);
        }
        mp__pshm_out_consume(s, sl, m[sl].head);
        mp__pshm_out_t o;
        assert_true(mp__pshm_out_reserve(s, sl, cap, &o));
        assert_int_equal(o.room, cap);
    }
    done(&s);
}

/* ---- across a fork: an executor in a child, the pool in the parent ------------------ */

typedef struct {
    uint64_t seq, at, len, used;
} rec_t;

enum { FORK_REPLIES = 3000 };

static void child_executor(mp__pshm_t *s, int out)
{
    rng_seed(0xc0ffee);
    uint64_t deadline = tu_now_ms() + 20000, fulls = 0;
    for (uint64_t i = 0; i < FORK_REPLIES; i++) {
        size_t need = (size_t)rng_in(8, 6000);
        mp__pshm_out_t o;
        while (!mp__pshm_out_reserve(s, 1, need, &o)) {
            if (tu_now_ms() > deadline)
                _exit(2);
            fulls++;
            usleep(50);
        }
        if (o.room < need)
            _exit(3);
        /* what it asked for, or (as an executor may) up to all the room */
        size_t used = (size_t)(i % 4 ? rng_in(1, need) : rng_in(1, o.room));
        rec_t r = {i, o.at, r8(used), used};
        fill(o.base, used, (uint32_t)i);
        memset(o.base + used, 0, r.len - used); /* the padding */
        mp__pshm_out_commit(s, &o, used);
        if (write(out, &r, sizeof r) != (ssize_t)sizeof r)
            _exit(4);
    }
    rec_t end = {UINT64_MAX, fulls, 0, 0}; /* how often the ring was full */
    if (write(out, &end, sizeof end) != (ssize_t)sizeof end)
        _exit(4);
    _exit(0);
}

/* 1: a record; 0: none within ms; -1: EOF or error */
static int read_rec(int fd, rec_t *r, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return 0;
    size_t got = 0;
    while (got < sizeof *r) { /* records are written whole (< PIPE_BUF) */
        ssize_t n = read(fd, (char *)r + got, sizeof *r - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 1;
}

static void check_rec(mp__pshm_t *s, const rec_t *r)
{
    static char want[1 << 20];
    const char *p = mp__pshm_out_at(s, 1, r->at, r->len);
    if (!p)
        fail_msg("reply %llu at %llu: not readable", (unsigned long long)r->seq,
                 (unsigned long long)r->at);
    fill(want, r->used, (uint32_t)r->seq);
    memset(want + r->used, 0, r->len - r->used);
    if (memcmp(p, want, r->len) != 0)
        fail_msg("reply %llu at %llu (%llu bytes) differs from what the child wrote",
                 (unsigned long long)r->seq, (unsigned long long)r->at, (unsigned long long)r->len);
}

static void test_pshm_out_across_a_fork(void **state)
{
    (void)state;
    const size_t cap = 4 * page();
    mp__pshm_t *s = area(2, page(), cap);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = tu_fork();
    if (pid == 0) {
        g_area = NULL; /* the parent's */
        close(fds[0]);
        child_executor(s, fds[1]);
    }
    close(fds[1]);
    uint64_t deadline = tu_now_ms() + 30000;
    rec_t pend[16];
    size_t npend = 0, seen = 0, waits = 0;
    uint64_t last_end = 0;
    const char *why = NULL;
    while (seen < FORK_REPLIES && !why) {
        if (tu_now_ms() > deadline) {
            why = "timed out";
            break;
        }
        rec_t r;
        int got = read_rec(fds[0], &r, 1);
        if (got < 0) {
            why = "the child ended early";
            break;
        }
        if (got == 0) { /* the child waits for room (or is slow): consume the oldest */
            if (npend) {
                waits++;
                mp__pshm_out_consume(s, 1, pend[0].at + pend[0].len);
                assert_null(mp__pshm_out_at(s, 1, pend[0].at, pend[0].len));
                memmove(pend, pend + 1, (npend - 1) * sizeof *pend);
                npend--;
            }
            continue;
        }
        if (r.seq != seen || r.at < last_end || r.len > cap || r.used > r.len) {
            why = "a bad record";
            break;
        }
        last_end = r.at + r.len;
        seen++;
        pend[npend++] = r;
        /* hold replies unconsumed (the child runs into a full ring), check
           every held one each time, consume one, or all, now and then */
        for (size_t k = 0; k < npend; k++)
            check_rec(s, &pend[k]);
        if (npend == 16 || seen % 5 == 0) {
            size_t upto = seen % 3 == 0 ? npend : 1;
            mp__pshm_out_consume(s, 1, pend[upto - 1].at + pend[upto - 1].len);
            memmove(pend, pend + upto, (npend - upto) * sizeof *pend);
            npend -= upto;
        }
    }
    while (npend) { /* the rest */
        mp__pshm_out_consume(s, 1, pend[npend - 1].at + pend[npend - 1].len);
        npend = 0;
    }
    rec_t end = {0, 0, 0, 0};
    int got = 0;
    while (!why && got == 0 && tu_now_ms() < deadline)
        got = read_rec(fds[0], &end, 100);
    if (!why && (got != 1 || end.seq != UINT64_MAX))
        why = "no final record";
    close(fds[0]);
    int status = tu_wait_exit(pid, 10000);
    if (status == -1)
        fail_msg("the child did not end"); /* the teardown kills it */
    if (why)
        fail_msg("%s after %zu replies", why, seen);
    assert_int_equal(seen, FORK_REPLIES);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(waits > 0);
    assert_true(end.at > 0); /* the child did find the ring full, and went on */
    /* slot 0 was never written */
    assert_null(mp__pshm_out_at(s, 0, 0, 8));
    done(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pshm_new_checks_its_arguments_and_ids_differ, teardown),
        cmocka_unit_test_teardown(test_pshm_in_allocates_in_order_and_frees_in_any_order, teardown),
        cmocka_unit_test_teardown(test_pshm_in_space_is_reused_only_after_the_oldest_is_freed,
                                  teardown),
        cmocka_unit_test_teardown(test_pshm_in_wraps_when_a_range_does_not_fit_before_the_end,
                                  teardown),
        cmocka_unit_test_teardown(test_pshm_in_a_range_larger_than_the_ring_fails, teardown),
        cmocka_unit_test_teardown(test_pshm_in_a_size_near_SIZE_MAX_fails, teardown),
        cmocka_unit_test_teardown(test_pshm_in_at_most_1024_ranges_live, teardown),
        cmocka_unit_test_teardown(test_pshm_in_double_free_and_bad_tickets_are_ignored, teardown),
        cmocka_unit_test_teardown(test_pshm_in_at_rejects_what_is_outside_the_input_ring, teardown),
        cmocka_unit_test_teardown(test_pshm_out_reserve_commit_out_at_consume, teardown),
        cmocka_unit_test_teardown(test_pshm_out_next_lap_and_ranges_across_the_end, teardown),
        cmocka_unit_test_teardown(test_pshm_out_a_consume_beyond_the_head_is_ignored, teardown),
        cmocka_unit_test_teardown(test_pshm_out_a_reply_is_consumed_implicitly_by_a_later_one,
                                  teardown),
        cmocka_unit_test_teardown(test_pshm_out_held_replies_stay_until_released, teardown),
        cmocka_unit_test_teardown(test_pshm_out_random_rounds_never_overwrite_unconsumed_replies,
                                  teardown),
        cmocka_unit_test_teardown(test_pshm_out_across_a_fork, teardown),
        cmocka_unit_test_teardown(test_pshm_out_idle_consumes_replies_nobody_will_read, teardown),
        cmocka_unit_test_teardown(test_pshm_out_positions_stay_aligned, teardown),
    };
    return cmocka_run_group_tests_name("poolshm", tests, NULL, NULL);
}
