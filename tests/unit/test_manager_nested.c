/*  test_manager_nested.c - containers in containers (docs/MANAGER.md
    section 7): references followed locally, in forked children, after a
    repair and through a remote manager; what a reference to a freed or a
    foreign object reads as; queues by reference. */
#include <string.h>

#include "support.h"

static mp_obj_t *S(const char *s)
{
    return mp_obj_new_str(s);
}

static void dset_int(mp_mdict_t *d, const char *key, int64_t v)
{
    mp_obj_t *k = S(key), *o = mp_obj_new_int(v);
    assert_int_equal(mp_mdict_set(d, k, o), 0);
    mp_obj_destroy(&k);
    mp_obj_destroy(&o);
}

/* d[key] as an int, or the error code */
static int64_t dget_int(mp_mdict_t *d, const char *key)
{
    mp_obj_t *k = S(key), *v = NULL;
    int rc = mp_mdict_get(d, k, NULL, &v);
    int64_t r = rc ? rc : mp_obj_int(v);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    return r;
}

/* Stores a reference to inner (a dict, list or Namespace) as outer[key]. */
static void dset_ref(mp_mdict_t *outer, const char *key, struct mp_mobj *inner)
{
    mp_obj_t *k = S(key), *r = mp_mobj_ref(inner);
    assert_non_null(r);
    assert_int_equal(mp_mdict_set(outer, k, r), 0);
    mp_obj_destroy(&k);
    mp_obj_destroy(&r);
}

static int dget_ref(mp_mdict_t *outer, const char *key, struct mp_mobj **o)
{
    mp_obj_t *k = S(key);
    int rc = mp_mdict_get_ref(outer, k, o);
    mp_obj_destroy(&k);
    return rc;
}

/* outer["inner"]["n"] += 1, 1000 times, from a child forked after both
   were made. */
static int bump_through_outer(void *arg)
{
    mp_mdict_t *inner;
    if (dget_ref(arg, "inner", &inner))
        return 1;
    mp_obj_t *k = S("n");
    for (int i = 0; i < 1000; i++)
        if (mp_mdict_incr(inner, k, 1, NULL))
            return 2;
    mp_obj_destroy(&k);
    return 0;
}

static void test_nested_updates_from_children_are_seen_through_both(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mdict_t *outer, *inner;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_dict(m, &outer), 0);
    assert_int_equal(mp_manager_dict(m, &inner), 0);
    dset_ref(outer, "inner", inner);
    dset_int(inner, "n", 0);
    mp_process_t *ps[4];
    tu_start_n(ps, 4, bump_through_outer, outer);
    int codes[4];
    assert_int_equal(tu_join_n(ps, 4, 20000, codes), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(codes[i], 0);
    assert_int_equal(dget_int(inner, "n"), 4000);
    mp_mdict_t *again;
    assert_int_equal(dget_ref(outer, "inner", &again), 0);
    assert_ptr_equal(again, inner);
    mp_manager_destroy(&m);
}

static void test_reference_to_a_freed_or_foreign_object_is_enoent(void **state)
{
    (void)state;
    mp_manager_t *m, *other;
    mp_mdict_t *outer, *inner, *foreign, *got = NULL;
    mp_mlist_t *list;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_new(NULL, &other), 0);
    assert_int_equal(mp_manager_dict(m, &outer), 0);
    assert_int_equal(mp_manager_dict(m, &inner), 0);
    assert_int_equal(mp_manager_list(m, &list), 0);
    assert_int_equal(mp_manager_dict(other, &foreign), 0);
    dset_ref(outer, "inner", inner);
    dset_ref(outer, "list", list);
    dset_ref(outer, "foreign", foreign);
    assert_int_equal(mp_mobj_free(m, &inner), 0);
    assert_int_equal(dget_ref(outer, "inner", &got), MP_ENOENT);
    assert_null(got);
    /* a reference with a live object's slot but another generation (what
       a freed object's reference is once its slot is reused) */
    mp_mdict_t *fresh;
    assert_int_equal(mp_manager_dict(m, &fresh), 0);
    mp_obj_t *live = mp_mobj_ref(fresh);
    int8_t type;
    size_t size;
    uint8_t bytes[9];
    memcpy(bytes, mp_obj_ext(live, &type, &size), sizeof bytes);
    assert_int_equal(size, 9);
    assert_int_equal(mp_mobj_deref(outer, live, &got), 0);
    assert_ptr_equal(got, fresh);
    bytes[8] ^= 1;
    mp_obj_t *stale = mp_obj_new_ext(type, bytes, size);
    assert_int_equal(mp_mobj_deref(outer, stale, &got), MP_ENOENT);
    mp_obj_destroy(&live);
    mp_obj_destroy(&stale);
    assert_int_equal(dget_ref(outer, "foreign", &got), MP_ENOENT);
    /* a list's reference gives the list: dict calls on it are refused */
    assert_int_equal(dget_ref(outer, "list", &got), 0);
    assert_ptr_equal(got, list);
    assert_int_equal(dget_int(got, "x"), MP_EINVAL);
    mp_manager_destroy(&other);
    mp_manager_destroy(&m);
}

