/*  shm_list.c - ShareableList: a fixed-length list of scalars in one
    SharedMemory block (mp/shm_list.h).

    The block (native byte order: every process that maps it runs on this
    machine), all offsets from its start:

        0   magic       8 bytes "MPSLIST" + version byte 1
        8   n           u64, number of items
        16  data_size   u64, bytes of the data area
        24  total       u64, 32 + 16 n + data_size (what the creator sized)
        32  n slots of 16 bytes:
              +0 cap    u32, the item's slot in the data area: a multiple
                        of 8, >= 8; fixed at creation
              +4 len    u32, a str or bytes item's length, <= cap
              +8 tag    u8, the item's type (TAG_*); 7 bytes of padding
        32 + 16 n       the data area: the slots back to back in item
                        order, so item i starts at the sum of the caps
                        before it (8-aligned). An int64 or double is its 8
                        native bytes, a bool one byte 0/1, nil nothing, a
                        str or bytes its len bytes then zeros.

    Invariants: n, data_size, total and the caps never change after
    creation, so an attacher reads and checks them once and from then on
    uses its own copy (offs[]): nothing another process writes later can
    move an access out of the block. tag and len do change (sl[i] = v):
    each access loads them once and checks them against that copy. The
    magic is written last, so an attach racing the creation sees
    MP_EINVAL, never a half-written list.

    Rejected: CPython's own layout (count, offsets, data, 8-byte struct
    formats, transform codes). It has no magic, so a zero-filled block is
    a valid empty list and a non-list cannot be told apart; and it strips
    a str's trailing NULs. Its format string is derived here from the tags
    and caps instead. No lock, as in CPython: writers store data, then
    len, then tag, and a racing reader may pair old and new (in bounds).
*/
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp/error.h"
#include "mp/shm_list.h"

#define MAGIC "MPSLIST\x01"
#define HEADER 32u
#define SLOT 16u
#define ALIGN 8u
/* a str or bytes of this length or more needs a cap above UINT32_MAX */
#define MAX_BYTES ((size_t)UINT32_MAX - 2 * ALIGN + 1)

enum { TAG_NIL = 1, TAG_BOOL, TAG_INT, TAG_FLOAT, TAG_STR, TAG_BIN };

struct mp_shm_list {
    mp_shm_t *shm;
    unsigned char *base;
    size_t n;
    size_t *offs; /* n + 1: item i's slot is data[offs[i] .. offs[i+1]) */
};

typedef struct {
    uint32_t cap, len;
    uint8_t tag, pad[7];
} slot_t;

/* One value as stored: what a write puts in and a read takes out. */
typedef struct {
    uint8_t tag;
    union {
        int64_t i;
        double f;
        bool b;
    } v;
    const void *bytes; /* TAG_STR / TAG_BIN */
    size_t len;
} item_t;

static slot_t *slot(const mp_shm_list_t *l, size_t i)
{
    return (slot_t *)(l->base + HEADER + i * SLOT);
}

static unsigned char *data(const mp_shm_list_t *l, size_t i)
{
    return l->base + HEADER + l->n * SLOT + l->offs[i];
}

static size_t cap_of(const mp_shm_list_t *l, size_t i)
{
    return l->offs[i + 1] - l->offs[i];
}

/* The slot a value gets at creation, as CPython sizes it: 8 for a
   scalar, 8 * (len / 8 + 1) for bytes of len bytes, and for a str the
   same by its characters (CPython's len()), never below its UTF-8 bytes
   rounded up to 8 (where CPython's struct.pack_into silently truncates:
   "\u00e9" * 7 is 7 characters in 14 bytes, given 8). */
static size_t cap_for(const item_t *it)
{
    if (it->tag == TAG_BIN)
        return ALIGN * (it->len / ALIGN + 1);
    if (it->tag != TAG_STR)
        return ALIGN;
    size_t chars = 0; /* code points: the bytes that start one */
    for (size_t i = 0; i < it->len; i++)
        chars += (((const unsigned char *)it->bytes)[i] & 0xC0) != 0x80;
    size_t by_chars = ALIGN * (chars / ALIGN + 1), by_bytes = (it->len + ALIGN - 1) / ALIGN * ALIGN;
    return by_chars > by_bytes ? by_chars : by_bytes;
}

