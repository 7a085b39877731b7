/*  obj.c - mp_obj_t and its msgpack codec.

    Encoding goes through msgpack-c's packer, writing into mp__buf_t so small
    values are encoded without touching the heap. Decoding is our own
    single-pass reader rather than msgpack_unpack(): the input is untrusted
    (queues shared with other processes, later the network), and a reader
    that checks every declared length against the bytes actually present
    cannot be made to allocate more than O(input) memory (msgpack-c issue
    #1013: a 5-byte array header declaring 2^32 items). A container of n
    items needs at least n (array) or 2n (map) more bytes, so a check before
    each allocation bounds memory by the input size times a constant.
*/
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "base/base.h"
#include "codec/buf.h"
#include "mp/error.h"
#include "mp/obj.h"

struct mp_obj {
    mp_obj_type_t type;
    int8_t ext_type; /* EXT: its type code (its bytes in v.bytes) */
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double f;
        struct {
            char *data; /* STR: NUL-terminated; BIN, EXT too */
            size_t size;
        } bytes;
        struct {
            mp_obj_t **items; /* MAP: key, value, key, value ... */
            size_t len;       /* items used */
            size_t cap;
        } seq;
    } v;
};

static mp_obj_t *obj_alloc(mp_obj_type_t type)
{
    mp_obj_t *o = calloc(1, sizeof *o);
    if (o)
        o->type = type;
    return o;
}

mp_obj_t *mp_obj_new_nil(void)
{
    return obj_alloc(MP_OBJ_NIL);
}

mp_obj_t *mp_obj_new_bool(bool value)
{
    mp_obj_t *o = obj_alloc(MP_OBJ_BOOL);
    if (o)
        o->v.b = value;
    return o;
}

mp_obj_t *mp_obj_new_int(int64_t value)
{
    mp_obj_t *o = obj_alloc(MP_OBJ_INT);
    if (o)
        o->v.i = value;
    return o;
}

mp_obj_t *mp_obj_new_uint(uint64_t value)
{
    if (value <= INT64_MAX)
        return mp_obj_new_int((int64_t)value);
    mp_obj_t *o = obj_alloc(MP_OBJ_UINT);
    if (o)
        o->v.u = value;
    return o;
}

mp_obj_t *mp_obj_new_float(double value)
{
    mp_obj_t *o = obj_alloc(MP_OBJ_FLOAT);
    if (o)
        o->v.f = value;
    return o;
}

static mp_obj_t *new_bytes(mp_obj_type_t type, const void *data, size_t size)
{
    mp_obj_t *o = obj_alloc(type);
    if (!o)
        return NULL;
    o->v.bytes.data = malloc(size + 1);
    if (!o->v.bytes.data) {
        free(o);
        return NULL;
    }
    if (size)
        memcpy(o->v.bytes.data, data, size);
    o->v.bytes.data[size] = '\0';
    o->v.bytes.size = size;
    return o;
}

mp_obj_t *mp_obj_new_str(const char *nul_terminated)
{
    if (!nul_terminated)
        return NULL;
    return new_bytes(MP_OBJ_STR, nul_terminated, strlen(nul_terminated));
}

mp_obj_t *mp_obj_new_strn(const char *data, size_t size)
{
    return new_bytes(MP_OBJ_STR, data, size);
}

mp_obj_t *mp_obj_new_bin(const void *data, size_t size)
{
    return new_bytes(MP_OBJ_BIN, data, size);
}

mp_obj_t *mp_obj_new_ext(int8_t type, const void *data, size_t size)
{
    if ((!data && size) || size > UINT32_MAX)
        return NULL;
    mp_obj_t *o = new_bytes(MP_OBJ_EXT, data, size);
    if (o)
        o->ext_type = type;
    return o;
}

mp_obj_t *mp_obj_new_array(void)
{
    return obj_alloc(MP_OBJ_ARRAY);
}

mp_obj_t *mp_obj_new_map(void)
{
    return obj_alloc(MP_OBJ_MAP);
}

void mp_obj_destroy(mp_obj_t **o_p)
{
    if (!o_p || !*o_p)
        return;
    mp_obj_t *o = *o_p;
    *o_p = NULL;
    switch (o->type) {
    case MP_OBJ_STR:
    case MP_OBJ_BIN:
    case MP_OBJ_EXT:
        free(o->v.bytes.data);
        break;
    case MP_OBJ_ARRAY:
    case MP_OBJ_MAP:
        for (size_t i = 0; i < o->v.seq.len; i++)
            mp_obj_destroy(&o->v.seq.items[i]);
        free(o->v.seq.items);
        break;
    default:
        break;
    }
    free(o);
}

