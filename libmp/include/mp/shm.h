/*  mp/shm.h - SharedMemory: a named block any process can attach to.

    As Python's multiprocessing.shared_memory.SharedMemory: one process
    creates a block under a name, others (related or not: spawn children,
    other programs) attach by that name. Backed by shm_open (/dev/shm/NAME).
    The block outlives every handle until someone calls mp_shm_unlink(); the
    creator normally does, once the others attached. A block created with
    tracking (mp_shm_create_with, Python 3.13's track=True) is also removed
    when its creator, and every child it forked, has exited without
    unlinking it: killed, crashed, or simply forgetful (docs/CORE.md,
    "SharedMemory tracking").

    Thread-safety: a handle is not thread-safe; the memory is the caller's
    to synchronize. Fork: a child inherits the mapping and a copy of the
    handle. Signals: no.
*/
#ifndef MP_SHM_H_INCLUDED
#define MP_SHM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_shm mp_shm_t;

#define MP_SHM_NAME_MAX 250

/* Creates a new zero-filled block of size > 0 bytes. name: letters, digits,
   '_', '-', '.'; NULL picks a unique one ("mp_<pid>_<random>").
   0, MP_EEXIST, MP_EINVAL, or another -errno. On success *shm_p is new. */
MP_EXPORT int mp_shm_create(mp_shm_t **shm_p, const char *name, size_t size);
typedef struct {
    /* Remove the block when this process and the children it forks have
       all exited without unlinking it. A tracker process (one per process
       tree, started with the first tracked block) does it and says so on
       stderr. Off by default: a block outlives its creator, for programs
       that hand it on. */
    bool track;
} mp_shm_options_t;

/* As mp_shm_create, with options (NULL: the defaults). Also -errno when
   the tracker cannot be started (then no block is left). */
MP_EXPORT int mp_shm_create_with(mp_shm_t **shm_p, const char *name, size_t size,
                                 const mp_shm_options_t *options);
/* Attaches to an existing block (its whole size). 0, MP_ENOENT, -errno. */
MP_EXPORT int mp_shm_attach(mp_shm_t **shm_p, const char *name);

MP_EXPORT const char *mp_shm_name(const mp_shm_t *shm);
MP_EXPORT size_t mp_shm_size(const mp_shm_t *shm);
MP_EXPORT void *mp_shm_buf(const mp_shm_t *shm);

/* Removes the name: no new attach succeeds; mappings stay valid until
   closed (a tracked block is then forgotten by the tracker). 0 or
   MP_ENOENT. */
MP_EXPORT int mp_shm_unlink(mp_shm_t *shm);
MP_EXPORT int mp_shm_unlink_name(const char *name);

/* Unmaps and frees the handle (Python's close()); does not unlink.
   Safe on NULL, sets *shm_p to NULL. */
MP_EXPORT void mp_shm_destroy(mp_shm_t **shm_p);

#ifdef __cplusplus
}
#endif

#endif
