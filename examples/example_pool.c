/*  example_pool.c - the seed repository's Pool example, in C: every Pool
    method it lists (apply, apply_async, map, map_async, imap,
    imap_unordered, starmap, starmap_async) on an embedded pool, or on a
    cluster when MP_BROKER is set (then run mp-worker with
    --tasks libexample_tasks.so, or `example_pool --mp-worker ENDPOINT`).

    Each step checks its results, so the example is also a test (ctest
    example_pool): it exits non-zero on the first wrong value.
*/
#include <mp.h>
#include <stdio.h>
#include <stdlib.h>

MP_TASK(square)
{
    int64_t x = mp_task_int(task, 0);
    return mp_task_return_int(task, x * x);
}

MP_TASK(add)
{
    return mp_task_return_int(task, mp_task_int(task, 0) + mp_task_int(task, 1));
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "example_pool: " __VA_ARGS__);                                         \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static int counter_gen(void *arg, mp_items_t *out)
{
    int *next = arg;
    if (*next >= 10)
        return MP_EEOF;
    return mp_items_add_int(out, (*next)++);
}

static int on_result(mp_async_t *r, void *arg)
{
    const mp_items_t *items;
    mp_async_get(r, 0, &items);
    printf("  callback: map_async finished with %zu results\n", mp_items_len(items));
    (void)arg;
    return 0;
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv); /* serves `example_pool --mp-worker ENDPOINT` too */
    mp_pool_options_t o = {.processes = 2};
    mp_pool_t *pool;
    int rc = mp_pool_new(&o, &pool);
    CHECK(rc == 0, "cannot start the pool: %s", mp_strerror(rc));
    printf("pool ready: %d executors\n", mp_pool_processes(pool));

    /* apply: one call, blocking */
    mp_obj_t *args = mp_obj_new_array(), *value = NULL;
    mp_obj_array_add(args, mp_obj_new_int(7));
    rc = mp_pool_apply(pool, "square", args, &value);
    CHECK(rc == 0 && mp_obj_int(value) == 49, "apply: %s", mp_strerror(rc));
    printf("apply(square, 7) = %lld\n", (long long)mp_obj_int(value));
    mp_obj_destroy(&value);

    /* apply_async: a handle now, the value later */
    mp_async_t *ar;
    rc = mp_pool_apply_async(pool, "square", args, NULL, &ar);
    CHECK(rc == 0, "apply_async: %s", mp_strerror(rc));
    rc = mp_async_get_obj(ar, 5000, &value);
    CHECK(rc == 0 && mp_obj_int(value) == 49, "apply_async get: %s", mp_strerror(rc));
    printf("apply_async(square, 7).get() = %lld, successful: %d\n", (long long)mp_obj_int(value),
           mp_async_successful(ar));
    mp_obj_destroy(&value);
    mp_async_destroy(&ar);
    mp_obj_destroy(&args);

    /* map: results in input order */
    mp_items_t *in = mp_items_new(), *out = NULL;
    for (int i = 0; i < 10; i++)
        mp_items_add_int(in, i);
    rc = mp_pool_map(pool, "square", in, 0, &out);
    CHECK(rc == 0 && mp_items_len(out) == 10, "map: %s", mp_strerror(rc));
    printf("map(square, 0..9) =");
    for (size_t i = 0; i < mp_items_len(out); i++) {
        int64_t v;
        mp_items_int(out, i, &v);
        CHECK(v == (int64_t)(i * i), "map: item %zu is %lld", i, (long long)v);
        printf(" %lld", (long long)v);
    }
    printf("\n");
    mp_items_destroy(&out);

    /* map_async, with a callback */
    mp_call_options_t co = {.callback = on_result};
    rc = mp_pool_map_async(pool, "square", in, &co, &ar);
    CHECK(rc == 0, "map_async: %s", mp_strerror(rc));
    const mp_items_t *got;
    rc = mp_async_get(ar, 5000, &got);
    CHECK(rc == 0 && mp_items_len(got) == 10, "map_async get: %s", mp_strerror(rc));
    printf("map_async(square, 0..9).get() has %zu results\n", mp_items_len(got));
    mp_async_destroy(&ar);
    mp_items_destroy(&in);

    /* imap: lazily produced input, results in order */
    int next = 0;
    mp_imap_t *it;
    rc = mp_pool_imap(pool, "square", counter_gen, &next, 1, &it);
    CHECK(rc == 0, "imap: %s", mp_strerror(rc));
    printf("imap(square, 0..9) =");
    int64_t v;
    for (int i = 0; (rc = mp_imap_next_int(it, 5000, &v)) == 0; i++) {
        CHECK(v == (int64_t)i * i, "imap: item %d is %lld", i, (long long)v);
        printf(" %lld", (long long)v);
    }
    CHECK(rc == MP_EEOF, "imap next: %s", mp_strerror(rc));
    printf("\n");
    mp_imap_destroy(&it);

    /* imap_unordered: as they complete */
    next = 0;
    rc = mp_pool_imap_unordered(pool, "square", counter_gen, &next, 1, &it);
    CHECK(rc == 0, "imap_unordered: %s", mp_strerror(rc));
    int64_t sum = 0;
    int count = 0;
    while ((rc = mp_imap_next_int(it, 5000, &v)) == 0) {
        sum += v;
        count++;
    }
    CHECK(rc == MP_EEOF && count == 10 && sum == 285, "imap_unordered: %d results, sum %lld", count,
          (long long)sum);
    printf("imap_unordered(square, 0..9): %d results, sum %lld\n", count, (long long)sum);
    mp_imap_destroy(&it);

    /* starmap: argument tuples */
    in = mp_items_new();
    for (int i = 0; i < 5; i++) {
        mp_items_add_tuple(in, 2);
        mp_items_add_int(in, i);
        mp_items_add_int(in, 10 * i);
    }
    rc = mp_pool_starmap(pool, "add", in, 0, &out);
    CHECK(rc == 0 && mp_items_len(out) == 5, "starmap: %s", mp_strerror(rc));
    printf("starmap(add, (i, 10i)) =");
    for (size_t i = 0; i < 5; i++) {
        mp_items_int(out, i, &v);
        CHECK(v == (int64_t)(11 * i), "starmap: item %zu is %lld", i, (long long)v);
        printf(" %lld", (long long)v);
    }
    printf("\n");
    mp_items_destroy(&out);

    /* starmap_async */
    rc = mp_pool_starmap_async(pool, "add", in, NULL, &ar);
    CHECK(rc == 0, "starmap_async: %s", mp_strerror(rc));
    rc = mp_async_get(ar, 5000, &got);
    CHECK(rc == 0 && mp_items_len(got) == 5, "starmap_async get: %s", mp_strerror(rc));
    printf("starmap_async(add, ...).get() has %zu results\n", mp_items_len(got));
    mp_async_destroy(&ar);
    mp_items_destroy(&in);

    mp_pool_close(pool);
    mp_pool_join(pool);
    mp_pool_destroy(&pool);
    printf("done\n");
    return 0;
}
