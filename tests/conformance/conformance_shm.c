/*  conformance_shm.c - CPython's _TestSharedMemory, with its ShareableList
    and SharedMemoryManager tests (Lib/test/_test_multiprocessing.py, 3.11),
    ported to mp/shm.h, mp/shm_list.h and mp/shm_manager.h. CPython runs
    these with processes only; so do we (fork children, CPython's default
    start method on Linux). _TestValue and _TestArray are in
    conformance_shared.c (one table: shared.rows.md).

    Pickling a SharedMemory or a ShareableList is passing its name and
    attaching to it; sl[i] is mp_shm_list_get/_set (or a typed variant).
*/
#define _GNU_SOURCE /* syscall */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "support.h"

/* ---- a clock that can stand still ------------------------------------------------------- */

/* test_shared_memory_recreate mocks the name generator. libmp's generated
   names are pid, CLOCK_MONOTONIC and a counter: with the clock frozen, the
   next name is predictable. This definition overrides libc's for the whole
   program (libmp.so included); unfrozen, it is the real clock. */
static bool clock_frozen;
static struct timespec frozen_at;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (clock_frozen && id == CLOCK_MONOTONIC) {
        *ts = frozen_at;
        return 0;
    }
    return (int)syscall(SYS_clock_gettime, id, ts);
}

/* ---- _TestSharedMemory -------------------------------------------------------------------- */

/* CPython's _new_shm_name: prefix + pid, so parallel runs do not clash. */
static const char *new_shm_name(char *buf, size_t size, const char *prefix)
{
    snprintf(buf, size, "%s%d", prefix, (int)getpid());
    return buf;
}

/* test_shared_memory_basics: name and size, writes seen through a second
   handle, the size ignored when attaching, invalid arguments (ValueError
   -> MP_EINVAL), a second unlink (FileNotFoundError -> MP_ENOENT), create
   of a used name (FileExistsError -> MP_EEXIST), attach to a missing name
   (MP_ENOENT). Not carried over: str(sms) (repr); the _make_filename mock
   (ported as test_shared_memory_recreate); the subclass that sets the
   private _flags to O_CREAT without O_EXCL: libmp has no create-or-attach,
   and attaching (its C equivalent) is checked to give the same size. */
static void conformance_shared_test_shared_memory_basics(void **state)
{
    char name_tsmb[64];
    new_shm_name(name_tsmb, sizeof name_tsmb, "test01_tsmb");
    mp_shm_t *sms = NULL;
    assert_int_equal(mp_shm_create(&sms, name_tsmb, 512), 0);

    assert_string_equal(mp_shm_name(sms), name_tsmb);
    assert_true(mp_shm_size(sms) >= 512);
    unsigned char *buf = mp_shm_buf(sms);
    buf[0] = 42;
    assert_int_equal(buf[0], 42);

    mp_shm_t *also_sms = NULL;
    assert_int_equal(mp_shm_attach(&also_sms, name_tsmb), 0);
    assert_int_equal(((unsigned char *)mp_shm_buf(also_sms))[0], 42);
    mp_shm_destroy(&also_sms);

    /* "attach with a new size": attach takes no size; it is the block's */
    mp_shm_t *same_sms = NULL;
    assert_int_equal(mp_shm_attach(&same_sms, name_tsmb), 0);
    assert_true(mp_shm_size(same_sms) < 20 * mp_shm_size(sms));
    mp_shm_destroy(&same_sms);

    mp_shm_t *bad = NULL;
    assert_int_equal(mp_shm_create(&bad, NULL, (size_t)-2), MP_EINVAL); /* size=-2 */
    assert_int_equal(mp_shm_attach(&bad, NULL), MP_EINVAL);             /* no name */
    assert_null(bad);

    char name_dblunlink[64];
    new_shm_name(name_dblunlink, sizeof name_dblunlink, "test01_dblunlink");
    mp_shm_t *sms_uno = NULL, *sms_duo = NULL;
    assert_int_equal(mp_shm_create(&sms_uno, name_dblunlink, 5000), 0);
    assert_true(mp_shm_size(sms_uno) >= 5000);
    assert_int_equal(mp_shm_attach(&sms_duo, name_dblunlink), 0);
    assert_int_equal(mp_shm_unlink(sms_duo), 0); /* first shm_unlink() */
    mp_shm_destroy(&sms_duo);
    assert_int_equal(mp_shm_unlink(sms_uno), MP_ENOENT); /* a second one is bad */
    mp_shm_destroy(&sms_uno);

    mp_shm_t *there_can_only_be_one_sms = NULL;
    assert_int_equal(mp_shm_create(&there_can_only_be_one_sms, name_tsmb, 512), MP_EEXIST);
    assert_null(there_can_only_be_one_sms);

    mp_shm_t *ok_if_exists_sms = NULL;
    assert_int_equal(mp_shm_attach(&ok_if_exists_sms, name_tsmb), 0);
    assert_int_equal(mp_shm_size(ok_if_exists_sms), mp_shm_size(sms));
    mp_shm_destroy(&ok_if_exists_sms);

    mp_shm_t *nonexisting_sms = NULL;
    assert_int_equal(mp_shm_attach(&nonexisting_sms, "test01_notthere"), MP_ENOENT);

    assert_int_equal(mp_shm_unlink(sms), 0); /* addCleanup(sms.unlink) */
    mp_shm_destroy(&sms);
}

