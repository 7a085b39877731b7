/*  test_wire_ints.c - the buffer-less int writers and readers of the map hot
    loops (wire.h: mp__put_int, mp__get_int, mp__scalar_len) against the
    buffered ones they stand in for (mp__w_int, mp__rd_int, mp__rd_skip),
    and the list calls built on them against their one-value-at-a-time
    equivalents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/items_impl.h"
#include "mp.h"
#include "codec/wire.h"

static const int64_t edges[] = {0,
                                1,
                                31,
                                127,
                                128,
                                255,
                                256,
                                32767,
                                32768,
                                65535,
                                65536,
                                2147483647LL,
                                2147483648LL,
                                4294967295LL,
                                4294967296LL,
                                INT64_MAX,
                                -1,
                                -31,
                                -32,
                                -33,
                                -127,
                                -128,
                                -129,
                                -32767,
                                -32768,
                                -32769,
                                INT32_MIN + 1LL,
                                INT32_MIN,
                                INT32_MIN - 1LL,
                                INT64_MIN + 1,
                                INT64_MIN};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static int64_t next_value(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    int shift = (int)(rng % 64); /* every magnitude */
    return (int64_t)(rng >> 1) >> shift ^ ((rng & 1) ? -1 : 0);
}

static void check_one(int64_t v)
{
    uint8_t fast[16];
    char slow_store[16];
    mp__buf_t slow;
    mp__buf_init(&slow, slow_store, sizeof slow_store);
    size_t n = mp__put_int(fast, v);
    assert_int_equal(mp__w_int(&slow, v), 0);
    assert_int_equal(n, slow.size);
    assert_memory_equal(fast, slow.data, n);
    assert_int_equal(mp__scalar_len(fast[0]), n);
    int64_t got = 0;
    assert_int_equal(mp__get_int(fast, n, &got), n);
    assert_true(got == v);
    for (size_t cut = 0; cut < n; cut++) /* cut short: no int there */
        assert_int_equal(mp__get_int(fast, cut, &got), 0);
    mp__rd_t r;
    mp__rd_init(&r, fast, n);
    assert_int_equal(mp__rd_skip(&r), 0);
    assert_int_equal(mp__rd_left(&r), 0);
    mp__buf_release(&slow);
}

static void put_and_get_match_the_buffered_coders(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
        check_one(edges[i]);
    for (int i = 0; i < 200000; i++)
        check_one(next_value());
}

