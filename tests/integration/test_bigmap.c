/*  test_bigmap.c - big maps and the broker's limits (docs/PROTOCOL.md 4.1,
    8): no call fails on the library's own limits.

    10^7-item maps and starmaps with the automatic chunk size, embedded and
    on a tcp cluster (one mp-broker, two mp-workers); an imap of 10^8 lazily
    made items on tcp in constant memory; a map through a broker whose
    per-client queue limit is far below the pool's window; a raw peer's
    chunk over the item limit refused with a FAILED naming it; one item
    larger than the broker's largest message failed alone.

    Slow and memory-hungry (about 400 MB at the peak): ctest label
    "bigmap", not run again under sanitizers.
*/
#include <signal.h>
#include <stdlib.h>
#include <zmq.h>

#include "../integration/test_tasks.c"
#include "support.h"

/* the default heartbeat: a million items placed or failed at once is
   heavy work for a loaded machine, and 3 x 500 ms is a short liveness */
#define HB "1000"
#define BIG 10000000
#define LAZY 100000000LL

static char endpoint[256];

/* A broker (its environment: extra settings, e.g. MP_MAX_QUEUED) and two
   workers of one executor each. */
static void start_cluster(const char *max_queued)
{
    if (max_queued)
        setenv("MP_MAX_QUEUED", max_queued, 1);
    tu_start_broker("tcp://127.0.0.1:0", HB, endpoint, sizeof endpoint);
    unsetenv("MP_MAX_QUEUED");
    tu_start_worker(endpoint, "1", HB);
    tu_start_worker(endpoint, "1", HB);
}

static mp_pool_t *cluster_pool(void)
{
    mp_pool_options_t o = {.broker = endpoint, .connect_timeout_ms = 5000};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, 2, 5000), 2);
    return pool;
}

/* Checks every one of n results without building error reports per item. */
static void assert_all(const mp_items_t *out, long n, bool star)
{
    assert_int_equal(mp_items_len(out), n);
    assert_int_equal(mp_items_nerrors(out), 0);
    long bad = 0;
    for (long i = 0; i < n; i++) {
        int64_t v;
        if (mp_items_int(out, (size_t)i, &v) || v != (star ? 3 * i : i * i))
            bad++;
    }
    assert_int_equal(bad, 0);
}

static void big_maps(mp_pool_t *pool)
{
    mp_items_t *in = mp_items_new(), *out = NULL;
    for (long i = 0; i < BIG; i++)
        assert_int_equal(mp_items_add_int(in, i), 0);
    /* chunksize 0: automatic, n / (4 x executors): above 2^20 items here */
    assert_int_equal(mp_pool_map(pool, "square", in, 0, &out), 0);
    assert_all(out, BIG, false);
    mp_items_destroy(&out);
    /* 10^7 failures made by the client itself: the session lives on
       (its heartbeats go first), and the next call is served */
    assert_int_equal(mp_pool_map(pool, "no_such_task", in, 0, &out), MP_EUNKNOWNTASK);
    assert_int_equal(mp_items_nerrors(out), BIG);
    assert_int_equal(mp_items_error(out, BIG - 1)->code, MP_EUNKNOWNTASK);
    mp_items_destroy(&out);
    mp_items_destroy(&in);

    in = mp_items_new();
    for (long i = 0; i < BIG; i++) {
        assert_int_equal(mp_items_add_tuple(in, 2), 0);
        mp_items_add_int(in, i);
        mp_items_add_int(in, 2 * i);
    }
    assert_int_equal(mp_pool_starmap(pool, "add", in, 0, &out), 0);
    assert_all(out, BIG, true);
    mp_items_destroy(&out);

    /* a chunk size given over the limit is split, not refused */
    mp_items_destroy(&in);
    in = tu_range(1200000);
    assert_int_equal(mp_pool_map(pool, "square", in, 1100000, &out), 0);
    assert_all(out, 1200000, false);
    mp_items_destroy(&out);
    mp_items_destroy(&in);
}