/* test_shared_memory_recreate: when the generated name is taken, create
   picks another one (CPython retries on FileExistsError). The generator
   is steered by freezing the clock (see clock_gettime above); the name it
   would give next is taken first. */
static void conformance_shared_test_shared_memory_recreate(void **state)
{
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &frozen_at);
    clock_frozen = true;
    mp_shm_t *shm1 = NULL, *taken = NULL, *shm2 = NULL;
    int rc1 = mp_shm_create(&shm1, NULL, 1);
    char next[MP_SHM_NAME_MAX + 1] = "";
    if (rc1 == 0) {
        /* "mp_<pid>_<clock>_<counter>": the next one has counter + 1 */
        const char *name = mp_shm_name(shm1);
        const char *last = strrchr(name, '_');
        snprintf(next, sizeof next, "%.*s_%lu", (int)(last - name), name,
                 strtoul(last + 1, NULL, 10) + 1);
    }
    int rc_taken = rc1 == 0 ? mp_shm_create(&taken, next, 1) : -1;
    int rc2 = rc_taken == 0 ? mp_shm_create(&shm2, NULL, 1) : -1;
    clock_frozen = false;
    char name2[MP_SHM_NAME_MAX + 1] = "";
    if (shm2)
        snprintf(name2, sizeof name2, "%s", mp_shm_name(shm2));
    mp_shm_t *all[] = {shm1, taken, shm2};
    for (int i = 0; i < 3; i++)
        if (all[i])
            mp_shm_unlink(all[i]);
    mp_shm_destroy(&shm1);
    mp_shm_destroy(&taken);
    mp_shm_destroy(&shm2);

    assert_int_equal(rc1, 0);
    assert_int_equal(rc_taken, 0);
    assert_int_equal(rc2, 0);
    assert_string_not_equal(name2, next);
}

/* test_invalid_shared_memory_cration: size -1 and size 0 are ValueError
   (MP_EINVAL). C's size_t turns -1 into SIZE_MAX. Python's third case,
   create without a size argument, has no C form (size is required). */
static void conformance_shared_test_invalid_shared_memory_cration(void **state)
{
    mp_shm_t *sms_invalid = NULL;
    assert_int_equal(mp_shm_create(&sms_invalid, NULL, (size_t)-1), MP_EINVAL);
    assert_int_equal(mp_shm_create(&sms_invalid, NULL, 0), MP_EINVAL);
    assert_null(sms_invalid);
}

/* test_shared_memory_pickle_unpickle: a SharedMemory "unpickled" (here:
   attached by the name that pickling carries) is the same block, both
   ways. The pickle-protocol loop has no counterpart. */
static void conformance_shared_test_shared_memory_pickle_unpickle(void **state)
{
    mp_shm_t *sms = NULL, *sms2 = NULL;
    assert_int_equal(mp_shm_create(&sms, NULL, 512), 0);
    char *buf = mp_shm_buf(sms);
    memcpy(buf, "pickle", 6);

    assert_int_equal(mp_shm_attach(&sms2, mp_shm_name(sms)), 0);
    char *buf2 = mp_shm_buf(sms2);
    assert_string_equal(mp_shm_name(sms), mp_shm_name(sms2));
    assert_memory_equal(buf, "pickle", 6);
    assert_memory_equal(buf2, "pickle", 6);

    memcpy(buf, "newval", 6);
    assert_memory_equal(buf, "newval", 6);
    assert_memory_equal(buf2, "newval", 6);
    memcpy(buf2, "oldval", 6);
    assert_memory_equal(buf, "oldval", 6);
    assert_memory_equal(buf2, "oldval", 6);

    mp_shm_destroy(&sms2);
    assert_int_equal(mp_shm_unlink(sms), 0);
    mp_shm_destroy(&sms);
}

