/*  test_pool_parity.c - where the embedded pool follows Python's Pool
    (CPython's _TestPool, issue 23): invalid counts refused, maxtasksperchild
    counting tasks, error messages carried whole, a generator's own error
    with its text.
*/
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "../integration/test_tasks.c"

/* Python's Pool(-1) and Pool(maxtasksperchild=-1) are ValueErrors. */
static void test_pool_negative_counts_are_invalid(void **state)
{
    (void)state;
    mp_pool_t *pool = NULL;
    mp_pool_options_t bad[] = {{.processes = -1}, {.maxtasksperchild = -1}, {.window = -2}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mp_pool_new(&bad[i], &pool), MP_EINVAL);
        assert_null(pool);
    }
}

/* A task's error message arrives whole up to MP_TASK_MESSAGE_MAX (64 KiB):
   10,000 bytes as sent, 1 MiB cut to the cap (it used to be 511). */
static void test_pool_long_error_messages_arrive_whole_up_to_the_cap(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    int64_t sizes[] = {10000, 1 << 20};
    size_t want[] = {10000, MP_TASK_MESSAGE_MAX - 1};
    for (int i = 0; i < 2; i++) {
        mp_obj_t *args = mp_obj_new_array();
        mp_obj_array_add(args, mp_obj_new_int(sizes[i]));
        mp_async_t *r;
        assert_int_equal(mp_pool_apply_async(pool, "fail_long", args, NULL, &r), 0);
        mp_obj_destroy(&args);
        const mp_items_t *out;
        assert_int_equal(mp_async_get(r, 10000, &out), MP_ETASK);
        const mp_task_error_t *e = mp_async_error(r);
        assert_non_null(e);
        assert_int_equal(e->task_code, -7);
        assert_int_equal(strlen(e->message), want[i]);
        assert_int_equal(strspn(e->message, "x"), want[i]);
        mp_async_destroy(&r);
    }
    mp_pool_destroy(&pool);
}

/* Python's Pool(2, maxtasksperchild=10) with 100 apply_async: each apply is
   a task, so the executors are replaced every 10 (applies used to travel
   batched, one "task" for many, and were never replaced). */
static void test_pool_maxtasksperchild_counts_applies(void **state)
{
    (void)state;
    mp_pool_options_t o = {.maxtasksperchild = 10};
    mp_pool_t *pool = tu_new_pool(2, &o);
    enum { N = 100 };
    mp_async_t *r[N];
    for (int i = 0; i < N; i++) {
        mp_obj_t *args = mp_obj_new_array();
        mp_obj_array_add(args, mp_obj_new_int(i));
        assert_int_equal(mp_pool_apply_async(pool, "get_pid", args, NULL, &r[i]), 0);
        mp_obj_destroy(&args);
    }
    int64_t pids[N];
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        mp_obj_t *v = NULL;
        assert_int_equal(mp_async_get_obj(r[i], 10000, &v), 0);
        pids[i] = mp_obj_int(v);
        mp_obj_destroy(&v);
        bool seen = false;
        for (int k = 0; k < i; k++)
            seen = seen || pids[k] == pids[i];
        distinct += !seen;
        mp_async_destroy(&r[i]);
    }
    printf("# 100 applies, maxtasksperchild 10: %d executor lives\n", distinct);
    assert_true(distinct >= N / 10);
    mp_pool_destroy(&pool);
}

/* Gives 0, 1, 2, then fails with its own code and a message. */
static int three_then_fail(void *arg, mp_items_t *out)
{
    int *n = arg;
    if (*n == 3)
        return mp_generator_fail(-5001, "Somebody said when, after %d items", *n);
    if (*n == 1) /* a message, then no failure: forgotten */
        mp_generator_fail(-5002, "not this one");
    return mp_items_add_int(out, (*n)++);
}

/* Python: the exception the generator raised reaches the reader, after
   the results of what it gave. */
static void test_pool_generator_error_has_its_code_and_text(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    for (int unordered = 0; unordered < 2; unordered++) {
        int n = 0;
        mp_imap_t *it = NULL;
        int64_t v, sum = 0;
        assert_int_equal((unordered ? mp_pool_imap_unordered
                                    : mp_pool_imap)(pool, "square", three_then_fail, &n, 1, &it),
                         0);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(mp_imap_next_int(it, 10000, &v), 0);
            sum += v;
        }
        assert_int_equal(sum, 0 + 1 + 4);
        assert_null(mp_imap_error(it));
        assert_int_equal(mp_imap_next_int(it, 10000, &v), -5001);
        const mp_task_error_t *e = mp_imap_error(it);
        assert_non_null(e);
        assert_int_equal(e->code, -5001);
        assert_string_equal(e->message, "Somebody said when, after 3 items");
        assert_string_equal(e->task, "square");
        assert_int_equal(e->index, 3);
        assert_int_equal(e->pid, getpid());
        mp_imap_destroy(&it);
    }
    assert_int_equal(mp_generator_fail(0, "x"), MP_EINVAL);
    assert_int_equal(mp_generator_fail(MP_EEOF, NULL), MP_EINVAL);
    mp_pool_close(pool);
    mp_pool_join(pool);
    mp_pool_destroy(&pool);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pool_negative_counts_are_invalid, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_maxtasksperchild_counts_applies, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_generator_error_has_its_code_and_text,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_long_error_messages_arrive_whole_up_to_the_cap,
                                  tu_pool_teardown),
    };
    return cmocka_run_group_tests_name("pool_parity", tests, NULL, NULL);
}
