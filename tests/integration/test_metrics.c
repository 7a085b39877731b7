/*  test_metrics.c - the broker's GET /metrics (docs/CLUSTER.md, "Metrics"):
    every figure after a known workload, exact; a worker lost mid-map; the
    embedded pool's broker on request; the HTTP rules (404, 405, the
    OpenMetrics form, loopback only). */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "test_tasks.c" /* the embedded pool's tasks (the workers load libtest_tasks.so) */

#define OM "application/openmetrics-text; version=1.0.0; charset=utf-8"

typedef struct {
    pid_t broker, workers[2];
    char endpoint[256], http[64];
    mp_pool_t *pool;
} cluster_t;

/* mp-broker with --http on a free loopback port (MP_HTTP), n workers of
   2 executors, and a pool on it. */
static void cluster_up(cluster_t *c, int nworkers)
{
    snprintf(c->http, sizeof c->http, "127.0.0.1:%d", tu_free_port());
    setenv("MP_HTTP", c->http, 1);
    c->broker = tu_start_broker("tcp://127.0.0.1:0", "300", c->endpoint, sizeof c->endpoint);
    unsetenv("MP_HTTP");
    for (int i = 0; i < nworkers; i++)
        c->workers[i] = tu_start_worker(c->endpoint, "2", "300");
    c->pool = tu_cluster_pool(c->endpoint, 300, 2 * nworkers);
}

static void cluster_down(cluster_t *c)
{
    mp_pool_terminate(c->pool);
    mp_pool_join(c->pool);
    mp_pool_destroy(&c->pool);
    tu_kill_children();
}

/* The metrics text now (asserts a 200 in Prometheus' text format). */
static char *scrape(const char *http)
{
    char *body = NULL, ctype[128] = "";
    assert_int_equal(tu_http_get(http, "/metrics", NULL, &body, ctype, sizeof ctype), 200);
    assert_string_equal(ctype, "text/plain; version=0.0.4; charset=utf-8");
    return body;
}

static double task_metric(const char *text, const char *name, const char *task)
{
    char series[256];
    snprintf(series, sizeof series, "%s{task=\"%s\"}", name, task);
    return tu_metric(text, series);
}

/* 10 chunks of square (1000 items), 3 blocking applies of fail_with (one
   chunk each, failing): each counter exact. */
