/*  task.c - the task context: arguments read in place, results written in
    place, per-item failures recorded as error entries.

    One mp_task_t lives for a whole dispatch and is reset per item: argument
    spans point into the items frame (no copies), the result is appended to
    the values buffer, and anything a reader had to allocate (a NUL-terminated
    string, a decoded object, an int array) is freed when the item ends. The
    per-item cost for an int is a tag check, a call and a store.

    Errors are written as MPP error entries [index code kind message host pid]
    into c->errors after a 5-byte array32 header that is patched at the end
    (the number of failures is not known up front).

    The pool layer (libmp/pool/): what every role of the distributed Pool
    shares below the broker, the worker and the client: the task registry
    (registry.c), the task context executors run tasks in (here), the
    embedded pool's shared rings (poolshm.c) and the programs' common
    options (progopt.h). Uses the layers below it; nothing of the Manager.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/task_impl.h"
#include "codec/wire.h"

typedef struct {
    const uint8_t *p;
    size_t n;
} span_t;

struct mp_task {
    const char *name;
    unsigned attempt;
    span_t *args;
    size_t argc, argcap;
    mp__buf_t *out;
    size_t out_start;
    bool returned;
    /* failure of the current item */
    int kind; /* -1: none */
    int code;
    char *message; /* MP_TASK_MESSAGE_MAX bytes, made at the first failure */
    /* allocations of the current item */
    void **scratch;
    size_t nscratch, scratchcap;
    mp_obj_t **objs;
    size_t nobjs, objcap;
};

/* ---- per-item scratch ------------------------------------------------------ */

static void *scratch_alloc(mp_task_t *t, size_t size)
{
    if (t->nscratch == t->scratchcap) {
        size_t cap = t->scratchcap ? t->scratchcap * 2 : 8;
        void **grown = realloc(t->scratch, cap * sizeof *grown);
        if (!grown)
            return NULL;
        t->scratch = grown;
        t->scratchcap = cap;
    }
    void *p = malloc(size ? size : 1);
    if (p)
        t->scratch[t->nscratch++] = p;
    return p;
}

static void item_reset(mp_task_t *t)
{
    for (size_t i = 0; i < t->nscratch; i++)
        free(t->scratch[i]);
    t->nscratch = 0;
    for (size_t i = 0; i < t->nobjs; i++)
        mp_obj_destroy(&t->objs[i]);
    t->nobjs = 0;
    t->argc = 0;
    t->returned = false;
    t->kind = -1;
    t->code = 0;
    if (t->message)
        t->message[0] = '\0';
}

/* The message buffer: made once per dispatch, at its first failure. A
   failure when even that is out of memory keeps a fixed message. */
static char *message_buf(mp_task_t *t)
{
    if (!t->message)
        t->message = malloc(MP_TASK_MESSAGE_MAX);
    return t->message;
}

static const char *message_of(const mp_task_t *t)
{
    return t->message ? t->message : "(no message: out of memory)";
}

static void set_failure(mp_task_t *t, int kind, int code, const char *fmt, va_list ap)
{
    if (t->kind >= 0) /* the first failure of an item is the one reported */
        return;
    t->kind = kind;
    t->code = code;
    if (message_buf(t))
        vsnprintf(t->message, MP_TASK_MESSAGE_MAX, fmt, ap);
}

