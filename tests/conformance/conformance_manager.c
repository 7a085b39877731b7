/*  conformance_manager.c - CPython's _TestContainers and _TestRemoteManager
    (Lib/test/_test_multiprocessing.py, 3.11), ported to libmp's Manager.

    Python's proxies become the mp_mdict_* / mp_mlist_* / mp_mns_* calls; a
    proxy stored in a container (a nested proxy) becomes a reference
    (mp_mobj_ref) and reading one back is mp_mdict_get_ref /
    mp_mlist_get_ref. A Python list literal is an mp_obj_t array. */
#include <stdarg.h>
#include <string.h>

#include "support.h"

static mp_obj_t *I(int64_t v)
{
    return mp_obj_new_int(v);
}

static mp_obj_t *S(const char *s)
{
    return mp_obj_new_str(s);
}

/* [a, a + 1, ..., b - 1] */
static mp_obj_t *range(int a, int b)
{
    mp_obj_t *arr = mp_obj_new_array();
    for (int i = a; i < b; i++)
        mp_obj_array_add(arr, I(i));
    return arr;
}

/* An array of the n values given (taken). */
static mp_obj_t *array_of(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    mp_obj_t *arr = mp_obj_new_array();
    for (int i = 0; i < n; i++)
        mp_obj_array_add(arr, va_arg(ap, mp_obj_t *));
    va_end(ap);
    return arr;
}

/* Consumes got: asserts it is the array of ints want[0..n). */
static void assert_ints(mp_obj_t *got, const int64_t *want, size_t n)
{
    assert_int_equal(mp_obj_type(got), MP_OBJ_ARRAY);
    assert_int_equal(mp_obj_len(got), n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(mp_obj_type(mp_obj_array_at(got, i)), MP_OBJ_INT);
        assert_int_equal(mp_obj_int(mp_obj_array_at(got, i)), want[i]);
    }
    mp_obj_destroy(&got);
}

#define ASSERT_INTS(got, ...)                                                                      \
    do {                                                                                           \
        const int64_t want_[] = {__VA_ARGS__};                                                     \
        assert_ints((got), want_, sizeof want_ / sizeof *want_);                                   \
    } while (0)

/* list[:] */
static mp_obj_t *all(mp_mlist_t *l)
{
    mp_obj_t *a = NULL;
    assert_int_equal(mp_mlist_copy(l, &a), 0);
    return a;
}

/* A new managed list holding what init holds (taken; NULL: empty). */
static mp_mlist_t *new_list(mp_manager_t *m, mp_obj_t *init)
{
    mp_mlist_t *l;
    assert_int_equal(mp_manager_list(m, &l), 0);
    if (init)
        assert_int_equal(mp_mlist_extend(l, init), 0);
    mp_obj_destroy(&init);
    return l;
}

/* A new managed dict holding the pairs of map (taken). */
static mp_mdict_t *new_dict(mp_manager_t *m, mp_obj_t *map)
{
    mp_mdict_t *d;
    assert_int_equal(mp_manager_dict(m, &d), 0);
    if (map)
        assert_int_equal(mp_mdict_update(d, map), 0);
    mp_obj_destroy(&map);
    return d;
}

static int64_t dget(mp_mdict_t *d, const char *key)
{
    mp_obj_t *k = S(key), *v = NULL;
    assert_int_equal(mp_mdict_get(d, k, NULL, &v), 0);
    int64_t r = mp_obj_int(v);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    return r;
}

static void dset(mp_mdict_t *d, const char *key, mp_obj_t *value)
{
    mp_obj_t *k = S(key);
    assert_int_equal(mp_mdict_set(d, k, value), 0);
    mp_obj_destroy(&k);
    mp_obj_destroy(&value);
}