static void test_metrics_count_a_known_workload_exactly(void **state)
{
    (void)state;
    cluster_t c = {0};
    cluster_up(&c, 1);
    mp_items_t *in = tu_range(1000), *out = NULL;
    assert_int_equal(mp_pool_map(c.pool, "square", in, 100, &out), 0);
    tu_assert_squares(out, 1000);
    for (int i = 0; i < 3; i++) {
        mp_obj_t *args = mp_obj_new_array(), *v = NULL;
        mp_obj_array_add(args, mp_obj_new_int(7));
        mp_obj_array_add(args, mp_obj_new_str("no"));
        assert_int_equal(mp_pool_apply(c.pool, "fail_with", args, &v), MP_ETASK);
        mp_obj_destroy(&args);
    }
    char *m = scrape(c.http);
    assert_true(tu_metric(m, "mp_broker_info{version=\"" MP_VERSION_STRING "\"}") == 1);
    assert_true(tu_metric(m, "mp_broker_uptime_seconds") > 0);
    assert_true(tu_metric(m, "mp_broker_workers{state=\"idle\"}") == 1);
    assert_true(tu_metric(m, "mp_broker_workers{state=\"busy\"}") == 0);
    assert_true(tu_metric(m, "mp_broker_executors") == 2);
    assert_true(tu_metric(m, "mp_broker_dispatches_running") == 0);
    assert_true(tu_metric(m, "mp_broker_clients") == 2); /* the pool's, its blocking applies' */
    assert_true(task_metric(m, "mp_broker_chunks_submitted_total", "square") == 10);
    assert_true(task_metric(m, "mp_broker_items_submitted_total", "square") == 1000);
    assert_true(task_metric(m, "mp_broker_chunks_done_total", "square") == 10);
    assert_true(task_metric(m, "mp_broker_items_done_total", "square") == 1000);
    assert_true(task_metric(m, "mp_broker_items_failed_total", "square") == 0);
    assert_true(task_metric(m, "mp_broker_task_seconds_count", "square") == 10);
    assert_true(tu_metric(m, "mp_broker_task_seconds_bucket{task=\"square\",le=\"+Inf\"}") == 10);
    assert_true(task_metric(m, "mp_broker_task_seconds_sum", "square") > 0);
    assert_true(task_metric(m, "mp_broker_chunks_submitted_total", "fail_with") == 3);
    assert_true(task_metric(m, "mp_broker_items_failed_total", "fail_with") == 3);
    assert_true(task_metric(m, "mp_broker_items_done_total", "fail_with") == 0);
    assert_true(task_metric(m, "mp_broker_chunks_done_total", "fail_with") == 3);
    assert_true(task_metric(m, "mp_broker_items_queued", "square") == 0);
    assert_true(task_metric(m, "mp_broker_items_running", "square") == 0);
    assert_true(task_metric(m, "mp_broker_retries_total", "square") == 0);
    assert_true(task_metric(m, "mp_broker_items_lost_total", "square") == 0);
    assert_true(task_metric(m, "mp_broker_chunks_queued", "square") == 0);
    assert_true(tu_metric(m, "mp_broker_returned_dispatches_total") == 0);
    assert_true(tu_metric(m, "mp_broker_malformed_messages_total") == 0);
    assert_true(tu_metric(m, "mp_broker_refused_peers_total") == 0);
    /* the histogram's buckets are cumulative, the last one every dispatch */
    static const char *le[] = {"0.001", "0.005", "0.01", "0.025", "0.05", "0.1",
                               "0.25",  "0.5",   "1",    "2.5",   "10",   "60"};
    double prev = 0;
    for (size_t i = 0; i < sizeof le / sizeof *le; i++) {
        char series[128];
        snprintf(series, sizeof series, "mp_broker_task_seconds_bucket{task=\"square\",le=\"%s\"}",
                 le[i]);
        double v = tu_metric(m, series);
        assert_true(v >= prev && v <= 10);
        prev = v;
    }
    assert_true(tu_metric(m, "mp_broker_workers_lost_total") == 0);
    assert_true(tu_metric(m, "mp_broker_workers_joined_total") == 1);
    assert_true(tu_metric(m, "mp_broker_clients_joined_total") == 2);
    /* 1000 results of a few bytes each went out, 1000 ints came in */
    assert_true(tu_metric(m, "mp_broker_received_bytes_total") > 2000);
    assert_true(tu_metric(m, "mp_broker_sent_bytes_total") > 2000);
    free(m);
    mp_items_destroy(&in);
    mp_items_destroy(&out);
    cluster_down(&c);
}

/* Items running and queued while a map waits on slow tasks; then a
   worker SIGKILLed mid-map: lost once, its dispatches retried, every item
   done once. */
static void test_metrics_follow_a_running_map_and_a_lost_worker(void **state)
{
    (void)state;
    cluster_t c = {0};
    cluster_up(&c, 2);
    mp_items_t *in = tu_range(4000);
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_map_async(c.pool, "slow_square", in, NULL, &r), 0);
    char *m = NULL;
    bool seen = TU_WAIT_UNTIL((free(m), m = scrape(c.http),
                               task_metric(m, "mp_broker_items_running", "slow_square") > 0 &&
                                   tu_metric(m, "mp_broker_workers{state=\"busy\"}") == 2),
                              5000);
    assert_true(seen);
    free(m);
    kill(c.workers[0], SIGKILL);
    const mp_items_t *got = NULL;
    assert_int_equal(mp_async_get(r, 60000, &got), 0);
    tu_assert_squares(got, 4000);
    m = scrape(c.http);
    assert_true(tu_metric(m, "mp_broker_workers_lost_total") == 1);
    assert_true(tu_metric(m, "mp_broker_workers{state=\"idle\"}") == 1);
    assert_true(task_metric(m, "mp_broker_retries_total", "slow_square") >= 1);
    assert_true(task_metric(m, "mp_broker_items_done_total", "slow_square") == 4000);
    assert_true(task_metric(m, "mp_broker_items_lost_total", "slow_square") == 0);
    assert_true(task_metric(m, "mp_broker_items_submitted_total", "slow_square") == 4000);
    free(m);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    cluster_down(&c);
}