static void get_int_refuses_what_rd_int_refuses(void **state)
{
    (void)state;
    int64_t v = 0;
    /* uint64 above INT64_MAX */
    const uint8_t big[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(mp__get_int(big, sizeof big, &v), 0);
    mp__rd_t r;
    mp__rd_init(&r, big, sizeof big);
    assert_int_equal(mp__rd_int(&r, &v), MP_ETYPE);
    /* not ints: nil, a float, a string, an array */
    const uint8_t others[] = {0xc0, 0xcb, 0xa1, 0x91, 0xc4, 0xdc};
    for (size_t i = 0; i < sizeof others; i++) {
        uint8_t value[16] = {others[i]};
        assert_int_equal(mp__get_int(value, sizeof value, &v), 0);
    }
    assert_int_equal(mp__get_int(others, 0, &v), 0);
    /* scalar lengths of the non-int scalars; 0 for what needs parsing */
    assert_int_equal(mp__scalar_len(0xc0), 1);
    assert_int_equal(mp__scalar_len(0xc2), 1);
    assert_int_equal(mp__scalar_len(0xc3), 1);
    assert_int_equal(mp__scalar_len(0xca), 5);
    assert_int_equal(mp__scalar_len(0xcb), 9);
    assert_int_equal(mp__scalar_len(0xa1), 0);
    assert_int_equal(mp__scalar_len(0x91), 0);
    assert_int_equal(mp__scalar_len(0xc1), 0); /* never used */
    assert_int_equal(mp__scalar_len(0xd9), 0);
}

/* mp_items_add_ints / add_int_tuples write exactly what adding one by one
   writes, and mp_items_ints reads back every value. */
static void bulk_list_calls_match_one_by_one(void **state)
{
    (void)state;
    enum { N = 100000 };
    int64_t *v = malloc(N * 3 * sizeof *v), *back = malloc(N * sizeof *back);
    assert_non_null(v);
    assert_non_null(back);
    for (size_t i = 0; i < N * 3; i++)
        v[i] = i < sizeof edges / sizeof *edges ? edges[i] : next_value();
    mp_items_t *bulk = mp_items_new(), *one = mp_items_new();
    assert_int_equal(mp_items_add_ints(bulk, v, N), 0);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(mp_items_add_int(one, v[i]), 0);
    assert_int_equal(mp_items_len(bulk), N);
    const char *a, *b;
    size_t an, bn;
    mp__items_span(bulk, 0, N, &a, &an);
    mp__items_span(one, 0, N, &b, &bn);
    assert_int_equal(an, bn);
    assert_memory_equal(a, b, an);
    for (size_t i = 0; i < N; i += 997) {
        int64_t x = 0;
        assert_int_equal(mp_items_int(bulk, i, &x), 0);
        assert_true(x == v[i]);
    }
    assert_int_equal(mp_items_ints(bulk, back), 0);
    assert_memory_equal(back, v, N * sizeof *v);
    mp_items_destroy(&bulk);
    mp_items_destroy(&one);

    for (size_t arity = 0; arity <= 17; arity += 1) { /* fixarray and array16 headers */
        size_t nt = N / (arity + 1);
        bulk = mp_items_new();
        one = mp_items_new();
        assert_int_equal(mp_items_add_int_tuples(bulk, v, nt, arity), 0);
        for (size_t t = 0; t < nt; t++) {
            assert_int_equal(mp_items_add_tuple(one, arity), 0);
            for (size_t k = 0; k < arity; k++)
                assert_int_equal(mp_items_add_int(one, v[t * arity + k]), 0);
        }
        assert_int_equal(mp_items_len(bulk), nt);
        mp__items_span(bulk, 0, nt, &a, &an);
        mp__items_span(one, 0, nt, &b, &bn);
        assert_int_equal(an, bn);
        assert_memory_equal(a, b, an);
        mp_items_destroy(&bulk);
        mp_items_destroy(&one);
    }
    /* mp_items_ints stops at the first item that is not an int */
    bulk = mp_items_new();
    mp_items_add_ints(bulk, v, 10);
    mp_items_add_str(bulk, "x");
    mp_items_add_ints(bulk, v, 10);
    assert_int_equal(mp_items_ints(bulk, back), MP_ETYPE);
    assert_memory_equal(back, v, 10 * sizeof *v);
    mp_items_destroy(&bulk);
    free(v);
    free(back);
}

/* The validating append of received values: exact item boundaries, and a
   list unchanged by anything malformed. */
static void append_packed_checks_every_value(void **state)
{
    (void)state;
    mp_items_t *src = mp_items_new(), *dst = mp_items_new();
    mp_items_add_int(src, 1);
    mp_items_add_str(src, "hello");
    mp_items_add_int(src, -70000);
    mp_items_add_float(src, 2.5);
    mp_items_add_nil(src);
    mp_items_add_bool(src, true);
    mp_items_add_int(src, INT64_MIN);
    const char *p;
    size_t n;
    mp__items_span(src, 0, 7, &p, &n);
    assert_int_equal(mp__items_append_packed(dst, p, n, 7), 0);
    assert_int_equal(mp_items_len(dst), 7);
    const char *s;
    size_t sn;
    assert_int_equal(mp_items_str(dst, 1, &s, &sn), 0);
    assert_int_equal(sn, 5);
    int64_t x;
    assert_int_equal(mp_items_int(dst, 6, &x), 0);
    assert_true(x == INT64_MIN);
    /* wrong counts, a cut value, trailing bytes: MP_EBADMSG, nothing added */
    assert_int_equal(mp__items_append_packed(dst, p, n, 6), MP_EBADMSG);
    assert_int_equal(mp__items_append_packed(dst, p, n, 8), MP_EBADMSG);
    assert_int_equal(mp__items_append_packed(dst, p, n - 1, 7), MP_EBADMSG);
    const uint8_t cut_int[] = {0x01, 0xcd, 0x01};
    assert_int_equal(mp__items_append_packed(dst, cut_int, sizeof cut_int, 2), MP_EBADMSG);
    const uint8_t never[] = {0xc1};
    assert_int_equal(mp__items_append_packed(dst, never, 1, 1), MP_EBADMSG);
    assert_int_equal(mp_items_len(dst), 7);
    mp__items_span(dst, 0, 7, &s, &sn);
    assert_int_equal(sn, n);
    assert_memory_equal(s, p, n);
    mp_items_destroy(&src);
    mp_items_destroy(&dst);
}

/* Large list buffers are kept for the next list once freed: a child forked
   afterwards (its parent's cache is not its own) makes, fills and frees
   large lists of its own, and so does the parent after it. */
static void large_lists_after_a_fork(void **state)
{
    (void)state;
    enum { N = 1000000 };
    int64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < N; i++)
        v[i] = (int64_t)i * 7 - 3000000;
    for (int round = 0; round < 2; round++) { /* the second takes from the cache */
        mp_items_t *l = mp_items_new();
        assert_int_equal(mp_items_add_ints(l, v, N), 0);
        mp_items_destroy(&l);
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        int64_t *back = malloc(N * sizeof *back);
        for (int round = 0; round < 3 && back; round++) {
            mp_items_t *l = mp_items_new();
            bad |= mp_items_add_ints(l, v, N) != 0;
            bad |= mp_items_ints(l, back) != 0;
            bad |= memcmp(back, v, N * sizeof *v) != 0;
            mp_items_destroy(&l);
        }
        _exit(back && !bad ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    mp_items_t *l = mp_items_new();
    int64_t *back = malloc(N * sizeof *back);
    assert_non_null(back);
    assert_int_equal(mp_items_add_ints(l, v, N), 0);
    assert_int_equal(mp_items_ints(l, back), 0);
    assert_memory_equal(back, v, N * sizeof *v);
    mp_items_destroy(&l);
    free(back);
    free(v);
}

/* An empty reply appended to an empty list: nothing to copy, and no copy
   to or from a NULL buffer (UBSan stopped the fuzz_wire target on it). */
static void append_packed_of_nothing_to_an_empty_list(void **state)
{
    (void)state;
    mp_items_t *l = mp_items_new();
    const uint8_t one = 0x01;
    assert_int_equal(mp__items_append_packed(l, &one, 0, 0), 0);
    assert_int_equal(mp__items_append_packed(l, NULL, 0, 0), 0);
    assert_int_equal(mp_items_len(l), 0);
    assert_int_equal(mp__items_append_packed(l, NULL, 0, 2), MP_EBADMSG); /* items need bytes */
    assert_int_equal(mp__items_append_packed(l, &one, 1, 0), MP_EBADMSG); /* bytes need items */
    assert_int_equal(mp__items_append_packed(l, &one, 1, 1), 0);
    int64_t v = 0;
    assert_int_equal(mp_items_int(l, 0, &v), 0);
    assert_int_equal(v, 1);
    mp_items_destroy(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_and_get_match_the_buffered_coders),
        cmocka_unit_test(get_int_refuses_what_rd_int_refuses),
        cmocka_unit_test(bulk_list_calls_match_one_by_one),
        cmocka_unit_test(append_packed_checks_every_value),
        cmocka_unit_test(append_packed_of_nothing_to_an_empty_list),
        cmocka_unit_test(large_lists_after_a_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