static void bad_arg(mp_task_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad_arg(mp_task_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_failure(t, MPP_KIND_BADARGS, MP_EBADARGS, fmt, ap);
    va_end(ap);
}

static const char *type_name(int type)
{
    static const char *names[] = {"nil", "bool", "int",   "uint", "float",
                                  "str", "bin",  "array", "map",  "ext"};
    return type >= 0 && type <= MP_OBJ_EXT ? names[type] : "malformed";
}

/* A reader positioned on argument i, or false (and BAD_ARGS) past the end. */
static bool arg_reader(mp_task_t *t, size_t i, mp__rd_t *r, const char *want)
{
    if (i >= t->argc) {
        bad_arg(t, "%s: argument %zu: expected %s, got only %zu argument%s", t->name, i, want,
                t->argc, t->argc == 1 ? "" : "s");
        return false;
    }
    mp__rd_init(r, t->args[i].p, t->args[i].n);
    return true;
}

static void wrong_type(mp_task_t *t, size_t i, const mp__rd_t *r, const char *want)
{
    bad_arg(t, "%s: argument %zu: expected %s, got %s", t->name, i, want,
            type_name(mp__rd_peek(r)));
}

/* ---- arguments -------------------------------------------------------------- */

size_t mp_task_argc(const mp_task_t *t)
{
    return t->argc;
}

mp_obj_type_t mp_task_type(const mp_task_t *t, size_t i)
{
    if (i >= t->argc)
        return MP_OBJ_NIL;
    mp__rd_t r;
    mp__rd_init(&r, t->args[i].p, t->args[i].n);
    int type = mp__rd_peek(&r);
    return type < 0 ? MP_OBJ_NIL : (mp_obj_type_t)type;
}

int64_t mp_task_int(mp_task_t *t, size_t i)
{
    mp__rd_t r;
    int64_t v;
    if (i < t->argc && mp__get_int(t->args[i].p, t->args[i].n, &v)) /* the common case */
        return v;
    if (!arg_reader(t, i, &r, "int"))
        return 0;
    if (mp__rd_int(&r, &v) == 0)
        return v;
    wrong_type(t, i, &r, "int");
    return 0;
}

double mp_task_float(mp_task_t *t, size_t i)
{
    mp__rd_t r;
    double v;
    if (!arg_reader(t, i, &r, "float"))
        return 0;
    if (mp__rd_float(&r, &v) == 0)
        return v;
    wrong_type(t, i, &r, "float");
    return 0;
}

bool mp_task_bool(mp_task_t *t, size_t i)
{
    mp__rd_t r;
    bool v;
    if (!arg_reader(t, i, &r, "bool"))
        return false;
    if (mp__rd_bool(&r, &v) == 0)
        return v;
    wrong_type(t, i, &r, "bool");
    return false;
}

const char *mp_task_str(mp_task_t *t, size_t i, size_t *n)
{
    mp__rd_t r;
    const char *s;
    size_t len;
    if (!arg_reader(t, i, &r, "str"))
        return NULL;
    if (mp__rd_str(&r, &s, &len)) {
        wrong_type(t, i, &r, "str");
        return NULL;
    }
    char *copy = scratch_alloc(t, len + 1);
    if (!copy) {
        bad_arg(t, "%s: out of memory", t->name);
        return NULL;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    if (n)
        *n = len;
    return copy;
}

const void *mp_task_bin(mp_task_t *t, size_t i, size_t *n)
{
    mp__rd_t r;
    const void *p;
    size_t len;
    if (!arg_reader(t, i, &r, "bin"))
        return NULL;
    if (mp__rd_bin(&r, &p, &len)) {
        wrong_type(t, i, &r, "bin");
        return NULL;
    }
    if (n)
        *n = len;
    return p;
}

/* Reads an array of numbers into scratch memory; as_float selects doubles. */
static size_t read_numbers(mp_task_t *t, size_t i, bool as_float, void **out)
{
    const char *want = as_float ? "array of floats" : "array of ints";
    mp__rd_t r;
    size_t n;
    *out = NULL;
    if (!arg_reader(t, i, &r, want))
        return 0;
    if (mp__rd_array(&r, &n)) {
        wrong_type(t, i, &r, want);
        return 0;
    }
    void *v = scratch_alloc(t, n * 8);
    if (!v) {
        bad_arg(t, "%s: out of memory", t->name);
        return 0;
    }
    for (size_t k = 0; k < n; k++) {
        int rc = as_float ? mp__rd_float(&r, (double *)v + k) : mp__rd_int(&r, (int64_t *)v + k);
        if (rc) {
            bad_arg(t, "%s: argument %zu: item %zu: expected %s, got %s", t->name, i, k,
                    as_float ? "float" : "int", type_name(mp__rd_peek(&r)));
            return 0;
        }
    }
    *out = v;
    return n;
}

size_t mp_task_ints(mp_task_t *t, size_t i, const int64_t **v)
{
    void *p;
    size_t n = read_numbers(t, i, false, &p);
    *v = p;
    return n;
}

size_t mp_task_floats(mp_task_t *t, size_t i, const double **v)
{
    void *p;
    size_t n = read_numbers(t, i, true, &p);
    *v = p;
    return n;
}

const mp_obj_t *mp_task_arg(mp_task_t *t, size_t i)
{
    mp__rd_t r;
    mp_obj_t *o = NULL;
    if (!arg_reader(t, i, &r, "a value"))
        return NULL;
    if (t->nobjs == t->objcap) {
        size_t cap = t->objcap ? t->objcap * 2 : 4;
        mp_obj_t **grown = realloc(t->objs, cap * sizeof *grown);
        if (!grown) {
            bad_arg(t, "%s: out of memory", t->name);
            return NULL;
        }
        t->objs = grown;
        t->objcap = cap;
    }
    if (mp__rd_obj(&r, &o)) {
        bad_arg(t, "%s: argument %zu: cannot decode", t->name, i);
        return NULL;
    }
    t->objs[t->nobjs++] = o;
    return o;
}

int mp_task_packed(const mp_task_t *t, size_t i, const void **p, size_t *n)
{
    if (i >= t->argc)
        return MP_EINVAL;
    *p = t->args[i].p;
    *n = t->args[i].n;
    return 0;
}

/* ---- results ---------------------------------------------------------------- */

static int begin_return(mp_task_t *t)
{
    if (t->returned)
        return MP_ESTATE;
    t->returned = true;
    return 0;
}

/* A failed write leaves the buffer as it was and the item failed. */
static int end_return(mp_task_t *t, int rc)
{
    if (rc) {
        t->out->size = t->out_start;
        t->returned = false;
        bad_arg(t, "%s: out of memory writing the result", t->name);
    }
    return rc;
}

#define RETURN_WITH(t, expr)                                                                       \
    do {                                                                                           \
        int rc_ = begin_return(t);                                                                 \
        if (rc_)                                                                                   \
            return rc_;                                                                            \
        mp__buf_t *b = (t)->out;                                                                   \
        return end_return(t, (expr));                                                              \
    } while (0)

int mp_task_return_nil(mp_task_t *t)
{
    RETURN_WITH(t, mp__w_nil(b));
}

int mp_task_return_bool(mp_task_t *t, bool v)
{
    RETURN_WITH(t, mp__w_bool(b, v));
}

int mp_task_return_int(mp_task_t *t, int64_t v)
{
    mp__buf_t *out = t->out;
    if (!t->returned && out->cap - out->size >= 9) { /* room: no call that can fail */
        t->returned = true;
        out->size += mp__put_int((uint8_t *)out->data + out->size, v);
        return 0;
    }
    RETURN_WITH(t, mp__w_int(b, v));
}

int mp_task_return_uint(mp_task_t *t, uint64_t v)
{
    RETURN_WITH(t, mp__w_uint(b, v));
}

int mp_task_return_float(mp_task_t *t, double v)
{
    RETURN_WITH(t, mp__w_float(b, v));
}

int mp_task_return_str(mp_task_t *t, const char *s)
{
    if (!s)
        return MP_EINVAL;
    RETURN_WITH(t, mp__w_str(b, s));
}

int mp_task_return_strn(mp_task_t *t, const char *s, size_t n)
{
    if (!s && n)
        return MP_EINVAL;
    RETURN_WITH(t, mp__w_strn(b, s, n));
}

int mp_task_return_bin(mp_task_t *t, const void *p, size_t n)
{
    if (!p && n)
        return MP_EINVAL;
    RETURN_WITH(t, mp__w_bin(b, p, n));
}

static int write_ints(mp__buf_t *b, const int64_t *v, size_t n)
{
    int rc = mp__w_array(b, n);
    for (size_t i = 0; i < n && !rc; i++)
        rc = mp__w_int(b, v[i]);
    return rc;
}

static int write_floats(mp__buf_t *b, const double *v, size_t n)
{
    int rc = mp__w_array(b, n);
    for (size_t i = 0; i < n && !rc; i++)
        rc = mp__w_float(b, v[i]);
    return rc;
}

int mp_task_return_ints(mp_task_t *t, const int64_t *v, size_t n)
{
    if (!v && n)
        return MP_EINVAL;
    RETURN_WITH(t, write_ints(b, v, n));
}

int mp_task_return_floats(mp_task_t *t, const double *v, size_t n)
{
    if (!v && n)
        return MP_EINVAL;
    RETURN_WITH(t, write_floats(b, v, n));
}

int mp_task_return_obj(mp_task_t *t, const mp_obj_t *o)
{
    if (!o)
        return MP_EINVAL;
    RETURN_WITH(t, mp__obj_pack_into(o, b));
}

int mp_task_return_packed(mp_task_t *t, const void *p, size_t n)
{
    mp__rd_t r;
    mp__rd_init(&r, p, n);
    if (!p || mp__rd_skip(&r) || mp__rd_left(&r))
        return MP_EINVAL;
    RETURN_WITH(t, mp__w_raw(b, p, n));
}

int mp_task_fail(mp_task_t *t, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_failure(t, MPP_KIND_TASK, code, fmt, ap);
    va_end(ap);
    return code ? code : MP_ETASK;
}

const char *mp_task_name(const mp_task_t *t)
{
    return t->name;
}

unsigned mp_task_attempt(const mp_task_t *t)
{
    return t->attempt;
}

/* ---- running a chunk --------------------------------------------------------- */

/* Error messages travel whole (up to MP_TASK_MESSAGE_MAX each) until a
   dispatch's errors pass this many bytes; later ones are cut to 512, so a
   reply of many failures stays far below the broker's 64 MiB limit. */
#define ERRORS_WHOLE ((size_t)8 << 20)

static int write_error(mp__chunk_t *c, size_t index, int code, int kind, const char *message)
{
    mp__buf_t *b = c->errors;
    size_t len = strlen(message);
    if (b->size > ERRORS_WHOLE && len > 512)
        len = 512;
    int rc = mp__w_array(b, 6);
    rc = rc ? rc : mp__w_uint(b, index);
    rc = rc ? rc : mp__w_int(b, code);
    rc = rc ? rc : mp__w_uint(b, (uint64_t)kind);
    rc = rc ? rc : mp__w_strn(b, message, len);
    rc = rc ? rc : mp__w_str(b, c->host ? c->host : "");
    rc = rc ? rc : mp__w_uint(b, (uint64_t)(c->pid > 0 ? c->pid : 0));
    if (rc == 0)
        c->nerrors++;
    return rc;
}

static int reserve_args(mp_task_t *t, size_t argc)
{
    if (argc <= t->argcap && t->args)
        return 0;
    size_t cap = argc > 4 ? argc : 4;
    span_t *grown = realloc(t->args, cap * sizeof *grown);
    if (!grown)
        return MP_ENOMEM;
    t->args = grown;
    t->argcap = cap;
    return 0;
}

/* Reads the next item at r into argument spans, the item itself (map mode)
   or the members of its array (star mode), and moves r past it: one pass
   over the bytes (the item used to be skipped, then parsed again to split
   it). An int member below 128 (most of them) is one byte and needs no
   parsing. MP_EBADMSG: malformed (r is lost, and so are the items after
   it); MP_ETYPE: a star item that is not an array (r is past it);
   MP_ENOMEM. */
static int next_item(mp_task_t *t, int mode, mp__rd_t *r)
{
    const uint8_t *start = r->p;
    if (mode == MPP_MODE_MAP) {
        size_t k = r->p < r->end ? mp__scalar_len(*r->p) : 0; /* an int, most often */
        if (k && k <= mp__rd_left(r))
            r->p += k;
        else if (mp__rd_skip(r))
            return MP_EBADMSG;
        if (reserve_args(t, 1))
            return MP_ENOMEM;
        t->args[0] = (span_t){start, (size_t)(r->p - start)};
        t->argc = 1;
        return 0;
    }
    size_t argc;
    if (mp__rd_array(r, &argc)) {
        r->p = start;
        return mp__rd_skip(r) ? MP_EBADMSG : MP_ETYPE;
    }
    if (argc > mp__rd_left(r)) /* each member is at least one byte */
        return MP_EBADMSG;
    if (reserve_args(t, argc))
        return MP_ENOMEM;
    for (size_t i = 0; i < argc; i++) {
        const uint8_t *m = r->p;
        size_t k = r->p < r->end ? mp__scalar_len(*r->p) : 0; /* an int, most often */
        if (k && k <= mp__rd_left(r))
            r->p += k;
        else if (mp__rd_skip(r))
            return MP_EBADMSG;
        t->args[i] = (span_t){m, (size_t)(r->p - m)};
    }
    t->argc = argc;
    return 0;
}

/* Runs fn on one item whose arguments next_item read (split: what it
   returned); on return the item's value or failure is recorded. */
static int end_item(mp__chunk_t *c, mp_task_t *t, size_t index, int ret);

static int run_item(mp__chunk_t *c, mp_task_t *t, mp_task_fn fn, size_t index, int split)
{
    t->out_start = c->values->size;
    int ret = 0;
    if (split)
        bad_arg(t, "%s: starmap item is not an argument tuple (array)", t->name);
    else
        ret = fn(t);
    return end_item(c, t, index, ret);
}

/* Records what the task made of its item: its value, nil, or a failure. */
static int end_item(mp__chunk_t *c, mp_task_t *t, size_t index, int ret)
{
    if (t->kind < 0 && ret != 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s returned %d", t->name, ret);
        t->kind = MPP_KIND_TASK;
        t->code = ret;
        if (message_buf(t))
            snprintf(t->message, MP_TASK_MESSAGE_MAX, "%s", msg);
    }
    if (t->kind >= 0) {
        c->values->size = t->out_start; /* a failed item reads as nil */
        int rc = mp__w_nil(c->values);
        return rc ? rc : write_error(c, index, t->code, t->kind, message_of(t));
    }
    return t->returned ? 0 : mp__w_nil(c->values);
}

/* ---- initializers: run once per executor per distinct init frame ---------- */

static struct {
    char **frames; /* copies of init frames already run (executor-local) */
    size_t *sizes;
    size_t n;
} inits;

void mp__task_reset_inits(void)
{
    for (size_t i = 0; i < inits.n; i++)
        free(inits.frames[i]);
    free(inits.frames);
    free(inits.sizes);
    memset(&inits, 0, sizeof inits);
}

static bool init_seen(const void *p, size_t n)
{
    for (size_t i = 0; i < inits.n; i++)
        if (inits.sizes[i] == n && memcmp(inits.frames[i], p, n) == 0)
            return true;
    return false;
}

static void init_remember(const void *p, size_t n)
{
    char **frames = realloc(inits.frames, (inits.n + 1) * sizeof *frames);
    if (frames)
        inits.frames = frames;
    size_t *sizes = realloc(inits.sizes, (inits.n + 1) * sizeof *sizes);
    if (sizes)
        inits.sizes = sizes;
    char *copy = malloc(n ? n : 1);
    if (!frames || !sizes || !copy) {
        free(copy); /* forgetting only means running it again */
        return;
    }
    memcpy(copy, p, n);
    inits.frames[inits.n] = copy;
    inits.sizes[inits.n] = n;
    inits.n++;
}

/* Runs the init task of c if this executor has not run it yet. On failure
   fills msg and returns the code. */
static int run_init(mp__chunk_t *c, mp_task_t *t, char *msg, size_t msgsize)
{
    if (!c->init || init_seen(c->init, c->init_size))
        return 0;
    mp__rd_t r;
    size_t n;
    const char *name;
    size_t len;
    char fname[MP_TASK_NAME_MAX + 1];
    mp__rd_init(&r, c->init, c->init_size);
    if (mp__rd_array(&r, &n) || n < 2 || mp__rd_str(&r, &name, &len) || len == 0 ||
        len > MP_TASK_NAME_MAX) {
        snprintf(msg, msgsize, "malformed initializer");
        return MP_EBADARGS;
    }
    memcpy(fname, name, len);
    fname[len] = '\0';
    mp_task_fn fn = mp_task_lookup(fname);
    if (!fn) {
        snprintf(msg, msgsize, "initializer %s: unknown task", fname);
        return MP_EUNKNOWNTASK;
    }
    const uint8_t *args = r.p;
    if (mp__rd_skip(&r)) {
        snprintf(msg, msgsize, "initializer %s: malformed arguments", fname);
        return MP_EBADARGS;
    }
    mp__buf_t scratch;
    mp__buf_init(&scratch, NULL, 0);
    mp__buf_t *saved = t->out;
    const char *saved_name = t->name;
    t->out = &scratch;
    t->name = fname;
    item_reset(t);
    mp__rd_t ar;
    mp__rd_init(&ar, args, (size_t)(r.p - args));
    int rc = next_item(t, MPP_MODE_STAR, &ar);
    int ret = rc ? rc : fn(t);
    if (t->kind < 0 && ret)
        if (message_buf(t))
            snprintf(t->message, MP_TASK_MESSAGE_MAX, "returned %d", ret);
    int code = t->kind >= 0 ? t->code : ret;
    if (code || t->kind >= 0)
        snprintf(msg, msgsize, "initializer %s failed: %s", fname, message_of(t));
    else
        init_remember(c->init, c->init_size);
    t->out = saved;
    t->name = saved_name;
    mp__buf_release(&scratch);
    item_reset(t);
    return t->kind >= 0 && code == 0 ? MP_ETASK : code;
}

int mp__task_run_chunk(mp__chunk_t *c)
{
    mp__rd_t r;
    size_t count;
    int rc;
    c->nerrors = 0;
    c->count = 0;
    mp__rd_init(&r, c->items, c->items_size);
    if (c->raw)
        count = c->raw_count;
    else if (mp__rd_array(&r, &count))
        count = 0; /* the broker checked the header; nothing to run */
    c->count = count;
    if (!c->raw && (rc = mp__w_array(c->values, count)))
        return rc;
    size_t values_start = c->values->size;
    size_t errors_start = c->errors->size;
    if ((rc = mp__w_tagged(c->errors, 0xdd, 0, 4))) /* array32, patched below */
        return rc;

    mp_task_t t = {.name = c->name, .attempt = c->attempt, .out = c->values, .kind = -1};
    mp_task_fn fn = mp_task_lookup(c->name);
    char why[MP_TASK_MESSAGE_MAX + 512]; /* an initializer's failure, whole */
    int init_rc = fn ? run_init(c, &t, why, sizeof why) : 0;
    if (!fn)
        snprintf(why, sizeof why, "unknown task: %s", c->name);

    /* map items that are scalars (ints, most often) take a short path: the
       argument is the item, and nothing of the last item needs freeing */
    bool fast = fn && !init_rc && c->mode == MPP_MODE_MAP && reserve_args(&t, 1) == 0;
    mp__progress_t *pg = c->progress;
    if (pg)
        __atomic_store_n(&pg->vstart, values_start, __ATOMIC_RELAXED);
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (pg) { /* what is done so far, then which item runs (release) */
            __atomic_store_n(&pg->vdata, (uint64_t)(uintptr_t)c->values->data, __ATOMIC_RELAXED);
            __atomic_store_n(&pg->vsize, c->values->size, __ATOMIC_RELAXED);
            __atomic_store_n(&pg->edata, (uint64_t)(uintptr_t)c->errors->data, __ATOMIC_RELAXED);
            __atomic_store_n(&pg->esize, c->errors->size, __ATOMIC_RELAXED);
            __atomic_store_n(&pg->index, (uint32_t)i, __ATOMIC_RELEASE);
            /* then whether its supervisor handed this item back: a load
               after the store (the supervisor's membarrier orders them) */
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
            if (i >= __atomic_load_n(&pg->limit, __ATOMIC_RELAXED)) {
                c->count = i;
                break;
            }
        }
        size_t len = fast && r.p < r.end ? mp__scalar_len(*r.p) : 0;
        if (len && len <= mp__rd_left(&r) && t.nscratch == 0 && t.nobjs == 0) {
            t.args[0] = (span_t){r.p, len};
            t.argc = 1;
            t.returned = false;
            t.kind = -1;
            r.p += len;
            t.out_start = c->values->size;
            int ret = fn(&t);
            if (ret != 0 || t.kind >= 0 || !t.returned)
                rc = end_item(c, &t, i, ret);
            continue;
        }
        item_reset(&t);
        int split = next_item(&t, fn && !init_rc ? c->mode : MPP_MODE_MAP, &r);
        if (split == MP_ENOMEM) {
            rc = split;
            break;
        }
        if (split == MP_EBADMSG) { /* malformed item: it and the rest cannot be found */
            size_t end = count, limit = pg ? __atomic_load_n(&pg->limit, __ATOMIC_RELAXED) : end;
            if (limit < end) /* not past what the supervisor handed back */
                c->count = end = limit;
            for (size_t k = i; k < end && rc == 0; k++) {
                rc = mp__w_nil(c->values);
                rc = rc ? rc : write_error(c, k, MP_EBADARGS, MPP_KIND_BADARGS, "malformed item");
            }
            break;
        }
        if (!fn || init_rc) {
            rc = mp__w_nil(c->values);
            int kind = !fn                          ? MPP_KIND_UNKNOWN
                       : init_rc == MP_EUNKNOWNTASK ? MPP_KIND_UNKNOWN
                                                    : MPP_KIND_TASK;
            rc = rc ? rc : write_error(c, i, !fn ? MP_EUNKNOWNTASK : init_rc, kind, why);
            continue;
        }
        rc = run_item(c, &t, fn, i, split);
    }
    item_reset(&t);
    free(t.args);
    free(t.scratch);
    free(t.objs);
    free(t.message);
    if (rc)
        return rc;
    uint8_t *h = (uint8_t *)c->errors->data + errors_start + 1;
    uint32_t n = (uint32_t)c->nerrors;
    h[0] = (uint8_t)(n >> 24);
    h[1] = (uint8_t)(n >> 16);
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
    return 0;
}
