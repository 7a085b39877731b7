/*  bench_manager.c - the Manager's dict and list against Python's Manager()
    (bench_manager.py, same workloads). Prints "name <TAB> unit <TAB> value"
    lines, the median of RUNS runs, in microseconds per operation. */
#include <mp.h>
#include <stdio.h>

#include "bench_util.h"

#define RUNS 5
#define OPS 200000
#define KEYS 1000

static double dict_set_us(mp_mdict_t *d)
{
    mp_obj_t *k = mp_obj_new_int(0), *v = mp_obj_new_int(0);
    double t0 = now_s();
    for (int i = 0; i < OPS; i++) {
        mp_obj_destroy(&k);
        mp_obj_destroy(&v);
        k = mp_obj_new_int(i % KEYS);
        v = mp_obj_new_int(i);
        if (mp_mdict_set(d, k, v))
            exit(1);
    }
    double t = now_s() - t0;
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    return t / OPS * 1e6;
}

static double dict_get_us(mp_mdict_t *d)
{
    double t0 = now_s();
    for (int i = 0; i < OPS; i++) {
        mp_obj_t *k = mp_obj_new_int(i % KEYS), *v = NULL;
        if (mp_mdict_get(d, k, NULL, &v))
            exit(1);
        mp_obj_destroy(&k);
        mp_obj_destroy(&v);
    }
    return (now_s() - t0) / OPS * 1e6;
}

static double dict_incr_us(mp_mdict_t *d)
{
    mp_obj_t *k = mp_obj_new_str("counter");
    double t0 = now_s();
    for (int i = 0; i < OPS; i++)
        if (mp_mdict_incr(d, k, 1, NULL))
            exit(1);
    double t = now_s() - t0;
    mp_obj_destroy(&k);
    return t / OPS * 1e6;
}

static double list_append_us(mp_mlist_t *l)
{
    double t0 = now_s();
    for (int i = 0; i < OPS; i++) {
        mp_obj_t *v = mp_obj_new_int(i);
        if (mp_mlist_append(l, v))
            exit(1);
        mp_obj_destroy(&v);
    }
    return (now_s() - t0) / OPS * 1e6;
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    double set[RUNS], get[RUNS], incr[RUNS], append[RUNS];
    for (int r = 0; r < RUNS; r++) {
        mp_manager_t *m;
        mp_mdict_t *d;
        mp_mlist_t *l;
        if (mp_manager_new(NULL, &m) || mp_manager_dict(m, &d) || mp_manager_list(m, &l))
            return 1;
        set[r] = dict_set_us(d);
        get[r] = dict_get_us(d);
        incr[r] = dict_incr_us(d);
        append[r] = list_append_us(l);
        mp_manager_destroy(&m);
    }
    printf("dict_set\tus/op\t%.4f\n", median(set, RUNS));
    printf("dict_get\tus/op\t%.4f\n", median(get, RUNS));
    printf("dict_incr_atomic\tus/op\t%.4f\n", median(incr, RUNS));
    printf("list_append\tus/op\t%.4f\n", median(append, RUNS));
    return 0;
}
