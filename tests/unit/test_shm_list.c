/*  test_shm_list.c - ShareableList (mp/shm_list.h) and SharedMemoryManager
    (mp/shm_manager.h): every type round trips, slot boundaries, attach
    from a spawned process, hostile blocks never crash an attacher, a
    manager unlinks what its owner and its children made, and a killed
    owner's blocks are removed by the tracker. Nothing left in /dev/shm. */
#include <signal.h>
#include <stdlib.h>

#include "support.h"

/* [nil, true, false, INT64_MIN, INT64_MAX, 0.5, -0.0, "", "héllo", b"\0ab\0\0",
   "12345678"]: every type, and the slot boundaries 0, 7 and 8 bytes */
static mp_obj_t *every_type(void)
{
    mp_obj_t *a = mp_obj_new_array();
    mp_obj_array_add(a, mp_obj_new_nil());
    mp_obj_array_add(a, mp_obj_new_bool(true));
    mp_obj_array_add(a, mp_obj_new_bool(false));
    mp_obj_array_add(a, mp_obj_new_int(INT64_MIN));
    mp_obj_array_add(a, mp_obj_new_int(INT64_MAX));
    mp_obj_array_add(a, mp_obj_new_float(0.5));
    mp_obj_array_add(a, mp_obj_new_float(-0.0));
    mp_obj_array_add(a, mp_obj_new_str(""));
    mp_obj_array_add(a, mp_obj_new_str("h\xc3\xa9llo")); /* 6 bytes */
    mp_obj_array_add(a, mp_obj_new_bin("\0ab\0\0", 5));  /* trailing NULs kept */
    mp_obj_array_add(a, mp_obj_new_str("12345678"));
    return a;
}
#define EVERY_FORMAT "xxxxxx?xxxxxxxx?xxxxxxx?qqdd8s8s8s16s"

