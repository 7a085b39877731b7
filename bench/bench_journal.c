/*  bench_journal.c - what durability costs (docs/JOURNAL.md): on one
    cluster (mp-broker --journal DIR on a disk, two mp-worker -p 1), the
    same 10^5 ints squared as a plain map and as a durable job (submit to
    disk, then fetch), median of 5 runs each, interleaved. Rows: name,
    unit, durable, plain, ratio (durable / plain rate), then the journal's
    bytes per item. usage: bench_journal --broker EP --journal FILE */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "mp.h"

#define N 100000
#define RUNS 5

int main(int argc, char **argv)
{
    const char *broker = NULL, *journal = NULL;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--broker"))
            broker = argv[++i];
        else if (!strcmp(argv[i], "--journal"))
            journal = argv[++i];
    }
    if (!broker || !journal) {
        fprintf(stderr, "usage: bench_journal --broker EP --journal FILE\n");
        return 2;
    }
    mp_pool_options_t o = {.broker = broker, .connect_timeout_ms = 10000};
    mp_pool_t *pool = NULL;
    if (mp_pool_new(&o, &pool))
        return 1;
    for (int i = 0; i < 100 && mp_pool_processes(pool) < 2; i++)
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    mp_items_t *in = mp_items_new();
    for (int i = 0; i < N; i++)
        mp_items_add_int(in, i);
    double plain[RUNS], durable[RUNS], submit[RUNS], bytes = 0;
    for (int r = 0; r < RUNS; r++) {
        mp_items_t *out = NULL;
        double t0 = now_s();
        if (mp_pool_map(pool, "square", in, 0, &out) || mp_items_len(out) != N)
            return 1;
        plain[r] = N / (now_s() - t0);
        mp_items_destroy(&out);
        char job[32];
        snprintf(job, sizeof job, "bench-%d", r);
        t0 = now_s();
        if (mp_pool_submit(pool, job, "square", in, NULL))
            return 1;
        double t1 = now_s();
        if (mp_pool_fetch(pool, job, 60000, &out) || mp_items_len(out) != N)
            return 1;
        durable[r] = N / (now_s() - t0);
        submit[r] = N / (t1 - t0);
        struct stat st;
        if (stat(journal, &st) == 0)
            bytes = (double)(st.st_size - 8) / N;
        mp_items_destroy(&out);
        mp_pool_forget(pool, job);
    }
    double p = median(plain, RUNS), d = median(durable, RUNS), s = median(submit, RUNS);
    printf("name\tunit\tdurable\tplain\tratio\n");
    printf("durable_map_1e5_tcp\titems/s\t%.0f\t%.0f\t%.2f\n", d, p, d / p);
    printf("durable_submit_1e5_tcp\titems/s\t%.0f\t%.0f\t%.2f\n", s, p, s / p);
    printf("journal_bytes_per_item\tB\t%.1f\t-\t-\n", bytes);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
    return 0;
}
