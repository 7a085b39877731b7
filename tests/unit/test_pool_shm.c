/*  test_pool_shm.c - an embedded pool's maps through its shared rings
    (docs/PROTOCOL.md 9.1, libmp/poolshm.h), through the public API only:
    exact results in order over many rounds and chunk sizes, replies larger
    than an output ring, input larger than the input ring, task failures
    and executor deaths inside ring chunks, MP_POOL_SHM=0, and an mp-worker
    started separately on the embedded broker's ipc endpoint (it gets the
    ring's items as ordinary frames).

    After every test: no child process, no ipc file, no shared area still
    mapped, /dev/shm unchanged.
*/
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>

#include "support.h"

#include "../integration/test_tasks.c"

#define GET_MS 120000 /* bound on any one call (a sanitizer build is slow) */

/* ---- tasks of this program (its embedded pools fork them) ------------------------ */

enum { BIG = 128 << 10, IN_BIN = 256 << 10 };

static uint8_t pattern(int64_t item, size_t j)
{
    return (uint8_t)((uint64_t)item * 131u + j * 7u + (j >> 9));
}

/* big_bin(i): BIG bytes, each a function of i and its place */
MP_TASK(big_bin)
{
    static uint8_t buf[BIG];
    int64_t i = mp_task_int(task, 0);
    for (size_t j = 0; j < BIG; j++)
        buf[j] = pattern(i, j);
    return mp_task_return_bin(task, buf, BIG);
}

/* big_bin_slow0(i): big_bin, item 0 after 1.5 s (every later piece
   arrives before the first) */
MP_TASK(big_bin_slow0)
{
    static uint8_t buf[BIG];
    int64_t i = mp_task_int(task, 0);
    if (i == 0)
        usleep(1500 * 1000);
    for (size_t j = 0; j < BIG; j++)
        buf[j] = pattern(i, j);
    return mp_task_return_bin(task, buf, BIG);
}

static uint32_t fnv(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* bin_digest(bin): its length << 32 | its FNV-1a */
MP_TASK(bin_digest)
{
    size_t n = 0;
    const void *p = mp_task_bin(task, 0, &n);
    if (!p)
        return mp_task_fail(task, 1, "not a bin");
    return mp_task_return_int(task, (int64_t)(((uint64_t)n << 32) | fnv(p, n)));
}

/* fail_every_1000(x): fails x % 1000 == 999 with code 7000 + x / 1000 % 100 */
MP_TASK(fail_every_1000)
{
    int64_t x = mp_task_int(task, 0);
    if (x % 1000 == 999)
        return mp_task_fail(task, (int)(7000 + x / 1000 % 100), "item %lld is bad", (long long)x);
    return mp_task_return_int(task, 3 * x);
}

/* kill_if_negative(x): SIGKILLs its executor on x < 0, else x */
MP_TASK(kill_if_negative)
{
    int64_t x = mp_task_int(task, 0);
    if (x < 0)
        raise(SIGKILL);
    return mp_task_return_int(task, x);
}

/* ---- what a pool must leave behind: nothing --------------------------------------- */

/* Shared anonymous mappings of at least 32 MiB in this process (an embedded
   pool's ring area: MAP_SHARED|MAP_ANONYMOUS shows as /dev/zero); *rss_kb
   (may be NULL) their resident kilobytes. */
static int ring_areas(long *rss_kb)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    bool in_area = false;
    long rss = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, ' ')) {
            in_area = strstr(line, "/dev/zero") && hi - lo >= (32ul << 20);
            n += in_area;
            continue;
        }
        long kb;
        if (in_area && sscanf(line, "Rss: %ld kB", &kb) == 1)
            rss += kb;
    }
    fclose(f);
    if (rss_kb)
        *rss_kb = rss;
    return n;
}

#define MAXSHM 256
static char shm_before[MAXSHM][256];
static int nshm_before;

