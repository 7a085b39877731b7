/*  test_journal.c - durable jobs (PROTOCOL.md 7.3, docs/JOURNAL.md) on a
    real mp-broker --journal DIR and mp-worker:

    - submit, fetch (twice: the job stays), forget; the journal empties;
    - a broker without a journal, and an embedded pool: MP_ENOJOURNAL;
    - the submitter SIGKILLed right after its submit: another client
      fetches every result;
    - the broker SIGKILLed mid-job and restarted on the same directory:
      every result once, in order; a torn record at the journal's end is
      cut off at the restart and loses nothing stored;
    - per-item errors come back at their indexes; a fetch that cannot
      finish in time says MP_ETIMEDOUT; bad durable headers from a raw
      peer are refused with the reason, and the broker serves on.
*/
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "codec/mpp.h"
#include "codec/wire.h"
#include "mp/pool.h"
#include "support.h"

#define HB "300"

static char endpoint[256], bind_at[64], dir[128], journal[160], http[64];
static pid_t broker, worker;

static pid_t start_broker(bool with_journal)
{
    const char *extra[] = {"--http", http, "--journal", dir, NULL};
    return tu_start_broker_with(bind_at, HB, with_journal ? extra : NULL, endpoint,
                                sizeof endpoint);
}

static void restart_broker(void)
{
    kill(broker, SIGKILL);
    tu_reap(broker);
    broker = start_broker(true);
}

static int setup(void **state)
{
    (void)state;
    snprintf(bind_at, sizeof bind_at, "tcp://127.0.0.1:%d", tu_free_port());
    snprintf(dir, sizeof dir, "/tmp/mp-journal-test-%d", (int)getpid());
    snprintf(journal, sizeof journal, "%s/journal", dir);
    snprintf(http, sizeof http, "127.0.0.1:%d", tu_free_port());
    broker = start_broker(true);
    worker = tu_start_worker(endpoint, "2", HB);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kill(worker, SIGTERM);
    kill(broker, SIGTERM);
    tu_wait_exit(worker, 5000);
    tu_wait_exit(broker, 5000);
    tu_kill_children();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return tu_teardown(state);
}

