/*  test_shm.c - SharedMemory: create, attach from an unrelated (spawned)
    process, unlink; tracked blocks removed when their creator is gone;
    nothing left in /dev/shm. */
#include <poll.h>
#include <signal.h>

#include "support.h"

/* spawn target: args [name, byte]; attaches by name and fills the block */
static int attach_and_fill(void *arg)
{
    mp_obj_t *args = arg;
    mp_shm_t *shm = NULL;
    if (mp_shm_attach(&shm, mp_obj_str(mp_obj_array_at(args, 0), NULL)))
        return 1;
    memset(mp_shm_buf(shm), (int)mp_obj_int(mp_obj_array_at(args, 1)), mp_shm_size(shm));
    int size_ok = mp_shm_size(shm) == 10000;
    mp_shm_destroy(&shm);
    return size_ok ? 0 : 2;
}
MP_REGISTER_TARGET(attach_and_fill)

static void test_attach_from_unrelated_process(void **state)
{
    mp_shm_t *shm = NULL;
    assert_int_equal(mp_shm_create(&shm, "mptest_block", 10000), 0);
    assert_string_equal(mp_shm_name(shm), "mptest_block");
    assert_int_equal(mp_shm_size(shm), 10000);
    assert_int_equal(tu_shm_count("mptest_block"), 1);
    unsigned char *buf = mp_shm_buf(shm);
    assert_int_equal(buf[0], 0); /* zero-filled */

    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_str("mptest_block"));
    mp_obj_array_add(args, mp_obj_new_int(0xAB));
    mp_process_opts_t opts = {.start_method = MP_START_SPAWN, .args = args};
    mp_process_t *p = mp_process_new(attach_and_fill, NULL, &opts);
    mp_obj_destroy(&args);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(tu_join(&p, 10000), 0);
    assert_int_equal(buf[0], 0xAB);
    assert_int_equal(buf[9999], 0xAB);

    assert_int_equal(mp_shm_unlink(shm), 0);
    assert_int_equal(tu_shm_count("mptest_block"), 0);
    assert_int_equal(buf[5000], 0xAB); /* the mapping outlives the name */
    mp_shm_t *again = NULL;
    assert_int_equal(mp_shm_attach(&again, "mptest_block"), MP_ENOENT);
    assert_int_equal(mp_shm_unlink(shm), MP_ENOENT);
    mp_shm_destroy(&shm);
    mp_shm_destroy(&shm);
}

static void test_names_are_checked_and_exclusive(void **state)
{
    mp_shm_t *a = NULL, *b = NULL;
    assert_int_equal(mp_shm_create(&a, "mptest_x", 100), 0);
    assert_int_equal(mp_shm_create(&b, "mptest_x", 100), MP_EEXIST);
    assert_int_equal(mp_shm_attach(&b, "mptest_x"), 0);
    assert_int_equal(mp_shm_size(b), 100);
    ((char *)mp_shm_buf(a))[7] = 'z';
    assert_int_equal(((char *)mp_shm_buf(b))[7], 'z');
    mp_shm_destroy(&b);
    assert_int_equal(mp_shm_unlink_name("mptest_x"), 0);
    mp_shm_destroy(&a);

    assert_int_equal(mp_shm_create(&a, "../etc/passwd", 10), MP_EINVAL);
    assert_int_equal(mp_shm_create(&a, "has/slash", 10), MP_EINVAL);
    assert_int_equal(mp_shm_create(&a, "", 10), MP_EINVAL);
    assert_int_equal(mp_shm_create(&a, "mptest_zero", 0), MP_EINVAL);
    assert_int_equal(mp_shm_attach(&a, NULL), MP_EINVAL);
    assert_null(a);

    /* generated names are unique */
    assert_int_equal(mp_shm_create(&a, NULL, 64), 0);
    assert_int_equal(mp_shm_create(&b, NULL, 64), 0);
    assert_string_not_equal(mp_shm_name(a), mp_shm_name(b));
    assert_int_equal(strncmp(mp_shm_name(a), "mp_", 3), 0);
    assert_int_equal(mp_shm_unlink(a), 0);
    assert_int_equal(mp_shm_unlink(b), 0);
    mp_shm_destroy(&a);
    mp_shm_destroy(&b);
}

/* ---- tracking ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    bool track, unlink, fork_child; /* fork_child: a child that outlives it by 1 s */
    int err;                        /* write end of a pipe that becomes its stderr */
    int ready;                      /* write end: "1" once the block exists */
} creator_t;