static int from_obj(const mp_obj_t *o, item_t *it)
{
    if (!o)
        return MP_EINVAL;
    memset(it, 0, sizeof *it);
    switch (mp_obj_type(o)) {
    case MP_OBJ_NIL:
        it->tag = TAG_NIL;
        return 0;
    case MP_OBJ_BOOL:
        it->tag = TAG_BOOL;
        it->v.b = mp_obj_bool(o);
        return 0;
    case MP_OBJ_INT:
        it->tag = TAG_INT;
        it->v.i = mp_obj_int(o);
        return 0;
    case MP_OBJ_FLOAT:
        it->tag = TAG_FLOAT;
        it->v.f = mp_obj_float(o);
        return 0;
    case MP_OBJ_STR:
    case MP_OBJ_BIN:
        it->tag = mp_obj_type(o) == MP_OBJ_STR ? TAG_STR : TAG_BIN;
        it->bytes = mp_obj_bin(o, &it->len);
        return it->len >= MAX_BYTES ? MP_E2BIG : 0;
    default: /* UINT (above INT64_MAX), ARRAY, MAP, EXT */
        return MP_ETYPE;
    }
}

static mp_obj_t *to_obj(const item_t *it)
{
    switch (it->tag) {
    case TAG_NIL:
        return mp_obj_new_nil();
    case TAG_BOOL:
        return mp_obj_new_bool(it->v.b);
    case TAG_INT:
        return mp_obj_new_int(it->v.i);
    case TAG_FLOAT:
        return mp_obj_new_float(it->v.f);
    case TAG_STR:
        return mp_obj_new_strn(it->bytes, it->len);
    default:
        return mp_obj_new_bin(it->bytes, it->len);
    }
}

static bool same(const item_t *a, const item_t *b)
{
    if (a->tag != b->tag)
        return false;
    switch (a->tag) {
    case TAG_NIL:
        return true;
    case TAG_BOOL:
        return a->v.b == b->v.b;
    case TAG_INT:
        return a->v.i == b->v.i;
    case TAG_FLOAT: /* bitwise, as mp_obj_equal */
        return memcmp(&a->v.f, &b->v.f, sizeof(double)) == 0;
    default:
        return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
    }
}

/* Python's index: negative from the end. MP_ERANGE outside. */
static int position(const mp_shm_list_t *l, int64_t index, size_t *i_p)
{
    if (!l)
        return MP_EINVAL;
    int64_t n = (int64_t)l->n;
    if (index < 0)
        index += n;
    if (index < 0 || index >= n)
        return MP_ERANGE;
    *i_p = (size_t)index;
    return 0;
}

/* Item i as it is now; str/bytes point into the block. tag and len are
   loaded once, then checked against our own copy of the cap. */
static int read_item(const mp_shm_list_t *l, size_t i, item_t *it)
{
    slot_t *s = slot(l, i);
    uint8_t tag = __atomic_load_n(&s->tag, __ATOMIC_ACQUIRE);
    uint32_t len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
    const unsigned char *d = data(l, i);
    memset(it, 0, sizeof *it);
    it->tag = tag;
    switch (tag) {
    case TAG_NIL:
        return 0;
    case TAG_BOOL:
        it->v.b = d[0] != 0;
        return 0;
    case TAG_INT:
        memcpy(&it->v.i, d, 8);
        return 0;
    case TAG_FLOAT:
        memcpy(&it->v.f, d, 8);
        return 0;
    case TAG_STR:
    case TAG_BIN:
        if (len > cap_of(l, i))
            return MP_EBADMSG;
        it->bytes = d;
        it->len = len;
        return 0;
    default:
        return MP_EBADMSG;
    }
}

/* Stores it in item i (MP_E2BIG when it does not fit: nothing written). */
static int write_item(mp_shm_list_t *l, size_t i, const item_t *it)
{
    size_t cap = cap_of(l, i);
    unsigned char *d = data(l, i);
    unsigned char word[8] = {0};
    switch (it->tag) {
    case TAG_STR:
    case TAG_BIN:
        if (it->len > cap)
            return MP_E2BIG;
        memmove(d, it->bytes, it->len); /* memmove: it may be this list's own item */
        memset(d + it->len, 0, cap - it->len);
        break;
    case TAG_BOOL:
        word[0] = it->v.b;
        memcpy(d, word, 8);
        break;
    case TAG_INT:
        memcpy(d, &it->v.i, 8);
        break;
    case TAG_FLOAT:
        memcpy(d, &it->v.f, 8);
        break;
    default:
        memcpy(d, word, 8);
        break;
    }
    slot_t *s = slot(l, i);
    __atomic_store_n(&s->len, (uint32_t)it->len, __ATOMIC_RELAXED);
    __atomic_store_n(&s->tag, it->tag, __ATOMIC_RELEASE);
    return 0;
}