static mp_pool_t *client(void)
{
    return tu_cluster_pool(endpoint, 300, 2);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* A journal metric's value (GET /metrics). */
static double metric(const char *series)
{
    char *body = NULL;
    assert_int_equal(tu_http_get(http, "/metrics", NULL, &body, NULL, 0), 200);
    double v = tu_metric(body, series);
    free(body);
    return v;
}

static void test_submit_fetch_forget(void **state)
{
    (void)state;
    mp_pool_t *pool = client();
    mp_items_t *in = tu_range(1000), *out = NULL;
    assert_int_equal(mp_pool_submit(pool, "squares", "square", in, NULL), 0);
    assert_int_equal(mp_pool_fetch(pool, "squares", 10000, &out), 0);
    tu_assert_squares(out, 1000);
    mp_items_destroy(&out);
    /* it stays until forgotten: a second fetch gets it all again */
    assert_int_equal(mp_pool_fetch(pool, "squares", 0, &out), 0);
    tu_assert_squares(out, 1000);
    mp_items_destroy(&out);
    /* submitting again is harmless: each chunk is kept once, and it is cut
       the same way although the cluster changed (a second worker) */
    pid_t second = tu_start_worker(endpoint, "2", HB);
    assert_int_equal(tu_wait_processes(pool, 4, 10000), 4);
    assert_int_equal(mp_pool_submit(pool, "squares", "square", in, NULL), 0);
    kill(second, SIGTERM);
    tu_wait_exit(second, 5000);
    assert_true(file_size(journal) > 1000);
    assert_int_equal(metric("mp_broker_journal_jobs"), 1);
    assert_int_equal(metric("mp_broker_journal_bytes"), file_size(journal));
    assert_int_equal(metric("mp_broker_journal_live_bytes"), file_size(journal) - 8);
    assert_true(metric("mp_broker_journal_syncs_total") >= 1);
    assert_int_equal(mp_pool_forget(pool, "squares"), 0);
    assert_int_equal(mp_pool_fetch(pool, "squares", 0, &out), MP_ENOENT);
    assert_null(out);
    assert_int_equal(mp_pool_forget(pool, "squares"), MP_ENOENT);
    assert_true(TU_WAIT_UNTIL(file_size(journal) == 8, 2000)); /* emptied: only its header */
    assert_int_equal(metric("mp_broker_journal_jobs"), 0);
    assert_int_equal(metric("mp_broker_journal_bytes"), 8);
    assert_int_equal(metric("mp_broker_journal_live_bytes"), 0);
    /* and the pool's ordinary calls were never affected */
    tu_assert_map_squares(pool, 100);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_no_journal(void **state)
{
    (void)state;
    kill(broker, SIGKILL);
    tu_reap(broker);
    broker = start_broker(false);
    mp_pool_t *pool = client();
    mp_items_t *in = tu_range(10), *out = NULL;
    assert_int_equal(mp_pool_submit(pool, "j", "square", in, NULL), MP_ENOJOURNAL);
    assert_int_equal(mp_pool_fetch(pool, "j", 0, &out), MP_ENOENT);
    mp_pool_destroy(&pool);
    pool = tu_new_pool(1, NULL); /* embedded: no journal either */
    assert_int_equal(mp_pool_submit(pool, "j", "square", in, NULL), MP_ENOJOURNAL);
    assert_int_equal(mp_pool_submit(pool, "", "square", in, NULL), MP_EINVAL);
    mp_items_t *none = mp_items_new();
    assert_int_equal(mp_pool_submit(pool, "x", "square", none, NULL), MP_EINVAL);
    mp_items_destroy(&none);
    mp_pool_destroy(&pool);
    mp_items_destroy(&in);
}

/* The submitter is SIGKILLed as soon as its job is stored: the job runs to
   its end, and another client collects it. */
static void test_submitter_killed(void **state)
{
    (void)state;
    enum { N = 3000 };
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    if (child == 0) {
        mp_pool_options_t o = {.broker = endpoint, .heartbeat_ms = 300};
        mp_pool_t *pool = NULL;
        mp_items_t *in = tu_range(N);
        mp_submit_options_t so = {.chunksize = 50};
        int rc = mp_pool_new(&o, &pool) || mp_pool_submit(pool, "orphan", "slow_square", in, &so);
        ssize_t w = write(fds[1], rc ? "E" : "S", 1);
        (void)w;
        pause(); /* killed here */
        _exit(0);
    }
    close(fds[1]);
    char c = 0;
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    assert_int_equal(c, 'S');
    kill(child, SIGKILL);
    tu_reap(child);
    mp_pool_t *pool = client();
    mp_items_t *out = NULL;
    assert_int_equal(mp_pool_fetch(pool, "orphan", 30000, &out), 0);
    tu_assert_squares(out, N);
    mp_items_destroy(&out);
    assert_int_equal(mp_pool_forget(pool, "orphan"), 0);
    mp_pool_destroy(&pool);
}

/* The broker SIGKILLed twice while a job runs, and once with a torn record
   at the end of its journal: every result once, in order. */
static void test_broker_killed(void **state)
{
    (void)state;
    enum { N = 5000 };
    mp_pool_t *pool = client();
    mp_items_t *in = tu_range(N), *out = NULL;
    mp_submit_options_t so = {.chunksize = 100};
    assert_int_equal(mp_pool_submit(pool, "restart", "slow_square", in, &so), 0);
    mp_pool_destroy(&pool);
    usleep(300000); /* some of it answered */
    restart_broker();
    usleep(300000);
    kill(broker, SIGKILL);
    tu_reap(broker);
    int fd = open(journal, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x40\x00\x00\x00garbage", 11), 11); /* a record cut short */
    close(fd);
    long before = file_size(journal);
    broker = start_broker(true);
    assert_true(file_size(journal) < before); /* cut off at the restart */
    pool = client();
    assert_int_equal(mp_pool_fetch(pool, "restart", 60000, &out), 0);
    tu_assert_squares(out, N);
    mp_items_destroy(&out);
    assert_int_equal(mp_pool_forget(pool, "restart"), 0);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_item_errors_and_timeout(void **state)
{
    (void)state;
    mp_pool_t *pool = client();
    mp_items_t *in = tu_range(100), *out = NULL;
    assert_int_equal(mp_pool_submit(pool, "evens", "even_only", in, NULL), 0);
    assert_int_equal(mp_pool_fetch(pool, "evens", 10000, &out), 0);
    assert_int_equal(mp_items_len(out), 100);
    assert_int_equal(mp_items_nerrors(out), 50);
    for (size_t i = 0; i < 100; i++) {
        const mp_task_error_t *e = mp_items_error(out, i);
        if (i % 2) {
            assert_non_null(e);
            assert_int_equal(e->task_code, 42);
        } else {
            int64_t v = -1;
            assert_null(e);
            assert_int_equal(mp_items_int(out, i, &v), 0);
            assert_int_equal(v, (int64_t)i);
        }
    }
    mp_items_destroy(&out);
    /* sleeping tasks: a fetch that cannot be done in 200 ms says so */
    mp_items_t *slow = mp_items_new();
    for (int i = 0; i < 4; i++)
        mp_items_add_int(slow, 2000);
    assert_int_equal(mp_pool_submit(pool, "sleepy", "sleep_ms", slow, NULL), 0);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_fetch(pool, "sleepy", 200, &out), MP_ETIMEDOUT);
    assert_true(tu_now_ms() - t0 < 1500);
    assert_int_equal(mp_pool_forget(pool, "sleepy"), 0); /* cancels what runs */
    assert_int_equal(mp_pool_forget(pool, "evens"), 0);
    tu_assert_map_squares(pool, 100); /* the workers serve on */
    mp_items_destroy(&in);
    mp_items_destroy(&slow);
    mp_pool_destroy(&pool);
}

/* A raw client: HELLO, then a SUBMIT with the given durable part; the
   answer's command and its message. */
static uint8_t raw_submit(void *s, const char *job, uint64_t seq, uint64_t total, size_t count,
                          char *msg, size_t size)
{
    char hs[256];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 7);
    mp__w_uint(&h, 9);
    mp__w_str(&h, "square");
    mp__w_uint(&h, 0);
    mp__w_uint(&h, count);
    mp__w_nil(&h);
    mp__w_uint(&h, 0);
    mp__w_array(&h, 3);
    mp__w_str(&h, job);
    mp__w_uint(&h, seq);
    mp__w_uint(&h, total);
    mp__buf_t items;
    mp__buf_init(&items, NULL, 0);
    mp__w_array(&items, count);
    for (size_t i = 0; i < count; i++)
        mp__w_uint(&items, i);
    zmq_msg_t f;
    zmq_msg_init_size(&f, items.size);
    memcpy(zmq_msg_data(&f), items.data, items.size);
    assert_int_equal(mpp_send(s, NULL, 0, MPP_SIG_CLIENT, MPP_C_SUBMIT, h.data, h.size, &f, 1, 0),
                     0);
    mp__buf_release(&items);
    for (;;) {
        mpp_msg_t m;
        assert_int_equal(mpp_recv(s, &m, 0), 0);
        uint8_t cmd = mpp_data(&m, 1)[0];
        msg[0] = '\0';
        if (cmd == MPP_B_FAILED) {
            mp__rd_t r;
            size_t n, len;
            uint64_t id;
            int64_t code;
            const char *t;
            mp__rd_init(&r, mpp_data(&m, 2), mpp_size(&m, 2));
            if (mp__rd_array(&r, &n) == 0 && mp__rd_uint(&r, &id) == 0 &&
                mp__rd_int(&r, &code) == 0 && mp__rd_str(&r, &t, &len) == 0)
                snprintf(msg, size, "%.*s", (int)len, t);
        }
        mpp_close(&m);
        if (cmd == MPP_B_FAILED || cmd == MPP_B_STORED)
            return cmd;
    }
}

static void test_bad_durable_headers(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int t = 5000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &t, sizeof t);
    assert_int_equal(zmq_connect(s, endpoint), 0);
    char hs[64], msg[256];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 3);
    mp__w_str(&h, "raw");
    mp__w_uint(&h, 1000);
    mp__w_uint(&h, 1);
    assert_int_equal(mpp_send(s, NULL, 0, MPP_SIG_CLIENT, MPP_C_HELLO, h.data, h.size, NULL, 0, 0),
                     0);
    assert_int_equal(raw_submit(s, "r", 0, 0, 3, msg, sizeof msg), MPP_B_FAILED);
    assert_non_null(strstr(msg, "total"));
    assert_int_equal(raw_submit(s, "r", 2, 2, 3, msg, sizeof msg), MPP_B_FAILED);
    assert_int_equal(raw_submit(s, "r", 0, 2000000, 3, msg, sizeof msg), MPP_B_FAILED);
    assert_int_equal(raw_submit(s,
                                "0123456789012345678901234567890123456789012345678901234567890"
                                "12345",
                                0, 1, 3, msg, sizeof msg),
                     MPP_B_FAILED);
    assert_int_equal(raw_submit(s, "r", 0, 2, 3, msg, sizeof msg), MPP_B_STORED);
    assert_int_equal(raw_submit(s, "r", 0, 2, 3, msg, sizeof msg), MPP_B_STORED); /* again: once */
    assert_int_equal(raw_submit(s, "r", 1, 3, 3, msg, sizeof msg), MPP_B_FAILED);
    assert_non_null(strstr(msg, "has 2 chunks"));
    assert_int_equal(raw_submit(s, "r", 0, 2, 4, msg, sizeof msg), MPP_B_FAILED);
    assert_non_null(strstr(msg, "with 3 items"));
    assert_int_equal(raw_submit(s, "r", 1, 2, 2, msg, sizeof msg), MPP_B_STORED);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(s);
    zmq_ctx_term(ctx);
    mp_pool_t *pool = client(); /* the broker serves on, and job r is whole */
    mp_items_t *out = NULL;
    assert_int_equal(mp_pool_fetch(pool, "r", 10000, &out), 0);
    assert_int_equal(mp_items_len(out), 5);
    int64_t want[] = {0, 1, 4, 0, 1};
    for (size_t i = 0; i < 5; i++) {
        int64_t v = -1;
        assert_int_equal(mp_items_int(out, i, &v), 0);
        assert_int_equal(v, want[i]);
    }
    mp_items_destroy(&out);
    assert_int_equal(mp_pool_forget(pool, "r"), 0);
    mp_pool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_fetch_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submitter_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_errors_and_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_durable_headers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