static int creator(void *arg)
{
    creator_t *c = arg;
    dup2(c->err, 2);
    mp_shm_options_t o = {.track = c->track};
    mp_shm_t *shm = NULL;
    if (mp_shm_create_with(&shm, c->name, 4096, &o))
        return 1;
    if (c->unlink && mp_shm_unlink(shm))
        return 2;
    if (c->fork_child && fork() == 0) {
        usleep(1000 * 1000);
        _exit(0);
    }
    if (write(c->ready, "1", 1) != 1)
        return 3;
    if (c->unlink)
        usleep(300 * 1000); /* the test makes another block of that name meanwhile */
    if (c->unlink || c->fork_child)
        return 0; /* exits without mp_shm_destroy: a normal exit */
    pause();      /* until killed */
    return 4;
}

/* Runs a creator, kills it (SIGKILL) unless it exits by itself, and
   returns what it and its tracker wrote on stderr (read until every holder
   of the pipe is gone, at most 10 s). */
static void run_creator(creator_t *c, char *err, size_t size, bool kill_it)
{
    int e[2], r[2];
    assert_int_equal(pipe(e), 0);
    assert_int_equal(pipe(r), 0);
    c->err = e[1];
    c->ready = r[1];
    mp_process_t *p = tu_start(creator, c, NULL);
    close(e[1]);
    close(r[1]);
    char one;
    assert_int_equal(read(r[0], &one, 1), 1);
    close(r[0]);
    mp_shm_t *later = NULL; /* an unlinked block's name, taken by another */
    if (c->unlink) {
        assert_int_equal(mp_shm_create(&later, c->name, 64), 0);
        mp_shm_destroy(&later);
    }
    if (kill_it)
        assert_int_equal(mp_process_kill(p), 0);
    assert_int_equal(tu_join(&p, 5000), kill_it ? -SIGKILL : 0);
    size_t n = 0;
    uint64_t deadline = tu_now_ms() + 10000;
    for (;;) {
        struct pollfd pfd = {e[0], POLLIN, 0};
        int left = (int)(deadline - tu_now_ms());
        assert_true(left > 0);
        if (poll(&pfd, 1, left) <= 0)
            continue;
        ssize_t k = read(e[0], err + n, size - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    err[n] = '\0';
    close(e[0]);
}

/* CPython's test_shared_memory_cleaned_after_process_termination, and
   more: a tracked block outlives a SIGKILLed creator only until its
   tracker notices, which says so. */
static void test_tracked_block_is_removed_when_its_creator_is_killed(void **state)
{
    (void)state;
    char err[1024];
    creator_t c = {.name = "mptest_tracked", .track = true};
    run_creator(&c, err, sizeof err, true);
    assert_int_equal(tu_shm_count("mptest_tracked"), 0);
    assert_non_null(strstr(err, "mp-shm-tracker: removed 1 shared memory block"));
    assert_non_null(strstr(err, "mptest_tracked"));
}

static void test_untracked_block_outlives_its_creator(void **state)
{
    (void)state;
    char err[1024];
    creator_t c = {.name = "mptest_untracked"};
    run_creator(&c, err, sizeof err, true);
    assert_int_equal(tu_shm_count("mptest_untracked"), 1);
    assert_string_equal(err, "");
    assert_int_equal(mp_shm_unlink_name("mptest_untracked"), 0);
}

/* Unlinked by its creator: the tracker forgets it, and a block made
   later under the same name by someone else is not touched. */
static void test_tracked_block_unlinked_by_its_creator_is_forgotten(void **state)
{
    (void)state;
    char err[1024];
    creator_t c = {.name = "mptest_forgotten", .track = true, .unlink = true};
    run_creator(&c, err, sizeof err, false); /* makes "later" while the creator lives */
    assert_string_equal(err, "");
    assert_int_equal(tu_shm_count("mptest_forgotten"), 1);
    assert_int_equal(mp_shm_unlink_name("mptest_forgotten"), 0);
}

/* A child the creator forked keeps the block alive: it goes when the last
   of them exits (the creator itself exits normally, without unlinking). */
static void test_tracked_block_waits_for_the_creators_children(void **state)
{
    (void)state;
    char err[1024];
    creator_t c = {.name = "mptest_family", .track = true, .fork_child = true};
    uint64_t t0 = tu_now_ms();
    run_creator(&c, err, sizeof err, false); /* returns once the child is gone too */
    assert_true(tu_now_ms() - t0 >= 900);
    assert_int_equal(tu_shm_count("mptest_family"), 0);
    assert_non_null(strstr(err, "mptest_family"));
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_attach_from_unrelated_process, tu_teardown),
        cmocka_unit_test_teardown(test_names_are_checked_and_exclusive, tu_teardown),
        cmocka_unit_test_teardown(test_tracked_block_is_removed_when_its_creator_is_killed,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_untracked_block_outlives_its_creator, tu_teardown),
        cmocka_unit_test_teardown(test_tracked_block_unlinked_by_its_creator_is_forgotten,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_tracked_block_waits_for_the_creators_children, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