/* What is not GET /metrics; the OpenMetrics form on request. */
static void test_metrics_http_rules(void **state)
{
    (void)state;
    cluster_t c = {0};
    cluster_up(&c, 1);
    char *body = NULL, ctype[128] = "";
    assert_int_equal(tu_http_get(c.http, "/nothing", NULL, &body, NULL, 0), 404);
    free(body);
    assert_int_equal(
        tu_http_get(c.http, "/metrics", "application/openmetrics-text", &body, ctype, sizeof ctype),
        200);
    assert_string_equal(ctype, OM);
    size_t n = strlen(body);
    assert_true(n > 6 && !strcmp(body + n - 6, "# EOF\n"));
    assert_non_null(strstr(body, "# TYPE mp_broker_items_done counter\n"));
    free(body);
    body = scrape(c.http);
    assert_non_null(strstr(body, "# TYPE mp_broker_items_done_total counter\n"));
    assert_null(strstr(body, "# EOF"));
    free(body);
    cluster_down(&c);

    /* off loopback: refused unless insecure */
    const char *binds[] = {"tcp://127.0.0.1:0"};
    mp_broker_options_t o = {.binds = binds, .nbinds = 1, .http = "0.0.0.0:0"};
    mp_broker_t *b = NULL;
    assert_int_equal(mp_broker_new(&o, &b), MP_EINSECURE);
    o.http = "127.0.0.1";
    assert_int_equal(mp_broker_new(&o, &b), MP_EINVAL);
    assert_null(b);
}

/* A task name that is not UTF-8 (a peer's bytes; queued while no worker
   is connected) shows as U+FFFD: the text stays valid for Prometheus. */
static void test_metrics_label_values_stay_utf8(void **state)
{
    (void)state;
    cluster_t c = {0};
    snprintf(c.http, sizeof c.http, "127.0.0.1:%d", tu_free_port());
    setenv("MP_HTTP", c.http, 1);
    c.broker = tu_start_broker("tcp://127.0.0.1:0", "300", c.endpoint, sizeof c.endpoint);
    unsetenv("MP_HTTP");
    mp_pool_options_t o = {.broker = c.endpoint, .heartbeat_ms = 300};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    mp_obj_t *args = mp_obj_new_array();
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_apply_async(pool, "bad\xff\xc0name\"q", args, NULL, &r), 0);
    char *m = NULL;
    assert_true(TU_WAIT_UNTIL(
        (free(m), m = scrape(c.http), strstr(m, "mp_broker_items_queued{task=\"bad")), 5000));
    assert_non_null(strstr(m, "{task=\"bad\xef\xbf\xbd\xef\xbf\xbdname\\\"q\"} 1\n"));
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        assert_true(*p != 0xff && *p != 0xc0);
    free(m);
    mp_async_destroy(&r);
    mp_obj_destroy(&args);
    mp_pool_terminate(pool);
    mp_pool_join(pool);
    mp_pool_destroy(&pool);
    tu_kill_children();
}

/* Lines of text that start with prefix. */
static size_t lines_starting(const char *text, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, len) == 0;
    return n;
}

/* A broker keeps at most 4,096 task names (BK_MAX_QUEUES): with every one
   of them holding queued work, a SUBMIT of a 4,097th name is refused
   (MP_EOVERLOADED, saying why), a durable one too (not stored: it could
   not run); once their work is gone, new names take
   the queues of the names idle longest, whose counters go to the series
   of the empty name. So a client cycling through fresh names cannot grow
   the broker, nor its metrics, without bound. */