static void test_every_type_round_trips(void **state)
{
    (void)state;
    mp_obj_t *want = every_type();
    mp_shm_list_t *sl = NULL;
    assert_int_equal(mp_shm_list_create(&sl, NULL, want, NULL), 0);
    assert_int_equal(mp_shm_list_len(sl), mp_obj_len(want));
    for (size_t i = 0; i < mp_obj_len(want); i++) {
        mp_obj_t *got = NULL;
        assert_int_equal(mp_shm_list_get(sl, (int64_t)i, &got), 0);
        assert_true(mp_obj_equal(got, mp_obj_array_at(want, i)));
        mp_obj_type_t t;
        assert_int_equal(mp_shm_list_type(sl, (int64_t)i, &t), 0);
        assert_int_equal(t, mp_obj_type(got));
        mp_obj_destroy(&got);
    }
    mp_obj_t *items = NULL;
    assert_int_equal(mp_shm_list_items(sl, &items), 0);
    assert_true(mp_obj_equal(items, want));
    char *format = NULL;
    assert_int_equal(mp_shm_list_format(sl, &format), 0);
    assert_string_equal(format, EVERY_FORMAT);
    free(format);

    /* typed access */
    int64_t i64;
    double d;
    bool b;
    char buf[16];
    size_t len;
    assert_int_equal(mp_shm_list_get_int(sl, 3, &i64), 0);
    assert_true(i64 == INT64_MIN);
    assert_int_equal(mp_shm_list_get_float(sl, 5, &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(mp_shm_list_get_bool(sl, 1, &b), 0);
    assert_true(b);
    assert_int_equal(mp_shm_list_get_bytes(sl, 9, buf, sizeof buf, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "\0ab\0\0", 5);
    assert_int_equal(mp_shm_list_get_bytes(sl, 10, buf, 4, &len), MP_E2BIG);
    assert_int_equal(len, 8);
    assert_int_equal(mp_shm_list_get_int(sl, 5, &i64), MP_ETYPE); /* no conversion */
    assert_int_equal(mp_shm_list_get_float(sl, 3, &d), MP_ETYPE);
    assert_int_equal(mp_shm_list_get_bool(sl, 0, &b), MP_ETYPE);
    assert_int_equal(mp_shm_list_get_bytes(sl, 0, buf, sizeof buf, &len), MP_ETYPE);

    /* a copy from its items, under a name */
    char name[64];
    snprintf(name, sizeof name, "mp_%d_copy", (int)getpid());
    mp_shm_list_t *copy = NULL;
    assert_int_equal(mp_shm_list_create(&copy, name, items, NULL), 0);
    assert_string_equal(mp_shm_list_name(copy), name);
    assert_int_equal(mp_shm_list_format(copy, &format), 0);
    assert_string_equal(format, EVERY_FORMAT);
    free(format);
    assert_int_equal(mp_shm_list_create(&copy, name, items, NULL), MP_EEXIST);
    assert_int_equal(mp_shm_list_unlink(copy), 0);
    mp_shm_list_destroy(&copy);

    /* a str's slot by its characters, as CPython, but never fewer than
       its bytes: "encod\u00e9s" 7 characters in 8 bytes, "\u00e9" * 7 in 14 */
    mp_obj_t *utf8 = mp_obj_new_array();
    mp_obj_array_add(utf8, mp_obj_new_str("encod\xc3\xa9s"));
    mp_obj_array_add(utf8,
                     mp_obj_new_str("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"));
    assert_int_equal(mp_shm_list_create(&copy, NULL, utf8, NULL), 0);
    assert_int_equal(mp_shm_list_format(copy, &format), 0);
    assert_string_equal(format, "8s16s");
    free(format);
    mp_obj_t *back = NULL;
    assert_int_equal(mp_shm_list_items(copy, &back), 0);
    assert_true(mp_obj_equal(back, utf8));
    mp_obj_destroy(&back);
    mp_obj_destroy(&utf8);
    assert_int_equal(mp_shm_list_unlink(copy), 0);
    mp_shm_list_destroy(&copy);

    mp_obj_destroy(&items);
    mp_obj_destroy(&want);
    assert_int_equal(mp_shm_list_unlink(sl), 0);
    assert_int_equal(mp_shm_list_unlink(sl), MP_ENOENT);
    mp_shm_list_destroy(&sl);
    mp_shm_list_destroy(&sl);
    assert_null(sl);
}

static void test_items_replaced_within_their_slots(void **state)
{
    (void)state;
    mp_obj_t *want = every_type();
    mp_shm_list_t *sl = NULL;
    assert_int_equal(mp_shm_list_create(&sl, NULL, want, NULL), 0);
    int64_t n = (int64_t)mp_shm_list_len(sl);

    /* indexes: -n .. n-1 */
    mp_obj_t *got = NULL;
    assert_int_equal(mp_shm_list_get(sl, -n, &got), 0);
    assert_int_equal(mp_obj_type(got), MP_OBJ_NIL);
    mp_obj_destroy(&got);
    assert_int_equal(mp_shm_list_get(sl, -n - 1, &got), MP_ERANGE);
    assert_int_equal(mp_shm_list_get(sl, n, &got), MP_ERANGE);
    assert_int_equal(mp_shm_list_set_int(sl, n, 1), MP_ERANGE);
    assert_int_equal(mp_shm_list_set_int(sl, INT64_MIN, 1), MP_ERANGE);
    assert_null(got);

    /* "" got 8 bytes: 8 fit, 9 do not (nothing changes) */
    assert_int_equal(mp_shm_list_set_bytes(sl, 7, "abcdefgh", 8, true), 0);
    assert_int_equal(mp_shm_list_set_bytes(sl, 7, "abcdefghi", 9, true), MP_E2BIG);
    char buf[32];
    size_t len;
    assert_int_equal(mp_shm_list_get_bytes(sl, 7, buf, sizeof buf, &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(buf, "abcdefgh", 8);
    /* "12345678" got 16 */
    assert_int_equal(mp_shm_list_set_bytes(sl, -1, "0123456789abcdef", 16, false), 0);
    assert_int_equal(mp_shm_list_set_bytes(sl, -1, "0123456789abcdefg", 17, false), MP_E2BIG);
    assert_int_equal(mp_shm_list_get(sl, -1, &got), 0);
    assert_int_equal(mp_obj_type(got), MP_OBJ_BIN);
    assert_int_equal(mp_obj_len(got), 16);
    mp_obj_destroy(&got);
    /* any scalar in any slot; a short str in a scalar's slot */
    assert_int_equal(mp_shm_list_set_float(sl, 8, 2.5), 0);
    assert_int_equal(mp_shm_list_set_bytes(sl, 3, "8 bytes!", 8, true), 0);
    assert_int_equal(mp_shm_list_set_bytes(sl, 3, "9 bytes!!", 9, true), MP_E2BIG);
    assert_int_equal(mp_shm_list_set_nil(sl, 4), 0);
    assert_int_equal(mp_shm_list_set_bool(sl, 0, false), 0);
    mp_obj_t *v = mp_obj_new_int(-7);
    assert_int_equal(mp_shm_list_set(sl, 5, v), 0);
    mp_obj_destroy(&v);
    char *format = NULL;
    assert_int_equal(mp_shm_list_format(sl, &format), 0);
    assert_string_equal(format, "xxxxxxx?xxxxxxx?xxxxxxx?8sxxxxxx?xqd8sd8s16s");
    free(format);
    /* neighbours untouched */
    bool b;
    assert_int_equal(mp_shm_list_get_bool(sl, 1, &b), 0);
    assert_true(b);
    assert_int_equal(mp_shm_list_get_bytes(sl, 9, buf, sizeof buf, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "\0ab\0\0", 5);

    /* not storable */
    mp_obj_t *bad[] = {mp_obj_new_array(), mp_obj_new_map(), mp_obj_new_uint(UINT64_MAX),
                       mp_obj_new_ext(1, "x", 1)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mp_shm_list_set(sl, 0, bad[i]), MP_ETYPE);
        mp_obj_t *one = mp_obj_new_array();
        mp_obj_array_add(one, mp_obj_dup(bad[i]));
        mp_shm_list_t *none = NULL;
        assert_int_equal(mp_shm_list_create(&none, NULL, one, NULL), MP_ETYPE);
        assert_null(none);
        mp_obj_destroy(&one);
        mp_obj_destroy(&bad[i]);
    }
    assert_int_equal(mp_shm_list_set(sl, 0, NULL), MP_EINVAL);
    mp_obj_t *notarray = mp_obj_new_int(1);
    mp_shm_list_t *none = NULL;
    assert_int_equal(mp_shm_list_create(&none, NULL, notarray, NULL), MP_EINVAL);
    mp_obj_destroy(&notarray);

    mp_obj_destroy(&want);
    assert_int_equal(mp_shm_list_unlink(sl), 0);
    mp_shm_list_destroy(&sl);
}

static void test_count_and_index_compare_type_and_value(void **state)
{
    (void)state;
    mp_obj_t *a = mp_obj_new_array();
    mp_obj_array_add(a, mp_obj_new_int(1));
    mp_obj_array_add(a, mp_obj_new_float(1.0));
    mp_obj_array_add(a, mp_obj_new_bool(true));
    mp_obj_array_add(a, mp_obj_new_str("x"));
    mp_obj_array_add(a, mp_obj_new_bin("x", 1));
    mp_obj_array_add(a, mp_obj_new_int(1));
    mp_shm_list_t *sl = NULL;
    assert_int_equal(mp_shm_list_create(&sl, NULL, a, NULL), 0);
    size_t count, index;
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(mp_shm_list_count(sl, mp_obj_array_at(a, i), &count), 0);
        assert_int_equal(count, i == 0 ? 2 : 1);
        assert_int_equal(mp_shm_list_index(sl, mp_obj_array_at(a, i), &index), 0);
        assert_int_equal(index, i);
    }
    mp_obj_t *absent = mp_obj_new_str("y"), *map = mp_obj_new_map();
    assert_int_equal(mp_shm_list_index(sl, absent, &index), MP_ENOENT);
    assert_int_equal(mp_shm_list_count(sl, map, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(mp_shm_list_index(sl, map, &index), MP_ENOENT);
    mp_obj_destroy(&absent);
    mp_obj_destroy(&map);
    mp_obj_destroy(&a);
    assert_int_equal(mp_shm_list_unlink(sl), 0);
    mp_shm_list_destroy(&sl);

    /* empty */
    assert_int_equal(mp_shm_list_create(&sl, NULL, NULL, NULL), 0);
    assert_int_equal(mp_shm_list_len(sl), 0);
    mp_obj_t *nil = mp_obj_new_nil(), *got = NULL;
    assert_int_equal(mp_shm_list_count(sl, nil, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(mp_shm_list_index(sl, nil, &index), MP_ENOENT);
    assert_int_equal(mp_shm_list_get(sl, 0, &got), MP_ERANGE);
    assert_int_equal(mp_shm_list_get(sl, -1, &got), MP_ERANGE);
    char *format = NULL;
    assert_int_equal(mp_shm_list_format(sl, &format), 0);
    assert_string_equal(format, "");
    free(format);
    mp_shm_list_t *again = NULL;
    assert_int_equal(mp_shm_list_attach(&again, mp_shm_list_name(sl)), 0);
    assert_int_equal(mp_shm_list_len(again), 0);
    mp_shm_list_destroy(&again);
    mp_obj_destroy(&nil);
    assert_int_equal(mp_shm_list_unlink(sl), 0);
    mp_shm_list_destroy(&sl);
}

/* spawn target: args [name]; checks every_type(), then sets [0] = 42 and
   [-1] = "from spawn!" */
static int attach_check_and_set(void *arg)
{
    mp_obj_t *args = arg, *want = every_type(), *items = NULL;
    mp_shm_list_t *sl = NULL;
    int rc = 1;
    if (mp_shm_list_attach(&sl, mp_obj_str(mp_obj_array_at(args, 0), NULL)) == 0 &&
        mp_shm_list_items(sl, &items) == 0 && mp_obj_equal(items, want) &&
        mp_shm_list_set_int(sl, 0, 42) == 0 &&
        mp_shm_list_set_bytes(sl, -1, "from spawn!", 11, true) == 0)
        rc = 0;
    mp_obj_destroy(&items);
    mp_obj_destroy(&want);
    mp_shm_list_destroy(&sl);
    return rc;
}
MP_REGISTER_TARGET(attach_check_and_set)

static void test_attach_from_a_spawned_process(void **state)
{
    (void)state;
    mp_obj_t *want = every_type();
    mp_shm_list_t *sl = NULL;
    assert_int_equal(mp_shm_list_create(&sl, NULL, want, NULL), 0);
    mp_obj_destroy(&want);
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_str(mp_shm_list_name(sl)));
    mp_process_opts_t opts = {.start_method = MP_START_SPAWN, .args = args};
    mp_process_t *p = mp_process_new(attach_check_and_set, NULL, &opts);
    mp_obj_destroy(&args);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(tu_join(&p, 10000), 0);
    int64_t v;
    assert_int_equal(mp_shm_list_get_int(sl, 0, &v), 0);
    assert_int_equal(v, 42);
    char buf[16];
    size_t len;
    assert_int_equal(mp_shm_list_get_bytes(sl, -1, buf, sizeof buf, &len), 0);
    assert_int_equal(len, 11);
    assert_memory_equal(buf, "from spawn!", 11);
    assert_int_equal(mp_shm_list_unlink(sl), 0);
    mp_shm_list_destroy(&sl);
}

/* ---- hostile blocks ------------------------------------------------------------------- */

/* A block called name holding the size bytes at bytes; then attach. */
static int attach_bytes(const void *bytes, size_t size)
{
    char name[64];
    snprintf(name, sizeof name, "mp_%d_hostile", (int)getpid());
    mp_shm_t *shm = NULL;
    assert_int_equal(mp_shm_create(&shm, name, size), 0);
    memcpy(mp_shm_buf(shm), bytes, size);
    mp_shm_list_t *sl = NULL;
    int rc = mp_shm_list_attach(&sl, name);
    if (rc == 0) { /* whatever it is, reading all of it stays in bounds */
        mp_obj_t *items = NULL;
        char *format = NULL;
        if (mp_shm_list_items(sl, &items) == 0)
            mp_obj_destroy(&items);
        if (mp_shm_list_format(sl, &format) == 0)
            free(format);
        mp_shm_list_set_bytes(sl, -1, "overwrite me", 12, false);
        mp_shm_list_destroy(&sl);
    } else {
        assert_null(sl);
    }
    assert_int_equal(mp_shm_unlink(shm), 0);
    mp_shm_destroy(&shm);
    return rc;
}

/* The bytes of a valid list of every_type() in *size_p (caller frees). */
static unsigned char *valid_block(size_t *size_p)
{
    mp_obj_t *items = every_type();
    mp_shm_list_t *sl = NULL;
    assert_int_equal(mp_shm_list_create(&sl, NULL, items, NULL), 0);
    mp_obj_destroy(&items);
    mp_shm_t *shm = mp_shm_list_shm(sl);
    *size_p = mp_shm_size(shm);
    unsigned char *copy = malloc(*size_p);
    memcpy(copy, mp_shm_buf(shm), *size_p);
    assert_int_equal(mp_shm_list_unlink(sl), 0);
    mp_shm_list_destroy(&sl);
    return copy;
}

static void test_hostile_blocks_are_refused(void **state)
{
    (void)state;
    srand(1234);
    unsigned char junk[4096];
    /* not a ShareableList: random bytes, zeros */
    for (int round = 0; round < 50; round++) {
        size_t size = 1 + (size_t)rand() % sizeof junk;
        for (size_t i = 0; i < size; i++)
            junk[i] = (unsigned char)rand();
        assert_int_equal(attach_bytes(junk, size), MP_EINVAL);
    }
    memset(junk, 0, sizeof junk);
    assert_int_equal(attach_bytes(junk, sizeof junk), MP_EINVAL);
    assert_int_equal(attach_bytes("MPSLIST", 7), MP_EINVAL);

    /* truncated at every length */
    size_t size;
    unsigned char *good = valid_block(&size);
    assert_int_equal(attach_bytes(good, size), 0);
    for (size_t k = 1; k < size; k++)
        assert_int_equal(attach_bytes(good, k), k < 8 ? MP_EINVAL : MP_EBADMSG);

    /* a header claiming huge counts */
    unsigned char *bad = malloc(size);
    uint64_t huge[] = {UINT64_MAX, UINT64_MAX / 16, 1ull << 40, 12};
    for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++)
        for (size_t field = 0; field < 3; field++) {
            memcpy(bad, good, size);
            memcpy(bad + 8 + 8 * field, &huge[h], 8);
            assert_int_equal(attach_bytes(bad, size), MP_EBADMSG);
        }
    /* slots that do not add up: a cap of 0, unaligned, too large; a len
       above its cap; an unknown type */
    struct {
        size_t off;
        uint32_t value;
    } slots[] = {{32, 0}, {32, 12}, {32, 1u << 31}, {32 + 16 * 7 + 4, 9}, {32 + 8, 77}};
    for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++) {
        memcpy(bad, good, size);
        if (slots[s].off == 32 + 8)
            bad[slots[s].off] = (unsigned char)slots[s].value;
        else
            memcpy(bad + slots[s].off, &slots[s].value, 4);
        assert_int_equal(attach_bytes(bad, size), MP_EBADMSG);
    }
    /* random damage to the header and slots: refused or readable, never a
       crash (the sanitizer build checks every access) */
    int refused = 0;
    for (int round = 0; round < 2000; round++) {
        memcpy(bad, good, size);
        for (int flips = 1 + rand() % 4; flips > 0; flips--)
            bad[8 + (size_t)rand() % (32 + 16 * 11 - 8)] = (unsigned char)rand();
        int rc = attach_bytes(bad, size);
        assert_true(rc == 0 || rc == MP_EBADMSG);
        refused += rc != 0;
    }
    assert_true(refused > 500);
    free(bad);
    free(good);
}

/* A list damaged after it was attached: the item reads MP_EBADMSG. */
static void test_item_corrupted_after_attach_reads_ebadmsg(void **state)
{
    (void)state;
    mp_obj_t *items = every_type();
    mp_shm_list_t *sl = NULL, *other = NULL;
    assert_int_equal(mp_shm_list_create(&sl, NULL, items, NULL), 0);
    mp_obj_destroy(&items);
    assert_int_equal(mp_shm_list_attach(&other, mp_shm_list_name(sl)), 0);
    unsigned char *base = mp_shm_buf(mp_shm_list_shm(sl));
    uint32_t len = 1000, cap = 4096;
    memcpy(base + 32 + 16 * 8 + 4, &len, 4); /* "héllo": len above its cap */
    memcpy(base + 32 + 16 * 8, &cap, 4);     /* and a cap that lies: ignored */
    base[32 + 16 * 2 + 8] = 0;               /* false: no type */
    mp_obj_t *got = NULL;
    assert_int_equal(mp_shm_list_get(other, 8, &got), MP_EBADMSG);
    assert_int_equal(mp_shm_list_get(other, 2, &got), MP_EBADMSG);
    assert_null(got);
    assert_int_equal(mp_shm_list_items(other, &got), MP_EBADMSG);
    char *format = NULL;
    assert_int_equal(mp_shm_list_format(other, &format), MP_EBADMSG);
    assert_int_equal(mp_shm_list_get(other, 1, &got), 0); /* the others are fine */
    mp_obj_destroy(&got);
    assert_int_equal(mp_shm_list_set_int(other, 8, 5), 0); /* and a set repairs */
    assert_int_equal(mp_shm_list_get(sl, 8, &got), 0);
    assert_int_equal(mp_obj_int(got), 5);
    mp_obj_destroy(&got);
    mp_shm_list_t *third = NULL;
    assert_int_equal(mp_shm_list_attach(&third, mp_shm_list_name(sl)), MP_EBADMSG); /* the cap */
    mp_shm_list_destroy(&other);
    assert_int_equal(mp_shm_list_unlink(sl), 0);
    mp_shm_list_destroy(&sl);
}

/* ---- the manager ---------------------------------------------------------------------- */

typedef struct {
    mp_shm_manager_t *smm;
    char *names; /* 2 x 64 bytes, in a block the parent made */
} child_arg_t;

/* fork child: makes a block and a list through the inherited manager,
   says their names, lets go of the manager (no shutdown in a child) */
static int child_makes_two(void *arg)
{
    child_arg_t *c = arg;
    mp_shm_t *shm = NULL;
    mp_shm_list_t *sl = NULL;
    mp_obj_t *items = mp_obj_new_array();
    mp_obj_array_add(items, mp_obj_new_str("child"));
    int rc = mp_shm_manager_shm(c->smm, &shm, 100) || mp_shm_manager_list(c->smm, &sl, items);
    mp_obj_destroy(&items);
    if (!rc) {
        snprintf(c->names, 64, "%s", mp_shm_name(shm));
        snprintf(c->names + 64, 64, "%s", mp_shm_list_name(sl));
    }
    mp_shm_destroy(&shm);
    mp_shm_list_destroy(&sl);
    mp_shm_manager_destroy(&c->smm);
    return rc;
}

static bool exists(const char *name)
{
    return tu_shm_count(name) == 1;
}

static void test_manager_shutdown_unlinks_the_owners_and_childrens_blocks(void **state)
{
    (void)state;
    mp_shm_manager_t *smm = NULL;
    assert_int_equal(mp_shm_manager_new(&smm, NULL), 0);
    mp_shm_t *names_shm = NULL, *shm = NULL;
    mp_shm_list_t *sl = NULL;
    assert_int_equal(mp_shm_manager_shm(smm, &names_shm, 128), 0);
    assert_int_equal(mp_shm_manager_shm(smm, &shm, 4096), 0);
    assert_int_equal(mp_shm_manager_list(smm, &sl, NULL), 0);
    assert_int_equal(mp_shm_manager_count(smm), 3);

    child_arg_t c = {smm, mp_shm_buf(names_shm)};
    assert_int_equal(tu_run(child_makes_two, &c), 0);
    assert_int_equal(mp_shm_manager_count(smm), 5);
    /* the child's blocks outlive it: they are the manager's */
    char child_shm[64], child_sl[64];
    snprintf(child_shm, sizeof child_shm, "%s", c.names);
    snprintf(child_sl, sizeof child_sl, "%s", c.names + 64);
    assert_true(exists(child_shm) && exists(child_sl));
    mp_shm_list_t *seen = NULL;
    assert_int_equal(mp_shm_list_attach(&seen, child_sl), 0);
    mp_obj_t *got = NULL;
    assert_int_equal(mp_shm_list_get(seen, 0, &got), 0);
    assert_string_equal(mp_obj_str(got, NULL), "child");
    mp_obj_destroy(&got);
    mp_shm_list_destroy(&seen);

    char own_shm[64];
    snprintf(own_shm, sizeof own_shm, "%s", mp_shm_name(shm));
    assert_int_equal(mp_shm_unlink(shm), 0); /* one the user unlinked: no matter */
    assert_int_equal(mp_shm_manager_shutdown(smm), 0);
    assert_int_equal(mp_shm_manager_count(smm), 0);
    assert_false(exists(own_shm));
    assert_false(exists(mp_shm_list_name(sl)));
    assert_false(exists(child_shm) || exists(child_sl));
    assert_false(exists(mp_shm_name(names_shm)));
    /* the mappings stay valid */
    assert_int_equal(mp_shm_list_len(sl), 0);
    memcpy(mp_shm_buf(names_shm), "still mapped", 12);

    mp_shm_t *late = NULL;
    assert_int_equal(mp_shm_manager_shm(smm, &late, 10), MP_ESTATE);
    mp_shm_list_t *late_sl = NULL;
    assert_int_equal(mp_shm_manager_list(smm, &late_sl, NULL), MP_ESTATE);
    assert_null(late);
    assert_null(late_sl);
    assert_int_equal(mp_shm_manager_shutdown(smm), 0); /* twice: nothing to do */
    mp_shm_destroy(&names_shm);
    mp_shm_destroy(&shm);
    mp_shm_list_destroy(&sl);
    mp_shm_manager_destroy(&smm);
    mp_shm_manager_destroy(&smm);
    assert_null(smm);
}

static void test_manager_destroy_shuts_down_in_the_owner_only(void **state)
{
    (void)state;
    mp_shm_manager_t *smm = NULL;
    mp_shm_manager_options_t opts = {.capacity = 3};
    assert_int_equal(mp_shm_manager_new(&smm, &opts), 0);
    mp_shm_t *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(mp_shm_manager_shm(smm, &a, 8), 0);
    assert_int_equal(mp_shm_manager_shm(smm, &b, 8), 0);
    child_arg_t ca = {smm, mp_shm_buf(a)}; /* child: 2 more, the second one too many */
    assert_int_equal(tu_run(child_makes_two, &ca), 1);
    assert_int_equal(mp_shm_manager_count(smm), 3);
    assert_int_equal(mp_shm_manager_shm(smm, &c, 8), MP_ENOSPC);
    assert_int_equal(mp_shm_manager_shm(smm, &c, 0), MP_EINVAL);
    assert_null(c);
    assert_true(exists(mp_shm_name(a)));
    mp_shm_manager_destroy(&smm); /* the owner's destroy: shutdown */
    assert_false(exists(mp_shm_name(a)) || exists(mp_shm_name(b)));
    mp_shm_destroy(&a);
    mp_shm_destroy(&b);
}

/* ---- an owner killed: its tracker removes everything ---------------------------------- */

enum { NAME = 64 };
typedef struct {
    char owner_prefix[NAME], child_shm[NAME];
    volatile int ready;
} report_t;

/* spawn target: args [report block]; an owner that makes a manager, a
   list and a block, forks a child that makes one more (and dies with
   it), reports, and waits to be killed */
static int owner_then_killed(void *arg)
{
    mp_obj_t *args = arg;
    mp_shm_t *rshm = NULL;
    if (mp_shm_attach(&rshm, mp_obj_str(mp_obj_array_at(args, 0), NULL)))
        return 1;
    report_t *r = mp_shm_buf(rshm);
    mp_shm_manager_t *smm = NULL;
    mp_shm_list_t *sl = NULL;
    mp_shm_t *shm = NULL;
    if (mp_shm_manager_new(&smm, NULL) || mp_shm_manager_list(smm, &sl, NULL) ||
        mp_shm_manager_shm(smm, &shm, 64))
        return 2;
    pid_t owner = getpid();
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != owner)
            _exit(0);
        mp_shm_t *mine = NULL;
        if (mp_shm_manager_shm(smm, &mine, 64) == 0)
            snprintf(r->child_shm, NAME, "%s", mp_shm_name(mine));
        for (;;)
            pause();
    }
    for (int i = 0; i < 10000 && !r->child_shm[0]; i++)
        usleep(1000);
    snprintf(r->owner_prefix, NAME, "mp_%d_", (int)owner);
    __atomic_store_n(&r->ready, 1, __ATOMIC_RELEASE);
    for (;;)
        pause();
}
MP_REGISTER_TARGET(owner_then_killed)

static void test_manager_owner_killed_leaves_nothing(void **state)
{
    (void)state;
    char rname[64];
    snprintf(rname, sizeof rname, "mp_%d_report", (int)getpid());
    mp_shm_t *rshm = NULL;
    assert_int_equal(mp_shm_create(&rshm, rname, sizeof(report_t)), 0);
    report_t *r = mp_shm_buf(rshm);
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_str(rname));
    mp_process_opts_t opts = {.start_method = MP_START_SPAWN, .args = args};
    mp_process_t *p = mp_process_new(owner_then_killed, NULL, &opts);
    mp_obj_destroy(&args);
    assert_int_equal(mp_process_start(p), 0);
    bool ready = TU_WAIT_UNTIL(__atomic_load_n(&r->ready, __ATOMIC_ACQUIRE), 10000);
    if (!ready)
        mp_process_kill(p);
    assert_true(ready);
    assert_true(r->child_shm[0] != '\0');
    assert_int_equal(tu_shm_count(r->owner_prefix), 3); /* registry, list, block */
    assert_true(exists(r->child_shm));
    assert_int_equal(mp_process_kill(p), 0);
    assert_int_equal(tu_join(&p, 5000), -SIGKILL);
    /* the child dies with it (PDEATHSIG); then the tracker sees the end */
    assert_true(TU_WAIT_UNTIL(tu_shm_count(r->owner_prefix) == 0 && !exists(r->child_shm), 10000));
    assert_int_equal(mp_shm_unlink(rshm), 0);
    mp_shm_destroy(&rshm);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_every_type_round_trips, tu_teardown),
        cmocka_unit_test_teardown(test_items_replaced_within_their_slots, tu_teardown),
        cmocka_unit_test_teardown(test_count_and_index_compare_type_and_value, tu_teardown),
        cmocka_unit_test_teardown(test_attach_from_a_spawned_process, tu_teardown),
        cmocka_unit_test_teardown(test_hostile_blocks_are_refused, tu_teardown),
        cmocka_unit_test_teardown(test_item_corrupted_after_attach_reads_ebadmsg, tu_teardown),
        cmocka_unit_test_teardown(test_manager_shutdown_unlinks_the_owners_and_childrens_blocks,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_manager_destroy_shuts_down_in_the_owner_only, tu_teardown),
        cmocka_unit_test_teardown(test_manager_owner_killed_leaves_nothing, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