static int shm_list(char names[][256], int max)
{
    DIR *d = opendir("/dev/shm");
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d)) && n < max;)
        if (e->d_name[0] != '.')
            snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    return n;
}

static int setup(void **state)
{
    (void)state;
    nshm_before = shm_list(shm_before, MAXSHM);
    assert_int_equal(ring_areas(NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    tu_kill_children(); /* an mp-worker a test started, when it failed */
    assert_int_equal(tu_ipc_files(getpid(), NULL, 0), 0);
    assert_int_equal(ring_areas(NULL), 0); /* unmapped */
    /* /dev/shm: nothing new but what other test programs (ctest runs them
       in parallel) create under their own pid */
    static char after[MAXSHM][256];
    int n = shm_list(after, MAXSHM);
    for (int i = 0; i < n; i++) {
        bool old = false;
        for (int k = 0; k < nshm_before && !old; k++)
            old = strcmp(after[i], shm_before[k]) == 0;
        int pid = 0;
        bool others = (sscanf(after[i], "mp_%d_", &pid) == 1 && pid != (int)getpid()) ||
                      strncmp(after[i], "mptest", 6) == 0;
        if (!old && !others)
            fail_msg("left in /dev/shm: %s", after[i]);
    }
    return tu_teardown(state);
}

/* ---- helpers ---------------------------------------------------------------------- */

/* map or starmap with a bounded wait: the call's code; *ar holds the results */
static int run(mp_pool_t *pool, const char *task, const mp_items_t *in, size_t chunksize, bool star,
               mp_async_t **ar, const mp_items_t **got)
{
    mp_call_options_t co = {.chunksize = chunksize};
    int rc = star ? mp_pool_starmap_async(pool, task, in, &co, ar)
                  : mp_pool_map_async(pool, task, in, &co, ar);
    assert_int_equal(rc, 0);
    rc = mp_async_get(*ar, GET_MS, got);
    assert_int_not_equal(rc, MP_ETIMEDOUT);
    assert_int_equal(mp_items_len(*got), mp_items_len(in));
    return rc;
}

static mp_items_t *ints(int n)
{
    mp_items_t *l = mp_items_new();
    int64_t *v = malloc((size_t)n * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < n; i++)
        v[i] = i;
    assert_int_equal(mp_items_add_ints(l, v, (size_t)n), 0);
    free(v);
    return l;
}

/* (a, b) pairs whose sums are want(i) */
static int64_t pair_a(int64_t i)
{
    return i % 3 == 0 ? -i * 100003 : i;
}
static int64_t pair_b(int64_t i)
{
    return i % 5 == 0 ? (int64_t)1 << 40 : 7 * i;
}

static mp_items_t *pairs(int n)
{
    mp_items_t *l = mp_items_new();
    int64_t *v = malloc(2 * (size_t)n * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < n; i++) {
        v[2 * i] = pair_a(i);
        v[2 * i + 1] = pair_b(i);
    }
    assert_int_equal(mp_items_add_int_tuples(l, v, (size_t)n, 2), 0);
    free(v);
    return l;
}

static void assert_ints(const mp_items_t *r, int n, int64_t (*want)(int64_t), const char *what)
{
    assert_int_equal(mp_items_len(r), n);
    assert_int_equal(mp_items_nerrors(r), 0);
    int64_t *v = malloc((size_t)n * sizeof *v);
    assert_non_null(v);
    assert_int_equal(mp_items_ints(r, v), 0);
    for (int i = 0; i < n; i++)
        if (v[i] != want(i)) {
            int64_t got = v[i];
            free(v);
            fail_msg("%s: item %d is %lld, not %lld", what, i, (long long)got, (long long)want(i));
        }
    free(v);
}

static int64_t want_square(int64_t i)
{
    return i * i;
}
static int64_t want_sum(int64_t i)
{
    return pair_a(i) + pair_b(i);
}
static int64_t want_same(int64_t i)
{
    return i;
}

/* A map of n squares (the automatic chunk size) on pool: exact. */
static void assert_square_map(mp_pool_t *pool, int n, const char *what)
{
    mp_items_t *in = ints(n);
    mp_async_t *ar;
    const mp_items_t *got;
    assert_int_equal(run(pool, "square", in, 0, false, &ar, &got), 0);
    assert_ints(got, n, want_square, what);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
}

/* ---- tests -------------------------------------------------------------------------- */

/* Items for a chunk size: 200,000, but 1,000 chunks for the small sizes
   (a chunk costs a round trip through broker and worker, ~0.1 ms). */
static int items_for(size_t chunksize)
{
    return chunksize && chunksize < 100 ? (int)chunksize * 1000 : 200000;
}

/* 200,000 ints and 200,000 pairs, five rounds on one pool for each chunk
   size: every result exact and in its place, the rings reused round after
   round. */
static void test_pool_shm_map_and_starmap_exact_over_many_rounds(void **state)
{
    (void)state;
    enum { ROUNDS = 5 };
    mp_pool_t *pool = tu_new_pool(2, NULL);
    assert_int_equal(ring_areas(NULL), 1); /* the pool mapped its rings */
    const size_t sizes[] = {0, 1, 7, 100000};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int n = items_for(sizes[k]);
        mp_items_t *a = ints(n), *b = pairs(n);
        for (int round = 0; round < ROUNDS; round++) {
            char what[64];
            mp_async_t *ar;
            const mp_items_t *got;
            snprintf(what, sizeof what, "map, chunksize %zu, round %d", sizes[k], round);
            assert_int_equal(run(pool, "square", a, sizes[k], false, &ar, &got), 0);
            assert_ints(got, n, want_square, what);
            mp_async_destroy(&ar);
            snprintf(what, sizeof what, "starmap, chunksize %zu, round %d", sizes[k], round);
            assert_int_equal(run(pool, "add", b, sizes[k], true, &ar, &got), 0);
            assert_ints(got, n, want_sum, what);
            mp_async_destroy(&ar);
        }
        mp_items_destroy(&a);
        mp_items_destroy(&b);
    }
    /* the items did go through the rings: their pages are resident here */
    long rss = 0;
    assert_int_equal(ring_areas(&rss), 1);
    assert_true(rss > 0);
    mp_pool_destroy(&pool);
    assert_int_equal(ring_areas(NULL), 0);
}

static void assert_big_bins(const mp_items_t *r, int n)
{
    assert_int_equal(mp_items_len(r), n);
    assert_int_equal(mp_items_nerrors(r), 0);
    static uint8_t want[BIG];
    for (int i = 0; i < n; i++) {
        const void *p;
        size_t len = 0;
        assert_int_equal(mp_items_bin(r, (size_t)i, &p, &len), 0);
        assert_int_equal(len, BIG);
        for (size_t j = 0; j < BIG; j++)
            want[j] = pattern(i, j);
        if (memcmp(p, want, BIG) != 0)
            fail_msg("big result %d differs", i);
    }
}

/* 600 results of 128 KiB (75 MiB, more than an executor's output ring):
   the replies that do not fit travel inline, every result is exact, and the
   pool goes on working. */
static void test_pool_shm_results_larger_than_the_output_ring(void **state)
{
    (void)state;
    enum { N = 600 };
    /* heartbeats of 2 s: under ASan on a loaded 2-core machine, moving a
       37.5 MiB reply once kept the embedded worker from hearing its broker
       for 1.5 s (3 x 500 ms), and it stopped (CI) */
    mp_pool_options_t o = {.processes = 2, .heartbeat_ms = 2000};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(mp_pool_processes(pool), 2);
    mp_items_t *in = ints(N);
    /* 0: 75 items (9.4 MiB) a reply, some fit; 300: 37.5 MiB, none does */
    const size_t sizes[] = {0, 300};
    for (size_t k = 0; k < 2; k++) {
        mp_async_t *ar;
        const mp_items_t *got;
        assert_int_equal(run(pool, "big_bin", in, sizes[k], false, &ar, &got), 0);
        assert_big_bins(got, N);
        mp_async_destroy(&ar);
    }
    mp_items_destroy(&in);
    for (int round = 0; round < 3; round++)
        assert_square_map(pool, 5000, "a small map after big replies");
    mp_pool_destroy(&pool);
}

/* 300 bins of 256 KiB (75 MiB, more than the input ring): the chunks that
   do not fit travel inline, every item reaches its task intact. */
static void test_pool_shm_input_larger_than_the_input_ring(void **state)
{
    (void)state;
    enum { N = 300 };
    mp_pool_t *pool = tu_new_pool(2, NULL);
    mp_items_t *in = mp_items_new();
    uint8_t *buf = malloc(IN_BIN);
    int64_t *want = malloc(N * sizeof *want);
    assert_non_null(buf);
    assert_non_null(want);
    for (int i = 0; i < N; i++) {
        for (size_t j = 0; j < IN_BIN; j++)
            buf[j] = pattern(i * 3 + 1, j);
        size_t len = IN_BIN - (size_t)(i % 17); /* not all the same length */
        assert_int_equal(mp_items_add_bin(in, buf, len), 0);
        want[i] = (int64_t)(((uint64_t)len << 32) | fnv(buf, len));
    }
    /* 0: 38 items (9.5 MiB) a chunk, six fit at once; 200: 50 MiB, then
       25 MiB that cannot fit beside it */
    const size_t sizes[] = {0, 200};
    for (size_t k = 0; k < 2; k++) {
        for (int round = 0; round < 2; round++) {
            mp_async_t *ar;
            const mp_items_t *got;
            assert_int_equal(run(pool, "bin_digest", in, sizes[k], false, &ar, &got), 0);
            assert_int_equal(mp_items_nerrors(got), 0);
            for (int i = 0; i < N; i++) {
                int64_t v = 0;
                assert_int_equal(mp_items_int(got, (size_t)i, &v), 0);
                if (v != want[i])
                    fail_msg("chunksize %zu, item %d: digest %llx, not %llx", sizes[k], i,
                             (unsigned long long)v, (unsigned long long)want[i]);
            }
            mp_async_destroy(&ar);
        }
    }
    free(buf);
    free(want);
    mp_items_destroy(&in);
    /* and small maps still go through */
    assert_square_map(pool, 3000, "a small map after big input");
    mp_pool_destroy(&pool);
}

/* A task failing every 1000th item inside ring chunks: each error at its
   own index with its code and message, every other value right. */
static void test_pool_shm_task_failures_inside_ring_chunks(void **state)
{
    (void)state;
    enum { N = 100000 };
    mp_pool_t *pool = tu_new_pool(2, NULL);
    mp_items_t *in = ints(N);
    const size_t sizes[] = {0, 777, 1};
    for (size_t k = 0; k < 3; k++) {
        int n = sizes[k] == 1 ? 5000 : N;
        mp_items_t *part = sizes[k] == 1 ? ints(n) : NULL;
        mp_async_t *ar;
        const mp_items_t *got;
        assert_int_equal(run(pool, "fail_every_1000", part ? part : in, sizes[k], false, &ar, &got),
                         MP_ETASK);
        assert_int_equal(mp_items_nerrors(got), (size_t)n / 1000);
        const mp_task_error_t *first = mp_async_error(ar);
        assert_non_null(first);
        assert_int_equal(first->index, 999);
        for (int i = 0; i < n; i++) {
            const mp_task_error_t *e = mp_items_error(got, (size_t)i);
            if (i % 1000 == 999) {
                if (!e)
                    fail_msg("chunksize %zu: item %d has no error", sizes[k], i);
                assert_int_equal(e->code, MP_ETASK);
                assert_int_equal(e->task_code, 7000 + i / 1000 % 100);
                assert_int_equal(e->index, (size_t)i);
                assert_string_equal(e->task, "fail_every_1000");
                char msg[64];
                snprintf(msg, sizeof msg, "item %d is bad", i);
                assert_string_equal(e->message, msg);
                assert_true(e->pid > 0);
                assert_int_equal(mp_items_type(got, (size_t)i), MP_OBJ_NIL);
            } else {
                int64_t v = -1;
                if (e)
                    fail_msg("chunksize %zu: item %d failed: %s", sizes[k], i, e->message);
                assert_int_equal(mp_items_int(got, (size_t)i, &v), 0);
                if (v != 3 * (int64_t)i)
                    fail_msg("chunksize %zu: item %d is %lld", sizes[k], i, (long long)v);
            }
        }
        mp_async_destroy(&ar);
        mp_items_destroy(&part);
    }
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

/* An item that SIGKILLs its executor in the middle of a 50,000-item map:
   that item alone ends WORKER_LOST (after the broker's attempts), every
   other result is there once, exact; an executor killed once (die_once)
   costs nothing; the replacement executors use the same rings. */
static void test_pool_shm_executor_deaths_inside_ring_chunks(void **state)
{
    (void)state;
    enum { N = 50000, BAD = 27183 };
    mp_pool_t *pool = tu_new_pool(2, NULL);
    mp_items_t *in = mp_items_new();
    for (int i = 0; i < N; i++)
        assert_int_equal(mp_items_add_int(in, i == BAD ? -1 : i), 0);
    const size_t sizes[] = {0, 1000};
    for (size_t k = 0; k < 2; k++) {
        mp_async_t *ar;
        const mp_items_t *got;
        assert_int_equal(run(pool, "kill_if_negative", in, sizes[k], false, &ar, &got),
                         MP_EWORKERLOST);
        assert_int_equal(mp_items_nerrors(got), 1);
        const mp_task_error_t *e = mp_items_error(got, BAD);
        assert_non_null(e);
        assert_int_equal(e->code, MP_EWORKERLOST);
        assert_int_equal(e->index, BAD);
        assert_non_null(strstr(e->message, "after 3 attempts"));
        assert_non_null(strstr(e->message, "SIGKILL"));
        assert_int_equal(mp_items_type(got, BAD), MP_OBJ_NIL);
        for (int i = 0; i < N; i++) {
            int64_t v = -1;
            if (i == BAD)
                continue;
            if (mp_items_error(got, (size_t)i))
                fail_msg("chunksize %zu: item %d failed: %s", sizes[k], i,
                         mp_items_error(got, (size_t)i)->message);
            assert_int_equal(mp_items_int(got, (size_t)i, &v), 0);
            if (v != i)
                fail_msg("chunksize %zu: item %d is %lld", sizes[k], i, (long long)v);
        }
        mp_async_destroy(&ar);
    }
    mp_items_destroy(&in);

    /* killed once, on its first attempt: retried, the map is whole */
    in = tu_pairs_with(200000, 123457);
    mp_async_t *ar;
    const mp_items_t *got;
    assert_int_equal(run(pool, "die_once", in, 0, true, &ar, &got), 0);
    assert_ints(got, 200000, want_same, "die_once");
    mp_async_destroy(&ar);
    mp_items_destroy(&in);

    /* and the pool goes on */
    assert_square_map(pool, 200000, "after the deaths");
    mp_pool_destroy(&pool);
}

/* A map whose first chunk ends last: every later piece arrives early and
   waits for its turn (held in its executor's output ring, or copied out
   when too many are held), the ring of the executor that ran them filling
   up meanwhile (its replies then travel inline). Every result lands in its
   place. A map destroyed while pieces wait leaves the pool working. */
static void test_pool_shm_pieces_arriving_early_wait_for_their_turn(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    /* small values: 2,999 pieces wait for item 0 */
    enum { N = 3000 };
    mp_items_t *in = mp_items_new();
    for (int i = 0; i < N; i++) {
        mp_items_add_tuple(in, 2);
        mp_items_add_int(in, i == 0 ? 1500 : 0);
        mp_items_add_int(in, i);
    }
    mp_async_t *ar;
    const mp_items_t *got;
    assert_int_equal(run(pool, "sleep_ms", in, 1, true, &ar, &got), 0);
    assert_ints(got, N, want_same, "early pieces");
    mp_async_destroy(&ar);

    /* 128 KiB values: 299 pieces (37 MiB) wait for item 0 */
    mp_items_t *big = ints(300);
    assert_int_equal(run(pool, "big_bin_slow0", big, 1, false, &ar, &got), 0);
    assert_big_bins(got, 300);
    mp_async_destroy(&ar);

    /* destroyed while 2,999 pieces wait: the call completes unobserved */
    mp_call_options_t co = {.chunksize = 1};
    assert_int_equal(mp_pool_starmap_async(pool, "sleep_ms", in, &co, &ar), 0);
    size_t done = 0;
    uint64_t t0 = tu_now_ms();
    while (done < N - 1 && tu_now_ms() - t0 < 20000 && mp_async_wait(ar, 5) == MP_ETIMEDOUT)
        mp_async_progress(ar, &done, NULL);
    mp_async_destroy(&ar); /* (item 0 still sleeps, unless the machine is very slow) */
    assert_int_equal(run(pool, "big_bin_slow0", big, 1, false, &ar, &got), 0);
    assert_big_bins(got, 300);
    mp_async_destroy(&ar);
    assert_int_equal(run(pool, "big_bin", big, 0, false, &ar, &got), 0);
    assert_big_bins(got, 300);
    mp_async_destroy(&ar);
    mp_items_destroy(&big);
    mp_items_destroy(&in);
    assert_square_map(pool, 200000, "after early pieces");
    mp_pool_destroy(&pool);
}

/* MP_POOL_SHM=0: no rings, every chunk in frames, the same results. */
static void test_pool_shm_disabled_by_environment_gives_the_same_results(void **state)
{
    (void)state;
    assert_int_equal(setenv("MP_POOL_SHM", "0", 1), 0);
    mp_pool_options_t o = {.processes = 2, .heartbeat_ms = 500};
    mp_pool_t *plain = NULL;
    int rc = mp_pool_new(&o, &plain);
    unsetenv("MP_POOL_SHM");
    assert_int_equal(rc, 0);
    assert_int_equal(ring_areas(NULL), 0); /* no area */
    mp_pool_t *shm = tu_new_pool(2, NULL); /* the variable is read at creation only */
    assert_int_equal(ring_areas(NULL), 1);

    const size_t sizes[] = {0, 7};
    for (size_t k = 0; k < 2; k++) {
        int n = items_for(sizes[k]);
        mp_items_t *in = ints(n), *in_pairs = pairs(n);
        mp_async_t *a1, *a2;
        const mp_items_t *r1, *r2;
        assert_int_equal(run(plain, "square", in, sizes[k], false, &a1, &r1), 0);
        assert_int_equal(run(shm, "square", in, sizes[k], false, &a2, &r2), 0);
        assert_ints(r1, n, want_square, "MP_POOL_SHM=0, map");
        assert_ints(r2, n, want_square, "shm, map");
        mp_async_destroy(&a1);
        mp_async_destroy(&a2);
        assert_int_equal(run(plain, "add", in_pairs, sizes[k], true, &a1, &r1), 0);
        assert_int_equal(run(shm, "add", in_pairs, sizes[k], true, &a2, &r2), 0);
        assert_ints(r1, n, want_sum, "MP_POOL_SHM=0, starmap");
        assert_ints(r2, n, want_sum, "shm, starmap");
        mp_async_destroy(&a1);
        mp_async_destroy(&a2);
        mp_items_destroy(&in);
        mp_items_destroy(&in_pairs);
    }
    /* failures and big replies too */
    mp_items_t *in = ints(100000);
    mp_async_t *ar;
    const mp_items_t *got;
    assert_int_equal(run(plain, "fail_every_1000", in, 0, false, &ar, &got), MP_ETASK);
    assert_int_equal(mp_items_nerrors(got), 100);
    assert_non_null(mp_items_error(got, 1999));
    assert_int_equal(mp_items_error(got, 1999)->task_code, 7001);
    assert_int_equal(mp_items_error(got, 1999)->index, 1999);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
    mp_items_t *few = ints(40);
    assert_int_equal(run(plain, "big_bin", few, 0, false, &ar, &got), 0);
    assert_big_bins(got, 40);
    mp_async_destroy(&ar);
    mp_items_destroy(&few);
    mp_pool_destroy(&plain);
    assert_int_equal(ring_areas(NULL), 1);
    mp_pool_destroy(&shm);
}

/* An mp-worker started on its own (no rings: its READY names no area) joins
   the embedded broker's ipc endpoint: it gets the ring's items as frames,
   answers inline, and the map is exact with both workers' work in it. */
static void test_pool_shm_separate_worker_on_the_embedded_broker(void **state)
{
    (void)state;
    enum { N = 20000 };
    mp_pool_t *pool = tu_new_pool(1, NULL);
    char path[512], endpoint[600];
    assert_int_equal(tu_ipc_files(getpid(), path, sizeof path), 1);
    snprintf(endpoint, sizeof endpoint, "ipc://%s", path);
    pid_t pid = tu_start_worker(endpoint, "1", "500");
    assert_int_equal(tu_wait_processes(pool, 2, 10000), 2);

    mp_items_t *in = ints(N), *in_pairs = pairs(N);
    bool both = false;
    for (int round = 0; round < 8 && !both; round++) {
        mp_async_t *ar;
        const mp_items_t *got;
        size_t cs = round % 2 ? 7 : 0;
        assert_int_equal(run(pool, "square", in, cs, false, &ar, &got), 0);
        assert_ints(got, N, want_square, "map with a separate worker");
        mp_async_destroy(&ar);
        assert_int_equal(run(pool, "add", in_pairs, cs, true, &ar, &got), 0);
        assert_ints(got, N, want_sum, "starmap with a separate worker");
        mp_async_destroy(&ar);
        mp_obj_t *status = NULL;
        assert_int_equal(mp_pool_status(pool, 5000, &status), 0);
        const mp_obj_t *workers = mp_obj_map_get(status, "workers");
        assert_non_null(workers);
        assert_int_equal(mp_obj_len(workers), 2);
        both = true;
        bool saw_ext = false;
        for (size_t i = 0; i < 2; i++) {
            const mp_obj_t *w = mp_obj_array_at(workers, i);
            both = both && mp_obj_int(mp_obj_map_get(w, "done")) > 0;
            saw_ext = saw_ext || mp_obj_int(mp_obj_map_get(w, "pid")) == pid;
        }
        assert_true(saw_ext);
        mp_obj_destroy(&status);
    }
    assert_true(both);
    mp_items_destroy(&in);
    mp_items_destroy(&in_pairs);

    /* SIGTERM: it leaves, the pool goes on with its own worker */
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = tu_wait_exit(pid, 10000);
    assert_int_not_equal(status, -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_square_map(pool, 5000, "after the separate worker left");
    mp_pool_destroy(&pool);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    unsetenv("MP_POOL_SHM");
    unsetenv("MP_BROKER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_shm_map_and_starmap_exact_over_many_rounds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_shm_results_larger_than_the_output_ring, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_shm_input_larger_than_the_input_ring, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_shm_task_failures_inside_ring_chunks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_shm_executor_deaths_inside_ring_chunks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_shm_pieces_arriving_early_wait_for_their_turn,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pool_shm_disabled_by_environment_gives_the_same_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_shm_separate_worker_on_the_embedded_broker, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("pool_shm", tests, NULL, NULL);
}