static void test_what_is_not_a_reference_is_etype(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mdict_t *d;
    struct mp_mobj *o = (void *)1;
    mp_queue_t *q = (void *)1;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_dict(m, &d), 0);
    dset_int(d, "int", 5);
    assert_int_equal(dget_ref(d, "int", &o), MP_ETYPE);
    assert_null(o);
    assert_int_equal(dget_ref(d, "absent", &o), MP_ENOENT);
    static const uint8_t bad[][9] = {{9, 0, 0, 0, 1, 0, 0, 0, 1},  /* no such kind */
                                     {1, 0, 0, 0, 0, 0, 0, 0, 1},  /* slot 0 */
                                     {1, 0, 0, 0, 1, 0, 0, 0, 0},  /* gen 0 */
                                     {4, 0, 0, 0, 1, 0, 0, 0, 1},  /* a queue with a slot */
                                     {1, 0, 1, 0, 0, 0, 0, 0, 1}}; /* slot past the table */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mp_obj_t *e = mp_obj_new_ext(0x4d, bad[i], 9);
        assert_int_equal(mp_mobj_deref(d, e, &o), MP_ETYPE);
        mp_obj_destroy(&e);
    }
    mp_obj_t *other_ext = mp_obj_new_ext(7, bad[0], 9),
             *short_ext = mp_obj_new_ext(0x4d, bad[0], 8);
    assert_int_equal(mp_mobj_deref(d, other_ext, &o), MP_ETYPE);
    assert_int_equal(mp_mobj_deref(d, short_ext, &o), MP_ETYPE);
    assert_int_equal(mp_mobj_deref(NULL, other_ext, &o), MP_EINVAL);
    mp_obj_destroy(&other_ext);
    mp_obj_destroy(&short_ext);
    /* a queue's reference is followed by the queue calls only, and the
       reverse */
    mp_obj_t *qref = mp_manager_queue_ref(m, mp_manager_queue(m, NULL)), *dref = mp_mobj_ref(d);
    assert_int_equal(mp_mobj_deref(d, qref, &o), MP_ETYPE);
    assert_int_equal(mp_mobj_deref_queue(d, dref, &q), MP_ETYPE);
    assert_int_equal(mp_mobj_deref_queue(d, qref, &q), 0);
    assert_non_null(q);
    mp_queue_t *not_owned = mp_queue_new(NULL);
    assert_null(mp_manager_queue_ref(m, not_owned));
    mp_queue_destroy(&not_owned);
    mp_obj_destroy(&qref);
    mp_obj_destroy(&dref);
    mp_manager_destroy(&m);
}

/* A child forked after the queue was made finds it through the dict;
   one forked before it was made cannot (its handle is not there). */
static int put_through_dict(void *arg)
{
    mp_queue_t *q;
    mp_obj_t *k = S("q"), *v = mp_obj_new_int(77);
    int rc = mp_mdict_get_queue(arg, k, &q);
    if (!rc)
        rc = mp_queue_put(q, v, 5000);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    return rc == MP_ENOENT ? 9 : rc ? 1 : 0;
}

static int wait_then_put(void *arg)
{
    mp_event_t **ev = arg;
    if (mp_event_wait(ev[0], 10000) != 0)
        return 2;
    return put_through_dict(ev[1]);
}

static void test_queue_in_a_dict_reaches_children_forked_after_it(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mdict_t *d;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_dict(m, &d), 0);
    mp_event_t *made = mp_manager_event(m);
    void *args[2] = {made, d};
    mp_process_t *early = tu_start(wait_then_put, args, NULL);
    mp_queue_t *q = mp_manager_queue(m, NULL), *got_q;
    mp_obj_t *k = S("q"), *ref = mp_manager_queue_ref(m, q), *v = NULL;
    assert_int_equal(mp_mdict_set(d, k, ref), 0);
    assert_int_equal(mp_mdict_get_queue(d, k, &got_q), 0);
    assert_ptr_equal(got_q, q);
    assert_int_equal(mp_event_set(made), 0);
    assert_int_equal(tu_join(&early, 10000), 9); /* MP_ENOENT in the child */
    assert_int_equal(tu_run(put_through_dict, d), 0);
    assert_int_equal(mp_queue_get(q, &v, 5000), 0);
    assert_int_equal(mp_obj_int(v), 77);
    mp_obj_destroy(&v);
    mp_obj_destroy(&k);
    mp_obj_destroy(&ref);
    mp_manager_destroy(&m);
}

static int die_inside(const mp_obj_t *cur, mp_obj_t **next, void *arg)
{
    (void)cur;
    (void)next;
    (void)arg;
    _exit(3); /* killed holding the arena's lock */
}

/* dies inside an update of outer["inner"]["n"] */
static int die_inside_nested(void *arg)
{
    mp_mdict_t *inner;
    mp_obj_t *k = S("n");
    if (dget_ref(arg, "inner", &inner) == 0)
        mp_mdict_update_fn(inner, k, die_inside, NULL);
    return 1;
}