/* test_shared_memory_pickle_unpickle_dead_object: once closed and
   unlinked, the block cannot be attached by its name (FileNotFoundError
   -> MP_ENOENT). */
static void conformance_shared_test_shared_memory_pickle_unpickle_dead_object(void **state)
{
    mp_shm_t *sms = NULL, *sms2 = NULL;
    assert_int_equal(mp_shm_create(&sms, NULL, 512), 0);
    memcpy(mp_shm_buf(sms), "pickle", 6);
    char pickled[MP_SHM_NAME_MAX + 1];
    snprintf(pickled, sizeof pickled, "%s", mp_shm_name(sms));
    assert_int_equal(mp_shm_unlink(sms), 0);
    mp_shm_destroy(&sms);
    assert_int_equal(mp_shm_attach(&sms2, pickled), MP_ENOENT);
    assert_null(sms2);
}

typedef struct {
    const char *name; /* attach by name, or */
    mp_shm_t *shm;    /* use the inherited handle */
    const char *data;
} attach_arg_t;

/* CPython's _attach_existing_shmem_then_write. */
static int attach_then_write(void *arg)
{
    attach_arg_t *a = arg;
    mp_shm_t *local = a->shm;
    if (a->name && mp_shm_attach(&local, a->name) != 0)
        return 1;
    memcpy(mp_shm_buf(local), a->data, strlen(a->data));
    mp_shm_destroy(&local);
    return 0;
}

/* test_shared_memory_across_processes: a child attaches by name and
   writes; then a child given the SharedMemory object itself (CPython
   pickles it; a fork child inherits the handle) writes through it. */
static void conformance_shared_test_shared_memory_across_processes(void **state)
{
    mp_shm_t *sms = NULL;
    assert_int_equal(mp_shm_create(&sms, NULL, 512), 0);
    attach_arg_t by_name = {.name = mp_shm_name(sms), .data = "howdy"};
    attach_arg_t by_obj = {.shm = sms, .data = "HELLO"};
    int codes[2];
    mp_process_t *p;
    tu_start_n(&p, 1, attach_then_write, &by_name);
    assert_int_equal(tu_join_n(&p, 1, 5000, &codes[0]), 1);
    assert_memory_equal(mp_shm_buf(sms), "howdy", 5);
    tu_start_n(&p, 1, attach_then_write, &by_obj);
    assert_int_equal(tu_join_n(&p, 1, 5000, &codes[1]), 1);
    assert_memory_equal(mp_shm_buf(sms), "HELLO", 5);
    assert_int_equal(codes[0], 0);
    assert_int_equal(codes[1], 0);
    assert_int_equal(mp_shm_unlink(sms), 0);
    mp_shm_destroy(&sms);
}

/* ---- SharedMemoryManager and ShareableList ------------------------------------------------ */

/* range(n) as an array of ints (Python's sequence argument). */
static mp_obj_t *range(int n)
{
    mp_obj_t *a = mp_obj_new_array();
    for (int i = 0; i < n; i++)
        mp_obj_array_add(a, mp_obj_new_int(i));
    return a;
}

static bool shm_exists(const char *name)
{
    mp_shm_t *shm = NULL;
    int rc = mp_shm_attach(&shm, name);
    mp_shm_destroy(&shm);
    return rc != MP_ENOENT;
}

static volatile sig_atomic_t sigints;

static void count_sigint(int sig)
{
    (void)sig;
    sigints++;
}

/* test_shared_memory_SharedMemoryServer_ignores_sigint: CPython sends
   SIGINT to the manager's server process and checks that it goes on
   serving. libmp's manager has no server process (its registry is shared
   memory), so that half does not carry over; what does: a manager works,
   still works after this process got a SIGINT, and changes nothing in
   this process's own SIGINT handling (CPython: KeyboardInterrupt is still
   raised; here the test's handler still runs). */
