/*  shm.c - SharedMemory over shm_open + mmap.

    Names are validated here rather than left to shm_open so that a name can
    never escape /dev/shm ("../x") and errors are the same everywhere.
    A generated name mixes pid, time and a counter, and creation uses
    O_EXCL, so two processes can never share a block by accident.
*/
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "mp/error.h"
#include "mp/shm.h"
#include "shared/tracker.h"

struct mp_shm {
    char name[MP_SHM_NAME_MAX + 2]; /* "/" + name */
    void *buf;
    size_t size;
};

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MP_SHM_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (const char *c = name; *c; c++)
        if (!(*c == '_' || *c == '-' || *c == '.' || (*c >= '0' && *c <= '9') ||
              (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
            return false;
    return true;
}

static int map(mp_shm_t **shm_p, const char *name, size_t size, bool create)
{
    if (!shm_p || (name && !valid_name(name)) || (create && size == 0) || (!create && !name))
        return MP_EINVAL;
    mp_shm_t *shm = calloc(1, sizeof *shm);
    if (!shm)
        return MP_ENOMEM;
    static atomic_uint counter;
    int fd, rc;
    /* a generated name that is taken (someone chose it, as CPython's
       test_shared_memory_recreate does) is chosen again, as CPython does */
    for (int tries = 0;; tries++) {
        if (name)
            snprintf(shm->name, sizeof shm->name, "/%s", name);
        else
            snprintf(shm->name, sizeof shm->name, "/mp_%d_%llx_%u", (int)getpid(),
                     (unsigned long long)mp__now_ns(), atomic_fetch_add(&counter, 1));
        fd = shm_open(shm->name, create ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
        rc = fd < 0 ? -errno : 0;
        if (name || rc != MP_EEXIST || tries == 100)
            break;
    }
    if (!rc && create && ftruncate(fd, (off_t)size) < 0)
        rc = -errno;
    if (!rc && !create) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            rc = -errno;
        else if (st.st_size == 0)
            rc = MP_EINVAL; /* a creator between shm_open and ftruncate */
        size = (size_t)st.st_size;
    }
    if (!rc) {
        shm->buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (shm->buf == MAP_FAILED)
            rc = -errno;
    }
    if (fd >= 0)
        close(fd);
    if (rc) {
        if (fd >= 0 && create)
            shm_unlink(shm->name);
        free(shm);
        return rc;
    }
    shm->size = size;
    *shm_p = shm;
    return 0;
}

int mp_shm_create(mp_shm_t **shm_p, const char *name, size_t size)
{
    return map(shm_p, name, size, true);
}

int mp_shm_create_with(mp_shm_t **shm_p, const char *name, size_t size,
                       const mp_shm_options_t *options)
{
    int rc = map(shm_p, name, size, true);
    if (rc || !options || !options->track)
        return rc;
    /* registered after it exists: a block of that name that was someone
       else's is never registered, so never removed by our tracker */
    if ((rc = mp__shm_track(mp_shm_name(*shm_p)))) {
        mp_shm_unlink(*shm_p);
        mp_shm_destroy(shm_p);
    }
    return rc;
}

int mp_shm_attach(mp_shm_t **shm_p, const char *name)
{
    return map(shm_p, name, 0, false);
}

const char *mp_shm_name(const mp_shm_t *shm)
{
    return shm ? shm->name + 1 : NULL;
}

size_t mp_shm_size(const mp_shm_t *shm)
{
    return shm ? shm->size : 0;
}

void *mp_shm_buf(const mp_shm_t *shm)
{
    return shm ? shm->buf : NULL;
}

int mp_shm_unlink_name(const char *name)
{
    if (!name || !valid_name(name))
        return MP_EINVAL;
    char path[MP_SHM_NAME_MAX + 2];
    snprintf(path, sizeof path, "/%s", name);
    if (shm_unlink(path) < 0)
        return -errno;
    mp__shm_untrack(name); /* if this process's tracker had it */
    return 0;
}

int mp_shm_unlink(mp_shm_t *shm)
{
    return shm ? mp_shm_unlink_name(shm->name + 1) : MP_EINVAL;
}

void mp_shm_destroy(mp_shm_t **shm_p)
{
    if (!shm_p || !*shm_p)
        return;
    munmap((*shm_p)->buf, (*shm_p)->size);
    free(*shm_p);
    *shm_p = NULL;
}
