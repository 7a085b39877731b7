/*  test_obj.c - mp_obj_t and its msgpack codec: round trips and hostile input. */
#include <math.h>
#include <stdlib.h>

#include "support.h"

static mp_obj_t *roundtrip(const mp_obj_t *o)
{
    char *data = NULL;
    size_t size = 0;
    assert_int_equal(mp_obj_pack(o, &data, &size), 0);
    mp_obj_t *back = NULL;
    assert_int_equal(mp_obj_unpack(data, size, &back), 0);
    free(data);
    return back;
}

static void test_scalars_round_trip(void **state)
{
    int64_t ints[] = {0,         1,        -1,        127,       128,
                      -32,       -33,      255,       256,       65535,
                      65536,     -129,     INT32_MAX, INT32_MIN, (int64_t)INT32_MAX + 1,
                      INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        mp_obj_t *o = mp_obj_new_int(ints[i]);
        mp_obj_t *b = roundtrip(o);
        assert_int_equal(mp_obj_type(b), MP_OBJ_INT);
        assert_true(mp_obj_int(b) == ints[i]);
        mp_obj_destroy(&o);
        mp_obj_destroy(&b);
    }
    mp_obj_t *u = mp_obj_new_uint(UINT64_MAX);
    mp_obj_t *ub = roundtrip(u);
    assert_int_equal(mp_obj_type(ub), MP_OBJ_UINT);
    assert_true(mp_obj_uint(ub) == UINT64_MAX);
    mp_obj_destroy(&u);
    mp_obj_destroy(&ub);

    double ds[] = {0.0, -0.0, 1.5, -1e300, INFINITY, NAN, 3.141592653589793};
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++) {
        mp_obj_t *o = mp_obj_new_float(ds[i]);
        mp_obj_t *b = roundtrip(o);
        assert_true(mp_obj_equal(o, b)); /* bitwise: keeps -0.0 and NaN */
        mp_obj_destroy(&o);
        mp_obj_destroy(&b);
    }
    mp_obj_t *t = mp_obj_new_bool(true), *n = mp_obj_new_nil();
    mp_obj_t *tb = roundtrip(t), *nb = roundtrip(n);
    assert_true(mp_obj_bool(tb));
    assert_int_equal(mp_obj_type(nb), MP_OBJ_NIL);
    mp_obj_destroy(&t);
    mp_obj_destroy(&n);
    mp_obj_destroy(&tb);
    mp_obj_destroy(&nb);
}

