/*  test_manager.c - the Manager's dict, list and Namespace: every operation,
    exact counts under 4 writing processes, atomic read-modify-write, the
    capacity limit, and a process killed inside an operation. */
#include <signal.h>
#include <stdlib.h>

#include "support.h"

static mp_obj_t *I(int64_t v)
{
    return mp_obj_new_int(v);
}

static mp_obj_t *S(const char *s)
{
    return mp_obj_new_str(s);
}

/* Consumes o: asserts it is the int v. */
static void assert_int_obj(mp_obj_t *o, int64_t v)
{
    assert_non_null(o);
    assert_int_equal(mp_obj_type(o), MP_OBJ_INT);
    assert_int_equal(mp_obj_int(o), v);
    mp_obj_destroy(&o);
}

static void dset(mp_mdict_t *d, mp_obj_t *k, mp_obj_t *v)
{
    assert_int_equal(mp_mdict_set(d, k, v), 0);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
}

static int64_t dget_int(mp_mdict_t *d, mp_obj_t *k)
{
    mp_obj_t *v = NULL;
    assert_int_equal(mp_mdict_get(d, k, NULL, &v), 0);
    mp_obj_destroy(&k);
    int64_t r = mp_obj_int(v);
    mp_obj_destroy(&v);
    return r;
}

static void test_manager_dict_operations(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mdict_t *d;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_dict(m, &d), 0);

    for (int i = 0; i < 1000; i++) /* grows the table several times */
        dset(d, I(i), I(i * 10));
    dset(d, S("a"), S("alpha"));
    dset(d, I(7), I(-7)); /* replace keeps the position */
    size_t n;
    assert_int_equal(mp_mdict_len(d, &n), 0);
    assert_int_equal(n, 1001);
    assert_int_equal(dget_int(d, I(999)), 9990);
    assert_int_equal(dget_int(d, I(7)), -7);

    mp_obj_t *k = I(5000), *dflt = S("none"), *v = NULL;
    assert_int_equal(mp_mdict_get(d, k, NULL, &v), MP_ENOENT);
    assert_null(v);
    assert_int_equal(mp_mdict_get(d, k, dflt, &v), 0);
    assert_string_equal(mp_obj_str(v, NULL), "none");
    mp_obj_destroy(&v);
    assert_int_equal(mp_mdict_contains(d, k), 0);
    assert_int_equal(mp_mdict_del(d, k), MP_ENOENT);
    mp_obj_destroy(&k);
    mp_obj_destroy(&dflt);

    /* keys are their msgpack bytes: 1 and 1.0 and "1" are three keys */
    mp_obj_t *f1 = mp_obj_new_float(1.0), *s1 = S("1"), *i1 = I(1);
    assert_int_equal(mp_mdict_contains(d, i1), 1);
    assert_int_equal(mp_mdict_contains(d, f1), 0);
    assert_int_equal(mp_mdict_contains(d, s1), 0);
    mp_obj_destroy(&f1);
    mp_obj_destroy(&s1);

    /* delete half, then the order of keys is insertion order */
    for (int i = 0; i < 1000; i += 2) {
        k = I(i);
        assert_int_equal(mp_mdict_del(d, k), 0);
        mp_obj_destroy(&k);
    }
    assert_int_equal(mp_mdict_contains(d, i1), 1);
    mp_obj_destroy(&i1);
    mp_obj_t *keys, *values, *items;
    assert_int_equal(mp_mdict_keys(d, &keys), 0);
    assert_int_equal(mp_mdict_values(d, &values), 0);
    assert_int_equal(mp_mdict_items(d, &items), 0);
    assert_int_equal(mp_obj_len(keys), 501);
    assert_int_equal(mp_obj_len(values), 501);
    assert_int_equal(mp_obj_len(items), 501);
    for (size_t i = 0; i < 500; i++) {
        assert_int_equal(mp_obj_int(mp_obj_array_at(keys, i)), 2 * (int64_t)i + 1);
        int64_t want = i == 3 ? -7 : (2 * (int64_t)i + 1) * 10;
        assert_int_equal(mp_obj_int(mp_obj_array_at(values, i)), want);
        assert_int_equal(mp_obj_int(mp_obj_map_value_at(items, i)), want);
    }
    assert_string_equal(mp_obj_str(mp_obj_array_at(keys, 500), NULL), "a");
    mp_obj_destroy(&keys);
    mp_obj_destroy(&values);
    mp_obj_destroy(&items);

    /* pop, setdefault, update */
    k = I(1);
    assert_int_equal(mp_mdict_pop(d, k, NULL, &v), 0);
    assert_int_equal(mp_obj_int(v), 10);
    mp_obj_destroy(&v);
    assert_int_equal(mp_mdict_pop(d, k, NULL, &v), MP_ENOENT);
    mp_obj_t *def = I(111);
    assert_int_equal(mp_mdict_setdefault(d, k, def, &v), 0); /* absent: inserted */
    assert_int_equal(mp_obj_int(v), 111);
    mp_obj_destroy(&v);
    mp_obj_t *def2 = I(222);
    assert_int_equal(mp_mdict_setdefault(d, k, def2, &v), 0); /* present: kept */
    assert_int_equal(mp_obj_int(v), 111);
    mp_obj_destroy(&v);
    mp_obj_destroy(&def);
    mp_obj_destroy(&def2);
    mp_obj_destroy(&k);
    mp_obj_t *upd = mp_obj_new_map();
    mp_obj_map_add(upd, S("a"), S("A"));
    mp_obj_map_add(upd, S("new"), I(1));
    assert_int_equal(mp_mdict_update(d, upd), 0);
    mp_obj_destroy(&upd);
    k = S("a");
    assert_int_equal(mp_mdict_get(d, k, NULL, &v), 0);
    assert_string_equal(mp_obj_str(v, NULL), "A");
    mp_obj_destroy(&v);
    mp_obj_destroy(&k);
    assert_int_equal(dget_int(d, S("new")), 1);

    assert_int_equal(mp_mdict_clear(d), 0);
    assert_int_equal(mp_mdict_len(d, &n), 0);
    assert_int_equal(n, 0);
    dset(d, S("again"), I(1));
    assert_int_equal(mp_mdict_len(d, &n), 0);
    assert_int_equal(n, 1);

    mp_manager_stats_t st;
    assert_int_equal(mp_manager_stats(m, &st), 0);
    assert_int_equal(st.objects, 1);
    assert_int_equal(mp_mobj_free(m, &d), 0);
    assert_null(d);
    assert_int_equal(mp_manager_stats(m, &st), 0);
    assert_int_equal(st.objects, 0);
    assert_int_equal(st.used, 0); /* every block went back */
    mp_manager_destroy(&m);
    assert_null(m);
}

