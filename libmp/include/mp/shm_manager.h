/*  mp/shm_manager.h - SharedMemoryManager: makes SharedMemory blocks and
    ShareableLists, and unlinks every one of them at shutdown.

    As Python's multiprocessing.managers.SharedMemoryManager, without its
    server process: mp_shm_manager_new() is SharedMemoryManager() and
    start() in one, mp_shm_manager_shutdown() (or destroy in the process
    that made it) is shutdown(). Every block it makes has a generated name
    and is recorded in a registry that lives in shared memory, so blocks
    made through it by children forked after it was made are unlinked at
    shutdown too, whoever calls it. Every block (the registry included) is
    created tracked (mp_shm_options_t.track): if the owner and its
    children all exit without shutdown, killed or not, the tracker removes
    them, so nothing is left in /dev/shm. The tracker is started (or the
    one this process inherited reused) by mp_shm_manager_new, so children
    forked afterwards share it: a child's blocks outlive the child, until
    shutdown or the whole family's exit.

    The handles it gives out (mp_shm_t, mp_shm_list_t) are the caller's,
    to destroy as usual; after shutdown their mappings stay valid, but the
    names are gone (no new attach), as in Python.

    Thread-safety: the calls are thread-safe and process-safe (a robust
    process-shared mutex; a process killed holding it leaves the registry
    consistent). Fork: a child inherits the manager and may make blocks
    through it; its destroy does not shut the manager down. Signals: no.
*/
#ifndef MP_SHM_MANAGER_H_INCLUDED
#define MP_SHM_MANAGER_H_INCLUDED

#include <stddef.h>

#include "mp/export.h"
#include "mp/obj.h"
#include "mp/shm.h"
#include "mp/shm_list.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_shm_manager mp_shm_manager_t;

typedef struct {
    /* How many blocks it can make over its life (0: 4096). The registry
       takes 256 bytes of /dev/shm per block made (pages never written
       take no memory). */
    size_t capacity;
} mp_shm_manager_options_t;

/* Makes a manager, ready at once (Python's start()); options NULL: the
   defaults. 0, MP_EINVAL, MP_ENOMEM, -errno (shm, or the tracker could
   not start). */
MP_EXPORT int mp_shm_manager_new(mp_shm_manager_t **manager_p,
                                 const mp_shm_manager_options_t *options);

/* smm.SharedMemory(size): a new tracked block of size > 0 bytes in
   *shm_p (the caller's handle). 0, MP_EINVAL, MP_ESTATE (the manager was
   shut down: CPython's "not started" ValueError), MP_ENOSPC (capacity
   blocks made already), MP_ETIMEDOUT (the registry stayed locked 10 s:
   a process stopped while holding it), -errno. */
MP_EXPORT int mp_shm_manager_shm(mp_shm_manager_t *manager, mp_shm_t **shm_p, size_t size);
/* smm.ShareableList(sequence): as mp_shm_list_create(list_p, NULL, items,
   tracked), recorded as above. Errors: mp_shm_list_create's, and those of
   mp_shm_manager_shm. */
MP_EXPORT int mp_shm_manager_list(mp_shm_manager_t *manager, mp_shm_list_t **list_p,
                                  const mp_obj_t *items);

/* How many blocks it has made and not yet unlinked at shutdown (0 after
   it). */
MP_EXPORT size_t mp_shm_manager_count(mp_shm_manager_t *manager);

/* smm.shutdown(): unlinks every block made through it, by any process,
   and its registry; later makes are MP_ESTATE everywhere. Any process
   holding the manager may call it; a second call does nothing. 0,
   MP_EINVAL, MP_ETIMEDOUT (as above; nothing unlinked). */
MP_EXPORT int mp_shm_manager_shutdown(mp_shm_manager_t *manager);

/* Frees this process's handle. In the process that made the manager it
   shuts it down first (Python's with-block and finalizer); in a child it
   only lets go. Safe on NULL, sets *manager_p to NULL. */
MP_EXPORT void mp_shm_manager_destroy(mp_shm_manager_t **manager_p);

#ifdef __cplusplus
}
#endif

#endif