static void test_nested_values_round_trip_exactly(void **state)
{
    mp_obj_t *root = mp_obj_new_map();
    mp_obj_t *list = mp_obj_new_array();
    for (int i = 0; i < 1000; i++)
        mp_obj_array_add(list, mp_obj_new_int(i * 7919));
    mp_obj_map_add(root, mp_obj_new_str("numbers"), list);
    mp_obj_map_add(root, mp_obj_new_str("name"), mp_obj_new_str("héllo wörld"));
    char bytes[300];
    for (int i = 0; i < 300; i++)
        bytes[i] = (char)i;
    mp_obj_map_add(root, mp_obj_new_str("raw"), mp_obj_new_bin(bytes, sizeof bytes));
    mp_obj_t *inner = mp_obj_new_map();
    mp_obj_map_add(inner, mp_obj_new_int(1), mp_obj_new_float(0.25));
    mp_obj_map_add(inner, mp_obj_new_nil(), mp_obj_new_array());
    mp_obj_map_add(root, mp_obj_new_str("inner"), inner);
    char big[70000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    mp_obj_map_add(root, mp_obj_new_str("big"), mp_obj_new_str(big));

    mp_obj_t *back = roundtrip(root);
    assert_true(mp_obj_equal(root, back));
    assert_int_equal(mp_obj_len(mp_obj_map_get(back, "numbers")), 1000);
    assert_int_equal(mp_obj_int(mp_obj_array_at(mp_obj_map_get(back, "numbers"), 999)), 999 * 7919);
    assert_string_equal(mp_obj_str(mp_obj_map_get(back, "name"), NULL), "héllo wörld");
    size_t n;
    const unsigned char *raw = mp_obj_bin(mp_obj_map_get(back, "raw"), &n);
    assert_int_equal(n, 300);
    assert_memory_equal(raw, bytes, 300);
    assert_null(mp_obj_map_get(back, "absent"));

    mp_obj_t *copy = mp_obj_dup(root);
    assert_true(mp_obj_equal(root, copy));
    mp_obj_array_add(mp_obj_map_get(copy, "numbers"), mp_obj_new_int(1));
    assert_false(mp_obj_equal(root, copy));
    mp_obj_destroy(&copy);
    mp_obj_destroy(&root);
    mp_obj_destroy(&back);
    assert_null(back);
    mp_obj_destroy(&back); /* safe twice */
}

/* Extension values of every size class (fixext 1-16, ext 8/16/32) come
   back with their type code and bytes; the type code is part of equality. */
static void test_ext_values_round_trip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 2, 3, 4, 8, 16, 17, 255, 256, 70000};
    static char data[70000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 31);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        mp_obj_t *e = mp_obj_new_ext((int8_t)(k % 2 ? -5 : 77), data, sizes[k]);
        mp_obj_t *back = roundtrip(e);
        int8_t type = 0;
        size_t n = 99;
        const char *p = mp_obj_ext(back, &type, &n);
        assert_int_equal(mp_obj_type(back), MP_OBJ_EXT);
        assert_int_equal(type, k % 2 ? -5 : 77);
        assert_int_equal(n, sizes[k]);
        assert_int_equal(mp_obj_len(back), sizes[k]);
        assert_memory_equal(p, data, sizes[k]);
        assert_true(mp_obj_equal(e, back));
        mp_obj_t *other = mp_obj_new_ext(1, data, sizes[k]), *copy = mp_obj_dup(e);
        assert_false(mp_obj_equal(e, other));
        assert_true(mp_obj_equal(e, copy));
        assert_null(mp_obj_bin(e, NULL));
        mp_obj_destroy(&other);
        mp_obj_destroy(&copy);
        mp_obj_destroy(&back);
        mp_obj_destroy(&e);
    }
    assert_null(mp_obj_new_ext(1, NULL, 3));
    assert_null(mp_obj_ext(NULL, NULL, NULL));
}

static int unpack_hex(const char *bytes, size_t n)
{
    mp_obj_t *o = NULL;
    int rc = mp_obj_unpack(bytes, n, &o);
    if (rc == 0)
        mp_obj_destroy(&o);
    else
        assert_null(o);
    return rc;
}

static void test_hostile_input_is_rejected_without_allocating(void **state)
{
    /* arrays and maps declaring 2^32-1 items in 5 bytes (msgpack-c #1013) */
    assert_int_equal(unpack_hex("\xdd\xff\xff\xff\xff", 5), MP_EBADMSG);
    assert_int_equal(unpack_hex("\xdf\xff\xff\xff\xff", 5), MP_EBADMSG);
    /* strings and binaries longer than the input */
    assert_int_equal(unpack_hex("\xdb\xff\xff\xff\xff"
                                "abc",
                                8),
                     MP_EBADMSG);
    assert_int_equal(unpack_hex("\xc6\x00\x01\x00\x00", 5), MP_EBADMSG);
    /* truncated scalars, trailing bytes, reserved byte, truncated ext values */
    assert_int_equal(unpack_hex("\xcd\x01", 2), MP_EBADMSG);
    assert_int_equal(unpack_hex("\xcb\x00\x00", 3), MP_EBADMSG);
    assert_int_equal(unpack_hex("\x01\x02", 2), MP_EBADMSG);
    assert_int_equal(unpack_hex("\xc1", 1), MP_EBADMSG);
    assert_int_equal(unpack_hex("\xd4\x01", 2), MP_EBADMSG);
    assert_int_equal(unpack_hex("\xd8\x01\x02", 3), MP_EBADMSG);
    assert_int_equal(unpack_hex("\xc9\xff\xff\xff\xff\x01", 6), MP_EBADMSG);
    assert_int_equal(unpack_hex("\xc7\x02\x01\x00", 4), MP_EBADMSG);
    assert_int_equal(unpack_hex("", 0), MP_EBADMSG);
    /* a map whose second value is missing */
    assert_int_equal(unpack_hex("\x82\x01\x02\x03", 4), MP_EBADMSG);

    /* nesting: 64 levels are fine, 65 are not */
    char deep[200];
    memset(deep, 0x91, sizeof deep); /* fixarray of 1, repeatedly */
    deep[MP_OBJ_MAX_DEPTH] = 0x01;
    assert_int_equal(unpack_hex(deep, MP_OBJ_MAX_DEPTH + 1), 0);
    memset(deep, 0x91, sizeof deep);
    deep[MP_OBJ_MAX_DEPTH + 1] = 0x01;
    assert_int_equal(unpack_hex(deep, MP_OBJ_MAX_DEPTH + 2), MP_EBADMSG);
    assert_int_equal(unpack_hex(deep, sizeof deep), MP_EBADMSG);
}

