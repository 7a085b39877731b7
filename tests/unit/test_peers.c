/*  test_peers.c - the broker's table of peers (broker/peers.c): found by
    routing id through a hash table, removed in any order. 20,000 peers
    with random ids of 1..16 bytes (so that probe runs collide and wrap)
    are added and removed in random order over several rounds, and after
    every step each id is found if and only if it is present, with the
    worker count right. Through the engine's own functions, on an idle
    broker (mp__broker_new_idle). */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_impl.h"
#include "broker/broker_shm.h"
#include "support.h"

enum { N = 20000 };

static uint8_t ids[N][16];
static size_t lens[N];
static peer_t *held[N];

static void check_all(mp_broker_t *b, size_t workers)
{
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(bk_peer_find(b, ids[i], lens[i]), held[i]);
    assert_int_equal(bk_worker_count(b), workers);
}

static void test_peers_found_and_removed_in_any_order(void **state)
{
    (void)state;
    const char *binds[] = {"inproc://test-peers"};
    mp_broker_options_t o = {.binds = binds, .nbinds = 1, .max_peers_per_source = N + 1};
    mp_broker_t *b = NULL;
    assert_int_equal(mp__broker_new_idle(&o, &b), 0);
    unsigned seed = 7;
    for (size_t i = 0; i < N; i++) { /* distinct: a prefix of the index, then noise */
        lens[i] = 2 + (size_t)rand_r(&seed) % 15;
        ids[i][0] = (uint8_t)(i >> 8);
        ids[i][1] = (uint8_t)i;
        for (size_t k = 2; k < lens[i]; k++)
            ids[i][k] = (uint8_t)rand_r(&seed);
    }
    size_t workers = 0;
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < N; i++) /* add what is absent, each a client or a worker */
            if (!held[i]) {
                int kind = rand_r(&seed) % 2 ? PEER_WORKER : PEER_CLIENT;
                held[i] = bk_peer_add(b, NULL, ids[i], lens[i], kind);
                assert_non_null(held[i]);
                workers += kind == PEER_WORKER;
            }
        check_all(b, workers);
        for (size_t k = 0; k < N / 2; k++) { /* remove half, in random order */
            size_t i = (size_t)rand_r(&seed) % N;
            if (!held[i])
                continue;
            workers -= held[i]->kind == PEER_WORKER;
            bk_peer_remove(b, held[i]);
            held[i] = NULL;
            if (k % 1000 == 0)
                check_all(b, workers);
        }
        check_all(b, workers);
    }
    mp_broker_destroy(&b); /* removes the rest */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peers_found_and_removed_in_any_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