static int seq_reserve(mp_obj_t *o, size_t extra)
{
    size_t need = o->v.seq.len + extra;
    if (need <= o->v.seq.cap)
        return 0;
    size_t cap = o->v.seq.cap ? o->v.seq.cap * 2 : 4;
    while (cap < need)
        cap *= 2;
    mp_obj_t **items = realloc(o->v.seq.items, cap * sizeof *items);
    if (!items)
        return MP_ENOMEM;
    o->v.seq.items = items;
    o->v.seq.cap = cap;
    return 0;
}

int mp_obj_array_add(mp_obj_t *array, mp_obj_t *item)
{
    if (!array || !item || array->type != MP_OBJ_ARRAY) {
        mp_obj_destroy(&item);
        return MP_EINVAL;
    }
    if (seq_reserve(array, 1)) {
        mp_obj_destroy(&item);
        return MP_ENOMEM;
    }
    array->v.seq.items[array->v.seq.len++] = item;
    return 0;
}

int mp_obj_map_add(mp_obj_t *map, mp_obj_t *key, mp_obj_t *value)
{
    if (!map || !key || !value || map->type != MP_OBJ_MAP) {
        mp_obj_destroy(&key);
        mp_obj_destroy(&value);
        return MP_EINVAL;
    }
    if (seq_reserve(map, 2)) {
        mp_obj_destroy(&key);
        mp_obj_destroy(&value);
        return MP_ENOMEM;
    }
    map->v.seq.items[map->v.seq.len++] = key;
    map->v.seq.items[map->v.seq.len++] = value;
    return 0;
}

mp_obj_t *mp_obj_dup(const mp_obj_t *o)
{
    if (!o)
        return NULL;
    switch (o->type) {
    case MP_OBJ_STR:
    case MP_OBJ_BIN:
        return new_bytes(o->type, o->v.bytes.data, o->v.bytes.size);
    case MP_OBJ_EXT:
        return mp_obj_new_ext(o->ext_type, o->v.bytes.data, o->v.bytes.size);
    case MP_OBJ_ARRAY:
    case MP_OBJ_MAP: {
        mp_obj_t *copy = obj_alloc(o->type);
        if (!copy || seq_reserve(copy, o->v.seq.len)) {
            mp_obj_destroy(&copy);
            return NULL;
        }
        for (size_t i = 0; i < o->v.seq.len; i++) {
            copy->v.seq.items[i] = mp_obj_dup(o->v.seq.items[i]);
            if (!copy->v.seq.items[i]) {
                mp_obj_destroy(&copy);
                return NULL;
            }
            copy->v.seq.len++;
        }
        return copy;
    }
    default: {
        mp_obj_t *copy = obj_alloc(o->type);
        if (copy)
            copy->v = o->v;
        return copy;
    }
    }
}

mp_obj_type_t mp_obj_type(const mp_obj_t *o)
{
    return o ? o->type : MP_OBJ_NIL;
}

bool mp_obj_bool(const mp_obj_t *o)
{
    return o && o->type == MP_OBJ_BOOL && o->v.b;
}

int64_t mp_obj_int(const mp_obj_t *o)
{
    if (!o)
        return 0;
    if (o->type == MP_OBJ_INT)
        return o->v.i;
    if (o->type == MP_OBJ_UINT)
        return (int64_t)o->v.u;
    return 0;
}

uint64_t mp_obj_uint(const mp_obj_t *o)
{
    if (!o)
        return 0;
    if (o->type == MP_OBJ_UINT)
        return o->v.u;
    if (o->type == MP_OBJ_INT)
        return (uint64_t)o->v.i;
    return 0;
}

double mp_obj_float(const mp_obj_t *o)
{
    if (!o)
        return 0.0;
    switch (o->type) {
    case MP_OBJ_FLOAT:
        return o->v.f;
    case MP_OBJ_INT:
        return (double)o->v.i;
    case MP_OBJ_UINT:
        return (double)o->v.u;
    default:
        return 0.0;
    }
}

const char *mp_obj_str(const mp_obj_t *o, size_t *size_p)
{
    if (!o || o->type != MP_OBJ_STR)
        return NULL;
    if (size_p)
        *size_p = o->v.bytes.size;
    return o->v.bytes.data;
}

const void *mp_obj_bin(const mp_obj_t *o, size_t *size_p)
{
    if (!o || (o->type != MP_OBJ_BIN && o->type != MP_OBJ_STR))
        return NULL;
    if (size_p)
        *size_p = o->v.bytes.size;
    return o->v.bytes.data;
}