/* d[key], a reference, followed */
static struct mp_mobj *dref(mp_mdict_t *d, const char *key)
{
    mp_obj_t *k = S(key);
    struct mp_mobj *o = NULL;
    assert_int_equal(mp_mdict_get_ref(d, k, &o), 0);
    mp_obj_destroy(&k);
    return o;
}

static struct mp_mobj *lref(mp_mlist_t *l, int64_t index)
{
    struct mp_mobj *o = NULL;
    assert_int_equal(mp_mlist_get_ref(l, index, &o), 0);
    return o;
}

static size_t len_of(mp_mlist_t *l)
{
    size_t n = 0;
    assert_int_equal(mp_mlist_len(l, &n), 0);
    return n;
}

static int setup(void **state)
{
    mp_manager_t *m;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    mp_manager_t *m = *state;
    mp_manager_destroy(&m);
    return tu_teardown(state);
}

/* ---- _TestContainers ----------------------------------------------------------------- */

/* test_list: slices, extend, `b *= 2`, `b + [5, 6]`, and lists of lists
   holding proxies (references) that see later appends. */
static void conformance_manager_test_list(void **state)
{
    mp_manager_t *m = *state;
    mp_mlist_t *a = new_list(m, range(0, 10));
    ASSERT_INTS(all(a), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);

    mp_mlist_t *b = new_list(m, NULL);
    assert_int_equal(len_of(b), 0);
    mp_obj_t *r5 = range(0, 5);
    assert_int_equal(mp_mlist_extend(b, r5), 0);
    mp_obj_destroy(&r5);
    ASSERT_INTS(all(b), 0, 1, 2, 3, 4);

    mp_obj_t *v = NULL;
    assert_int_equal(mp_mlist_get(b, 2, &v), 0);
    assert_int_equal(mp_obj_int(v), 2);
    mp_obj_destroy(&v);
    assert_int_equal(mp_mlist_slice(b, 2, 10, &v), 0);
    ASSERT_INTS(v, 2, 3, 4);

    mp_obj_t *copy = all(b); /* b *= 2 */
    assert_int_equal(mp_mlist_extend(b, copy), 0);
    mp_obj_destroy(&copy);
    ASSERT_INTS(all(b), 0, 1, 2, 3, 4, 0, 1, 2, 3, 4);

    mp_obj_t *sum = all(b); /* b + [5, 6]: a plain list */
    mp_obj_array_add(sum, I(5));
    mp_obj_array_add(sum, I(6));
    ASSERT_INTS(sum, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6);
    ASSERT_INTS(all(a), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);

    mp_mlist_t *e = new_list(m, array_of(2, mp_mobj_ref(a), mp_mobj_ref(b)));
    ASSERT_INTS(all(lref(e, 0)), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    ASSERT_INTS(all(lref(e, 1)), 0, 1, 2, 3, 4, 0, 1, 2, 3, 4);

    mp_mlist_t *f = new_list(m, array_of(1, mp_mobj_ref(a)));
    mp_obj_t *hello = S("hello");
    assert_int_equal(mp_mlist_append(a, hello), 0);
    mp_obj_destroy(&hello);
    mp_obj_t *got = all(lref(f, 0));
    assert_int_equal(mp_obj_len(got), 11);
    for (int i = 0; i < 10; i++)
        assert_int_equal(mp_obj_int(mp_obj_array_at(got, i)), i);
    assert_string_equal(mp_obj_str(mp_obj_array_at(got, 10), NULL), "hello");
    mp_obj_destroy(&got);
}

/* test_list_iter: iterating a ListProxy goes by index (__getitem__), so
   an exhausted iterator stays exhausted and a change made during the
   iteration is seen. */
static void conformance_manager_test_list_iter(void **state)
{
    mp_manager_t *m = *state;
    mp_mlist_t *a = new_list(m, range(0, 10));
    mp_obj_t *v = NULL;
    int64_t it = 0;
    for (; mp_mlist_get(a, it, &v) == 0; it++) {
        assert_int_equal(mp_obj_int(v), it);
        mp_obj_destroy(&v);
    }
    assert_int_equal(it, 10);
    assert_int_equal(mp_mlist_get(a, it, &v), MP_ERANGE); /* exhausted */
    it = 0;                                               /* it = iter(a) */
    mp_obj_t *hundred = I(100);
    assert_int_equal(mp_mlist_set(a, 0, hundred), 0);
    mp_obj_destroy(&hundred);
    assert_int_equal(mp_mlist_get(a, it, &v), 0);
    assert_int_equal(mp_obj_int(v), 100);
    mp_obj_destroy(&v);
}

/* test_list_proxy_in_list: a list of three lists; a change through a[0]
   is seen in a[0] only; a list may hold itself. */
static void conformance_manager_test_list_proxy_in_list(void **state)
{
    mp_manager_t *m = *state;
    mp_obj_t *inner = mp_obj_new_array();
    for (int i = 0; i < 3; i++)
        mp_obj_array_add(inner, mp_mobj_ref(new_list(m, range(0, 3))));
    mp_mlist_t *a = new_list(m, inner);
    for (int i = 0; i < 3; i++)
        ASSERT_INTS(all(lref(a, i)), 0, 1, 2);

    mp_obj_t *v = I(55);
    assert_int_equal(mp_mlist_set(lref(a, 0), -1, v), 0);
    mp_obj_destroy(&v);
    ASSERT_INTS(all(lref(a, 0)), 0, 1, 55);
    for (int i = 1; i < 3; i++)
        ASSERT_INTS(all(lref(a, i)), 0, 1, 2);

    assert_int_equal(mp_mlist_pop(lref(a, 1), -1, &v), 0);
    assert_int_equal(mp_obj_int(v), 2);
    mp_obj_destroy(&v);
    assert_int_equal(len_of(lref(a, 1)), 2);
    for (int i = 0; i < 3; i += 2)
        assert_int_equal(len_of(lref(a, i)), 3);

    mp_mlist_t *b = new_list(m, NULL); /* b.append(b) */
    mp_obj_t *self = mp_mobj_ref(b);
    assert_int_equal(mp_mlist_append(b, self), 0);
    mp_obj_destroy(&self);
    assert_ptr_equal(lref(b, 0), b);
}

/* test_dict: keys, values, items and a copy of an int -> str dict. */
static void conformance_manager_test_dict(void **state)
{
    mp_manager_t *m = *state;
    mp_mdict_t *d = new_dict(m, NULL);
    for (int i = 65; i < 70; i++) {
        char s[2] = {(char)i, 0};
        mp_obj_t *k = I(i), *v = S(s);
        assert_int_equal(mp_mdict_set(d, k, v), 0);
        mp_obj_destroy(&k);
        mp_obj_destroy(&v);
    }
    mp_obj_t *keys, *values, *items;
    assert_int_equal(mp_mdict_keys(d, &keys), 0);
    ASSERT_INTS(keys, 65, 66, 67, 68, 69); /* insertion order is sorted here */
    assert_int_equal(mp_mdict_values(d, &values), 0);
    assert_int_equal(mp_mdict_items(d, &items), 0);
    assert_int_equal(mp_obj_len(values), 5);
    assert_int_equal(mp_obj_len(items), 5);
    for (size_t i = 0; i < 5; i++) {
        char s[2] = {(char)(65 + i), 0};
        assert_string_equal(mp_obj_str(mp_obj_array_at(values, i), NULL), s);
        assert_int_equal(mp_obj_int(mp_obj_map_key_at(items, i)), 65 + (int)i);
        assert_string_equal(mp_obj_str(mp_obj_map_value_at(items, i), NULL), s);
    }
    mp_obj_destroy(&values);
    mp_obj_destroy(&items);
}

/* test_dict_iter: a full iteration gives the keys, a second pass of the
   same iterator nothing. CPython's DictProxy iterator is live and raises
   when the dict changes size under it; libmp's keys are a snapshot taken
   under the lock, so the iteration after clear() still yields them: a
   deliberate divergence (CONFORMANCE.md), asserted here. */
static void conformance_manager_test_dict_iter(void **state)
{
    mp_manager_t *m = *state;
    mp_mdict_t *d = new_dict(m, NULL);
    for (int i = 65; i < 70; i++) {
        mp_obj_t *k = I(i), *v = I(i);
        assert_int_equal(mp_mdict_set(d, k, v), 0);
        mp_obj_destroy(&k);
        mp_obj_destroy(&v);
    }
    mp_obj_t *it;
    assert_int_equal(mp_mdict_keys(d, &it), 0);
    ASSERT_INTS(it, 65, 66, 67, 68, 69);
    assert_int_equal(mp_mdict_keys(d, &it), 0);
    assert_int_equal(mp_mdict_clear(d), 0);
    ASSERT_INTS(it, 65, 66, 67, 68, 69); /* the snapshot: CPython raises here */
}

/* test_dict_proxy_nested: dicts in a dict and in a list; updates through
   the outer container are seen through the inner one and back; the inner
   ones outlive the outer's clear(); a plain list stays a plain list. */
static void conformance_manager_test_dict_proxy_nested(void **state)
{
    mp_manager_t *m = *state;
    mp_obj_t *p = mp_obj_new_map(), *s = mp_obj_new_map(), *outer = mp_obj_new_map();
    mp_obj_map_add(p, S("ferrets"), I(2));
    mp_obj_map_add(p, S("hamsters"), I(4));
    mp_obj_map_add(s, S("water"), I(10));
    mp_obj_map_add(s, S("feed"), I(3));
    mp_mdict_t *pets = new_dict(m, p), *supplies = new_dict(m, s);
    mp_obj_map_add(outer, S("pets"), mp_mobj_ref(pets));
    mp_obj_map_add(outer, S("supplies"), mp_mobj_ref(supplies));
    mp_mdict_t *d = new_dict(m, outer);

    assert_int_equal(dget(supplies, "water"), 10);
    assert_int_equal(dget(dref(d, "supplies"), "water"), 10);

    dset(dref(d, "supplies"), "blankets", I(5));
    assert_int_equal(dget(supplies, "blankets"), 5);
    assert_int_equal(dget(dref(d, "supplies"), "blankets"), 5);

    dset(dref(d, "supplies"), "water", I(7));
    assert_int_equal(dget(supplies, "water"), 7);
    assert_int_equal(dget(dref(d, "supplies"), "water"), 7);

    pets = supplies = NULL; /* del pets, supplies: only d reaches them now */
    assert_int_equal(dget(dref(d, "pets"), "ferrets"), 2);
    dset(dref(d, "supplies"), "blankets", I(11));
    assert_int_equal(dget(dref(d, "supplies"), "blankets"), 11);

    pets = dref(d, "pets");
    supplies = dref(d, "supplies");
    dset(supplies, "water", I(7));
    assert_int_equal(dget(supplies, "water"), 7);
    assert_int_equal(dget(dref(d, "supplies"), "water"), 7);

    assert_int_equal(mp_mdict_clear(d), 0);
    size_t n = 99;
    assert_int_equal(mp_mdict_len(d, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(dget(supplies, "water"), 7);
    assert_int_equal(dget(pets, "hamsters"), 4);

    mp_mlist_t *l = new_list(m, array_of(2, mp_mobj_ref(pets), mp_mobj_ref(supplies)));
    dset(lref(l, 0), "marmots", I(1));
    assert_int_equal(dget(pets, "marmots"), 1);
    assert_int_equal(dget(lref(l, 0), "marmots"), 1);
    pets = supplies = NULL;
    assert_int_equal(dget(lref(l, 0), "marmots"), 1);

    mp_mlist_t *o = new_list(m, array_of(2, array_of(2, I(88), I(99)), mp_mobj_ref(l)));
    mp_obj_t *first = NULL;
    assert_int_equal(mp_mlist_get(o, 0, &first), 0);
    ASSERT_INTS(first, 88, 99); /* a plain list, not a reference */
    struct mp_mobj *not_a_ref = NULL;
    assert_int_equal(mp_mlist_get_ref(o, 0, &not_a_ref), MP_ETYPE);
    assert_int_equal(dget(lref(lref(o, -1), -1), "feed"), 3);
}

/* test_nested_queue: a manager's Queue stored in a list and in a dict,
   used through them. */
static void conformance_manager_test_nested_queue(void **state)
{
    mp_manager_t *m = *state;
    mp_mlist_t *a = new_list(m, NULL);
    mp_obj_t *ref = mp_manager_queue_ref(m, mp_manager_queue(m, NULL));
    assert_int_equal(mp_mlist_append(a, ref), 0);
    mp_obj_destroy(&ref);
    mp_queue_t *q = NULL;
    assert_int_equal(mp_mlist_get_queue(a, 0, &q), 0);
    mp_obj_t *v = I(123);
    assert_int_equal(mp_queue_put(q, v, -1), 0);
    mp_obj_destroy(&v);
    assert_int_equal(mp_mlist_get_queue(a, 0, &q), 0);
    assert_int_equal(mp_queue_get(q, &v, 5000), 0);
    assert_int_equal(mp_obj_int(v), 123);
    mp_obj_destroy(&v);

    mp_mdict_t *b = new_dict(m, NULL);
    mp_obj_t *k = I(0);
    ref = mp_manager_queue_ref(m, mp_manager_queue(m, NULL));
    assert_int_equal(mp_mdict_set(b, k, ref), 0);
    mp_obj_destroy(&ref);
    assert_int_equal(mp_mdict_get_queue(b, k, &q), 0);
    v = I(456);
    assert_int_equal(mp_queue_put(q, v, -1), 0);
    mp_obj_destroy(&v);
    assert_int_equal(mp_mdict_get_queue(b, k, &q), 0);
    assert_int_equal(mp_queue_get(q, &v, 5000), 0);
    assert_int_equal(mp_obj_int(v), 456);
    mp_obj_destroy(&v);
    mp_obj_destroy(&k);
}

/* test_namespace: attributes set, read, deleted. (Python's `_hidden`
   attribute lives on the proxy object and str(n) is its repr: neither
   carries over.) */
static void conformance_manager_test_namespace(void **state)
{
    mp_manager_t *m = *state;
    mp_mns_t *n;
    assert_int_equal(mp_manager_namespace(m, &n), 0);
    mp_obj_t *bob = S("Bob"), *builder = S("Builder"), *v = NULL;
    assert_int_equal(mp_mns_set(n, "name", bob), 0);
    assert_int_equal(mp_mns_set(n, "job", builder), 0);
    assert_int_equal(mp_mns_get(n, "name", &v), 0);
    assert_true(mp_obj_equal(v, bob));
    mp_obj_destroy(&v);
    assert_int_equal(mp_mns_get(n, "job", &v), 0);
    assert_true(mp_obj_equal(v, builder));
    mp_obj_destroy(&v);
    assert_int_equal(mp_mns_del(n, "job"), 0);
    assert_int_equal(mp_mns_get(n, "name", &v), 0); /* hasattr(n, 'name') */
    mp_obj_destroy(&v);
    assert_int_equal(mp_mns_get(n, "job", &v), MP_ENOENT); /* not hasattr(n, 'job') */
    mp_obj_destroy(&bob);
    mp_obj_destroy(&builder);
}

/* ---- _TestRemoteManager -------------------------------------------------------------- */

static const char authkey[32] = "conformance-remote-manager-key!";

/* The values CPython's _putter sends, as one tuple (an array here). */
static mp_obj_t *remote_values(void)
{
    static const char latin[] = "hall\xc3\xa5 v\xc3\xa4rlden";
    static const char cyrillic[] = "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd1\x96\xd1\x82 "
                                   "\xd1\x81\xd0\xb2\xd1\x96\xd1\x82";
    static const char bytes[] = "hall\xe5 v\xe4rlden";
    return array_of(7, S("hello world"), mp_obj_new_nil(), mp_obj_new_bool(true),
                    mp_obj_new_float(2.25), S(latin), S(cyrillic),
                    mp_obj_new_bin(bytes, sizeof bytes - 1));
}

/* _putter: another process connects and puts the tuple on the queue. A
   spawned one (args: [endpoint]): this process serves the manager from a
   thread by then, and a fork of a threaded process may inherit a lock held
   (the sanitizers' allocator's, for one). */
static int putter(void *arg)
{
    mp_remote_t *r = NULL;
    mp_rqueue_t *q = NULL;
    const char *endpoint = mp_obj_str(mp_obj_array_at(arg, 0), NULL);
    if (!endpoint || mp_manager_connect(endpoint, authkey, sizeof authkey, NULL, &r) ||
        mp_remote_queue(r, "get_queue", &q))
        return 1;
    mp_obj_t *v = remote_values();
    int rc = mp_rqueue_put(q, v, 5000);
    mp_obj_destroy(&v);
    mp_remote_disconnect(&r);
    return rc ? 2 : 0;
}
MP_REGISTER_TARGET(putter)

/* test_remote: a served manager's queue, reached by name from two
   clients with a 32-byte authkey: what one puts the other gets, equal;
   a value that cannot be serialized (Python: a function; here one nested
   deeper than msgpack's limit) is an error on put. */
static void conformance_manager_test_remote(void **state)
{
    mp_manager_t *m = *state;
    mp_manager_server_t *srv = NULL;
    mp_queue_t *local;
    assert_int_equal(mp_manager_named_queue(m, "get_queue", &local), 0);
    assert_int_equal(mp_manager_serve(m, "tcp://127.0.0.1:0", authkey, sizeof authkey, &srv), 0);
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "%s", mp_manager_server_endpoint(srv));
    mp_obj_t *args = array_of(1, S(endpoint));
    mp_process_opts_t opts = {.start_method = MP_START_SPAWN, .args = args};
    mp_process_t *p = tu_start(putter, NULL, &opts);
    mp_obj_destroy(&args);

    mp_remote_t *r = NULL;
    mp_rqueue_t *q = NULL;
    assert_int_equal(mp_manager_connect(endpoint, authkey, sizeof authkey, NULL, &r), 0);
    assert_int_equal(mp_remote_queue(r, "get_queue", &q), 0);
    mp_obj_t *got = NULL, *want = remote_values();
    assert_int_equal(mp_rqueue_get(q, &got, 10000), 0);
    assert_true(mp_obj_equal(got, want));
    assert_int_equal(tu_join(&p, 10000), 0);

    mp_obj_t *deep = I(0);
    for (int i = 0; i <= MP_OBJ_MAX_DEPTH; i++)
        deep = array_of(1, deep);
    assert_int_equal(mp_rqueue_put(q, deep, 1000), MP_EINVAL);
    mp_obj_destroy(&deep);
    mp_obj_destroy(&got);
    mp_obj_destroy(&want);
    mp_remote_disconnect(&r);
    mp_manager_server_stop(&srv);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(conformance_manager_test_list),
        T(conformance_manager_test_list_iter),
        T(conformance_manager_test_list_proxy_in_list),
        T(conformance_manager_test_dict),
        T(conformance_manager_test_dict_iter),
        T(conformance_manager_test_dict_proxy_nested),
        T(conformance_manager_test_nested_queue),
        T(conformance_manager_test_namespace),
        T(conformance_manager_test_remote),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
