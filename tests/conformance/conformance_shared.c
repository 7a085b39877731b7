/*  conformance_shared.c - CPython's _TestValue and _TestArray
    (Lib/test/_test_multiprocessing.py, 3.11) ported to mp/value.h. CPython
    runs these with processes only; so do we (fork children, CPython's
    default start method on Linux). _TestSharedMemory is in
    conformance_shm.c (one table: shared.rows.md).

    Python's attribute access maps onto the typed calls: v.value is
    mp_value_get_int/_double and set, arr[i] mp_array_get_int/set_int,
    arr[a:b] mp_array_read/write, get_lock() mp_value_get_lock (NULL where
    Python has no get_lock), get_obj() mp_value_ptr.
*/
#include "support.h"

/* ---- _TestValue --------------------------------------------------------------------------- */

/* CPython's codes_values: (typecode, initial, value set by the child). */
static const struct {
    char code;
    double initial, changed;
} codes_values[] = {
    {'i', 4343, 24234}, {'d', 3.625, -4.25},
    {'h', -232, 234},   {'q', 8589934592.0 /* 2**33 */, 17179869184.0 /* 2**34 */},
    {'c', 'x', 'y'},
};
enum { NVALUES = sizeof codes_values / sizeof codes_values[0] };

static bool is_float(char code)
{
    return code == 'd' || code == 'f';
}

static int set(mp_value_t *v, char code, double x)
{
    return is_float(code) ? mp_value_set_double(v, x) : mp_value_set_int(v, (int64_t)x);
}

static double get(mp_value_t *v, char code)
{
    return is_float(code) ? mp_value_get_double(v) : (double)mp_value_get_int(v);
}

typedef union {
    int i;
    double d;
    short h;
    long long q;
    char c;
} item_t;

/* x as one item of type code, in *item: the initial value to give. */
static const void *initial(char code, double x, item_t *item)
{
    switch (code) {
    case 'i':
        item->i = (int)x;
        break;
    case 'd':
        item->d = x;
        break;
    case 'h':
        item->h = (short)x;
        break;
    case 'q':
        item->q = (long long)x;
        break;
    default:
        item->c = (char)x;
        break;
    }
    return item;
}

/* CPython's _TestValue._test: the child sets every value. */
static int set_changed(void *arg)
{
    mp_value_t **values = arg;
    for (int i = 0; i < NVALUES; i++)
        if (set(values[i], codes_values[i].code, codes_values[i].changed) != 0)
            return 1;
    return 0;
}

static void check_values(bool raw)
{
    mp_ctype_opts_t opts = {.raw = raw};
    mp_value_t *values[NVALUES];
    item_t items[NVALUES];
    for (int i = 0; i < NVALUES; i++) {
        values[i] =
            mp_value_new(codes_values[i].code,
                         initial(codes_values[i].code, codes_values[i].initial, &items[i]), &opts);
        assert_non_null(values[i]);
    }
    for (int i = 0; i < NVALUES; i++)
        assert_true(get(values[i], codes_values[i].code) == codes_values[i].initial);
    mp_process_t *p;
    tu_start_n(&p, 1, set_changed, values); /* daemon, as CPython's */
    int code;
    assert_int_equal(tu_join_n(&p, 1, 5000, &code), 1);
    assert_int_equal(code, 0);
    for (int i = 0; i < NVALUES; i++)
        assert_true(get(values[i], codes_values[i].code) == codes_values[i].changed);
    for (int i = 0; i < NVALUES; i++)
        mp_value_destroy(&values[i]);
}

/* test_value: Values of types i, d, h, q, c hold their initial value and
   show the values a child process set. */
static void conformance_shared_test_value(void **state)
{
    check_values(false);
}

/* test_rawvalue: the same with RawValue (opts.raw). */
static void conformance_shared_test_rawvalue(void **state)
{
    check_values(true);
}

/* test_getobj_getlock: a Value has a lock by default (lock=None too), or
   the lock it was given; with lock=False, or as a RawValue, it has none
   (NULL). Python's lock='navalue' (a string where a lock goes) has no C
   form: the type system rejects it. */
static void conformance_shared_test_getobj_getlock(void **state)
{
    int five = 5;
    mp_value_t *val1 = mp_value_new('i', &five, NULL);
    assert_non_null(mp_value_get_lock(val1));
    assert_int_equal(*(int *)mp_value_ptr(val1), 5); /* get_obj() */

    mp_value_t *val2 = mp_value_new('i', &five, &(mp_ctype_opts_t){0}); /* lock=None */
    assert_non_null(mp_value_get_lock(val2));
    assert_int_equal(*(int *)mp_value_ptr(val2), 5);

    mp_lock_t *lock = mp_lock_new();
    mp_value_t *val3 = mp_value_new('i', &five, &(mp_ctype_opts_t){.lock = lock});
    assert_ptr_equal(mp_value_get_lock(val3), lock);
    assert_int_equal(*(int *)mp_value_ptr(val3), 5);

    mp_value_t *arr4 = mp_value_new('i', &five, &(mp_ctype_opts_t){.raw = true}); /* lock=False */
    assert_null(mp_value_get_lock(arr4));

    mp_value_t *arr5 = mp_value_new('i', &five, &(mp_ctype_opts_t){.raw = true}); /* RawValue */
    assert_null(mp_value_get_lock(arr5));

    mp_value_destroy(&val1);
    mp_value_destroy(&val2);
    mp_value_destroy(&val3);
    mp_value_destroy(&arr4);
    mp_value_destroy(&arr5);
    mp_lock_destroy(&lock);
}

/* ---- _TestArray --------------------------------------------------------------------------- */