/* A nested value: {"name": "x", "ints": [1, -2, 3], "f": 2.5, "bin": b"\0\1",
   "nested": {"deep": [nil, true, {"k": "v"}]}} */
static mp_obj_t *nested(void)
{
    mp_obj_t *top = mp_obj_new_map(), *ints = mp_obj_new_array(), *deep = mp_obj_new_array(),
             *inner = mp_obj_new_map(), *kv = mp_obj_new_map();
    mp_obj_array_add(ints, I(1));
    mp_obj_array_add(ints, I(-2));
    mp_obj_array_add(ints, mp_obj_new_uint(UINT64_MAX));
    mp_obj_map_add(kv, S("k"), S("v"));
    mp_obj_array_add(deep, mp_obj_new_nil());
    mp_obj_array_add(deep, mp_obj_new_bool(true));
    mp_obj_array_add(deep, kv);
    mp_obj_map_add(inner, S("deep"), deep);
    mp_obj_map_add(top, S("name"), S("x"));
    mp_obj_map_add(top, S("ints"), ints);
    mp_obj_map_add(top, S("f"), mp_obj_new_float(2.5));
    mp_obj_map_add(top, S("bin"), mp_obj_new_bin("\0\1", 2));
    mp_obj_map_add(top, S("nested"), inner);
    return top;
}

