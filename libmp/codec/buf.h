/*  buf.h - the codec's growable byte buffer (obj.c), and packing an
    mp_obj_t into one. Not installed.

    Every encoder of the codec layer and above writes into an mp__buf_t:
    it starts on caller storage (usually the stack) and moves to the heap
    only when it outgrows it.
*/
#ifndef MP_CODEC_BUF_H_INCLUDED
#define MP_CODEC_BUF_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp/obj.h"

typedef struct {
    char *data;
    size_t size;
    size_t cap;
    bool owned; /* data was malloc'd by the buffer */
} mp__buf_t;

/* Starts the buffer on caller storage (may be NULL/0); grows onto the heap. */
void mp__buf_init(mp__buf_t *b, char *storage, size_t cap);
/* Ensures room for size more bytes. 0 or MP_ENOMEM. */
int mp__buf_reserve(mp__buf_t *b, size_t size);
int mp__buf_append(mp__buf_t *b, const void *data, size_t size);
void mp__buf_release(mp__buf_t *b);

/* Appends the msgpack encoding of o. 0, MP_EINVAL or MP_ENOMEM. */
int mp__obj_pack_into(const mp_obj_t *o, mp__buf_t *b);

#endif