static void conformance_shared_test_shared_memory_SharedMemoryServer_ignores_sigint(void **state)
{
    struct sigaction sa = {.sa_handler = count_sigint}, old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGINT, &sa, &old), 0);
    mp_shm_manager_t *smm = NULL;
    assert_int_equal(mp_shm_manager_new(&smm, NULL), 0);
    mp_obj_t *ten = range(10);
    mp_shm_list_t *sl = NULL, *sl2 = NULL;
    assert_int_equal(mp_shm_manager_list(smm, &sl, ten), 0);
    sigints = 0;
    assert_int_equal(kill(getpid(), SIGINT), 0);
    assert_int_equal(sigints, 1);
    assert_int_equal(mp_shm_manager_list(smm, &sl2, ten), 0);
    struct sigaction now;
    assert_int_equal(sigaction(SIGINT, NULL, &now), 0);
    assert_ptr_equal(now.sa_handler, count_sigint);
    mp_shm_manager_destroy(&smm); /* smm.shutdown() */
    mp_obj_destroy(&ten);
    mp_shm_list_destroy(&sl);
    mp_shm_list_destroy(&sl2);
    sigaction(SIGINT, &old, NULL);
}

/* test_shared_memory_SharedMemoryManager_basics: lists and blocks made by
   the manager can be attached by name; after shutdown their names are
   gone (FileNotFoundError -> MP_ENOENT), also for a manager used as a
   context manager (here: destroyed). CPython's first check, a make
   before start() is ValueError, maps to a make after shutdown
   (MP_ESTATE): mp_shm_manager_new starts it, there is no not-started
   state. */
static void conformance_shared_test_shared_memory_SharedMemoryManager_basics(void **state)
{
    mp_shm_manager_t *smm1 = NULL;
    assert_int_equal(mp_shm_manager_new(&smm1, NULL), 0);
    mp_shm_list_t *lol[5];
    mp_shm_t *lom[6];
    for (int i = 5; i < 10; i++) {
        mp_obj_t *r = range(i);
        assert_int_equal(mp_shm_manager_list(smm1, &lol[i - 5], r), 0);
        mp_obj_destroy(&r);
    }
    for (int j = 32, k = 0; j < 128; j += 16, k++)
        assert_int_equal(mp_shm_manager_shm(smm1, &lom[k], (size_t)j), 0);
    mp_shm_list_t *doppleganger_list0 = NULL;
    assert_int_equal(mp_shm_list_attach(&doppleganger_list0, mp_shm_list_name(lol[0])), 0);
    assert_int_equal(mp_shm_list_len(doppleganger_list0), 5);
    mp_shm_t *doppleganger_shm0 = NULL;
    assert_int_equal(mp_shm_attach(&doppleganger_shm0, mp_shm_name(lom[0])), 0);
    assert_true(mp_shm_size(doppleganger_shm0) >= 32);
    char held_name[MP_SHM_NAME_MAX + 1];
    snprintf(held_name, sizeof held_name, "%s", mp_shm_name(lom[0]));
    assert_int_equal(mp_shm_manager_shutdown(smm1), 0);
    mp_shm_t *absent_shm = NULL;
    assert_int_equal(mp_shm_attach(&absent_shm, held_name), MP_ENOENT);
    assert_int_equal(mp_shm_manager_shm(smm1, &absent_shm, 9), MP_ESTATE);
    for (int i = 0; i < 5; i++)
        mp_shm_list_destroy(&lol[i]);
    for (int k = 0; k < 6; k++)
        mp_shm_destroy(&lom[k]);
    mp_shm_list_destroy(&doppleganger_list0);
    mp_shm_destroy(&doppleganger_shm0);
    mp_shm_manager_destroy(&smm1);

    /* with SharedMemoryManager() as smm2: ShareableList("howdy"), a
       list of its five characters */
    mp_shm_manager_t *smm2 = NULL;
    assert_int_equal(mp_shm_manager_new(&smm2, NULL), 0);
    mp_obj_t *howdy = mp_obj_new_array();
    for (const char *c = "howdy"; *c; c++)
        mp_obj_array_add(howdy, mp_obj_new_strn(c, 1));
    mp_shm_list_t *sl = NULL;
    mp_shm_t *shm = NULL;
    assert_int_equal(mp_shm_manager_list(smm2, &sl, howdy), 0);
    assert_int_equal(mp_shm_manager_shm(smm2, &shm, 128), 0);
    snprintf(held_name, sizeof held_name, "%s", mp_shm_list_name(sl));
    mp_shm_manager_destroy(&smm2); /* the end of the with-block */
    mp_shm_list_t *absent_sl = NULL;
    assert_int_equal(mp_shm_list_attach(&absent_sl, held_name), MP_ENOENT);
    mp_obj_destroy(&howdy);
    mp_shm_list_destroy(&sl);
    mp_shm_destroy(&shm);
}

