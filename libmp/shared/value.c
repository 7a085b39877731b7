/*  value.c - Value and Array (sharedctypes): one shared mapping holding an
    optional embedded RLock followed by the items.

    The typed accessors convert through int64_t / double with a switch on
    the typecode; callers on a hot path use the raw pointer under the lock.
*/
#include <stdalign.h>
#include <string.h>
#include <wchar.h>

#include "base/base.h"
#include "sync/lock_impl.h"
#include "mp/error.h"
#include "mp/value.h"

struct mp_ctype {
    mp_lock_t own_lock;
    mp_lock_t *lock; /* NULL when raw */
    size_t map_size;
    size_t length;
    size_t itemsize;
    char typecode;
    alignas(16) unsigned char items[];
};

size_t mp_typecode_size(char typecode)
{
    switch (typecode) {
    case 'c':
    case 'b':
    case 'B':
        return 1;
    case '?':
        return sizeof(bool);
    case 'h':
    case 'H':
        return sizeof(short);
    case 'i':
    case 'I':
        return sizeof(int);
    case 'l':
    case 'L':
        return sizeof(long);
    case 'q':
    case 'Q':
        return sizeof(long long);
    case 'f':
        return sizeof(float);
    case 'd':
        return sizeof(double);
    case 'u':
        return sizeof(wchar_t);
    default:
        return 0;
    }
}

mp_array_t *mp_array_new(char typecode, size_t length, const void *initial,
                         const mp_ctype_opts_t *opts)
{
    size_t itemsize = mp_typecode_size(typecode);
    if (!itemsize || length > (SIZE_MAX - sizeof(mp_array_t)) / itemsize)
        return NULL;
    size_t map_size = sizeof(mp_array_t) + itemsize * length;
    mp_array_t *a = mp__shared_alloc(map_size);
    if (!a)
        return NULL;
    a->map_size = map_size;
    a->length = length;
    a->itemsize = itemsize;
    a->typecode = typecode;
    if (opts && opts->lock) {
        a->lock = opts->lock;
    } else if (!opts || !opts->raw) {
        if (mp__lock_init_at(&a->own_lock, true, true)) {
            mp__shared_free(a, map_size);
            return NULL;
        }
        a->lock = &a->own_lock;
    }
    if (initial)
        memcpy(a->items, initial, itemsize * length);
    return a;
}

mp_value_t *mp_value_new(char typecode, const void *initial, const mp_ctype_opts_t *opts)
{
    return mp_array_new(typecode, 1, initial, opts);
}

void mp_array_destroy(mp_array_t **array_p)
{
    if (!array_p || !*array_p)
        return;
    mp__shared_free(*array_p, (*array_p)->map_size);
    *array_p = NULL;
}

void mp_value_destroy(mp_value_t **value_p)
{
    mp_array_destroy(value_p);
}

mp_lock_t *mp_array_get_lock(mp_array_t *a)
{
    return a ? a->lock : NULL;
}

mp_lock_t *mp_value_get_lock(mp_value_t *v)
{
    return mp_array_get_lock(v);
}

void *mp_array_ptr(mp_array_t *a)
{
    return a ? a->items : NULL;
}

void *mp_value_ptr(mp_value_t *v)
{
    return mp_array_ptr(v);
}

char mp_array_typecode(const mp_array_t *a)
{
    return a ? a->typecode : 0;
}

size_t mp_array_len(const mp_array_t *a)
{
    return a ? a->length : 0;
}

static void lock(mp_array_t *a)
{
    /* A dead owner's half-written item is the best state there is: the
       caller asked for typed access, not for recovery. Those who care use
       mp_array_get_lock() and see MP_EOWNERDEAD. */
    if (a->lock)
        (void)mp_lock_acquire(a->lock, -1);
}

static void unlock(mp_array_t *a)
{
    if (a->lock)
        mp_lock_release(a->lock);
}

#define ITEM(a, type, i) (((type *)(void *)(a)->items)[i])

static int64_t load_int(const mp_array_t *a, size_t i)
{
    switch (a->typecode) {
    case 'c':
        return ITEM(a, char, i);
    case 'b':
        return ITEM(a, signed char, i);
    case 'B':
        return ITEM(a, unsigned char, i);
    case '?':
        return ITEM(a, bool, i);
    case 'h':
        return ITEM(a, short, i);
    case 'H':
        return ITEM(a, unsigned short, i);
    case 'i':
        return ITEM(a, int, i);
    case 'I':
        return ITEM(a, unsigned int, i);
    case 'l':
        return ITEM(a, long, i);
    case 'L':
        return (int64_t)ITEM(a, unsigned long, i);
    case 'q':
        return ITEM(a, long long, i);
    case 'Q':
        return (int64_t)ITEM(a, unsigned long long, i);
    case 'f':
        return (int64_t)ITEM(a, float, i);
    case 'd':
        return (int64_t)ITEM(a, double, i);
    case 'u':
        return ITEM(a, wchar_t, i);
    }
    return 0;
}

