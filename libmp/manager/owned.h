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
    uint32_t id; /* a queue's, for references to it (ref.c); 0 for the others */
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
/* The queue m made with this id (ma_owned_t), or NULL (owned.c). */
mp_queue_t *ma_queue_by_id(struct mp_manager *m, uint32_t id);
/* The id of a queue m made, 0 when it made no such queue (owned.c). */
uint32_t ma_queue_id(struct mp_manager *m, const mp_queue_t *queue);
/* The queue with this id made by the manager of arena a in this process
   (or one it forked from), or NULL (manager.c). */
mp_queue_t *ma_queue_of(const ma_arena_t *a, uint32_t id);

#endif