const void *mp_obj_ext(const mp_obj_t *o, int8_t *type_p, size_t *size_p)
{
    if (!o || o->type != MP_OBJ_EXT)
        return NULL;
    if (type_p)
        *type_p = o->ext_type;
    if (size_p)
        *size_p = o->v.bytes.size;
    return o->v.bytes.data;
}

size_t mp_obj_len(const mp_obj_t *o)
{
    if (!o)
        return 0;
    switch (o->type) {
    case MP_OBJ_ARRAY:
        return o->v.seq.len;
    case MP_OBJ_MAP:
        return o->v.seq.len / 2;
    case MP_OBJ_STR:
    case MP_OBJ_BIN:
    case MP_OBJ_EXT:
        return o->v.bytes.size;
    default:
        return 0;
    }
}

mp_obj_t *mp_obj_array_at(const mp_obj_t *array, size_t index)
{
    if (!array || array->type != MP_OBJ_ARRAY || index >= array->v.seq.len)
        return NULL;
    return array->v.seq.items[index];
}

mp_obj_t *mp_obj_map_key_at(const mp_obj_t *map, size_t index)
{
    if (!map || map->type != MP_OBJ_MAP || index >= map->v.seq.len / 2)
        return NULL;
    return map->v.seq.items[2 * index];
}

mp_obj_t *mp_obj_map_value_at(const mp_obj_t *map, size_t index)
{
    if (!map || map->type != MP_OBJ_MAP || index >= map->v.seq.len / 2)
        return NULL;
    return map->v.seq.items[2 * index + 1];
}

mp_obj_t *mp_obj_map_get(const mp_obj_t *map, const char *key)
{
    if (!map || map->type != MP_OBJ_MAP || !key)
        return NULL;
    size_t key_size = strlen(key);
    for (size_t i = 0; i + 1 < map->v.seq.len; i += 2) {
        const mp_obj_t *k = map->v.seq.items[i];
        if (k->type == MP_OBJ_STR && k->v.bytes.size == key_size &&
            memcmp(k->v.bytes.data, key, key_size) == 0)
            return map->v.seq.items[i + 1];
    }
    return NULL;
}

bool mp_obj_equal(const mp_obj_t *a, const mp_obj_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MP_OBJ_NIL:
        return true;
    case MP_OBJ_BOOL:
        return a->v.b == b->v.b;
    case MP_OBJ_INT:
        return a->v.i == b->v.i;
    case MP_OBJ_UINT:
        return a->v.u == b->v.u;
    case MP_OBJ_FLOAT:
        /* bitwise: NaN equals itself, -0.0 differs from 0.0 (a round trip
           must preserve both) */
        return memcmp(&a->v.f, &b->v.f, sizeof(double)) == 0;
    case MP_OBJ_EXT:
        if (a->ext_type != b->ext_type)
            return false;
        /* fall through */
    case MP_OBJ_STR:
    case MP_OBJ_BIN:
        return a->v.bytes.size == b->v.bytes.size &&
               memcmp(a->v.bytes.data, b->v.bytes.data, a->v.bytes.size) == 0;
    case MP_OBJ_ARRAY:
    case MP_OBJ_MAP:
        if (a->v.seq.len != b->v.seq.len)
            return false;
        for (size_t i = 0; i < a->v.seq.len; i++)
            if (!mp_obj_equal(a->v.seq.items[i], b->v.seq.items[i]))
                return false;
        return true;
    }
    return false;
}

/* ---- encoding ------------------------------------------------------------ */

void mp__buf_init(mp__buf_t *b, char *storage, size_t cap)
{
    b->data = storage;
    b->size = 0;
    b->cap = storage ? cap : 0;
    b->owned = false;
}

int mp__buf_reserve(mp__buf_t *b, size_t size)
{
    if (size > b->cap - b->size) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap - b->size < size)
            cap *= 2;
        char *grown = b->owned ? realloc(b->data, cap) : malloc(cap);
        if (!grown)
            return MP_ENOMEM;
        if (!b->owned && b->size)
            memcpy(grown, b->data, b->size);
        b->data = grown;
        b->cap = cap;
        b->owned = true;
    }
    return 0;
}

int mp__buf_append(mp__buf_t *b, const void *data, size_t size)
{
    if (mp__buf_reserve(b, size))
        return MP_ENOMEM;
    if (size)
        memcpy(b->data + b->size, data, size);
    b->size += size;
    return 0;
}

