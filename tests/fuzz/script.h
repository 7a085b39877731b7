/*  script.h - reading the message scripts of the stateful fuzz targets
    (fuzz_broker, fuzz_worker, fuzz_client): a frame is a u16 big-endian
    length, then its bytes; an input that ends early ends the frame there. */
#ifndef MP_FUZZ_SCRIPT_H_INCLUDED
#define MP_FUZZ_SCRIPT_H_INCLUDED

#include <stdint.h>
#include <string.h>
#include <zmq.h>

/* The next frame's length (fewer than two bytes left: what there is). */
static inline size_t take_len(const uint8_t **p, const uint8_t *end)
{
    size_t n = 0;
    for (int i = 0; i < 2 && *p < end; i++)
        n = n << 8 | *(*p)++;
    return n;
}

/* A frame of the next n bytes (fewer when the input ends). */
static inline void take_frame(const uint8_t **p, const uint8_t *end, size_t n, zmq_msg_t *f)
{
    if (n > (size_t)(end - *p))
        n = (size_t)(end - *p);
    zmq_msg_init_size(f, n);
    if (n)
        memcpy(zmq_msg_data(f), *p, n);
    *p += n;
}

#endif
