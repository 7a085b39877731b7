/*  example_primes.c - the README's main job: count the primes below N with
    an embedded pool (no broker to start), then with one process, and print
    both results and the speed-up.

        example_primes [N] [processes]      (default N = 20000000, cpu_count)

    The range is cut into 64 blocks; each block is one count_primes(lo, hi)
    call of a starmap. Exits non-zero if the two counts differ.
*/
#include <mp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t count_range(int64_t lo, int64_t hi)
{
    int64_t n = 0;
    for (int64_t i = lo < 2 ? 2 : lo; i < hi; i++) {
        if (i % 2 == 0) {
            n += i == 2;
            continue;
        }
        int prime = 1;
        for (int64_t d = 3; d * d <= i; d += 2)
            if (i % d == 0) {
                prime = 0;
                break;
            }
        n += prime;
    }
    return n;
}

MP_TASK(count_primes_block)
{
    return mp_task_return_int(task, count_range(mp_task_int(task, 0), mp_task_int(task, 1)));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    int64_t n = argc > 1 ? atoll(argv[1]) : 20000000;
    int processes = argc > 2 ? atoi(argv[2]) : mp_cpu_count();
    const int blocks = 64;

    double t0 = now_s();
    mp_pool_options_t o = {.processes = processes};
    mp_pool_t *pool;
    int rc = mp_pool_new(&o, &pool);
    if (rc) {
        fprintf(stderr, "example_primes: cannot start the pool: %s\n", mp_strerror(rc));
        return 1;
    }
    double t_ready = now_s();
    mp_items_t *in = mp_items_new(), *out = NULL;
    for (int b = 0; b < blocks; b++) {
        mp_items_add_tuple(in, 2);
        mp_items_add_int(in, n * b / blocks);
        mp_items_add_int(in, n * (b + 1) / blocks);
    }
    rc = mp_pool_starmap(pool, "count_primes_block", in, 1, &out);
    int64_t pooled = 0;
    for (size_t i = 0; rc == 0 && i < mp_items_len(out); i++) {
        int64_t v;
        mp_items_int(out, i, &v);
        pooled += v;
    }
    double t_pool = now_s();
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
    if (rc) {
        fprintf(stderr, "example_primes: starmap failed: %s\n", mp_strerror(rc));
        return 1;
    }

    double t1 = now_s();
    int64_t single = count_range(0, n);
    double t_single = now_s() - t1;

    double pool_s = t_pool - t_ready;
    printf("primes below %lld: %lld\n", (long long)n, (long long)pooled);
    printf("pool of %d processes: %.3f s (+ %.1f ms start-up)\n", processes, pool_s,
           (t_ready - t0) * 1e3);
    printf("one process:          %.3f s (%lld primes)\n", t_single, (long long)single);
    printf("speed-up:             %.2fx\n", t_single / pool_s);
    return pooled == single ? 0 : 1;
}