/* ---- create and attach ---------------------------------------------------------------- */

static mp_shm_list_t *handle(mp_shm_t *shm, size_t n)
{
    mp_shm_list_t *l = calloc(1, sizeof *l);
    if (l)
        l->offs = calloc(n + 1, sizeof *l->offs);
    if (!l || !l->offs) {
        free(l);
        return NULL;
    }
    l->shm = shm;
    l->base = mp_shm_buf(shm);
    l->n = n;
    return l;
}

int mp_shm_list_create(mp_shm_list_t **list_p, const char *name, const mp_obj_t *items,
                       const mp_shm_options_t *options)
{
    if (!list_p || (items && mp_obj_type(items) != MP_OBJ_ARRAY))
        return MP_EINVAL;
    size_t n = items ? mp_obj_len(items) : 0;
    if (n > (SIZE_MAX - HEADER) / SLOT / 2)
        return MP_ENOMEM;
    size_t data_size = 0;
    item_t it;
    for (size_t i = 0; i < n; i++) {
        int rc = from_obj(mp_obj_array_at(items, i), &it);
        if (rc)
            return rc;
        if (cap_for(&it) > SIZE_MAX / 2 - data_size)
            return MP_ENOMEM;
        data_size += cap_for(&it);
    }
    size_t total = HEADER + n * SLOT + data_size;
    mp_shm_t *shm = NULL;
    int rc = mp_shm_create_with(&shm, name, total, options);
    if (rc)
        return rc;
    mp_shm_list_t *l = handle(shm, n);
    if (!l) {
        mp_shm_unlink(shm);
        mp_shm_destroy(&shm);
        return MP_ENOMEM;
    }
    uint64_t head[3] = {n, data_size, total};
    memcpy(l->base + 8, head, sizeof head);
    for (size_t i = 0; i < n; i++) {
        from_obj(mp_obj_array_at(items, i), &it);
        l->offs[i + 1] = l->offs[i] + cap_for(&it);
        slot(l, i)->cap = (uint32_t)cap_for(&it);
        write_item(l, i, &it);
    }
    atomic_thread_fence(memory_order_release);
    memcpy(l->base, MAGIC, 8);
    *list_p = l;
    return 0;
}

/* Checks the block's fixed part and fills l->offs: MP_EINVAL when it is
   not a ShareableList, MP_EBADMSG when it does not add up. */
static int check(const unsigned char *base, size_t size, size_t *n_p)
{
    if (size < 8 || memcmp(base, MAGIC, 8) != 0)
        return MP_EINVAL;
    if (size < HEADER)
        return MP_EBADMSG;
    atomic_thread_fence(memory_order_acquire);
    uint64_t head[3];
    memcpy(head, base + 8, sizeof head);
    uint64_t n = head[0], data_size = head[1], total = head[2];
    if (n > (size - HEADER) / SLOT || data_size > size - HEADER - n * SLOT ||
        total != HEADER + n * SLOT + data_size)
        return MP_EBADMSG;
    *n_p = (size_t)n;
    return 0;
}

static int check_slots(mp_shm_list_t *l, size_t data_size)
{
    for (size_t i = 0; i < l->n; i++) {
        uint32_t cap = slot(l, i)->cap; /* read once: this copy is what we use */
        if (cap < ALIGN || cap % ALIGN || cap > data_size - l->offs[i])
            return MP_EBADMSG;
        l->offs[i + 1] = l->offs[i] + cap;
    }
    if (l->offs[l->n] != data_size)
        return MP_EBADMSG;
    item_t it;
    for (size_t i = 0; i < l->n; i++)
        if (read_item(l, i, &it))
            return MP_EBADMSG;
    return 0;
}

int mp_shm_list_attach(mp_shm_list_t **list_p, const char *name)
{
    if (!list_p)
        return MP_EINVAL;
    mp_shm_t *shm = NULL;
    int rc = mp_shm_attach(&shm, name);
    if (rc)
        return rc;
    size_t n = 0;
    if ((rc = check(mp_shm_buf(shm), mp_shm_size(shm), &n))) {
        mp_shm_destroy(&shm);
        return rc;
    }
    mp_shm_list_t *l = handle(shm, n);
    if (!l) {
        mp_shm_destroy(&shm);
        return MP_ENOMEM;
    }
    uint64_t data_size;
    memcpy(&data_size, l->base + 16, 8);
    if ((rc = check_slots(l, (size_t)data_size))) {
        mp_shm_list_destroy(&l);
        return rc;
    }
    *list_p = l;
    return 0;
}

