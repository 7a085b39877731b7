/*  wire.h - msgpack on the task path, and the MPP/1 message constants.

    The task path encodes and decodes millions of small values per second
    (a map of ints is bounded by this code, not by messages), so it does not
    build mp_obj_t trees: values are written straight into an mp__buf_t and
    read in place through a bounds-checked cursor. mp_obj_t stays the way to
    handle arbitrary values; this is the fast lane beside it.

    Every reader function checks its bounds against the bytes present and
    returns MP_EBADMSG, never reads past the end, and never allocates: the
    input is untrusted (it came from a peer). Depth is capped for skip.

    Not installed. Thread-safety: no shared state. Fork/signals: n/a.

    The codec layer (libmp/codec/): mp_obj_t and its msgpack codec (obj.c),
    the fast in-place readers and writers (wire.c, this header), mp_items_t
    (items.c) and whole MPP/1 messages over libzmq (mpp.c). Everything that
    turns bytes from a peer into values goes through here, bounds-checked.
    Uses only libmp/base/; msgpack-c's names stay inside obj.c.
*/
#ifndef MP_WIRE_H_INCLUDED
#define MP_WIRE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "codec/buf.h"
#include "mp/error.h"
#include "mp/obj.h"

/* ---- MPP/1 constants (docs/PROTOCOL.md section 3) ----------------------- */

#define MPP_SIG_CLIENT "MPC01"
#define MPP_SIG_WORKER "MPW01"
#define MPP_SIG_SIZE 5

enum {
    MPP_C_HELLO = 0x01,
    MPP_C_SUBMIT = 0x02,
    MPP_C_CANCEL = 0x03,
    MPP_C_STATUS = 0x04,
    MPP_C_HEARTBEAT = 0x05,
    MPP_C_DISCONNECT = 0x06,
    MPP_C_DRAIN = 0x07, /* PROTOCOL.md 4.1 */
    MPP_C_FETCH = 0x08, /* 7.3: durable jobs */
    MPP_C_FORGET = 0x09,
    MPP_B_WELCOME = 0x81,
    MPP_B_RESULT = 0x82,
    MPP_B_FAILED = 0x83,
    MPP_B_STATUS = 0x84,
    MPP_B_HEARTBEAT = 0x85,
    MPP_B_DISCONNECT = 0x86,
    MPP_B_STORED = 0x87, /* 7.3 */
    MPP_B_FETCHED = 0x88,
    MPP_B_FETCHED_END = 0x89,
    MPP_B_FORGOTTEN = 0x8a,
};

enum {
    MPP_W_READY = 0x01,
    MPP_W_RESULT = 0x02,
    MPP_W_LOST = 0x03,
    MPP_W_HEARTBEAT = 0x04,
    MPP_W_DISCONNECT = 0x05,
    MPP_W_RETURN = 0x06,
    MPP_W_PARTIAL = 0x07, /* PROTOCOL.md 4.4 */
    MPP_B_TASK = 0x81,
    MPP_B_WHEARTBEAT = 0x82,
    MPP_B_WDISCONNECT = 0x83,
    MPP_B_WCANCEL = 0x84,
};

enum { MPP_MODE_MAP = 0, MPP_MODE_STAR = 1 };
enum {
    MPP_KIND_TASK = 0,
    MPP_KIND_WORKER_LOST = 1,
    MPP_KIND_UNKNOWN = 2,
    MPP_KIND_BADARGS = 3,
    MPP_KIND_TIMED_OUT = 4, /* over its time limit: killed (PROTOCOL.md 7.2) */
    MPP_KIND_CANCELLED = 5,
};

#define MPP_MAX_FRAMES 5
#define MPP_MAX_HEADER 4096
#define MPP_MAX_READY_HEADER 65536
#define MPP_MAX_NAME 255
#define MPP_MAX_NAMES 4096
#define MPP_MAX_COUNT 1048576u
#define MPP_DEFAULT_MAX_MSG (64u << 20)
#define MPP_DEFAULT_MAX_QUEUED 4096 /* chunks per client (WELCOME max-queued) */
#define MPP_DEFAULT_HEARTBEAT_MS 1000
#define MPP_LIVENESS 3
#define MPP_MAX_ATTEMPTS 3

/* Kind of an error entry -> the libmp code a caller sees. */
int mp__kind_code(unsigned kind);

/* ---- writer ---------------------------------------------------------------- */

static inline int mp__w_raw(mp__buf_t *b, const void *p, size_t n)
{
    if (b->cap - b->size < n && mp__buf_reserve(b, n))
        return MP_ENOMEM;
    memcpy(b->data + b->size, p, n);
    b->size += n;
    return 0;
}

