/*  frames.h - the items frame of a SUBMIT (frames.c): malloc'd for one
    chunk, or cut from a large map's one buffer (sendbuf_t). */
#ifndef MP_CLIENT_FRAMES_H_INCLUDED
#define MP_CLIENT_FRAMES_H_INCLUDED

#include <stddef.h>
#include <zmq.h>

#define SENDBUF_MIN (1u << 20) /* smaller maps: a malloc'd frame per chunk */

typedef struct sendbuf sendbuf_t;

/* A buffer of at least size bytes, one reference (its job's). NULL when
   out of memory. */
sendbuf_t *mp__pool_sendbuf_new(size_t size);
/* Starts an items frame of count items in b, as mpp_items_frame does;
   the frame holds a reference to b. */
int mp__pool_frame_in(sendbuf_t *b, zmq_msg_t *frame, size_t count, size_t bytes, char **at);
/* Drops a reference to a sendbuf (any thread; ZeroMQ's free function of
   the frames, hint = the buffer). */
void mp__pool_sendbuf_unref(void *data, void *hint);

#endif