/* ---- items ---------------------------------------------------------------------------- */

size_t mp_shm_list_len(const mp_shm_list_t *l)
{
    return l ? l->n : 0;
}

int mp_shm_list_get(const mp_shm_list_t *l, int64_t index, mp_obj_t **value_p)
{
    size_t i;
    item_t it;
    int rc = value_p ? position(l, index, &i) : MP_EINVAL;
    if (!rc)
        rc = read_item(l, i, &it);
    if (rc)
        return rc;
    return (*value_p = to_obj(&it)) ? 0 : MP_ENOMEM;
}

int mp_shm_list_set(mp_shm_list_t *l, int64_t index, const mp_obj_t *value)
{
    size_t i;
    item_t it;
    int rc = position(l, index, &i);
    if (!rc)
        rc = from_obj(value, &it);
    return rc ? rc : write_item(l, i, &it);
}

int mp_shm_list_type(const mp_shm_list_t *l, int64_t index, mp_obj_type_t *type_p)
{
    static const mp_obj_type_t types[] = {
        [TAG_NIL] = MP_OBJ_NIL,     [TAG_BOOL] = MP_OBJ_BOOL, [TAG_INT] = MP_OBJ_INT,
        [TAG_FLOAT] = MP_OBJ_FLOAT, [TAG_STR] = MP_OBJ_STR,   [TAG_BIN] = MP_OBJ_BIN};
    size_t i;
    item_t it;
    int rc = type_p ? position(l, index, &i) : MP_EINVAL;
    if (!rc)
        rc = read_item(l, i, &it);
    if (!rc)
        *type_p = types[it.tag];
    return rc;
}

/* Item index when it has tag: the typed getters. */
static int get_tagged(const mp_shm_list_t *l, int64_t index, uint8_t tag, item_t *it)
{
    size_t i;
    int rc = position(l, index, &i);
    if (!rc)
        rc = read_item(l, i, it);
    if (!rc && it->tag != tag && !(tag == TAG_STR && it->tag == TAG_BIN))
        rc = MP_ETYPE;
    return rc;
}

int mp_shm_list_get_int(const mp_shm_list_t *l, int64_t index, int64_t *value_p)
{
    item_t it;
    int rc = value_p ? get_tagged(l, index, TAG_INT, &it) : MP_EINVAL;
    if (!rc)
        *value_p = it.v.i;
    return rc;
}

int mp_shm_list_get_float(const mp_shm_list_t *l, int64_t index, double *value_p)
{
    item_t it;
    int rc = value_p ? get_tagged(l, index, TAG_FLOAT, &it) : MP_EINVAL;
    if (!rc)
        *value_p = it.v.f;
    return rc;
}

int mp_shm_list_get_bool(const mp_shm_list_t *l, int64_t index, bool *value_p)
{
    item_t it;
    int rc = value_p ? get_tagged(l, index, TAG_BOOL, &it) : MP_EINVAL;
    if (!rc)
        *value_p = it.v.b;
    return rc;
}

int mp_shm_list_get_bytes(const mp_shm_list_t *l, int64_t index, void *buf, size_t size,
                          size_t *len_p)
{
    item_t it;
    int rc = len_p && (buf || !size) ? get_tagged(l, index, TAG_STR, &it) : MP_EINVAL;
    if (rc)
        return rc;
    *len_p = it.len;
    if (it.len > size)
        return MP_E2BIG;
    memcpy(buf, it.bytes, it.len);
    return 0;
}

static int set_item(mp_shm_list_t *l, int64_t index, const item_t *it)
{
    size_t i;
    int rc = position(l, index, &i);
    return rc ? rc : write_item(l, i, it);
}

int mp_shm_list_set_int(mp_shm_list_t *l, int64_t index, int64_t value)
{
    return set_item(l, index, &(item_t){.tag = TAG_INT, .v.i = value});
}

int mp_shm_list_set_float(mp_shm_list_t *l, int64_t index, double value)
{
    return set_item(l, index, &(item_t){.tag = TAG_FLOAT, .v.f = value});
}