static void test_other_encoders_forms_decode(void **state)
{
    /* float32, uint8..64, int8..64, str8, bin8, array16, map16 */
    mp_obj_t *o = NULL;
    assert_int_equal(mp_obj_unpack("\xca\x3f\xc0\x00\x00", 5, &o), 0);
    assert_true(mp_obj_float(o) == 1.5);
    mp_obj_destroy(&o);
    assert_int_equal(mp_obj_unpack("\xd0\x80", 2, &o), 0);
    assert_int_equal(mp_obj_int(o), -128);
    mp_obj_destroy(&o);
    assert_int_equal(mp_obj_unpack("\xd1\xff\x00", 3, &o), 0);
    assert_int_equal(mp_obj_int(o), -256);
    mp_obj_destroy(&o);
    assert_int_equal(mp_obj_unpack("\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9, &o), 0);
    assert_true(mp_obj_int(o) == 4294967296LL);
    mp_obj_destroy(&o);
    assert_int_equal(mp_obj_unpack("\xd9\x02hi", 4, &o), 0);
    assert_string_equal(mp_obj_str(o, NULL), "hi");
    mp_obj_destroy(&o);
    assert_int_equal(mp_obj_unpack("\xdc\x00\x02\xc3\xc2", 5, &o), 0);
    assert_int_equal(mp_obj_len(o), 2);
    assert_true(mp_obj_bool(mp_obj_array_at(o, 0)));
    mp_obj_destroy(&o);
    assert_int_equal(mp_obj_unpack("\xde\x00\x01\xa1k\x05", 6, &o), 0);
    assert_int_equal(mp_obj_int(mp_obj_map_get(o, "k")), 5);
    mp_obj_destroy(&o);
}

static void test_wrong_types_and_arguments(void **state)
{
    mp_obj_t *i = mp_obj_new_int(3);
    assert_null(mp_obj_str(i, NULL));
    assert_null(mp_obj_array_at(i, 0));
    assert_int_equal(mp_obj_array_add(i, mp_obj_new_nil()), MP_EINVAL); /* item freed */
    assert_int_equal(mp_obj_map_add(i, mp_obj_new_nil(), mp_obj_new_nil()), MP_EINVAL);
    mp_obj_t *a = mp_obj_new_array();
    assert_int_equal(mp_obj_array_add(a, NULL), MP_EINVAL);
    assert_null(mp_obj_array_at(a, 0));
    mp_obj_destroy(&a);
    mp_obj_destroy(&i);
    char *data;
    size_t size;
    assert_int_equal(mp_obj_pack(NULL, &data, &size), MP_EINVAL);
    assert_int_equal(mp_obj_unpack(NULL, 0, NULL), MP_EINVAL);
    assert_string_equal(mp_strerror(0), "success");
    assert_string_equal(mp_strerror(MP_EEMPTY), "queue is empty");
    assert_non_null(mp_strerror(MP_ETIMEDOUT));
    assert_string_equal(mp_strerror(-99999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_round_trip),
        cmocka_unit_test(test_nested_values_round_trip_exactly),
        cmocka_unit_test(test_ext_values_round_trip),
        cmocka_unit_test(test_hostile_input_is_rejected_without_allocating),
        cmocka_unit_test(test_other_encoders_forms_decode),
        cmocka_unit_test(test_wrong_types_and_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