static double load_double(const mp_array_t *a, size_t i)
{
    switch (a->typecode) {
    case 'f':
        return ITEM(a, float, i);
    case 'd':
        return ITEM(a, double, i);
    case 'L':
        return (double)ITEM(a, unsigned long, i);
    case 'Q':
        return (double)ITEM(a, unsigned long long, i);
    default:
        return (double)load_int(a, i);
    }
}

static void store_int(mp_array_t *a, size_t i, int64_t v)
{
    switch (a->typecode) {
    case 'c':
        ITEM(a, char, i) = (char)v;
        break;
    case 'b':
        ITEM(a, signed char, i) = (signed char)v;
        break;
    case 'B':
        ITEM(a, unsigned char, i) = (unsigned char)v;
        break;
    case '?':
        ITEM(a, bool, i) = v != 0;
        break;
    case 'h':
        ITEM(a, short, i) = (short)v;
        break;
    case 'H':
        ITEM(a, unsigned short, i) = (unsigned short)v;
        break;
    case 'i':
        ITEM(a, int, i) = (int)v;
        break;
    case 'I':
        ITEM(a, unsigned int, i) = (unsigned int)v;
        break;
    case 'l':
        ITEM(a, long, i) = (long)v;
        break;
    case 'L':
        ITEM(a, unsigned long, i) = (unsigned long)v;
        break;
    case 'q':
        ITEM(a, long long, i) = v;
        break;
    case 'Q':
        ITEM(a, unsigned long long, i) = (unsigned long long)v;
        break;
    case 'f':
        ITEM(a, float, i) = (float)v;
        break;
    case 'd':
        ITEM(a, double, i) = (double)v;
        break;
    case 'u':
        ITEM(a, wchar_t, i) = (wchar_t)v;
        break;
    }
}

static void store_double(mp_array_t *a, size_t i, double v)
{
    if (a->typecode == 'f')
        ITEM(a, float, i) = (float)v;
    else if (a->typecode == 'd')
        ITEM(a, double, i) = v;
    else
        store_int(a, i, (int64_t)v);
}

int64_t mp_array_get_int(mp_array_t *a, size_t index)
{
    if (!a || index >= a->length)
        return 0;
    lock(a);
    int64_t v = load_int(a, index);
    unlock(a);
    return v;
}

int mp_array_set_int(mp_array_t *a, size_t index, int64_t v)
{
    if (!a || index >= a->length)
        return MP_EINVAL;
    lock(a);
    store_int(a, index, v);
    unlock(a);
    return 0;
}

double mp_array_get_double(mp_array_t *a, size_t index)
{
    if (!a || index >= a->length)
        return 0.0;
    lock(a);
    double v = load_double(a, index);
    unlock(a);
    return v;
}

int mp_array_set_double(mp_array_t *a, size_t index, double v)
{
    if (!a || index >= a->length)
        return MP_EINVAL;
    lock(a);
    store_double(a, index, v);
    unlock(a);
    return 0;
}

int64_t mp_value_get_int(mp_value_t *v)
{
    return mp_array_get_int(v, 0);
}

int mp_value_set_int(mp_value_t *v, int64_t x)
{
    return mp_array_set_int(v, 0, x);
}

double mp_value_get_double(mp_value_t *v)
{
    return mp_array_get_double(v, 0);
}

int mp_value_set_double(mp_value_t *v, double x)
{
    return mp_array_set_double(v, 0, x);
}

int64_t mp_value_add_int(mp_value_t *v, int64_t delta)
{
    if (!v)
        return 0;
    lock(v);
    int64_t x = load_int(v, 0) + delta;
    store_int(v, 0, x);
    x = load_int(v, 0); /* as stored, after the type's wrap-around */
    unlock(v);
    return x;
}

int mp_array_read(mp_array_t *a, size_t start, size_t count, void *out)
{
    if (!a || !out || start > a->length || count > a->length - start)
        return MP_EINVAL;
    lock(a);
    memcpy(out, a->items + start * a->itemsize, count * a->itemsize);
    unlock(a);
    return 0;
}

int mp_array_write(mp_array_t *a, size_t start, size_t count, const void *in)
{
    if (!a || !in || start > a->length || count > a->length - start)
        return MP_EINVAL;
    lock(a);
    memcpy(a->items + start * a->itemsize, in, count * a->itemsize);
    unlock(a);
    return 0;
}
