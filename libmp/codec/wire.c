/*  wire.c - the bounds-checked msgpack cursor of wire.h.

    Each read looks at one tag byte, checks that the bytes it implies are
    present, and advances. Containers are never materialised: callers walk
    them. mp__rd_skip recurses with a depth cap, so a hostile input of nested
    array headers costs a bounded stack and time proportional to its size.
*/
#include "codec/wire.h"

int mp__kind_code(unsigned kind)
{
    switch (kind) {
    case MPP_KIND_TASK:
        return MP_ETASK;
    case MPP_KIND_WORKER_LOST:
        return MP_EWORKERLOST;
    case MPP_KIND_UNKNOWN:
        return MP_EUNKNOWNTASK;
    case MPP_KIND_BADARGS:
        return MP_EBADARGS;
    case MPP_KIND_TIMED_OUT:
        return MP_ETIMELIMIT;
    case MPP_KIND_CANCELLED:
        return MP_ECANCELLED;
    default:
        return MP_EBADREQUEST;
    }
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads the tag and, for fixed-width payloads, the big-endian value after it.
 *len gets a string/bin/container length. */
static int rd_be(mp__rd_t *r, int width, uint64_t *v)
{
    if (mp__rd_left(r) < (size_t)width)
        return MP_EBADMSG;
    *v = be(r->p, width);
    r->p += width;
    return 0;
}

int mp__rd_peek(const mp__rd_t *r)
{
    if (r->p >= r->end)
        return MP_EBADMSG;
    uint8_t t = *r->p;
    if (t <= 0x7f || t >= 0xe0)
        return MP_OBJ_INT;
    if ((t & 0xe0) == 0xa0)
        return MP_OBJ_STR;
    if ((t & 0xf0) == 0x90)
        return MP_OBJ_ARRAY;
    if ((t & 0xf0) == 0x80)
        return MP_OBJ_MAP;
    switch (t) {
    case 0xc0:
        return MP_OBJ_NIL;
    case 0xc2:
    case 0xc3:
        return MP_OBJ_BOOL;
    case 0xcc:
    case 0xcd:
    case 0xce:
        return MP_OBJ_INT;
    case 0xcf: /* uint64: INT when it fits */
        if (mp__rd_left(r) >= 9 && be(r->p + 1, 8) > (uint64_t)INT64_MAX)
            return MP_OBJ_UINT;
        return MP_OBJ_INT;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        return MP_OBJ_INT;
    case 0xca:
    case 0xcb:
        return MP_OBJ_FLOAT;
    case 0xd9:
    case 0xda:
    case 0xdb:
        return MP_OBJ_STR;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return MP_OBJ_BIN;
    case 0xdc:
    case 0xdd:
        return MP_OBJ_ARRAY;
    case 0xde:
    case 0xdf:
        return MP_OBJ_MAP;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return MP_OBJ_EXT;
    default:
        return MP_EBADMSG;
    }
}

int mp__rd_nil(mp__rd_t *r)
{
    if (r->p >= r->end || *r->p != 0xc0)
        return r->p >= r->end ? MP_EBADMSG : MP_ETYPE;
    r->p++;
    return 0;
}

int mp__rd_bool(mp__rd_t *r, bool *v)
{
    if (r->p >= r->end)
        return MP_EBADMSG;
    if (*r->p != 0xc2 && *r->p != 0xc3)
        return MP_ETYPE;
    *v = *r->p++ == 0xc3;
    return 0;
}

/* Integer of either sign: *neg tells which field holds it. */
static int rd_integer(mp__rd_t *r, bool *neg, int64_t *s, uint64_t *u)
{
    if (r->p >= r->end)
        return MP_EBADMSG;
    uint8_t t = *r->p;
    uint64_t n;
    if (t <= 0x7f) {
        r->p++;
        *neg = false;
        *u = t;
        return 0;
    }
    if (t >= 0xe0) {
        r->p++;
        *neg = true;
        *s = (int8_t)t;
        return 0;
    }
    if (t >= 0xcc && t <= 0xcf) {
        r->p++;
        if (rd_be(r, 1 << (t - 0xcc), &n)) {
            r->p--;
            return MP_EBADMSG;
        }
        *neg = false;
        *u = n;
        return 0;
    }
    if (t >= 0xd0 && t <= 0xd3) {
        int width = 1 << (t - 0xd0);
        r->p++;
        if (rd_be(r, width, &n)) {
            r->p--;
            return MP_EBADMSG;
        }
        int64_t v = width == 8 ? (int64_t)n : (int64_t)(n << (64 - 8 * width)) >> (64 - 8 * width);
        if (v >= 0) {
            *neg = false;
            *u = (uint64_t)v;
        } else {
            *neg = true;
            *s = v;
        }
        return 0;
    }
    return MP_ETYPE;
}

int mp__rd_int(mp__rd_t *r, int64_t *v)
{
    /* fast path: positive fixint, the most common value on the task path */
    if (r->p < r->end && *r->p <= 0x7f) {
        *v = *r->p++;
        return 0;
    }
    bool neg;
    int64_t s;
    uint64_t u;
    const uint8_t *start = r->p;
    int rc = rd_integer(r, &neg, &s, &u);
    if (rc)
        return rc;
    if (!neg && u > (uint64_t)INT64_MAX) {
        r->p = start;
        return MP_ETYPE;
    }
    *v = neg ? s : (int64_t)u;
    return 0;
}

int mp__rd_uint(mp__rd_t *r, uint64_t *v)
{
    bool neg;
    int64_t s;
    uint64_t u;
    const uint8_t *start = r->p;
    int rc = rd_integer(r, &neg, &s, &u);
    if (rc)
        return rc;
    if (neg) {
        r->p = start;
        return MP_ETYPE;
    }
    *v = u;
    return 0;
}

int mp__rd_float(mp__rd_t *r, double *v)
{
    if (r->p >= r->end)
        return MP_EBADMSG;
    uint8_t t = *r->p;
    uint64_t n;
    if (t == 0xcb || t == 0xca) {
        r->p++;
        if (rd_be(r, t == 0xcb ? 8 : 4, &n)) {
            r->p--;
            return MP_EBADMSG;
        }
        if (t == 0xcb) {
            memcpy(v, &n, sizeof *v);
        } else {
            uint32_t bits = (uint32_t)n;
            float f;
            memcpy(&f, &bits, sizeof f);
            *v = f;
        }
        return 0;
    }
    bool neg;
    int64_t s;
    uint64_t u;
    int rc = rd_integer(r, &neg, &s, &u);
    if (rc)
        return rc;
    *v = neg ? (double)s : (double)u;
    return 0;
}

/* Reads a string or bin header (per allow mask) and returns its bytes. */
static int rd_bytes(mp__rd_t *r, bool allow_str, bool allow_bin, const uint8_t **p, size_t *n)
{
    if (r->p >= r->end)
        return MP_EBADMSG;
    const uint8_t *start = r->p;
    uint8_t t = *r->p++;
    uint64_t len;
    int width = 0;
    if (allow_str && (t & 0xe0) == 0xa0) {
        len = t & 0x1f;
    } else if (allow_str && t >= 0xd9 && t <= 0xdb) {
        width = 1 << (t - 0xd9);
    } else if (allow_bin && t >= 0xc4 && t <= 0xc6) {
        width = 1 << (t - 0xc4);
    } else {
        r->p = start;
        return MP_ETYPE;
    }
    if (width && rd_be(r, width, &len)) {
        r->p = start;
        return MP_EBADMSG;
    }
    if (mp__rd_left(r) < len) {
        r->p = start;
        return MP_EBADMSG;
    }
    *p = r->p;
    *n = (size_t)len;
    r->p += len;
    return 0;
}

int mp__rd_str(mp__rd_t *r, const char **s, size_t *n)
{
    const uint8_t *p;
    int rc = rd_bytes(r, true, false, &p, n);
    if (rc == 0)
        *s = (const char *)p;
    return rc;
}

int mp__rd_bin(mp__rd_t *r, const void **p, size_t *n)
{
    const uint8_t *q;
    int rc = rd_bytes(r, true, true, &q, n);
    if (rc == 0)
        *p = q;
    return rc;
}

static int rd_container(mp__rd_t *r, bool map, size_t *n)
{
    if (r->p >= r->end)
        return MP_EBADMSG;
    const uint8_t *start = r->p;
    uint8_t t = *r->p++;
    uint64_t len;
    if ((t & 0xf0) == (map ? 0x80 : 0x90)) {
        len = t & 0x0f;
    } else if (t == (map ? 0xde : 0xdc) || t == (map ? 0xdf : 0xdd)) {
        if (rd_be(r, (t & 1) ? 4 : 2, &len)) {
            r->p = start;
            return MP_EBADMSG;
        }
    } else {
        r->p = start;
        return MP_ETYPE;
    }
    /* every item takes at least one byte (two per map pair) */
    if (len > mp__rd_left(r) / (map ? 2 : 1)) {
        r->p = start;
        return MP_EBADMSG;
    }
    *n = (size_t)len;
    return 0;
}

int mp__rd_array(mp__rd_t *r, size_t *n)
{
    return rd_container(r, false, n);
}

int mp__rd_map(mp__rd_t *r, size_t *n)
{
    return rd_container(r, true, n);
}

static int skip(mp__rd_t *r, int depth)
{
    if (depth > MP_OBJ_MAX_DEPTH)
        return MP_EBADMSG;
    int type = mp__rd_peek(r);
    size_t n;
    int rc;
    switch (type) {
    case MP_OBJ_NIL:
    case MP_OBJ_BOOL:
        r->p++;
        return 0;
    case MP_OBJ_INT:
    case MP_OBJ_UINT: {
        bool neg;
        int64_t s;
        uint64_t u;
        return rd_integer(r, &neg, &s, &u);
    }
    case MP_OBJ_FLOAT: {
        double d;
        return mp__rd_float(r, &d);
    }
    case MP_OBJ_STR:
    case MP_OBJ_BIN: {
        const uint8_t *p;
        return rd_bytes(r, true, true, &p, &n);
    }
    case MP_OBJ_ARRAY:
    case MP_OBJ_MAP:
        if ((rc = rd_container(r, type == MP_OBJ_MAP, &n)))
            return rc;
        if (type == MP_OBJ_MAP)
            n *= 2;
        for (size_t i = 0; i < n; i++)
            if ((rc = skip(r, depth + 1)))
                return rc;
        return 0;
    case MP_OBJ_EXT: {
        uint8_t t = *r->p++;
        uint64_t size;
        if (t >= 0xd4) /* fixext */
            size = 1u << (t - 0xd4);
        else if (rd_be(r, 1 << (t - 0xc7), &size))
            return MP_EBADMSG;
        if (size >= mp__rd_left(r)) /* the type code and size bytes */
            return MP_EBADMSG;
        r->p += 1 + size;
        return 0;
    }
    default:
        return MP_EBADMSG;
    }
}

int mp__rd_skip(mp__rd_t *r)
{
    const uint8_t *start = r->p;
    int rc = skip(r, 0);
    if (rc)
        r->p = start;
    return rc;
}

int mp__rd_obj(mp__rd_t *r, mp_obj_t **o_p)
{
    const uint8_t *start = r->p;
    int rc = mp__rd_skip(r);
    if (rc)
        return rc;
    rc = mp_obj_unpack(start, (size_t)(r->p - start), o_p);
    if (rc)
        r->p = start;
    return rc;
}
