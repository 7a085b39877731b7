/*  test_shm.c - SharedMemory: create, attach from an unrelated (spawned)
    process, unlink; nothing left in /dev/shm. */
#include "support.h"

/* spawn target: args [name, byte]; attaches by name and fills the block */
static int attach_and_fill(void *arg)
{
    mp_obj_t *args = arg;
    mp_shm_t *shm = NULL;
    if (mp_shm_attach(&shm, mp_obj_str(mp_obj_array_at(args, 0), NULL)))
        return 1;
    memset(mp_shm_buf(shm), (int)mp_obj_int(mp_obj_array_at(args, 1)), mp_shm_size(shm));
    int size_ok = mp_shm_size(shm) == 10000;
    mp_shm_destroy(&shm);
    return size_ok ? 0 : 2;
}
MP_REGISTER_TARGET(attach_and_fill)

static void test_attach_from_unrelated_process(void **state)
{
    mp_shm_t *shm = NULL;
    assert_int_equal(mp_shm_create(&shm, "mptest_block", 10000), 0);
    assert_string_equal(mp_shm_name(shm), "mptest_block");
    assert_int_equal(mp_shm_size(shm), 10000);
    assert_int_equal(tu_shm_count("mptest_block"), 1);
    unsigned char *buf = mp_shm_buf(shm);
    assert_int_equal(buf[0], 0); /* zero-filled */

    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_str("mptest_block"));
    mp_obj_array_add(args, mp_obj_new_int(0xAB));
    mp_process_opts_t opts = {.start_method = MP_START_SPAWN, .args = args};
    mp_process_t *p = mp_process_new(attach_and_fill, NULL, &opts);
    mp_obj_destroy(&args);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(tu_join(&p, 10000), 0);
    assert_int_equal(buf[0], 0xAB);
    assert_int_equal(buf[9999], 0xAB);

    assert_int_equal(mp_shm_unlink(shm), 0);
    assert_int_equal(tu_shm_count("mptest_block"), 0);
    assert_int_equal(buf[5000], 0xAB); /* the mapping outlives the name */
    mp_shm_t *again = NULL;
    assert_int_equal(mp_shm_attach(&again, "mptest_block"), MP_ENOENT);
    assert_int_equal(mp_shm_unlink(shm), MP_ENOENT);
    mp_shm_destroy(&shm);
    mp_shm_destroy(&shm);
}

static void test_names_are_checked_and_exclusive(void **state)
{
    mp_shm_t *a = NULL, *b = NULL;
    assert_int_equal(mp_shm_create(&a, "mptest_x", 100), 0);
    assert_int_equal(mp_shm_create(&b, "mptest_x", 100), MP_EEXIST);
    assert_int_equal(mp_shm_attach(&b, "mptest_x"), 0);
    assert_int_equal(mp_shm_size(b), 100);
    ((char *)mp_shm_buf(a))[7] = 'z';
    assert_int_equal(((char *)mp_shm_buf(b))[7], 'z');
    mp_shm_destroy(&b);
    assert_int_equal(mp_shm_unlink_name("mptest_x"), 0);
    mp_shm_destroy(&a);

    assert_int_equal(mp_shm_create(&a, "../etc/passwd", 10), MP_EINVAL);
    assert_int_equal(mp_shm_create(&a, "has/slash", 10), MP_EINVAL);
    assert_int_equal(mp_shm_create(&a, "", 10), MP_EINVAL);
    assert_int_equal(mp_shm_create(&a, "mptest_zero", 0), MP_EINVAL);
    assert_int_equal(mp_shm_attach(&a, NULL), MP_EINVAL);
    assert_null(a);

    /* generated names are unique */
    assert_int_equal(mp_shm_create(&a, NULL, 64), 0);
    assert_int_equal(mp_shm_create(&b, NULL, 64), 0);
    assert_string_not_equal(mp_shm_name(a), mp_shm_name(b));
    assert_int_equal(strncmp(mp_shm_name(a), "mp_", 3), 0);
    assert_int_equal(mp_shm_unlink(a), 0);
    assert_int_equal(mp_shm_unlink(b), 0);
    mp_shm_destroy(&a);
    mp_shm_destroy(&b);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_attach_from_unrelated_process, tu_teardown),
        cmocka_unit_test_teardown(test_names_are_checked_and_exclusive, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
