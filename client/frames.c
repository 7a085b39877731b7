/*  frames.c - the items frames of SUBMITs.

    A chunk's items travel as one frame: an msgpack array header of its
    count, then the items' bytes as they are in the caller's list. Small
    calls get a malloc'd frame per chunk. The chunk frames of a large map
    are one mapping instead (huge pages: items.c, large buffers), cut chunk
    by chunk: glibc returns blocks that large to the kernel once freed, so
    each frame was faulted in page by page, on the I/O thread: the critical
    path of a map.

    Invariants: each frame cut from a sendbuf holds a reference (ZeroMQ
    drops it when it is done with the frame: the broker keeps a chunk's
    input until the chunk is done, for retries), and so does the job until
    its last chunk is cut; the last reference frees the mapping, on
    whatever thread drops it (the count is atomic).
*/
#include <stdlib.h>
#include <string.h>

#include "codec/items_impl.h"
#include "codec/wire.h"
#include "frames.h"
#include "mp/error.h"

struct sendbuf {
    int refs; /* atomic */
    char *base;
    size_t len, used;
};

void mp__pool_sendbuf_unref(void *data, void *hint)
{
    (void)data;
    sendbuf_t *b = hint;
    if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        mp__big_free(b->base, b->len);
        free(b);
    }
}

sendbuf_t *mp__pool_sendbuf_new(size_t size)
{
    sendbuf_t *b = calloc(1, sizeof *b);
    if (b) {
        b->base = mp__big_alloc(size, &b->len);
        b->refs = 1; /* the job's */
    }
    if (!b || !b->base) {
        free(b);
        return NULL;
    }
    return b;
}

int mp__pool_frame_in(sendbuf_t *b, zmq_msg_t *frame, size_t count, size_t bytes, char **at)
{
    char ah[8];
    mp__buf_t arr;
    mp__buf_init(&arr, ah, sizeof ah);
    mp__w_array(&arr, count);
    if (b->len - b->used < arr.size + bytes)
        return MP_ENOMEM; /* cannot be: sized for every chunk */
    char *p = b->base + b->used;
    memcpy(p, arr.data, arr.size);
    __atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
    if (zmq_msg_init_data(frame, p, arr.size + bytes, mp__pool_sendbuf_unref, b)) {
        __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL); /* the job's is still held */
        return MP_ENOMEM;
    }
    b->used += arr.size + bytes;
    *at = p + arr.size;
    return 0;
}