void mp__buf_release(mp__buf_t *b)
{
    if (b->owned)
        free(b->data);
    mp__buf_init(b, NULL, 0);
}

static int buf_write(void *data, const char *buf, size_t len)
{
    return mp__buf_append(data, buf, len) ? -1 : 0;
}

static int pack(msgpack_packer *pk, const mp_obj_t *o, int depth)
{
    if (depth > MP_OBJ_MAX_DEPTH)
        return MP_EINVAL;
    int rc = 0;
    switch (o->type) {
    case MP_OBJ_NIL:
        rc = msgpack_pack_nil(pk);
        break;
    case MP_OBJ_BOOL:
        rc = o->v.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case MP_OBJ_INT:
        rc = msgpack_pack_int64(pk, o->v.i);
        break;
    case MP_OBJ_UINT:
        rc = msgpack_pack_uint64(pk, o->v.u);
        break;
    case MP_OBJ_FLOAT:
        rc = msgpack_pack_double(pk, o->v.f);
        break;
    case MP_OBJ_STR:
        if (o->v.bytes.size > UINT32_MAX)
            return MP_EINVAL;
        rc = msgpack_pack_str(pk, o->v.bytes.size);
        if (!rc)
            rc = msgpack_pack_str_body(pk, o->v.bytes.data, o->v.bytes.size);
        break;
    case MP_OBJ_BIN:
        if (o->v.bytes.size > UINT32_MAX)
            return MP_EINVAL;
        rc = msgpack_pack_bin(pk, o->v.bytes.size);
        if (!rc)
            rc = msgpack_pack_bin_body(pk, o->v.bytes.data, o->v.bytes.size);
        break;
    case MP_OBJ_EXT:
        rc = msgpack_pack_ext(pk, o->v.bytes.size, o->ext_type);
        if (!rc)
            rc = msgpack_pack_ext_body(pk, o->v.bytes.data, o->v.bytes.size);
        break;
    case MP_OBJ_ARRAY:
    case MP_OBJ_MAP:
        rc = o->type == MP_OBJ_ARRAY ? msgpack_pack_array(pk, o->v.seq.len)
                                     : msgpack_pack_map(pk, o->v.seq.len / 2);
        for (size_t i = 0; !rc && i < o->v.seq.len; i++) {
            int sub = pack(pk, o->v.seq.items[i], depth + 1);
            if (sub)
                return sub;
        }
        break;
    }
    return rc ? MP_ENOMEM : 0;
}

int mp__obj_pack_into(const mp_obj_t *o, mp__buf_t *b)
{
    if (!o || !b)
        return MP_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, buf_write);
    return pack(&pk, o, 0);
}

int mp_obj_pack(const mp_obj_t *o, char **data_p, size_t *size_p)
{
    if (!data_p || !size_p)
        return MP_EINVAL;
    mp__buf_t b;
    mp__buf_init(&b, NULL, 0);
    int rc = mp__obj_pack_into(o, &b);
    if (rc) {
        mp__buf_release(&b);
        return rc;
    }
    *data_p = b.data;
    *size_p = b.size;
    return 0;
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} reader_t;

