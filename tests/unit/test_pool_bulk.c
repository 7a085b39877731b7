/*  test_pool_bulk.c - argument tuples of ints added in bulk
    (mp_items_add_int_tuples): the same bytes as tuples added one by one,
    for every int width and arities 0 to 3 (pairs and triples have their
    own unrolled writer); a starmap of them on an embedded pool, and one
    item that is no tuple failing alone.

    After every test: no child process, no ipc file.
*/
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "../integration/test_tasks.c"

static void test_pool_int_tuples_in_bulk_are_the_tuples_added_one_by_one(void **state)
{
    (void)state;
    /* every int width, both signs: the encoder's paths */
    const int64_t v[] = {0,         1,         -1,           127,           128,   -32,
                         -33,       255,       256,          -129,          65536, -32769,
                         INT64_MAX, INT64_MIN, 4294967296LL, -2147483649LL, 5,     6};
    size_t n = sizeof v / sizeof *v;
    for (size_t arity = 0; arity <= 3; arity++) {
        size_t ntuples = arity ? n / arity : 4;
        mp_items_t *bulk = mp_items_new(), *one = mp_items_new();
        assert_int_equal(mp_items_add_int(bulk, 42), 0); /* appends after what is there */
        assert_int_equal(mp_items_add_int(one, 42), 0);
        assert_int_equal(mp_items_add_int_tuples(bulk, arity ? v : NULL, ntuples, arity), 0);
        for (size_t t = 0; t < ntuples; t++) {
            assert_int_equal(mp_items_add_tuple(one, arity), 0);
            for (size_t k = 0; k < arity; k++)
                assert_int_equal(mp_items_add_int(one, v[t * arity + k]), 0);
        }
        assert_int_equal(mp_items_len(bulk), ntuples + 1);
        assert_int_equal(mp_items_len(one), ntuples + 1);
        for (size_t i = 0; i < ntuples + 1; i++) {
            const void *a, *b;
            size_t na, nb;
            assert_int_equal(mp_items_packed(bulk, i, &a, &na), 0);
            assert_int_equal(mp_items_packed(one, i, &b, &nb), 0);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, na);
        }
        mp_items_destroy(&bulk);
        mp_items_destroy(&one);
    }
    /* errors: nothing is added */
    mp_items_t *l = mp_items_new();
    assert_int_equal(mp_items_add_int_tuples(NULL, v, 1, 2), MP_EINVAL);
    assert_int_equal(mp_items_add_int_tuples(l, NULL, 1, 2), MP_EINVAL);
    assert_int_equal(mp_items_add_int_tuples(l, NULL, 0, 2), 0);
    assert_int_equal(mp_items_add_int_tuples(l, v, SIZE_MAX / 2, 2), MP_ENOMEM);
    assert_int_equal(mp_items_len(l), 0);
    assert_int_equal(mp_items_add_tuple(l, 2), 0);
    assert_int_equal(mp_items_add_int_tuples(l, v, 1, 2), MP_ESTATE);
    assert_int_equal(mp_items_add_int(l, 1), 0);
    assert_int_equal(mp_items_add_int(l, 2), 0);
    assert_int_equal(mp_items_len(l), 1);
    mp_items_destroy(&l);
}

/* A starmap of bulk tuples, with ints of every width (the executors read
   one-byte ints without parsing, the others through the reader), and an
   item that is not a tuple: only that item fails. */
static void test_pool_starmap_of_bulk_tuples_and_a_non_tuple_item(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    enum { N = 3000 };
    static int64_t pairs[2 * N];
    for (int64_t i = 0; i < N; i++) {
        pairs[2 * i] = i % 7 == 0 ? -i * 100000 : i;
        pairs[2 * i + 1] = i % 3 == 0 ? -i : i * 1000;
    }
    mp_items_t *in = mp_items_new(), *out = NULL;
    assert_int_equal(mp_items_add_int_tuples(in, pairs, N, 2), 0);
    assert_int_equal(mp_items_add_int(in, 7), 0); /* not a tuple */
    assert_int_equal(mp_items_add_int_tuples(in, pairs, 1, 2), 0);
    assert_int_equal(mp_pool_starmap(pool, "add", in, 250, &out), MP_EBADARGS);
    assert_int_equal(mp_items_len(out), N + 2);
    assert_int_equal(mp_items_nerrors(out), 1);
    for (size_t i = 0; i < N; i++) {
        int64_t v = -1;
        assert_int_equal(mp_items_int(out, i, &v), 0);
        assert_int_equal(v, pairs[2 * i] + pairs[2 * i + 1]);
    }
    const mp_task_error_t *e = mp_items_error(out, N);
    assert_non_null(e);
    assert_int_equal(e->code, MP_EBADARGS);
    assert_non_null(strstr(e->message, "not an argument tuple"));
    int64_t last = -1;
    assert_int_equal(mp_items_int(out, N + 1, &last), 0);
    assert_int_equal(last, pairs[0] + pairs[1]);
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pool_int_tuples_in_bulk_are_the_tuples_added_one_by_one,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_starmap_of_bulk_tuples_and_a_non_tuple_item,
                                  tu_pool_teardown),
    };
    return cmocka_run_group_tests_name("pool_bulk", tests, NULL, NULL);
}