static void test_manager_nested_values_round_trip_exactly(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mdict_t *d;
    mp_mlist_t *l;
    mp_mns_t *ns;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_dict(m, &d), 0);
    assert_int_equal(mp_manager_list(m, &l), 0);
    assert_int_equal(mp_manager_namespace(m, &ns), 0);
    mp_obj_t *value = nested(), *key = nested(), *got = NULL;
    assert_int_equal(mp_mdict_set(d, key, value), 0); /* a map as a key, too */
    assert_int_equal(mp_mdict_get(d, key, NULL, &got), 0);
    assert_true(mp_obj_equal(got, value));
    mp_obj_destroy(&got);
    assert_int_equal(mp_mlist_append(l, value), 0);
    assert_int_equal(mp_mlist_get(l, -1, &got), 0);
    assert_true(mp_obj_equal(got, value));
    mp_obj_destroy(&got);
    assert_int_equal(mp_mns_set(ns, "config", value), 0);
    assert_int_equal(mp_mns_get(ns, "config", &got), 0);
    assert_true(mp_obj_equal(got, value));
    mp_obj_destroy(&got);
    assert_int_equal(mp_mns_get(ns, "missing", &got), MP_ENOENT);
    assert_int_equal(mp_mns_del(ns, "config"), 0);
    assert_int_equal(mp_mns_get(ns, "config", &got), MP_ENOENT);
    mp_obj_destroy(&value);
    mp_obj_destroy(&key);
    mp_manager_destroy(&m);
}