static void test_bigmap_1e7_embedded(void **state)
{
    (void)state;
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&(mp_pool_options_t){.processes = 2}, &pool), 0);
    big_maps(pool);
    mp_pool_destroy(&pool);
}

static void test_bigmap_1e7_tcp(void **state)
{
    (void)state;
    start_cluster(NULL);
    mp_pool_t *pool = cluster_pool();
    big_maps(pool);
    mp_pool_destroy(&pool);
}

/* ---- imap of 10^8 on tcp, memory constant ----------------------------------------- */

typedef struct {
    long long next;
} counter_t;

static int next_int(void *arg, mp_items_t *out)
{
    counter_t *c = arg;
    if (c->next >= LAZY)
        return MP_EEOF;
    return mp_items_add_int(out, c->next++);
}

static void test_bigmap_imap_1e8_lazy_tcp_constant_memory(void **state)
{
    (void)state;
    start_cluster(NULL);
    mp_pool_t *pool = cluster_pool();
    counter_t c = {0};
    mp_imap_t *it = NULL;
    long start = tu_rss_kib(0), peak = start;
    assert_int_equal(mp_pool_imap(pool, "square", next_int, &c, 10000, &it), 0);
    long long got = 0;
    int64_t v;
    int rc;
    while ((rc = mp_imap_next_int(it, 30000, &v)) == 0) {
        if (v != (int64_t)got * got)
            fail_msg("item %lld: %lld", got, (long long)v);
        if (++got % 1000000 == 0) {
            long now = tu_rss_kib(0);
            peak = now > peak ? now : peak;
        }
    }
    assert_int_equal(rc, MP_EEOF);
    assert_int_equal(got, LAZY);
    print_message("imap of 1e8 on tcp: RSS %ld MiB at the start, %ld MiB at the peak\n",
                  start / 1024, peak / 1024);
    assert_true(peak - start < 64 * 1024);
    mp_imap_destroy(&it);
    mp_pool_destroy(&pool);
}

/* ---- the broker's queue limit ------------------------------------------------------- */

static void test_bigmap_map_through_a_full_broker_completes(void **state)
{
    (void)state;
    start_cluster("2"); /* 2 queued chunks per client; the pool's window is 8 */
    mp_pool_t *pool = cluster_pool();
    mp_items_t *in = tu_range(200000), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "square", in, 100, &out), 0);
    tu_assert_squares(out, 200000);
    mp_items_destroy(&out);
    /* applies, many at once: held back by the window, not failed */
    mp_async_t *ar[3000];
    for (int i = 0; i < 3000; i++) {
        mp_obj_t *args = mp_obj_new_array();
        mp_obj_array_add(args, mp_obj_new_int(i));
        assert_int_equal(mp_pool_apply_async(pool, "square", args, NULL, &ar[i]), 0);
        mp_obj_destroy(&args);
    }
    for (int i = 0; i < 3000; i++) {
        mp_obj_t *v = NULL;
        assert_int_equal(mp_async_get_obj(ar[i], 30000, &v), 0);
        assert_int_equal(mp_obj_int(v), (int64_t)i * i);
        mp_obj_destroy(&v);
        mp_async_destroy(&ar[i]);
    }
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

/* ---- a raw peer over the limits ------------------------------------------------------- */