static void test_nested_objects_survive_a_repair(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mdict_t *outer, *inner, *got;
    mp_mlist_t *list;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_dict(m, &outer), 0);
    assert_int_equal(mp_manager_dict(m, &inner), 0);
    assert_int_equal(mp_manager_list(m, &list), 0);
    dset_ref(outer, "inner", inner);
    dset_int(inner, "n", 41);
    mp_obj_t *r = mp_mobj_ref(outer); /* a cycle: list -> outer -> inner */
    assert_int_equal(mp_mlist_append(list, r), 0);
    mp_obj_destroy(&r);
    assert_int_equal(tu_run(die_inside_nested, outer), 3);
    assert_int_equal(dget_ref(outer, "inner", &got), MP_EREPAIRED);
    assert_int_equal(mp_mlist_get_ref(list, 0, &got), 0);
    assert_ptr_equal(got, outer);
    assert_int_equal(dget_ref(got, "inner", &got), 0);
    assert_ptr_equal(got, inner);
    assert_int_equal(dget_int(got, "n"), 41);
    mp_manager_stats_t st;
    assert_int_equal(mp_manager_stats(m, &st), 0);
    assert_int_equal(st.repairs, 1);
    assert_int_equal(st.objects, 3);
    mp_manager_destroy(&m);
}

static const char key[] = "nested-key";

static void test_remote_client_follows_and_makes_references(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_mdict_t *top, *inner, *p_top, *p_inner, *p_other;
    mp_mlist_t *list, *p_list;
    mp_manager_server_t *srv = NULL;
    mp_remote_t *r = NULL;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_named_dict(m, "top", &top), 0);
    assert_int_equal(mp_manager_dict(m, &inner), 0);
    assert_int_equal(mp_manager_list(m, &list), 0);
    dset_ref(top, "inner", inner);
    dset_ref(top, "list", list);
    mp_queue_t *q = mp_manager_queue(m, NULL);
    mp_obj_t *k = S("queue"), *qref = mp_manager_queue_ref(m, q);
    assert_int_equal(mp_mdict_set(top, k, qref), 0);
    assert_int_equal(mp_manager_serve(m, "tcp://127.0.0.1:0", key, sizeof key, &srv), 0);
    assert_int_equal(mp_manager_connect(mp_manager_server_endpoint(srv), key, sizeof key, NULL, &r),
                     0);
    assert_int_equal(mp_remote_dict(r, "top", &p_top), 0);

    /* followed: a proxy of the same object, handed out once */
    assert_int_equal(dget_ref(p_top, "inner", &p_inner), 0);
    dset_int(p_inner, "water", 7);
    assert_int_equal(dget_int(inner, "water"), 7);
    mp_mdict_t *again;
    assert_int_equal(dget_ref(p_top, "inner", &again), 0);
    assert_ptr_equal(again, p_inner);
    assert_int_equal(dget_ref(p_top, "list", &p_list), 0);
    mp_obj_t *v = mp_obj_new_int(5);
    assert_int_equal(mp_mlist_append(p_list, v), 0);
    mp_obj_destroy(&v);
    size_t n = 0;
    assert_int_equal(mp_mlist_len(list, &n), 0);
    assert_int_equal(n, 1);

    /* a queue's reference gives a remote queue */
    mp_rqueue_t *rq;
    assert_int_equal(mp_mdict_get_ref(p_top, k, &rq), 0);
    v = mp_obj_new_str("through the dict");
    assert_int_equal(mp_rqueue_put(rq, v, 5000), 0);
    mp_obj_t *got = NULL;
    assert_int_equal(mp_queue_get(q, &got, 5000), 0);
    assert_true(mp_obj_equal(got, v));
    mp_obj_destroy(&got);
    mp_obj_destroy(&v);

    /* the client makes a reference to another named object */
    assert_int_equal(mp_remote_dict(r, "other", &p_other), 0);
    dset_ref(p_top, "other", p_other);
    dset_int(p_other, "x", 3);
    mp_mdict_t *other, *followed;
    assert_int_equal(mp_manager_named_dict(m, "other", &other), 0);
    assert_int_equal(dget_ref(top, "other", &followed), 0);
    assert_ptr_equal(followed, other);
    assert_int_equal(dget_int(followed, "x"), 3);

    /* freed on the server: the proxy's calls read MP_ENOENT */
    assert_int_equal(mp_mobj_free(m, &inner), 0);
    assert_int_equal(dget_int(p_inner, "water"), MP_ENOENT);
    assert_int_equal(dget_ref(p_top, "inner", &again), 0); /* a proxy, then ... */
    assert_int_equal(dget_int(again, "water"), MP_ENOENT); /* ... nothing behind it */

    mp_obj_destroy(&k);
    mp_obj_destroy(&qref);
    mp_remote_disconnect(&r);
    mp_manager_server_stop(&srv);
    mp_manager_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, tu_teardown)
        T(test_nested_updates_from_children_are_seen_through_both),
        T(test_reference_to_a_freed_or_foreign_object_is_enoent),
        T(test_what_is_not_a_reference_is_etype),
        T(test_queue_in_a_dict_reaches_children_forked_after_it),
        T(test_nested_objects_survive_a_repair),
        T(test_remote_client_follows_and_makes_references),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