static void assert_list(mp_mlist_t *l, const int64_t *want, size_t n)
{
    mp_obj_t *copy;
    assert_int_equal(mp_mlist_copy(l, &copy), 0);
    assert_int_equal(mp_obj_len(copy), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(mp_obj_int(mp_obj_array_at(copy, i)), want[i]);
    mp_obj_destroy(&copy);
}

static void test_manager_list_operations(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mlist_t *l;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_list(m, &l), 0);
    mp_obj_t *v = NULL, *x;
    assert_int_equal(mp_mlist_get(l, 0, &v), MP_ERANGE);
    assert_int_equal(mp_mlist_pop(l, -1, &v), MP_ERANGE);
    for (int i = 0; i < 5; i++) { /* [0 1 2 3 4] */
        x = I(i);
        assert_int_equal(mp_mlist_append(l, x), 0);
        mp_obj_destroy(&x);
    }
    mp_obj_t *ext = mp_obj_new_array(); /* [0 1 2 3 4 5 6] */
    mp_obj_array_add(ext, I(5));
    mp_obj_array_add(ext, I(6));
    assert_int_equal(mp_mlist_extend(l, ext), 0);
    mp_obj_destroy(&ext);
    assert_int_equal(mp_mlist_get(l, -1, &v), 0);
    assert_int_obj(v, 6);
    assert_int_equal(mp_mlist_get(l, -7, &v), 0);
    assert_int_obj(v, 0);
    assert_int_equal(mp_mlist_get(l, 7, &v), MP_ERANGE);
    assert_int_equal(mp_mlist_get(l, -8, &v), MP_ERANGE);
    x = I(40);
    assert_int_equal(mp_mlist_set(l, -3, x), 0); /* [0 1 2 3 40 5 6] */
    mp_obj_destroy(&x);
    x = I(-1);
    assert_int_equal(mp_mlist_insert(l, -100, x), 0); /* clamped: [-1 0 1 2 3 40 5 6] */
    mp_obj_destroy(&x);
    x = I(99);
    assert_int_equal(mp_mlist_insert(l, 100, x), 0); /* [-1 0 1 2 3 40 5 6 99] */
    mp_obj_destroy(&x);
    x = I(33);
    assert_int_equal(mp_mlist_insert(l, 4, x), 0); /* [-1 0 1 2 33 3 40 5 6 99] */
    mp_obj_destroy(&x);
    int64_t want1[] = {-1, 0, 1, 2, 33, 3, 40, 5, 6, 99};
    assert_list(l, want1, 10);
    assert_int_equal(mp_mlist_pop(l, -1, &v), 0);
    assert_int_obj(v, 99);
    assert_int_equal(mp_mlist_pop(l, 1, &v), 0); /* [-1 1 2 33 3 40 5 6] */
    assert_int_obj(v, 0);
    x = I(33);
    assert_int_equal(mp_mlist_remove(l, x), 0); /* [-1 1 2 3 40 5 6] */
    assert_int_equal(mp_mlist_remove(l, x), MP_ENOENT);
    mp_obj_destroy(&x);
    int64_t want2[] = {-1, 1, 2, 3, 40, 5, 6};
    assert_list(l, want2, 7);
    size_t n;
    x = I(40);
    assert_int_equal(mp_mlist_index(l, x, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(mp_mlist_append(l, x), 0);
    assert_int_equal(mp_mlist_count(l, x, &n), 0);
    assert_int_equal(n, 2);
    bool appended;
    assert_int_equal(mp_mlist_append_unique(l, x, &appended), 0);
    assert_false(appended);
    mp_obj_destroy(&x);
    x = I(77);
    assert_int_equal(mp_mlist_index(l, x, &n), MP_ENOENT);
    assert_int_equal(mp_mlist_append_unique(l, x, &appended), 0);
    assert_true(appended);
    mp_obj_destroy(&x);
    assert_int_equal(mp_mlist_len(l, &n), 0);
    assert_int_equal(n, 9); /* [-1 1 2 3 40 5 6 40 77] */
    mp_obj_t *sl;
    assert_int_equal(mp_mlist_slice(l, 2, -2, &sl), 0);
    assert_int_equal(mp_obj_len(sl), 5);
    assert_int_equal(mp_obj_int(mp_obj_array_at(sl, 0)), 2);
    assert_int_equal(mp_obj_int(mp_obj_array_at(sl, 4)), 6);
    mp_obj_destroy(&sl);
    assert_int_equal(mp_mlist_slice(l, 5, 2, &sl), 0);
    assert_int_equal(mp_obj_len(sl), 0);
    mp_obj_destroy(&sl);
    assert_int_equal(mp_mlist_clear(l), 0);
    assert_int_equal(mp_mlist_len(l, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(mp_mlist_append(l, NULL), MP_EINVAL); /* no value */
    assert_int_equal(mp_mlist_insert(l, 0, NULL), MP_EINVAL);
    assert_int_equal(mp_mlist_count(l, NULL, &n), MP_EINVAL);
    x = I(1); /* a list is not a dict */
    assert_int_equal(mp_mdict_set(l, x, x), MP_EINVAL);
    assert_int_equal(mp_mdict_len(l, &n), MP_EINVAL);
    mp_obj_destroy(&x);
    assert_int_equal(mp_mobj_free(m, &l), 0);
    mp_manager_stats_t st;
    assert_int_equal(mp_manager_stats(m, &st), 0);
    assert_int_equal(st.used, 0);
    mp_manager_destroy(&m);
}

/* ---- 4 processes ------------------------------------------------------------------- */

typedef struct {
    mp_mlist_t *list;
    mp_mdict_t *dict;
    int id;
} worker_arg_t;

#define PER_PROCESS 10000

static int append_worker(void *arg)
{
    worker_arg_t *w = arg;
    for (int i = 0; i < PER_PROCESS; i++) {
        mp_obj_t *v = I((int64_t)w->id * 1000000 + i);
        int rc = mp_mlist_append(w->list, v);
        mp_obj_destroy(&v);
        if (rc)
            return 1;
    }
    return 0;
}

static int incr_worker(void *arg)
{
    worker_arg_t *w = arg;
    mp_obj_t *k = S("counter"), *kc = S("cas");
    int bad = 0;
    for (int i = 0; i < PER_PROCESS && !bad; i++)
        bad = mp_mdict_incr(w->dict, k, 1, NULL) != 0;
    for (int i = 0; i < 1000 && !bad; i++) { /* a compare-and-set loop */
        for (bool swapped = false; !swapped && !bad;) {
            mp_obj_t *cur = NULL, *zero = I(0), *next;
            bad = mp_mdict_get(w->dict, kc, NULL, &cur) != 0;
            if (bad)
                break;
            next = I(mp_obj_int(cur) + 1);
            bad = bad || mp_mdict_cas(w->dict, kc, cur, next, &swapped) != 0;
            mp_obj_destroy(&cur);
            mp_obj_destroy(&zero);
            mp_obj_destroy(&next);
        }
    }
    mp_obj_destroy(&k);
    mp_obj_destroy(&kc);
    return bad;
}

static void run4(mp_target_fn *fn, worker_arg_t *args)
{
    mp_process_t *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = tu_start(fn, &args[i], NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tu_join(&p[i], 60000), 0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_manager_4_processes_append_40000_items_each_once(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mlist_t *l;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_list(m, &l), 0);
    worker_arg_t args[4];
    for (int i = 0; i < 4; i++)
        args[i] = (worker_arg_t){.list = l, .id = i};
    run4(append_worker, args);
    mp_obj_t *all;
    assert_int_equal(mp_mlist_copy(l, &all), 0);
    assert_int_equal(mp_obj_len(all), 4 * PER_PROCESS);
    int64_t *v = malloc(4 * PER_PROCESS * sizeof *v);
    for (size_t i = 0; i < 4 * PER_PROCESS; i++)
        v[i] = mp_obj_int(mp_obj_array_at(all, i));
    qsort(v, 4 * PER_PROCESS, sizeof *v, cmp_i64);
    for (int p = 0; p < 4; p++)
        for (int i = 0; i < PER_PROCESS; i++)
            assert_int_equal(v[p * PER_PROCESS + i], (int64_t)p * 1000000 + i);
    free(v);
    mp_obj_destroy(&all);
    mp_manager_destroy(&m);
}

static void test_manager_4_processes_increment_atomically(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mdict_t *d;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_dict(m, &d), 0);
    dset(d, S("cas"), I(0)); /* cas(expected 0) needs the key; "counter" starts absent */
    worker_arg_t args[4];
    for (int i = 0; i < 4; i++)
        args[i] = (worker_arg_t){.dict = d, .id = i};
    run4(incr_worker, args);
    assert_int_equal(dget_int(d, S("counter")), 4 * PER_PROCESS);
    assert_int_equal(dget_int(d, S("cas")), 4000);
    /* incr on something that is not a number */
    dset(d, S("s"), S("text"));
    mp_obj_t *k = S("s");
    assert_int_equal(mp_mdict_incr(d, k, 1, NULL), MP_ETYPE);
    mp_obj_destroy(&k);
    mp_manager_destroy(&m);
}

/* ---- limits and death ------------------------------------------------------------- */

static void test_manager_capacity_exhaustion_is_an_error_and_changes_nothing(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mlist_t *l;
    mp_mdict_t *d;
    mp_manager_options_t o = {.capacity = 1 << 20};
    assert_int_equal(mp_manager_new(&o, &m), 0);
    assert_int_equal(mp_manager_list(m, &l), 0);
    assert_int_equal(mp_manager_dict(m, &d), 0);
    char big[2000];
    memset(big, 'x', sizeof big);
    mp_obj_t *item = mp_obj_new_bin(big, sizeof big);
    int rc = 0;
    size_t n = 0, len = 0;
    while ((rc = mp_mlist_append(l, item)) == 0)
        n++;
    assert_int_equal(rc, MP_ENOSPC);
    assert_true(n > 100);
    assert_int_equal(mp_mlist_len(l, &len), 0);
    assert_int_equal(len, n); /* the failed append changed nothing */
    /* a dict update that cannot fit: all or nothing */
    mp_obj_t *upd = mp_obj_new_map();
    for (int i = 0; i < 50; i++)
        mp_obj_map_add(upd, I(i), mp_obj_new_bin(big, sizeof big));
    assert_int_equal(mp_mdict_update(d, upd), MP_ENOSPC);
    assert_int_equal(mp_mdict_len(d, &len), 0);
    assert_int_equal(len, 0);
    /* usable: free some room, then the same calls work */
    mp_obj_t *v;
    for (int i = 0; i < 60; i++) {
        assert_int_equal(mp_mlist_pop(l, -1, &v), 0);
        mp_obj_destroy(&v);
    }
    assert_int_equal(mp_mdict_update(d, upd), 0);
    assert_int_equal(mp_mdict_len(d, &len), 0);
    assert_int_equal(len, 50);
    assert_int_equal(mp_mlist_append(l, item), 0);
    mp_obj_destroy(&upd);
    mp_obj_destroy(&item);
    mp_obj_t *huge = mp_obj_new_bin(NULL, 0);
    mp_obj_destroy(&huge);
    mp_manager_destroy(&m);
}

static int die_inside(const mp_obj_t *cur, mp_obj_t **next, void *arg)
{
    (void)cur;
    (void)next;
    (void)arg;
    _exit(3); /* killed in the middle of an operation, holding the lock */
}

static int die_inside_update(void *arg)
{
    mp_obj_t *k = S("counter");
    mp_mdict_update_fn(arg, k, die_inside, NULL);
    return 1; /* not reached */
}

static void test_manager_process_dying_inside_an_operation_is_repaired(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mdict_t *d;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_dict(m, &d), 0);
    mp_obj_t *k = S("counter");
    assert_int_equal(mp_mdict_incr(d, k, 5, NULL), 0);
    assert_int_equal(tu_run(die_inside_update, d), 3);
    /* the next caller is told, and its call is not performed */
    assert_int_equal(mp_mdict_incr(d, k, 1, NULL), MP_EREPAIRED);
    int64_t now;
    assert_int_equal(mp_mdict_incr(d, k, 1, &now), 0);
    assert_int_equal(now, 6);
    mp_manager_stats_t st;
    assert_int_equal(mp_manager_stats(m, &st), 0);
    assert_int_equal(st.repairs, 1);
    mp_obj_destroy(&k);
    mp_manager_destroy(&m);
}

/* A manager with a list and a dict for churn, in w. */
static mp_manager_t *new_list_and_dict(worker_arg_t *w)
{
    mp_manager_t *m;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_list(m, &w->list), 0);
    assert_int_equal(mp_manager_dict(m, &w->dict), 0);
    return m;
}

/* A child that writes as fast as it can: appends, sets, inserts and pops
   on a list, sets and deletes on a dict, until it is SIGKILLed. */
static int churn(void *arg)
{
    worker_arg_t *w = arg;
    for (int64_t i = 0;; i++) {
        mp_obj_t *v = I(i), *k = I(i % 97);
        if (mp_mlist_append(w->list, v) == MP_ENOSPC)
            _exit(4);
        mp_mlist_insert(w->list, i % 5, v);
        mp_obj_t *out = NULL;
        mp_mlist_pop(w->list, 2, &out);
        mp_obj_destroy(&out);
        mp_mdict_set(w->dict, k, v);
        if (i % 3 == 0)
            mp_mdict_del(w->dict, k);
        mp_obj_destroy(&v);
        mp_obj_destroy(&k);
    }
}

static void test_manager_sigkilled_writers_leave_objects_consistent(void **state)
{
    (void)state;
    worker_arg_t w = {0};
    mp_manager_t *m = new_list_and_dict(&w);
    srand(42);
    int told = 0;
    for (int round = 0; round < 25; round++) {
        mp_process_t *p = tu_start(churn, &w, NULL);
        usleep(2000 + (useconds_t)(rand() % 8000));
        assert_int_equal(mp_process_kill(p), 0);
        assert_int_equal(mp_process_join(p, 5000), 0);
        mp_process_destroy(&p);
        /* consistent: every call works (after at most one MP_EREPAIRED) */
        size_t len = 0, dlen = 0;
        int rc = mp_mlist_len(w.list, &len);
        if (rc == MP_EREPAIRED) {
            told++;
            rc = mp_mlist_len(w.list, &len);
        }
        assert_int_equal(rc, 0);
        mp_obj_t *copy, *items;
        assert_int_equal(mp_mlist_copy(w.list, &copy), 0);
        assert_int_equal(mp_obj_len(copy), len);
        mp_obj_destroy(&copy);
        assert_int_equal(mp_mdict_items(w.dict, &items), 0);
        assert_int_equal(mp_mdict_len(w.dict, &dlen), 0);
        assert_int_equal(mp_obj_len(items), dlen);
        for (size_t i = 0; i < dlen; i++) { /* each key once, and findable */
            mp_obj_t *got = NULL;
            assert_int_equal(mp_mdict_get(w.dict, mp_obj_map_key_at(items, i), NULL, &got), 0);
            assert_true(mp_obj_equal(got, mp_obj_map_value_at(items, i)));
            mp_obj_destroy(&got);
        }
        mp_obj_destroy(&items);
    }
    /* no block lost: free everything, and the arena is empty again */
    assert_int_equal(mp_mobj_free(m, &w.list), 0);
    assert_int_equal(mp_mobj_free(m, &w.dict), 0);
    mp_manager_stats_t st;
    assert_int_equal(mp_manager_stats(m, &st), 0);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.repairs, (unsigned)told);
    print_message("%d of 25 kills landed inside an operation; all repaired\n", told);
    mp_manager_destroy(&m);
}

static void test_manager_snapshots_never_break_while_another_process_writes(void **state)
{
    (void)state;
    worker_arg_t w = {0};
    mp_manager_t *m = new_list_and_dict(&w);
    mp_process_t *p = tu_start(churn, &w, NULL);
    int taken = 0;
    for (uint64_t end = tu_now_ms() + 300; tu_now_ms() < end; taken++) {
        mp_obj_t *items = NULL, *copy = NULL;
        assert_int_equal(mp_mdict_items(w.dict, &items), 0);
        for (size_t i = 0; i < mp_obj_len(items); i++) { /* keys unique, values ints */
            assert_int_equal(mp_obj_type(mp_obj_map_value_at(items, i)), MP_OBJ_INT);
            for (size_t k = i + 1; k < mp_obj_len(items) && k < i + 8; k++)
                assert_false(
                    mp_obj_equal(mp_obj_map_key_at(items, i), mp_obj_map_key_at(items, k)));
        }
        assert_int_equal(mp_mlist_copy(w.list, &copy), 0);
        for (size_t i = 0; i < mp_obj_len(copy); i++)
            assert_int_equal(mp_obj_type(mp_obj_array_at(copy, i)), MP_OBJ_INT);
        mp_obj_destroy(&items);
        mp_obj_destroy(&copy);
    }
    assert_int_equal(mp_process_kill(p), 0);
    assert_int_equal(mp_process_join(p, 5000), 0);
    mp_process_destroy(&p);
    assert_true(taken > 10);
    mp_manager_destroy(&m);
}

/* ---- the SyncManager set ------------------------------------------------------------ */

typedef struct {
    mp_lock_t *lock;
    mp_queue_t *queue;
    mp_event_t *event;
    mp_value_t *value;
    mp_condition_t *cond;
} sync_set_t;

static int use_sync_set(void *arg)
{
    sync_set_t *s = arg;
    if (mp_lock_acquire(s->lock, 1000))
        return 1;
    mp_value_set_int(s->value, mp_value_get_int(s->value) + 41);
    mp_lock_release(s->lock);
    mp_obj_t *item = S("from the child");
    int rc = mp_queue_put(s->queue, item, 1000);
    mp_obj_destroy(&item);
    return rc || mp_event_set(s->event) ? 2 : 0;
}

static void test_manager_sync_set_is_shared_and_owned(void **state)
{
    (void)state;
    mp_manager_t *m;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    sync_set_t s = {.lock = mp_manager_rlock(m),
                    .queue = mp_manager_queue(m, NULL),
                    .event = mp_manager_event(m),
                    .value = mp_manager_value(m, 'q', NULL)};
    s.cond = mp_manager_condition(m, s.lock); /* destroyed before its lock */
    assert_non_null(s.lock);
    assert_non_null(s.queue);
    assert_non_null(s.event);
    assert_non_null(s.value);
    assert_non_null(s.cond);
    assert_non_null(mp_manager_semaphore(m, 2));
    assert_non_null(mp_manager_bounded_semaphore(m, 2));
    assert_non_null(mp_manager_barrier(m, 2, NULL));
    assert_non_null(mp_manager_array(m, 'd', 16, NULL));
    assert_non_null(mp_manager_joinable_queue(m, NULL));
    assert_null(mp_manager_value(m, '?' + 100, NULL)); /* bad typecode */
    mp_value_set_int(s.value, 1);
    assert_int_equal(tu_run(use_sync_set, &s), 0);
    assert_int_equal(mp_event_wait(s.event, 1000), 0);
    assert_int_equal(mp_value_get_int(s.value), 42);
    mp_obj_t *item = NULL;
    assert_int_equal(mp_queue_get(s.queue, &item, 1000), 0);
    assert_string_equal(mp_obj_str(item, NULL), "from the child");
    mp_obj_destroy(&item);
    mp_manager_destroy(&m); /* destroys all eleven */
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_manager_dict_operations, tu_teardown),
        cmocka_unit_test_teardown(test_manager_nested_values_round_trip_exactly, tu_teardown),
        cmocka_unit_test_teardown(test_manager_list_operations, tu_teardown),
        cmocka_unit_test_teardown(test_manager_4_processes_append_40000_items_each_once,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_manager_4_processes_increment_atomically, tu_teardown),
        cmocka_unit_test_teardown(test_manager_capacity_exhaustion_is_an_error_and_changes_nothing,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_manager_process_dying_inside_an_operation_is_repaired,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_manager_sigkilled_writers_leave_objects_consistent,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_manager_sync_set_is_shared_and_owned, tu_teardown),
        cmocka_unit_test_teardown(test_manager_snapshots_never_break_while_another_process_writes,
                                  tu_teardown),
    };
    return cmocka_run_group_tests_name("manager", tests, NULL, NULL);
}