static void test_bigmap_raw_chunk_over_the_limit_is_refused(void **state)
{
    (void)state;
    start_cluster(NULL);
    void *ctx = zmq_ctx_new();
    void *s = tu_dealer(ctx, endpoint);
    int timeout = 5000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    const uint8_t hello = 0x01, submit = 0x02;
    const uint8_t hello_hdr[] = {0x93, 0xa1, 'x', 0xcd, 0x03, 0xe8, 0x01};
    tu_send_frames(s, 3, (const void *[]){"MPC01", &hello, hello_hdr}, (size_t[]){5, 1, 7});
    uint8_t hdr[512];
    size_t len = 0;
    assert_int_equal(tu_recv_frames(s, 2, hdr, sizeof hdr, &len), 3);
    /* WELCOME [version heartbeat processes max-message max-count max-queued] */
    assert_int_equal(hdr[0], 0x96);
    assert_true(len > 10);
    const uint8_t max_count[] = {0xce, 0x00, 0x10, 0x00, 0x00}; /* 1048576 */
    const uint8_t max_queued[] = {0xcd, 0x10, 0x00};            /* 4096 */
    assert_memory_equal(hdr + len - 8, max_count, 5);
    assert_memory_equal(hdr + len - 3, max_queued, 3);

    /* SUBMIT [9 "square" 0 1048577]: one item over max-count */
    const uint8_t sub_hdr[] = {0x94, 0x09, 0xa6, 's',  'q',  'u',  'a', 'r',
                               'e',  0x00, 0xce, 0x00, 0x10, 0x00, 0x01};
    const uint8_t items[] = {0xdd, 0x00, 0x10, 0x00, 0x01};
    tu_send_frames(s, 4, (const void *[]){"MPC01", &submit, sub_hdr, items},
                   (size_t[]){5, 1, sizeof sub_hdr, sizeof items});
    assert_int_equal(tu_recv_frames(s, 2, hdr, sizeof hdr, &len), 3);
    /* FAILED [9 -4107 "count 1048577 over the limit of 1048576 items ..."] */
    assert_int_equal(hdr[0], 0x93);
    assert_int_equal(hdr[1], 0x09);
    const uint8_t bad_request[] = {0xd1, 0xef, 0xf5}; /* int16 -4107 */
    assert_memory_equal(hdr + 2, bad_request, 3);
    hdr[len < sizeof hdr ? len : sizeof hdr - 1] = 0;
    assert_non_null(strstr((char *)hdr, "count 1048577 over the limit of 1048576 items per chunk"));
    zmq_close(s);
    zmq_ctx_term(ctx);

    /* and the broker serves on */
    mp_pool_t *pool = cluster_pool();
    tu_assert_map_squares(pool, 1000);
    mp_pool_destroy(&pool);
}

/* One item larger than the broker's largest message fails alone
   (MP_E2BIG, naming the sizes); the items around it are served. */
static void test_bigmap_item_over_the_message_limit_fails_alone(void **state)
{
    (void)state;
    start_cluster(NULL);
    mp_pool_t *pool = cluster_pool();
    size_t big = (64u << 20) + 1;
    char *bytes = calloc(1, big);
    assert_non_null(bytes);
    mp_items_t *in = mp_items_new(), *out = NULL;
    mp_items_add_int(in, 3);
    assert_int_equal(mp_items_add_bin(in, bytes, big), 0);
    mp_items_add_int(in, 5);
    free(bytes);
    assert_int_equal(mp_pool_map(pool, "square", in, 3, &out), MP_E2BIG);
    assert_int_equal(mp_items_nerrors(out), 1);
    int64_t v;
    assert_int_equal(mp_items_int(out, 0, &v), 0);
    assert_int_equal(v, 9);
    assert_int_equal(mp_items_int(out, 2, &v), 0);
    assert_int_equal(v, 25);
    const mp_task_error_t *e = mp_items_error(out, 1);
    assert_non_null(e);
    assert_int_equal(e->code, MP_E2BIG);
    assert_non_null(strstr(e->message, "larger than the broker's largest message"));
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        /* first: it measures this process's memory */
        cmocka_unit_test_teardown(test_bigmap_imap_1e8_lazy_tcp_constant_memory, tu_kill_teardown),
        cmocka_unit_test_teardown(test_bigmap_1e7_embedded, tu_kill_teardown),
        cmocka_unit_test_teardown(test_bigmap_1e7_tcp, tu_kill_teardown),
        cmocka_unit_test_teardown(test_bigmap_map_through_a_full_broker_completes,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_bigmap_raw_chunk_over_the_limit_is_refused,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_bigmap_item_over_the_message_limit_fails_alone,
                                  tu_kill_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