static void test_metrics_task_names_are_bounded(void **state)
{
    (void)state;
    cluster_t c = {0};
    snprintf(c.http, sizeof c.http, "127.0.0.1:%d", tu_free_port());
    setenv("MP_HTTP", c.http, 1);
    char dir[64], cmd[96];
    snprintf(dir, sizeof dir, "/tmp/mp-metrics-names-%d", (int)getpid());
    const char *const extra[] = {"--max-queued", "10000", "--journal", dir, NULL};
    c.broker =
        tu_start_broker_with("tcp://127.0.0.1:0", "300", extra, c.endpoint, sizeof c.endpoint);
    unsetenv("MP_HTTP");
    enum { NAMES = 4096 };
    mp_pool_options_t o = {.broker = c.endpoint, .heartbeat_ms = 300, .window = 2 * NAMES};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(1));
    mp_async_t **r = calloc(NAMES + 1, sizeof *r);
    char name[32];
    for (int i = 0; i <= NAMES; i++) { /* no worker: each stays queued */
        snprintf(name, sizeof name, "t%d", i);
        assert_int_equal(mp_pool_apply_async(pool, name, args, NULL, &r[i]), 0);
    }
    assert_int_equal(mp_async_wait(r[NAMES], 10000), 0);
    assert_false(mp_async_successful(r[NAMES]));
    const mp_task_error_t *e = mp_async_error(r[NAMES]);
    assert_non_null(e);
    assert_int_equal(e->code, MP_EOVERLOADED);
    assert_non_null(strstr(e->message, "too many task names"));
    assert_int_equal(mp_async_wait(r[NAMES - 1], 0), MP_ETIMEDOUT); /* the rest: queued */
    mp_items_t *one = mp_items_new(); /* a durable job of a new name: refused, not stored */
    mp_items_add_int(one, 1);
    assert_int_equal(mp_pool_submit(pool, "late", "durable_new", one, NULL), MP_EOVERLOADED);
    mp_items_destroy(&one);
    char *m = scrape(c.http);
    assert_int_equal(lines_starting(m, "mp_broker_chunks_submitted_total{"), NAMES);
    free(m);
    m = NULL;
    mp_pool_terminate(pool); /* their work goes: every name idle */
    mp_pool_join(pool);
    for (int i = 0; i <= NAMES; i++)
        mp_async_destroy(&r[i]);
    free(r);
    mp_pool_destroy(&pool);
    /* its work dropped (DISCONNECT, or its silence: a lingerless socket
       may lose the DISCONNECT) */
    assert_true(TU_WAIT_UNTIL((free(m), m = scrape(c.http),
                               tu_metric(m, "mp_broker_clients") == 0 &&
                                   tu_metric(m, "mp_broker_items_queued{task=\"t0\"}") == 0),
                              5000));

    /* ten fresh names: they take the queues of t0 .. t9 */
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    mp_async_t *fresh[10];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "fresh%d", i);
        assert_int_equal(mp_pool_apply_async(pool, name, args, NULL, &fresh[i]), 0);
    }
    assert_true(TU_WAIT_UNTIL(
        (free(m), m = scrape(c.http), tu_metric(m, "mp_broker_items_queued{task=\"fresh9\"}") == 1),
        5000));
    assert_int_equal(lines_starting(m, "mp_broker_chunks_submitted_total{"), NAMES + 1);
    assert_true(tu_metric(m, "mp_broker_chunks_submitted_total{task=\"\"}") == 10);
    assert_true(tu_metric(m, "mp_broker_chunks_submitted_total{task=\"t10\"}") == 1);
    assert_null(strstr(m, "{task=\"t9\"}"));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(mp_async_wait(fresh[i], 0), MP_ETIMEDOUT); /* queued, not refused */
        mp_async_destroy(&fresh[i]);
    }
    free(m);
    mp_obj_destroy(&args);
    mp_pool_terminate(pool);
    mp_pool_join(pool);
    mp_pool_destroy(&pool);
    tu_kill_children();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* An embedded pool's broker serves them too, on request. */
static void test_metrics_of_an_embedded_pool(void **state)
{
    (void)state;
    mp_pool_options_t o = {.http = "127.0.0.1:0"};
    mp_pool_t *pool = tu_new_pool(2, &o);
    const char *http = mp_pool_http_address(pool);
    assert_non_null(http);
    tu_assert_map_squares(pool, 100);
    char *m = scrape(http);
    assert_true(task_metric(m, "mp_broker_items_done_total", "square") == 100);
    assert_true(tu_metric(m, "mp_broker_executors") == 2);
    free(m);
    mp_pool_close(pool);
    mp_pool_join(pool);
    mp_pool_destroy(&pool);
    mp_pool_t *plain = tu_new_pool(1, NULL);
    assert_null(mp_pool_http_address(plain));
    mp_pool_close(plain);
    mp_pool_join(plain);
    mp_pool_destroy(&plain);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_metrics_count_a_known_workload_exactly, tu_kill_teardown),
        cmocka_unit_test_teardown(test_metrics_follow_a_running_map_and_a_lost_worker,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_metrics_http_rules, tu_kill_teardown),
        cmocka_unit_test_teardown(test_metrics_of_an_embedded_pool, tu_kill_teardown),
        cmocka_unit_test_teardown(test_metrics_label_values_stay_utf8, tu_kill_teardown),
        cmocka_unit_test_teardown(test_metrics_task_names_are_bounded, tu_kill_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