/* item i of sl is the str s */
static void assert_str_item(mp_shm_list_t *sl, int64_t i, const char *s)
{
    mp_obj_t *v = NULL;
    assert_int_equal(mp_shm_list_get(sl, i, &v), 0);
    assert_int_equal(mp_obj_type(v), MP_OBJ_STR);
    assert_string_equal(mp_obj_str(v, NULL), s);
    mp_obj_destroy(&v);
}

static void assert_format(mp_shm_list_t *sl, const char *want)
{
    char *format = NULL;
    assert_int_equal(mp_shm_list_format(sl, &format), 0);
    assert_string_equal(format, want);
    free(format);
}

/* test_shared_memory_ShareableList_basics: get and set in range and out
   (IndexError -> MP_ERANGE), format, len, index (ValueError ->
   MP_ENOENT), a change of type, str and bytes that exceed their slot
   (ValueError "exceeds available storage" -> MP_E2BIG) and spill into no
   neighbour, count, a named copy, a second handle, an empty list.
   str(sl) (repr) has no C form. The private _get_packing_format(0) is
   the format's first code. */
static void conformance_shared_test_shared_memory_ShareableList_basics(void **state)
{
    mp_obj_t *seq = mp_obj_new_array();
    mp_obj_array_add(seq, mp_obj_new_str("howdy"));
    mp_obj_array_add(seq, mp_obj_new_bin("HoWdY", 5));
    mp_obj_array_add(seq, mp_obj_new_float(-273.154));
    mp_obj_array_add(seq, mp_obj_new_int(100));
    mp_obj_array_add(seq, mp_obj_new_nil());
    mp_obj_array_add(seq, mp_obj_new_bool(true));
    mp_obj_array_add(seq, mp_obj_new_int(42));
    mp_shm_list_t *sl = NULL;
    assert_int_equal(mp_shm_list_create(&sl, NULL, seq, NULL), 0);

    mp_obj_t *v = NULL;
    assert_int_equal(mp_shm_list_get(sl, 7, &v), MP_ERANGE);
    assert_int_equal(mp_shm_list_set_int(sl, 7, 2), MP_ERANGE);

    assert_int_equal(mp_shm_list_set_bytes(sl, 0, "howdy", 5, true), 0);
    assert_format(sl, "8s8sdqxxxxxx?xxxxxxxx?q"); /* "8s" first, as before */
    assert_int_equal(mp_shm_list_len(sl), 7);

    size_t index;
    mp_obj_t *s100 = mp_obj_new_str("100"), *i100 = mp_obj_new_int(100);
    assert_int_equal(mp_shm_list_index(sl, s100, &index), MP_ENOENT);
    assert_int_equal(mp_shm_list_index(sl, i100, &index), 0);
    assert_int_equal(index, 3);
    mp_obj_destroy(&s100);
    mp_obj_destroy(&i100);

    assert_str_item(sl, 0, "howdy");
    bool b;
    assert_int_equal(mp_shm_list_get_bool(sl, -2, &b), 0);
    assert_true(b);

    mp_obj_t *items = NULL; /* tuple(sl) */
    assert_int_equal(mp_shm_list_items(sl, &items), 0);
    assert_true(mp_obj_equal(items, seq));
    mp_obj_destroy(&items);

    int64_t i64;
    assert_int_equal(mp_shm_list_set_int(sl, 3, 42), 0);
    assert_int_equal(mp_shm_list_get_int(sl, 3, &i64), 0);
    assert_int_equal(i64, 42);
    assert_int_equal(mp_shm_list_set_bytes(sl, 4, "some", 4, true), 0); /* None -> str */
    assert_str_item(sl, 4, "some");
    assert_format(sl, "8s8sdq8sxxxxxxx?q");
    assert_int_equal(mp_shm_list_set_bytes(sl, 4, "far too many", 12, true), MP_E2BIG);
    assert_str_item(sl, 4, "some");
    assert_int_equal(mp_shm_list_set_bytes(sl, 0, "encod\xc3\xa9s", 8, true), 0); /* 8 bytes */
    assert_str_item(sl, 0, "encod\xc3\xa9s");
    char buf[16];
    size_t len;
    assert_int_equal(mp_shm_list_get_bytes(sl, 1, buf, sizeof buf, &len), 0); /* no spillage */
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "HoWdY", 5);
    assert_int_equal(mp_shm_list_set_bytes(sl, 0, "encod\xc3\xa9\x65s", 9, true), MP_E2BIG);
    assert_int_equal(mp_shm_list_get_bytes(sl, 1, buf, sizeof buf, &len), 0);
    assert_memory_equal(buf, "HoWdY", 5);
    assert_int_equal(mp_shm_list_set_bytes(sl, 1, "123456789", 9, false), MP_E2BIG);
    assert_int_equal(mp_shm_list_get_bytes(sl, 1, buf, sizeof buf, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "HoWdY", 5);

    size_t count;
    mp_obj_t *i42 = mp_obj_new_int(42), *howdy = mp_obj_new_bin("HoWdY", 5),
             *adios = mp_obj_new_bin("adios", 5);
    assert_int_equal(mp_shm_list_count(sl, i42, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(mp_shm_list_count(sl, howdy, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(mp_shm_list_count(sl, adios, &count), 0);
    assert_int_equal(count, 0);
    mp_obj_destroy(&i42);
    mp_obj_destroy(&howdy);
    mp_obj_destroy(&adios);

    /* a duplicate: ShareableList(sl, name=name_duplicate) */
    char name_duplicate[64];
    new_shm_name(name_duplicate, sizeof name_duplicate, "test03_duplicate");
    mp_shm_list_t *sl_copy = NULL;
    assert_int_equal(mp_shm_list_items(sl, &items), 0);
    assert_int_equal(mp_shm_list_create(&sl_copy, name_duplicate, items, NULL), 0);
    assert_string_not_equal(mp_shm_list_name(sl), mp_shm_list_name(sl_copy));
    assert_string_equal(mp_shm_list_name(sl_copy), name_duplicate);
    mp_obj_t *copy_items = NULL;
    assert_int_equal(mp_shm_list_items(sl_copy, &copy_items), 0);
    assert_true(mp_obj_equal(items, copy_items));
    mp_obj_destroy(&copy_items);
    mp_obj_destroy(&items);
    char *f1 = NULL, *f2 = NULL;
    assert_int_equal(mp_shm_list_format(sl, &f1), 0);
    assert_int_equal(mp_shm_list_format(sl_copy, &f2), 0);
    assert_string_equal(f1, f2);
    free(f1);
    free(f2);
    assert_int_equal(mp_shm_list_set_int(sl_copy, -1, 77), 0);
    assert_int_equal(mp_shm_list_get_int(sl_copy, -1, &i64), 0);
    assert_int_equal(i64, 77);
    assert_int_equal(mp_shm_list_get_int(sl, -1, &i64), 0);
    assert_int_not_equal(i64, 77);
    assert_int_equal(mp_shm_list_unlink(sl_copy), 0);
    mp_shm_list_destroy(&sl_copy);

    /* a second handle on the same list */
    mp_shm_list_t *sl_tethered = NULL;
    assert_int_equal(mp_shm_list_attach(&sl_tethered, mp_shm_list_name(sl)), 0);
    assert_string_equal(mp_shm_list_name(sl), mp_shm_list_name(sl_tethered));
    assert_int_equal(mp_shm_list_set_int(sl_tethered, -1, 880), 0);
    assert_int_equal(mp_shm_list_get_int(sl, -1, &i64), 0);
    assert_int_equal(i64, 880);
    mp_shm_list_destroy(&sl_tethered);

    assert_int_equal(mp_shm_list_unlink(sl), 0); /* addCleanup(sl.shm.unlink) */
    mp_shm_list_destroy(&sl);
    mp_obj_destroy(&seq);

    mp_shm_list_t *empty_sl = NULL;
    assert_int_equal(mp_shm_list_create(&empty_sl, NULL, NULL, NULL), 0);
    assert_int_equal(mp_shm_list_len(empty_sl), 0);
    assert_format(empty_sl, "");
    mp_obj_t *any = mp_obj_new_str("any"), *none = mp_obj_new_nil();
    assert_int_equal(mp_shm_list_count(empty_sl, any, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(mp_shm_list_index(empty_sl, none, &index), MP_ENOENT);
    mp_obj_destroy(&any);
    mp_obj_destroy(&none);
    assert_int_equal(mp_shm_list_unlink(empty_sl), 0);
    mp_shm_list_destroy(&empty_sl);
}

/* CPython's "unpickled" ShareableList in another process: attach by the
   name (what the pickle holds), check [-1] == 9, then set [4] =
   "changed" (step 0), or check [3] == "newvalue" (step 1), or check the
   length is 400 (step 2). */
typedef struct {
    const char *name;
    int step;
} unpickle_arg_t;

static int unpickle_in_child(void *arg)
{
    unpickle_arg_t *u = arg;
    mp_shm_list_t *sl = NULL;
    if (mp_shm_list_attach(&sl, u->name))
        return 1;
    int rc = 0;
    int64_t last;
    mp_obj_t *v = NULL;
    if (u->step == 2)
        rc = mp_shm_list_len(sl) == 400 ? 0 : 2;
    else if (mp_shm_list_get_int(sl, -1, &last) || last != 9)
        rc = 3;
    else if (u->step == 0)
        rc = mp_shm_list_set_bytes(sl, 4, "changed", 7, true) ? 4 : 0;
    else if (mp_shm_list_get(sl, 3, &v) || mp_obj_type(v) != MP_OBJ_STR ||
             strcmp(mp_obj_str(v, NULL), "newvalue") != 0)
        rc = 5;
    mp_obj_destroy(&v);
    mp_shm_list_destroy(&sl);
    return rc;
}

static void run_unpickle(const char *name, int step)
{
    unpickle_arg_t u = {name, step};
    mp_process_t *p;
    int code;
    tu_start_n(&p, 1, unpickle_in_child, &u);
    assert_int_equal(tu_join_n(&p, 1, 5000, &code), 1);
    assert_int_equal(code, 0);
}

/* test_shared_memory_ShareableList_pickling: pickling is passing the name
   to another process, which attaches (a new handle on the same list):
   its change is seen here, ours there. The pickle's size not growing
   with the list: the name is all that travels, for 10 items as for 400.
   The pickle-protocol loop has no counterpart. */
static void conformance_shared_test_shared_memory_ShareableList_pickling(void **state)
{
    mp_obj_t *ten = range(10), *many = range(400);
    mp_shm_list_t *sl = NULL, *larger_sl = NULL;
    assert_int_equal(mp_shm_list_create(&sl, NULL, ten, NULL), 0);
    run_unpickle(mp_shm_list_name(sl), 0);
    assert_str_item(sl, 4, "changed");
    assert_int_equal(mp_shm_list_set_bytes(sl, 3, "newvalue", 8, true), 0);
    run_unpickle(mp_shm_list_name(sl), 1);

    assert_int_equal(mp_shm_list_create(&larger_sl, NULL, many, NULL), 0);
    run_unpickle(mp_shm_list_name(larger_sl), 2);
    assert_true(strlen(mp_shm_list_name(larger_sl)) <= MP_SHM_NAME_MAX);
    assert_int_equal(mp_shm_list_unlink(larger_sl), 0);
    mp_shm_list_destroy(&larger_sl);
    assert_int_equal(mp_shm_list_unlink(sl), 0);
    mp_shm_list_destroy(&sl);
    mp_obj_destroy(&ten);
    mp_obj_destroy(&many);
}

/* test_shared_memory_ShareableList_pickling_dead_object: once closed and
   unlinked, the list cannot be attached by the name that was passed on
   (FileNotFoundError -> MP_ENOENT). */
static void conformance_shared_test_shared_memory_ShareableList_pickling_dead_object(void **state)
{
    mp_obj_t *ten = range(10);
    mp_shm_list_t *sl = NULL, *unpickled = NULL;
    assert_int_equal(mp_shm_list_create(&sl, NULL, ten, NULL), 0);
    char pickled[MP_SHM_NAME_MAX + 1];
    snprintf(pickled, sizeof pickled, "%s", mp_shm_list_name(sl));
    assert_int_equal(mp_shm_list_unlink(sl), 0);
    mp_shm_list_destroy(&sl);
    assert_false(shm_exists(pickled));
    assert_int_equal(mp_shm_list_attach(&unpickled, pickled), MP_ENOENT);
    assert_null(unpickled);
    mp_obj_destroy(&ten);
}

/* test_shared_memory_cleaned_after_process_termination's child, a spawned
   program (CPython runs a fresh interpreter: a forked child would share
   this process's tracker, started by the SharedMemoryManager tests): makes
   a block (tracked: Python 3.13's track=True, the default there), writes
   its name, waits to be killed. args: [name pipe fd, stderr pipe fd]. */
static int make_and_wait(void *arg)
{
    mp_obj_t *args = arg;
    int name_fd = (int)mp_obj_int(mp_obj_array_at(args, 0));
    dup2((int)mp_obj_int(mp_obj_array_at(args, 1)), 2);
    mp_shm_t *sm = NULL;
    mp_shm_options_t o = {.track = true};
    if (mp_shm_create_with(&sm, NULL, 10, &o))
        return 1;
    dprintf(name_fd, "%s\n", mp_shm_name(sm));
    pause();
    return 2;
}
MP_REGISTER_TARGET(make_and_wait)

/* test_shared_memory_cleaned_after_process_termination: a process that
   made a block is terminated abruptly (SIGTERM); the block does not leak:
   attaching by its name fails within the deadline (CPython: LONG_TIMEOUT;
   here 10 s, polled 0.1 s doubling), and the tracker says so on the
   process's stderr ("resource_tracker: There appear to be 1 leaked
   shared_memory objects"; here "removed 1 shared memory block"). */
static void conformance_shared_test_shared_memory_cleaned_after_process_termination(void **state)
{
    (void)state;
    int name_pipe[2], err_pipe[2];
    assert_int_equal(pipe(name_pipe), 0);
    assert_int_equal(pipe(err_pipe), 0);
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(name_pipe[1]));
    mp_obj_array_add(args, mp_obj_new_int(err_pipe[1]));
    mp_process_opts_t opts = {.start_method = MP_START_SPAWN, .args = args};
    mp_process_t *p = tu_start(make_and_wait, NULL, &opts);
    mp_obj_destroy(&args);
    close(name_pipe[1]);
    close(err_pipe[1]);
    char name[MP_SHM_NAME_MAX + 2];
    size_t n = tu_read_line(name_pipe[0], name, sizeof name);
    assert_true(n > 0);
    close(name_pipe[0]);
    assert_int_equal(mp_process_terminate(p), 0);
    assert_int_equal(tu_join(&p, 10000), -SIGTERM);
    uint64_t deadline = tu_now_ms() + 10000;
    int t = 100;
    bool gone = false;
    while (!gone && tu_now_ms() < deadline) {
        usleep((useconds_t)t * 1000);
        t = t * 2 < 5000 ? t * 2 : 5000;
        mp_shm_t *smm = NULL;
        int rc = mp_shm_attach(&smm, name);
        gone = rc == MP_ENOENT;
        mp_shm_destroy(&smm);
    }
    assert_true(gone); /* else: "A SharedMemory segment was leaked" */
    char err[2048];
    size_t got = 0;
    for (;;) { /* the tracker holds the pipe too: read to its end */
        struct pollfd pfd = {err_pipe[0], POLLIN, 0};
        assert_true(poll(&pfd, 1, 10000) > 0);
        ssize_t k = read(err_pipe[0], err + got, sizeof err - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    err[got] = '\0';
    close(err_pipe[0]);
    assert_non_null(strstr(err, "removed 1 shared memory block"));
    assert_non_null(strstr(err, name));
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    /* Not ported (see shared.rows.md): the resource-tracker test, and
       test_shared_memory_cleaned_after_process_termination (the lead's). */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(conformance_shared_test_shared_memory_basics, tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_shared_memory_recreate, tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_invalid_shared_memory_cration,
                                  tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_shared_memory_pickle_unpickle,
                                  tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_shared_memory_pickle_unpickle_dead_object,
                                  tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_shared_memory_across_processes,
                                  tu_teardown),
        cmocka_unit_test_teardown(
            conformance_shared_test_shared_memory_SharedMemoryServer_ignores_sigint, tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_shared_memory_SharedMemoryManager_basics,
                                  tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_shared_memory_ShareableList_basics,
                                  tu_teardown),
        cmocka_unit_test_teardown(conformance_shared_test_shared_memory_ShareableList_pickling,
                                  tu_teardown),
        cmocka_unit_test_teardown(
            conformance_shared_test_shared_memory_ShareableList_pickling_dead_object, tu_teardown),
        cmocka_unit_test_teardown(
            conformance_shared_test_shared_memory_cleaned_after_process_termination, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