enum { SEQ_LEN = 10 };

/* CPython's _TestArray.f on a plain C array: running sums. */
static void running_sums(int *seq, size_t n)
{
    for (size_t i = 1; i < n; i++)
        seq[i] += seq[i - 1];
}

/* The same on the shared array, one item access at a time as Python's
   seq[i] += seq[i-1] does. */
static int running_sums_child(void *arg)
{
    mp_array_t *arr = arg;
    for (size_t i = 1; i < mp_array_len(arr); i++)
        if (mp_array_set_int(arr, i, mp_array_get_int(arr, i) + mp_array_get_int(arr, i - 1)))
            return 1;
    return 0;
}

static void check_array(bool raw)
{
    int seq[SEQ_LEN] = {680, 626, 934, 821, 150, 233, 548, 982, 714, 831};
    mp_array_t *arr = mp_array_new('i', SEQ_LEN, seq, &(mp_ctype_opts_t){.raw = raw});
    assert_non_null(arr);

    assert_int_equal(mp_array_len(arr), SEQ_LEN);
    assert_int_equal(mp_array_get_int(arr, 3), seq[3]);
    int slice[SEQ_LEN];
    assert_int_equal(mp_array_read(arr, 2, 5, slice), 0); /* arr[2:7] */
    assert_memory_equal(slice, seq + 2, 5 * sizeof(int));

    const int four[] = {1, 2, 3, 4};
    assert_int_equal(mp_array_write(arr, 4, 4, four), 0); /* arr[4:8] = seq[4:8] = ... */
    memcpy(seq + 4, four, sizeof four);
    assert_int_equal(mp_array_read(arr, 0, SEQ_LEN, slice), 0);
    assert_memory_equal(slice, seq, sizeof seq);

    running_sums(seq, SEQ_LEN);
    mp_process_t *p;
    tu_start_n(&p, 1, running_sums_child, arr);
    int code;
    assert_int_equal(tu_join_n(&p, 1, 5000, &code), 1);
    assert_int_equal(code, 0);
    assert_int_equal(mp_array_read(arr, 0, SEQ_LEN, slice), 0);
    assert_memory_equal(slice, seq, sizeof seq);
    mp_array_destroy(&arr);
}

/* test_array: len, item, slice read, slice assignment, and a child's
   running sums seen by the parent. */
static void conformance_shared_test_array(void **state)
{
    check_array(false);
}

/* test_array_from_size: Array('i', 10) is zero-filled (three times over,
   to reuse freed memory), and arr[:] = range(10) fills it. */
static void conformance_shared_test_array_from_size(void **state)
{
    for (int round = 0; round < 3; round++) {
        mp_array_t *arr = mp_array_new('i', SEQ_LEN, NULL, NULL);
        assert_non_null(arr);
        assert_int_equal(mp_array_len(arr), SEQ_LEN);
        int got[SEQ_LEN], zeros[SEQ_LEN] = {0}, range[SEQ_LEN];
        assert_int_equal(mp_array_read(arr, 0, SEQ_LEN, got), 0);
        assert_memory_equal(got, zeros, sizeof zeros);
        for (int i = 0; i < SEQ_LEN; i++)
            range[i] = i;
        assert_int_equal(mp_array_write(arr, 0, SEQ_LEN, range), 0);
        assert_int_equal(mp_array_read(arr, 0, SEQ_LEN, got), 0);
        assert_memory_equal(got, range, sizeof range);
        mp_array_destroy(&arr);
    }
}

/* test_rawarray: test_array on a RawArray (opts.raw). */
static void conformance_shared_test_rawarray(void **state)
{
    check_array(true);
}

/* test_getobj_getlock_obj: test_getobj_getlock for Arrays of range(10). */
static void conformance_shared_test_getobj_getlock_obj(void **state)
{
    int range[SEQ_LEN];
    for (int i = 0; i < SEQ_LEN; i++)
        range[i] = i;
    mp_array_t *arr1 = mp_array_new('i', SEQ_LEN, range, NULL);
    assert_non_null(mp_array_get_lock(arr1));
    assert_memory_equal(mp_array_ptr(arr1), range, sizeof range); /* get_obj() */

    mp_array_t *arr2 = mp_array_new('i', SEQ_LEN, range, &(mp_ctype_opts_t){0}); /* lock=None */
    assert_non_null(mp_array_get_lock(arr2));
    assert_memory_equal(mp_array_ptr(arr2), range, sizeof range);

    mp_lock_t *lock = mp_lock_new();
    mp_array_t *arr3 = mp_array_new('i', SEQ_LEN, range, &(mp_ctype_opts_t){.lock = lock});
    assert_ptr_equal(mp_array_get_lock(arr3), lock);
    assert_memory_equal(mp_array_ptr(arr3), range, sizeof range);

    mp_array_t *arr4 = mp_array_new('i', SEQ_LEN, range, &(mp_ctype_opts_t){.raw = true});
    assert_null(mp_array_get_lock(arr4)); /* lock=False */

    mp_array_t *arr5 = mp_array_new('i', SEQ_LEN, range, &(mp_ctype_opts_t){.raw = true});
    assert_null(mp_array_get_lock(arr5)); /* RawArray */

    mp_array_destroy(&arr1);
    mp_array_destroy(&arr2);
    mp_array_destroy(&arr3);
    mp_array_destroy(&arr4);
    mp_array_destroy(&arr5);
    mp_lock_destroy(&lock);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(conformance_shared_test_value, tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_rawvalue, tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_getobj_getlock, tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_array, tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_array_from_size, tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_rawarray, tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_getobj_getlock_obj, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