static bool need(const reader_t *r, size_t n)
{
    return (size_t)(r->end - r->p) >= n;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads an n-byte big-endian length or value. */
static int read_be(reader_t *r, int n, uint64_t *out)
{
    if (!need(r, n))
        return MP_EBADMSG;
    *out = be(r->p, n);
    r->p += n;
    return 0;
}

static int unpack(reader_t *r, int depth, mp_obj_t **out);

/* An extension value of size bytes after its type code. */
static int unpack_ext(reader_t *r, uint64_t size, mp_obj_t **out)
{
    if (!need(r, 1 + size))
        return MP_EBADMSG;
    *out = mp_obj_new_ext((int8_t)r->p[0], r->p + 1, size);
    if (!*out)
        return MP_ENOMEM;
    r->p += 1 + size;
    return 0;
}

static int unpack_bytes(reader_t *r, mp_obj_type_t type, uint64_t size, mp_obj_t **out)
{
    if (!need(r, size))
        return MP_EBADMSG;
    *out = new_bytes(type, r->p, size);
    if (!*out)
        return MP_ENOMEM;
    r->p += size;
    return 0;
}

static int unpack_seq(reader_t *r, mp_obj_type_t type, uint64_t count, int depth, mp_obj_t **out)
{
    uint64_t items = type == MP_OBJ_MAP ? count * 2 : count;
    /* every item takes at least one byte: reject lies before allocating */
    if (count > (uint64_t)(r->end - r->p) || !need(r, items))
        return MP_EBADMSG;
    mp_obj_t *o = obj_alloc(type);
    if (!o || seq_reserve(o, items)) {
        mp_obj_destroy(&o);
        return MP_ENOMEM;
    }
    for (uint64_t i = 0; i < items; i++) {
        int rc = unpack(r, depth + 1, &o->v.seq.items[i]);
        if (rc) {
            mp_obj_destroy(&o);
            return rc;
        }
        o->v.seq.len++;
    }
    *out = o;
    return 0;
}

static int unpack(reader_t *r, int depth, mp_obj_t **out)
{
    if (depth > MP_OBJ_MAX_DEPTH || !need(r, 1))
        return MP_EBADMSG;
    uint8_t tag = *r->p++;
    uint64_t n = 0;
    int rc;

    if (tag <= 0x7f || tag >= 0xe0) {
        *out = mp_obj_new_int((int8_t)tag);
        return *out ? 0 : MP_ENOMEM;
    }
    if ((tag & 0xe0) == 0xa0)
        return unpack_bytes(r, MP_OBJ_STR, tag & 0x1f, out);
    if ((tag & 0xf0) == 0x90)
        return unpack_seq(r, MP_OBJ_ARRAY, tag & 0x0f, depth, out);
    if ((tag & 0xf0) == 0x80)
        return unpack_seq(r, MP_OBJ_MAP, tag & 0x0f, depth, out);

    switch (tag) {
    case 0xc0:
        *out = mp_obj_new_nil();
        break;
    case 0xc2:
    case 0xc3:
        *out = mp_obj_new_bool(tag == 0xc3);
        break;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if ((rc = read_be(r, 1 << (tag - 0xcc), &n)))
            return rc;
        *out = mp_obj_new_uint(n);
        break;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        int width = 1 << (tag - 0xd0);
        if ((rc = read_be(r, width, &n)))
            return rc;
        int64_t v;
        if (width == 8)
            v = (int64_t)n;
        else /* sign-extend */
            v = (int64_t)(n << (64 - 8 * width)) >> (64 - 8 * width);
        *out = mp_obj_new_int(v);
        break;
    }
    case 0xca: {
        if ((rc = read_be(r, 4, &n)))
            return rc;
        uint32_t bits = (uint32_t)n;
        float f;
        memcpy(&f, &bits, sizeof f);
        *out = mp_obj_new_float(f);
        break;
    }
    case 0xcb: {
        if ((rc = read_be(r, 8, &n)))
            return rc;
        double d;
        memcpy(&d, &n, sizeof d);
        *out = mp_obj_new_float(d);
        break;
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
        if ((rc = read_be(r, 1 << (tag - 0xd9), &n)))
            return rc;
        return unpack_bytes(r, MP_OBJ_STR, n, out);
    case 0xc4:
    case 0xc5:
    case 0xc6:
        if ((rc = read_be(r, 1 << (tag - 0xc4), &n)))
            return rc;
        return unpack_bytes(r, MP_OBJ_BIN, n, out);
    case 0xdc:
    case 0xdd:
        if ((rc = read_be(r, tag == 0xdc ? 2 : 4, &n)))
            return rc;
        return unpack_seq(r, MP_OBJ_ARRAY, n, depth, out);
    case 0xde:
    case 0xdf:
        if ((rc = read_be(r, tag == 0xde ? 2 : 4, &n)))
            return rc;
        return unpack_seq(r, MP_OBJ_MAP, n, depth, out);
    case 0xd4: /* fixext 1, 2, 4, 8, 16 */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return unpack_ext(r, 1u << (tag - 0xd4), out);
    case 0xc7: /* ext 8, 16, 32 */
    case 0xc8:
    case 0xc9:
        if ((rc = read_be(r, 1 << (tag - 0xc7), &n)))
            return rc;
        return unpack_ext(r, n, out);
    default: /* 0xc1: never used */
        return MP_EBADMSG;
    }
    return *out ? 0 : MP_ENOMEM;
}

int mp_obj_unpack(const void *data, size_t size, mp_obj_t **o_p)
{
    if (!o_p || (!data && size))
        return MP_EINVAL;
    reader_t r = {data, (const uint8_t *)data + size};
    mp_obj_t *o = NULL;
    int rc = unpack(&r, 0, &o);
    if (rc == 0 && r.p != r.end) {
        mp_obj_destroy(&o);
        rc = MP_EBADMSG;
    }
    if (rc == 0)
        *o_p = o;
    return rc;
}
