/*  test_value.c - Value and Array (sharedctypes) across processes. */
#include <wchar.h>

#include "support.h"

static int increment_100k(void *arg)
{
    mp_value_t *v = arg;
    mp_lock_t *lock = mp_value_get_lock(v);
    for (int i = 0; i < 100000; i++) {
        if (mp_lock_acquire(lock, -1))
            return 1;
        /* the Python idiom: with v.get_lock(): v.value += 1 */
        mp_value_set_int(v, mp_value_get_int(v) + 1);
        mp_lock_release(lock);
    }
    return 0;
}

static void test_value_incremented_by_4_processes_is_exact(void **state)
{
    mp_value_t *v = mp_value_new('i', NULL, NULL);
    assert_non_null(mp_value_get_lock(v));
    mp_process_t *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = tu_start(increment_100k, v, NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tu_join(&p[i], 60000), 0);
    assert_int_equal(mp_value_get_int(v), 400000);
    mp_value_destroy(&v);
}

static void test_every_typecode_round_trips(void **state)
{
    const char codes[] = "cbB?hHiIlLqQfdu";
    for (const char *c = codes; *c; c++) {
        mp_value_t *v = mp_value_new(*c, NULL, NULL);
        assert_non_null(v);
        assert_int_equal(mp_array_typecode(v), *c);
        assert_int_equal(mp_value_get_int(v), 0);
        assert_int_equal(mp_value_set_int(v, 65), 0);
        assert_int_equal(mp_value_get_int(v), *c == '?' ? 1 : 65);
        assert_int_equal(mp_value_set_double(v, 2.5), 0);
        double want = (*c == 'f' || *c == 'd') ? 2.5 : (*c == '?' ? 1.0 : 2.0);
        assert_true(mp_value_get_double(v) == want);
        mp_value_destroy(&v);
    }
    assert_int_equal(mp_typecode_size('d'), sizeof(double));
    assert_int_equal(mp_typecode_size('u'), sizeof(wchar_t));
    assert_int_equal(mp_typecode_size('x'), 0);
    assert_null(mp_value_new('x', NULL, NULL));

    /* wrap-around as C stores it */
    mp_value_t *b = mp_value_new('B', NULL, NULL);
    mp_value_set_int(b, 255);
    assert_int_equal(mp_value_add_int(b, 1), 0);
    mp_value_destroy(&b);
    mp_value_t *q = mp_value_new('Q', NULL, NULL);
    mp_value_set_int(q, -1);
    assert_true(*(unsigned long long *)mp_value_ptr(q) == ~0ULL);
    mp_value_destroy(&q);

    double init = 1.25;
    mp_value_t *d = mp_value_new('d', &init, NULL);
    assert_true(mp_value_get_double(d) == 1.25);
    assert_true(*(double *)mp_value_ptr(d) == 1.25);
    mp_value_destroy(&d);
}

static void test_raw_and_given_lock(void **state)
{
    mp_value_t *raw = mp_value_new('i', NULL, &(mp_ctype_opts_t){.raw = true});
    assert_null(mp_value_get_lock(raw));
    assert_int_equal(mp_value_add_int(raw, 5), 5);
    mp_value_destroy(&raw);

    mp_lock_t *lock = mp_lock_new();
    mp_ctype_opts_t opts = {.lock = lock};
    mp_value_t *a = mp_value_new('i', NULL, &opts);
    mp_array_t *b = mp_array_new('d', 4, NULL, &opts);
    assert_ptr_equal(mp_value_get_lock(a), lock);
    assert_ptr_equal(mp_array_get_lock(b), lock);
    mp_value_destroy(&a);
    mp_array_destroy(&b);
    mp_lock_destroy(&lock);
}

static int fill_array(void *arg)
{
    mp_array_t *a = arg;
    for (size_t i = 0; i < mp_array_len(a); i++)
        if (mp_array_set_int(a, i, (int64_t)(i * i)))
            return 1;
    return 0;
}

static void test_array_shared_and_sliced(void **state)
{
    int init[5] = {9, 9, 9, 9, 9};
    mp_array_t *small = mp_array_new('i', 5, init, NULL);
    assert_int_equal(mp_array_get_int(small, 4), 9);
    mp_array_destroy(&small);

    mp_array_t *a = mp_array_new('l', 1000, NULL, NULL);
    assert_int_equal(mp_array_len(a), 1000);
    assert_int_equal(tu_run(fill_array, a), 0);
    assert_int_equal(mp_array_get_int(a, 999), 999 * 999);
    long slice[3];
    assert_int_equal(mp_array_read(a, 10, 3, slice), 0);
    assert_int_equal(slice[0], 100);
    assert_int_equal(slice[2], 144);
    long repl[2] = {-1, -2};
    assert_int_equal(mp_array_write(a, 998, 2, repl), 0);
    assert_int_equal(((long *)mp_array_ptr(a))[999], -2);
    assert_int_equal(mp_array_read(a, 999, 2, slice), MP_EINVAL);
    assert_int_equal(mp_array_write(a, 1001, 0, repl), MP_EINVAL);
    assert_int_equal(mp_array_set_int(a, 1000, 1), MP_EINVAL);
    assert_int_equal(mp_array_get_int(a, 1000), 0);
    mp_array_destroy(&a);

    mp_array_t *chars = mp_array_new('c', 6, "hello", NULL);
    assert_string_equal((char *)mp_array_ptr(chars), "hello");
    mp_array_destroy(&chars);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_value_incremented_by_4_processes_is_exact, tu_teardown),
        cmocka_unit_test_teardown(test_every_typecode_round_trips, tu_teardown),
        cmocka_unit_test_teardown(test_raw_and_given_lock, tu_teardown),
        cmocka_unit_test_teardown(test_array_shared_and_sliced, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