static inline int mp__w_tagged(mp__buf_t *b, uint8_t tag, uint64_t v, int width)
{
    uint8_t t[9];
    t[0] = tag;
    for (int i = 0; i < width; i++)
        t[1 + i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    return mp__w_raw(b, t, (size_t)width + 1);
}

static inline int mp__w_uint(mp__buf_t *b, uint64_t v)
{
    if (v <= 0x7f) {
        uint8_t t = (uint8_t)v;
        return mp__w_raw(b, &t, 1);
    }
    if (v <= 0xff)
        return mp__w_tagged(b, 0xcc, v, 1);
    if (v <= 0xffff)
        return mp__w_tagged(b, 0xcd, v, 2);
    if (v <= 0xffffffffu)
        return mp__w_tagged(b, 0xce, v, 4);
    return mp__w_tagged(b, 0xcf, v, 8);
}

static inline int mp__w_int(mp__buf_t *b, int64_t v)
{
    if (v >= 0)
        return mp__w_uint(b, (uint64_t)v);
    if (v >= -32) {
        uint8_t t = (uint8_t)(int8_t)v;
        return mp__w_raw(b, &t, 1);
    }
    if (v >= INT8_MIN)
        return mp__w_tagged(b, 0xd0, (uint64_t)v, 1);
    if (v >= INT16_MIN)
        return mp__w_tagged(b, 0xd1, (uint64_t)v, 2);
    if (v >= INT32_MIN)
        return mp__w_tagged(b, 0xd2, (uint64_t)v, 4);
    return mp__w_tagged(b, 0xd3, (uint64_t)v, 8);
}

static inline int mp__w_nil(mp__buf_t *b)
{
    uint8_t t = 0xc0;
    return mp__w_raw(b, &t, 1);
}

static inline int mp__w_bool(mp__buf_t *b, bool v)
{
    uint8_t t = v ? 0xc3 : 0xc2;
    return mp__w_raw(b, &t, 1);
}

static inline int mp__w_float(mp__buf_t *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return mp__w_tagged(b, 0xcb, bits, 8);
}

static inline int mp__w_header(mp__buf_t *b, uint8_t fix, uint8_t tag8, uint8_t tag16,
                               uint8_t tag32, size_t n, size_t fixmax)
{
    if (n <= fixmax) {
        uint8_t t = (uint8_t)(fix | n);
        return mp__w_raw(b, &t, 1);
    }
    if (tag8 && n <= 0xff)
        return mp__w_tagged(b, tag8, n, 1);
    if (n <= 0xffff)
        return mp__w_tagged(b, tag16, n, 2);
    return mp__w_tagged(b, tag32, n, 4);
}

static inline int mp__w_array(mp__buf_t *b, size_t n)
{
    return mp__w_header(b, 0x90, 0, 0xdc, 0xdd, n, 15);
}

static inline int mp__w_map(mp__buf_t *b, size_t n)
{
    return mp__w_header(b, 0x80, 0, 0xde, 0xdf, n, 15);
}

static inline int mp__w_strn(mp__buf_t *b, const char *s, size_t n)
{
    int rc = mp__w_header(b, 0xa0, 0xd9, 0xda, 0xdb, n, 31);
    return rc ? rc : mp__w_raw(b, s, n);
}

static inline int mp__w_str(mp__buf_t *b, const char *s)
{
    return mp__w_strn(b, s, strlen(s));
}

static inline int mp__w_bin(mp__buf_t *b, const void *p, size_t n)
{
    int rc = n <= 0xff     ? mp__w_tagged(b, 0xc4, n, 1)
             : n <= 0xffff ? mp__w_tagged(b, 0xc5, n, 2)
                           : mp__w_tagged(b, 0xc6, n, 4);
    return rc ? rc : mp__w_raw(b, p, n);
}

/* ---- ints without a buffer: the hot loops of maps --------------------------- */

static inline uint64_t mp__be(uint64_t v, int width)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return width == 2   ? __builtin_bswap16((uint16_t)v)
           : width == 4 ? __builtin_bswap32((uint32_t)v)
                        : __builtin_bswap64(v);
#else
    (void)width;
    return v;
#endif
}

static inline size_t mp__put_tagged(uint8_t *p, uint8_t tag, uint64_t v, int width)
{
    p[0] = tag;
    if (width == 1) {
        p[1] = (uint8_t)v;
    } else if (width == 2) {
        uint16_t b = (uint16_t)mp__be(v, 2);
        memcpy(p + 1, &b, 2);
    } else if (width == 4) {
        uint32_t b = (uint32_t)mp__be(v, 4);
        memcpy(p + 1, &b, 4);
    } else {
        uint64_t b = mp__be(v, 8);
        memcpy(p + 1, &b, 8);
    }
    return (size_t)width + 1;
}

/* Writes v at p (room for 9 octets) exactly as mp__w_int does; returns how
   many octets. */
static inline size_t mp__put_int(uint8_t *p, int64_t v)
{
    if (v >= 0) {
        uint64_t u = (uint64_t)v;
        if (u <= 0x7f) {
            p[0] = (uint8_t)u;
            return 1;
        }
        return u <= 0xff         ? mp__put_tagged(p, 0xcc, u, 1)
               : u <= 0xffff     ? mp__put_tagged(p, 0xcd, u, 2)
               : u <= 0xffffffff ? mp__put_tagged(p, 0xce, u, 4)
                                 : mp__put_tagged(p, 0xcf, u, 8);
    }
    if (v >= -32) {
        p[0] = (uint8_t)(int8_t)v;
        return 1;
    }
    return v >= INT8_MIN    ? mp__put_tagged(p, 0xd0, (uint64_t)v, 1)
           : v >= INT16_MIN ? mp__put_tagged(p, 0xd1, (uint64_t)v, 2)
           : v >= INT32_MIN ? mp__put_tagged(p, 0xd2, (uint64_t)v, 4)
                            : mp__put_tagged(p, 0xd3, (uint64_t)v, 8);
}

