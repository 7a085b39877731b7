/*  owned.h - the manager itself (struct mp_manager: made and destroyed by
    manager.c) and the SyncManager primitives and named queues it owns
    (owned.c). Not installed.
*/
#ifndef MP_MANAGER_OWNED_H_INCLUDED
#define MP_MANAGER_OWNED_H_INCLUDED

#include "manager/arena.h"

/* What mp_manager_new() returns: this process's view, plus the SyncManager
   primitives it created (owned.c), destroyed with it. */
typedef struct {
    int kind;
    void *object;
} ma_owned_t;

struct mp_manager {
    ma_arena_t *arena;
    size_t size; /* mapped bytes */
    pthread_mutex_t owned_mutex;
    ma_owned_t *owned;
    size_t nowned, owned_cap;
    struct ma_named_queue *queues; /* mp_manager_named_queue (this process's) */
    size_t nqueues;
};

/* Destroys the primitives the manager created, newest first (owned.c). */
void ma_destroy_owned(struct mp_manager *m);
/* The named queue number n (1-based), or NULL (owned.c). */
mp_queue_t *ma_queue_at(struct mp_manager *m, int64_t n);
/* The number of the queue called name, made when absent; 0 when it cannot
   be made. */
int64_t ma_queue_named(struct mp_manager *m, const char *name);

#endif