int mp_shm_list_set_bool(mp_shm_list_t *l, int64_t index, bool value)
{
    return set_item(l, index, &(item_t){.tag = TAG_BOOL, .v.b = value});
}

int mp_shm_list_set_nil(mp_shm_list_t *l, int64_t index)
{
    return set_item(l, index, &(item_t){.tag = TAG_NIL});
}

int mp_shm_list_set_bytes(mp_shm_list_t *l, int64_t index, const void *bytes, size_t len,
                          bool is_str)
{
    if (!bytes && len)
        return MP_EINVAL;
    if (len >= MAX_BYTES)
        return l ? MP_E2BIG : MP_EINVAL;
    return set_item(l, index,
                    &(item_t){.tag = is_str ? TAG_STR : TAG_BIN, .bytes = bytes, .len = len});
}

int mp_shm_list_items(const mp_shm_list_t *l, mp_obj_t **items_p)
{
    if (!l || !items_p)
        return MP_EINVAL;
    mp_obj_t *items = mp_obj_new_array();
    if (!items)
        return MP_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        item_t it;
        int rc = read_item(l, i, &it);
        if (!rc)
            rc = mp_obj_array_add(items, to_obj(&it)); /* MP_EINVAL: out of memory */
        if (rc) {
            mp_obj_destroy(&items);
            return rc == MP_EBADMSG ? rc : MP_ENOMEM;
        }
    }
    *items_p = items;
    return 0;
}

/* How many items equal value, and the first one's index (n if none). */
static int find(const mp_shm_list_t *l, const mp_obj_t *value, size_t *count_p, size_t *first_p)
{
    if (!l || !value)
        return MP_EINVAL;
    item_t want, it;
    *count_p = 0;
    *first_p = l->n;
    if (from_obj(value, &want) == MP_ETYPE)
        return 0; /* a value no item can hold is in no item */
    for (size_t i = 0; i < l->n; i++) {
        int rc = read_item(l, i, &it);
        if (rc)
            return rc;
        if (same(&it, &want) && (*count_p)++ == 0)
            *first_p = i;
    }
    return 0;
}

int mp_shm_list_count(const mp_shm_list_t *l, const mp_obj_t *value, size_t *count_p)
{
    size_t first;
    return count_p ? find(l, value, count_p, &first) : MP_EINVAL;
}

int mp_shm_list_index(const mp_shm_list_t *l, const mp_obj_t *value, size_t *index_p)
{
    size_t count, first;
    int rc = index_p ? find(l, value, &count, &first) : MP_EINVAL;
    if (!rc && count == 0)
        rc = MP_ENOENT;
    if (!rc)
        *index_p = first;
    return rc;
}

int mp_shm_list_format(const mp_shm_list_t *l, char **format_p)
{
    if (!l || !format_p)
        return MP_EINVAL;
    enum { MOST = sizeof "4294967288s" - 1 }; /* the longest code */
    char *f = malloc(l->n * MOST + 1), *end = f;
    if (!f)
        return MP_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        item_t it;
        if (read_item(l, i, &it)) {
            free(f);
            return MP_EBADMSG;
        }
        static const char *const codes[] = {
            [TAG_NIL] = "xxxxxx?x", [TAG_BOOL] = "xxxxxxx?", [TAG_INT] = "q", [TAG_FLOAT] = "d"};
        if (it.tag == TAG_STR || it.tag == TAG_BIN)
            end += sprintf(end, "%zus", cap_of(l, i));
        else
            end = stpcpy(end, codes[it.tag]);
    }
    *end = '\0';
    *format_p = f;
    return 0;
}

/* ---- the block ------------------------------------------------------------------------ */

mp_shm_t *mp_shm_list_shm(const mp_shm_list_t *l)
{
    return l ? l->shm : NULL;
}

const char *mp_shm_list_name(const mp_shm_list_t *l)
{
    return l ? mp_shm_name(l->shm) : NULL;
}

int mp_shm_list_unlink(mp_shm_list_t *l)
{
    return l ? mp_shm_unlink(l->shm) : MP_EINVAL;
}

void mp_shm_list_destroy(mp_shm_list_t **list_p)
{
    if (!list_p || !*list_p)
        return;
    mp_shm_destroy(&(*list_p)->shm);
    free((*list_p)->offs);
    free(*list_p);
    *list_p = NULL;
}