static inline uint64_t mp__load_be(const uint8_t *p, int width)
{
    if (width == 1)
        return p[1];
    if (width == 2) {
        uint16_t b;
        memcpy(&b, p + 1, 2);
        return mp__be(b, 2);
    }
    if (width == 4) {
        uint32_t b;
        memcpy(&b, p + 1, 4);
        return mp__be(b, 4);
    }
    uint64_t b;
    memcpy(&b, p + 1, 8);
    return mp__be(b, 8);
}

/* Reads an int of n octets or fewer at p as mp__rd_int would; returns its
   length, or 0 when there is none that fits int64 there (the caller asks
   mp__rd_int for the error). Lengths come from a switch, not arithmetic on
   the tag: the branch predictor then knows where the next value starts
   before the tag is loaded, and a loop over values does not wait on it. */
static inline size_t mp__get_int(const uint8_t *p, size_t n, int64_t *v)
{
    if (n == 0)
        return 0;
    uint8_t t = p[0];
    if (t <= 0x7f) {
        *v = t;
        return 1;
    }
    if (t >= 0xe0) {
        *v = (int8_t)t;
        return 1;
    }
    switch (t) {
    case 0xcc:
        return n < 2 ? 0 : (*v = (int64_t)mp__load_be(p, 1), 2);
    case 0xcd:
        return n < 3 ? 0 : (*v = (int64_t)mp__load_be(p, 2), 3);
    case 0xce:
        return n < 5 ? 0 : (*v = (int64_t)mp__load_be(p, 4), 5);
    case 0xcf: {
        if (n < 9)
            return 0;
        uint64_t u = mp__load_be(p, 8);
        if (u > (uint64_t)INT64_MAX)
            return 0;
        *v = (int64_t)u;
        return 9;
    }
    case 0xd0:
        return n < 2 ? 0 : (*v = (int8_t)mp__load_be(p, 1), 2);
    case 0xd1:
        return n < 3 ? 0 : (*v = (int16_t)mp__load_be(p, 2), 3);
    case 0xd2:
        return n < 5 ? 0 : (*v = (int32_t)mp__load_be(p, 4), 5);
    case 0xd3:
        return n < 9 ? 0 : (*v = (int64_t)mp__load_be(p, 8), 9);
    default:
        return 0;
    }
}

/* Length of a value from its first octet when that decides it (fixints,
   nil, bools, ints, floats); 0 for everything else. A switch, as in
   mp__get_int. */
static inline size_t mp__scalar_len(uint8_t t)
{
    if (t <= 0x7f || t >= 0xe0)
        return 1;
    switch (t) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
        return 1;
    case 0xcc:
    case 0xd0:
        return 2;
    case 0xcd:
    case 0xd1:
        return 3;
    case 0xca:
    case 0xce:
    case 0xd2:
        return 5;
    case 0xcb:
    case 0xcf:
    case 0xd3:
        return 9;
    default:
        return 0;
    }
}

/* ---- reader ---------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} mp__rd_t;

static inline void mp__rd_init(mp__rd_t *r, const void *data, size_t size)
{
    r->p = data;
    r->end = r->p + size;
}

static inline size_t mp__rd_left(const mp__rd_t *r)
{
    return (size_t)(r->end - r->p);
}

/* Type of the next value without consuming it; MP_EBADMSG as a negative int
   when nothing (valid) is there. */
int mp__rd_peek(const mp__rd_t *r);

int mp__rd_nil(mp__rd_t *r);
int mp__rd_bool(mp__rd_t *r, bool *v);
int mp__rd_int(mp__rd_t *r, int64_t *v); /* INT, or UINT that fits */
int mp__rd_uint(mp__rd_t *r, uint64_t *v);
int mp__rd_float(mp__rd_t *r, double *v); /* FLOAT, INT or UINT */
/* STR (BIN too when any_bytes): pointer into the input, not NUL-terminated. */
int mp__rd_str(mp__rd_t *r, const char **s, size_t *n);
int mp__rd_bin(mp__rd_t *r, const void **p, size_t *n); /* BIN or STR */
/* Array / map header; *n is checked against the bytes left (one byte per item
   at least), so a lying header cannot make a caller allocate. */
int mp__rd_array(mp__rd_t *r, size_t *n);
int mp__rd_map(mp__rd_t *r, size_t *n);
/* Skips one complete value, validating it (depth <= MP_OBJ_MAX_DEPTH). */
int mp__rd_skip(mp__rd_t *r);
/* Decodes one value into a new mp_obj_t (validated as mp_obj_unpack). */
int mp__rd_obj(mp__rd_t *r, mp_obj_t **o_p);

#endif
