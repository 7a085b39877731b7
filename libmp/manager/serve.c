/*  serve.c - the remote manager's server (docs/MANAGER.md section 6,
    MPM/1): a thread that authenticates clients and runs their calls on a
    local manager. The client side, which the mp_mdict_* / mp_mlist_*
    calls use when given a proxy, is proxy.c; the messages mpm.c.

    The server executes a CALL through the public local API (dict.c,
    list.c; manager.c's named objects, owned.c's named queues) on its own
    view of the arena, so remote and local callers share one lock and one
    set of rules. It never blocks on a queue: it tries once and the client
    tries again.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>
#include <czmq.h>
#include <zmq.h>

#include "base/hmac.h"
#include "base/log.h"
#include "codec/curve.h"
#include "manager/mpm.h"
#include "manager/owned.h"
#include "mp/error.h"

#define WHO "mp-manager"
#define MAX_PEERS 4096
/* Peers that said HELLO and have not authenticated: at most this many; a
   new one replaces the least recently seen of them, never an
   authenticated peer (HELLOs cost nothing to send). */
#define MAX_PENDING 256
/* An authenticated peer silent this long may give its place to a new one
   when the table is full; else the HELLO is refused (server busy). */
#define IDLE_NS (60 * 1000000000ull)

/* ---- peers -------------------------------------------------------------------------- */

typedef struct {
    uint8_t id[256];
    size_t idlen;
    bool authed;
    uint8_t nonce[32];
    uint64_t seen, seen_ns;
} peer_t;

struct mp_manager_server {
    mp_manager_t *m;
    void *ctx, *sock;
    int stop_fd;
    pthread_t thread;
    char endpoint[256];
    uint8_t *key;
    size_t keylen;
    peer_t *peers;
    size_t npeers, npending; /* npending: not authenticated */
    uint64_t clock;
    mp__curve_t curve;
    bool auth;           /* holds the process's ZAP handler (curve.h) */
    zcertstore_t *admit; /* with CURVE: allow_dir/managers */
    uint64_t calls, refused;
    mp__ratelimit_t malformed_rl;
};

/* The least recently seen peer that is authed (or not), and, for authed
   ones, silent since before `before`; npeers when there is none. */
static size_t least_recent(const mp_manager_server_t *s, bool authed, uint64_t before)
{
    size_t at = s->npeers;
    for (size_t i = 0; i < s->npeers; i++) {
        const peer_t *q = &s->peers[i];
        if (q->authed == authed && (!authed || q->seen_ns < before) &&
            (at == s->npeers || q->seen < s->peers[at].seen))
            at = i;
    }
    return at;
}

static peer_t *peer_get(mp_manager_server_t *s, const void *id, size_t idlen, bool add)
{
    uint64_t now = mp__now_ns();
    for (size_t i = 0; i < s->npeers; i++)
        if (s->peers[i].idlen == idlen && memcmp(s->peers[i].id, id, idlen) == 0) {
            s->peers[i].seen = ++s->clock;
            s->peers[i].seen_ns = now;
            return &s->peers[i];
        }
    if (!add || idlen > sizeof s->peers[0].id)
        return NULL;
    size_t at;
    if (s->npending >= MAX_PENDING) { /* an unauthenticated peer gives its place */
        at = least_recent(s, false, 0);
    } else if (s->npeers < MAX_PEERS) {
        at = s->npeers++;
        s->npending++;
    } else if ((at = least_recent(s, true, now > IDLE_NS ? now - IDLE_NS : 0)) < s->npeers) {
        s->npending++; /* an idle authenticated peer gives its place */
    } else {
        return NULL; /* full of live authenticated peers: refused */
    }
    peer_t *p = &s->peers[at];
    memset(p, 0, sizeof *p);
    memcpy(p->id, id, idlen);
    p->idlen = idlen;
    p->seen = ++s->clock;
    p->seen_ns = now;
    return p;
}

static void deny(mp_manager_server_t *s, const void *id, size_t idlen, const char *why)
{
    mp_obj_t *b = mp_obj_new_array();
    mp_obj_array_add(b, mp_obj_new_str(why));
    mpm_send(s->sock, id, idlen, MPM_DENIED, b);
    mp_obj_destroy(&b);
}

/* The object a CALL's address names (slot | gen << 16; gen 0: not
   checked), if it exists and has a type the op accepts: else MP_EINVAL, or
   MP_ENOENT when the object a reference reached is gone. */
static int object_at(mp_manager_server_t *s, int64_t address, bool list, struct mp_mobj **o_p)
{
    ma_arena_t *a = s->m->arena;
    int64_t slot = address & 0xffff, gen = address >> 16;
    if (address < 1 || slot < 1 || slot > MA_MAX_OBJECTS || gen > UINT32_MAX)
        return MP_EINVAL;
    uint32_t off = __atomic_load_n(&a->objects[slot], __ATOMIC_ACQUIRE);
    struct mp_mobj *o = off ? ma_at(a, off) : NULL;
    if (!o || (gen && o->gen != gen))
        return gen ? MP_ENOENT : MP_EINVAL;
    if ((o->type == MO_LIST) != list)
        return MP_EINVAL;
    *o_p = o;
    return 0;
}

/* ---- calls ------------------------------------------------------------------------- */

/* A CALL body: [id, op, slot, args...]. */
typedef struct {
    int64_t op, slot;
    mp_obj_t *a0, *a1, *a2;
    int64_t i0, i1; /* a0, a1 as integers (-1: not one) */
} request_t;

/* [id, OPEN, kind, name]: the named object's address (slot | gen << 16),
   or the named queue's number, in *extra. */
static int open_named(mp_manager_server_t *s, const request_t *q, int64_t *extra)
{
    const char *name = q->a1 && mp_obj_type(q->a1) == MP_OBJ_STR ? mp_obj_str(q->a1, NULL) : NULL;
    struct mp_mobj *o = NULL;
    int rc = MP_EINVAL;
    if (name && q->slot == MO_DICT)
        rc = mp_manager_named_dict(s->m, name, &o);
    else if (name && q->slot == MO_LIST)
        rc = mp_manager_named_list(s->m, name, &o);
    else if (name && q->slot == MO_NS)
        rc = mp_manager_named_namespace(s->m, name, &o);
    if (name && q->slot == MO_QUEUE) {
        *extra = ma_queue_named(s->m, name);
        return *extra ? 0 : MP_ENOMEM;
    }
    *extra = rc ? 0 : (int64_t)o->slot | (int64_t)o->gen << 16;
    return rc;
}

/* A queue op: never blocks the server, the client waits and tries again. */
static int exec_queue(mp_manager_server_t *s, const request_t *q, mp_obj_t **res, int64_t *extra)
{
    /* a named queue's number, or minus the id a reference gave */
    mp_queue_t *queue = q->slot > 0 ? ma_queue_at(s->m, q->slot)
                        : q->slot < 0 && q->slot >= -(int64_t)UINT32_MAX
                            ? ma_queue_by_id(s->m, (uint32_t)-q->slot)
                            : NULL;
    int rc = !queue              ? MP_EINVAL
             : q->op == MR_Q_PUT ? mp_queue_put(queue, q->a0, 0)
             : q->op == MR_Q_GET ? mp_queue_get(queue, res, 0)
                                 : 0;
    if (queue && q->op == MR_Q_QSIZE)
        *extra = (int64_t)mp_queue_qsize(queue);
    return rc;
}

static int exec_dict(struct mp_mobj *o, const request_t *q, mp_obj_t **res, int64_t *extra)
{
    mp_obj_t *a0 = q->a0, *a1 = q->a1, *a2 = q->a2;
    int64_t i1 = q->i1;
    size_t n = 0;
    bool flag = false;
    int rc = MP_ENOENT;
    switch (q->op) {
    case MR_D_SET:
        rc = mp_mdict_set(o, a0, a1);
        break;
    case MR_D_GET:
        rc = mp_mdict_get(o, a0, NULL, res);
        break;
    case MR_D_GET_DFLT:
        rc = mp_mdict_get(o, a0, a1, res);
        break;
    case MR_D_DEL:
        rc = mp_mdict_del(o, a0);
        break;
    case MR_D_CONTAINS:
        rc = mp_mdict_contains(o, a0);
        break;
    case MR_D_LEN:
        rc = mp_mdict_len(o, &n);
        *extra = (int64_t)n;
        break;
    case MR_D_KEYS:
        rc = mp_mdict_keys(o, res);
        break;
    case MR_D_VALUES:
        rc = mp_mdict_values(o, res);
        break;
    case MR_D_ITEMS:
        rc = mp_mdict_items(o, res);
        break;
    case MR_D_UPDATE:
        rc = mp_mdict_update(o, a0);
        break;
    case MR_D_POP:
        rc = mp_mdict_pop(o, a0, NULL, res);
        break;
    case MR_D_POP_DFLT:
        rc = mp_mdict_pop(o, a0, a1, res);
        break;
    case MR_D_SETDEFAULT:
        rc = mp_mdict_setdefault(o, a0, a1, res);
        break;
    case MR_D_CLEAR:
        rc = mp_mdict_clear(o);
        break;
    case MR_D_INCR:
        rc = mp_mdict_incr(o, a0, i1, extra);
        break;
    case MR_D_INCRF: {
        double r = 0;
        rc = mp_mdict_incr_float(o, a0, a1 ? mp_obj_float(a1) : 0, &r);
        *res = rc ? NULL : mp_obj_new_float(r);
        break;
    }
    case MR_D_CAS:
        rc = mp_mdict_cas(o, a0, a1, a2, &flag);
        *extra = flag;
        break;
    case MR_D_CAS_ABSENT:
        rc = mp_mdict_cas(o, a0, NULL, a1, &flag);
        *extra = flag;
        break;
    default:
        rc = MP_EINVAL;
    }
    return rc;
}

static int exec_list(struct mp_mobj *o, const request_t *q, mp_obj_t **res, int64_t *extra)
{
    mp_obj_t *a0 = q->a0, *a1 = q->a1;
    int64_t i0 = q->i0, i1 = q->i1;
    size_t n = 0;
    bool flag = false;
    int rc = MP_ENOENT;
    switch (q->op) {
    case MR_L_APPEND:
        rc = mp_mlist_append(o, a0);
        break;
    case MR_L_EXTEND:
        rc = mp_mlist_extend(o, a0);
        break;
    case MR_L_GET:
        rc = mp_mlist_get(o, i0, res);
        break;
    case MR_L_SET:
        rc = mp_mlist_set(o, i0, a1);
        break;
    case MR_L_INSERT:
        rc = mp_mlist_insert(o, i0, a1);
        break;
    case MR_L_POP:
        rc = mp_mlist_pop(o, i0, res);
        break;
    case MR_L_REMOVE:
        rc = mp_mlist_remove(o, a0);
        break;
    case MR_L_INDEX:
        rc = mp_mlist_index(o, a0, &n);
        *extra = (int64_t)n;
        break;
    case MR_L_COUNT:
        rc = mp_mlist_count(o, a0, &n);
        *extra = (int64_t)n;
        break;
    case MR_L_LEN:
        rc = mp_mlist_len(o, &n);
        *extra = (int64_t)n;
        break;
    case MR_L_SLICE:
        rc = mp_mlist_slice(o, i0, i1, res);
        break;
    case MR_L_CLEAR:
        rc = mp_mlist_clear(o);
        break;
    case MR_L_APPEND_UNIQUE:
        rc = mp_mlist_append_unique(o, a0, &flag);
        *extra = flag;
        break;
    default:
        rc = MP_EINVAL;
    }
    return rc;
}

static int execute(mp_manager_server_t *s, const mp_obj_t *b, mp_obj_t **res, int64_t *extra);

/* What a BATCH may carry: a dict call on one key whose reply is small or a
   value read (a reply too large is refused whole, MP_E2BIG: nothing may
   have been taken out by then, so no pop and no queue call). */
static bool batchable(int64_t op)
{
    switch (op) {
    case MR_D_SET:
    case MR_D_GET:
    case MR_D_GET_DFLT:
    case MR_D_DEL:
    case MR_D_CONTAINS:
    case MR_D_SETDEFAULT:
    case MR_D_INCR:
    case MR_D_INCRF:
    case MR_D_CAS:
    case MR_D_CAS_ABSENT:
        return true;
    default:
        return false;
    }
}

/* BATCH: each sub-call [0, op, address, args...] run in order as a CALL of
   its own (no BATCH in a BATCH); *res the array of their [rc, result,
   extra], *extra their count. */
static int exec_batch(mp_manager_server_t *s, const mp_obj_t *subs, mp_obj_t **res, int64_t *extra)
{
    size_t n = subs && mp_obj_type(subs) == MP_OBJ_ARRAY ? mp_obj_len(subs) : 0;
    if (!n || n > MR_BATCH_MAX)
        return MP_EINVAL;
    mp_obj_t *out = mp_obj_new_array();
    for (size_t i = 0; out && i < n; i++) {
        const mp_obj_t *b = mp_obj_array_at(subs, i);
        mp_obj_t *r = NULL, *one = mp_obj_new_array();
        int64_t x = 0;
        int rc = b && mp_obj_type(b) == MP_OBJ_ARRAY && batchable(mpm_arg_int(b, 1))
                     ? execute(s, b, &r, &x)
                     : MP_EINVAL;
        /* each add takes its item, also when it fails: nothing leaks */
        int bad = mp_obj_array_add(one, mp_obj_new_int(rc)) != 0;
        bad |= mp_obj_array_add(one, r ? r : mp_obj_new_nil()) != 0;
        bad |= mp_obj_array_add(one, mp_obj_new_int(x)) != 0;
        bad |= mp_obj_array_add(out, one) != 0;
        if (bad) {
            mp_obj_destroy(&out); /* out of memory: the whole batch fails */
            return MP_ENOMEM;
        }
    }
    if (!out)
        return MP_ENOMEM;
    *res = out;
    *extra = (int64_t)n;
    return 0;
}

/* Runs one CALL body [id, op, slot, args...]: its rc; *res and *extra the
   result and the extra integer the REPLY carries. */
static int execute(mp_manager_server_t *s, const mp_obj_t *b, mp_obj_t **res, int64_t *extra)
{
    request_t q = {.op = mpm_arg_int(b, 1),
                   .slot = mpm_arg_int(b, 2),
                   .a0 = mpm_arg(b, 3),
                   .a1 = mpm_arg(b, 4),
                   .a2 = mpm_arg(b, 5),
                   .i0 = mpm_arg_int(b, 3),
                   .i1 = mpm_arg_int(b, 4)};
    *res = NULL;
    *extra = 0;
    if (q.op == MR_BATCH)
        return exec_batch(s, q.a0, res, extra);
    if (q.op == MR_OPEN)
        return open_named(s, &q, extra);
    if (q.op == MR_Q_PUT || q.op == MR_Q_GET || q.op == MR_Q_QSIZE)
        return exec_queue(s, &q, res, extra);
    bool list = q.op >= MR_L_FIRST;
    struct mp_mobj *o = NULL;
    int rc = object_at(s, q.slot, list, &o);
    if (rc)
        return rc;
    return list ? exec_list(o, &q, res, extra) : exec_dict(o, &q, res, extra);
}

/* ---- messages and the thread ------------------------------------------------------- */

/* With CURVE, zauth admitted every key under the allow-list root; this
   server serves only the keys in its managers/ subdirectory (a worker's
   or a broker client's key is not a manager client's). */
static bool admitted(mp_manager_server_t *s, mpp_msg_t *m)
{
    const char *key = m->n >= 2 ? zmq_msg_gets(&m->f[1], "User-Id") : NULL;
    if (key && zcertstore_lookup(s->admit, key))
        return true;
    if (__atomic_fetch_add(&s->refused, 1, __ATOMIC_RELAXED) % 1000 == 0)
        mp__log(MP_LOG_WARN, WHO,
                "refused a message from key %s: not in the allow-list's managers/",
                key ? key : "(none)");
    return false;
}

static void on_message(mp_manager_server_t *s, mpp_msg_t *m)
{
    uint8_t cmd;
    mp_obj_t *b;
    if (m->n < 1 || mpm_parse(m, 1, &cmd, &b)) {
        if (mp__ratelimit(&s->malformed_rl, WHO, "malformed messages"))
            mp__log(MP_LOG_WARN, WHO, "malformed message; dropped");
        return;
    }
    const void *id = mpp_data(m, 0);
    size_t idlen = mpp_size(m, 0);
    if (s->admit && !admitted(s, m)) {
        if (cmd == MPM_HELLO)
            deny(s, id, idlen, "refused: this CURVE key is not in the manager's allow-list");
        mp_obj_destroy(&b);
        return;
    }
    peer_t *p = peer_get(s, id, idlen, cmd == MPM_HELLO);
    if (cmd == MPM_HELLO && p) {
        if (p->authed) /* authenticating again */
            s->npending++;
        p->authed = false;
        mp_obj_t *r = mp_obj_new_array();
        if (getrandom(p->nonce, sizeof p->nonce, 0) == (ssize_t)sizeof p->nonce) {
            mp_obj_array_add(r, mp_obj_new_bin(p->nonce, sizeof p->nonce));
            mpm_send(s->sock, id, idlen, MPM_CHALLENGE, r);
        }
        mp_obj_destroy(&r);
    } else if (cmd == MPM_AUTH && p && !p->authed) {
        uint8_t want[MP_SHA256_SIZE];
        mpm_auth_mac(s->key, s->keylen, p->nonce, want);
        mp_obj_t *mac = mpm_arg(b, 0);
        size_t len = 0;
        const void *got = mac && mp_obj_type(mac) == MP_OBJ_BIN ? mp_obj_bin(mac, &len) : NULL;
        if (got && len == sizeof want && mp__consttime_equal(got, want, sizeof want)) {
            p->authed = true;
            s->npending--;
            mp_obj_t *r = mp_obj_new_array();
            mpm_send(s->sock, id, idlen, MPM_WELCOME, r);
            mp_obj_destroy(&r);
        } else {
            mp__log(MP_LOG_WARN, WHO, "a client gave a wrong authentication key; refused");
            memset(p->nonce, 0, sizeof p->nonce); /* one try per HELLO */
            deny(s, id, idlen, "authentication failed: wrong key");
        }
    } else if (cmd == MPM_CALL && p && p->authed) {
        int64_t extra = 0;
        mp_obj_t *res = NULL, *r = mp_obj_new_array();
        int rc = execute(s, b, &res, &extra);
        __atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED);
        mp_obj_array_add(r, mp_obj_new_int(mpm_arg_int(b, 0)));
        mp_obj_array_add(r, mp_obj_new_int(rc));
        mp_obj_array_add(r, res ? res : mp_obj_new_nil());
        mp_obj_array_add(r, mp_obj_new_int(extra));
        if (mpm_send(s->sock, id, idlen, MPM_REPLY, r) == MP_E2BIG) {
            /* a result over the message limit: said, not sent (a BATCH of
               gets: the client asks again in smaller batches) */
            mp_obj_destroy(&r);
            r = mp_obj_new_array();
            mp_obj_array_add(r, mp_obj_new_int(mpm_arg_int(b, 0)));
            mp_obj_array_add(r, mp_obj_new_int(MP_E2BIG));
            mp_obj_array_add(r, mp_obj_new_nil());
            mp_obj_array_add(r, mp_obj_new_int(0));
            mpm_send(s->sock, id, idlen, MPM_REPLY, r);
        }
        mp_obj_destroy(&r);
    } else if (cmd == MPM_HELLO) {
        deny(s, id, idlen, "refused: the server has too many live peers");
    } else {
        deny(s, id, idlen, "not authenticated");
    }
    mp_obj_destroy(&b);
}

static void *server_thread(void *arg)
{
    mp_manager_server_t *s = arg;
    for (;;) {
        zmq_pollitem_t items[2] = {{s->sock, 0, ZMQ_POLLIN, 0}, {NULL, s->stop_fd, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0 && errno != EINTR)
            break;
        if (items[1].revents)
            break;
        for (int k = 0; k < 1000 && (items[0].revents & ZMQ_POLLIN); k++) {
            mpp_msg_t m;
            if (mpp_recv(s->sock, &m, ZMQ_DONTWAIT))
                break;
            on_message(s, &m);
            mpp_close(&m);
        }
    }
    return NULL;
}

int mp_manager_serve(mp_manager_t *m, const char *endpoint, const void *key, size_t keylen,
                     mp_manager_server_t **server_p)
{
    const char *env = getenv("MP_INSECURE");
    mp_manager_serve_options_t o = {.endpoint = endpoint,
                                    .authkey = key,
                                    .keylen = keylen,
                                    .insecure = env && strcmp(env, "1") == 0};
    return mp_manager_serve_with(m, &o, server_p);
}

/* CURVE on: the certificate, the process's ZAP handler (whose context the
   socket then uses) and the managers/ list, before the bind. */
static int start_curve(mp_manager_server_t *s, const mp_manager_serve_options_t *o)
{
    char why[1024], path[4096];
    int rc = mp__curve_load(o->curve_key, NULL, &s->curve, why, sizeof why);
    if (!rc && !(rc = mp__curve_auth_acquire(o->allow_dir, &s->ctx, why, sizeof why)))
        s->auth = true;
    if (rc) {
        mp__log(MP_LOG_ERROR, WHO, "%s", why);
        return rc;
    }
    snprintf(path, sizeof path, "%s/managers", o->allow_dir);
    if (!(s->admit = zcertstore_new(path)))
        return MP_ENOMEM;
    mp__log(MP_LOG_INFO, WHO, "CURVE on: server key %s, allow-list %s", s->curve.public_txt, path);
    return 0;
}

static int check_options(const mp_manager_serve_options_t *o)
{
    if (!o->endpoint || (!o->authkey && o->keylen))
        return MP_EINVAL;
    if (!o->curve_key != !o->allow_dir) {
        mp__log(MP_LOG_ERROR, WHO,
                "CURVE needs both the server's key (curve_key) and the allow-list directory "
                "(allow_dir)");
        return MP_EINVAL;
    }
    return mp__curve_policy(WHO, o->endpoint, o->curve_key != NULL, o->insecure,
                            "curve_key and allow_dir");
}

int mp_manager_serve_with(mp_manager_t *m, const mp_manager_serve_options_t *o,
                          mp_manager_server_t **server_p)
{
    if (!m || !o || !server_p)
        return MP_EINVAL;
    *server_p = NULL;
    int rc = check_options(o);
    if (rc)
        return rc;
    mp_manager_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return MP_ENOMEM;
    s->m = m;
    s->stop_fd = -1;
    s->keylen = o->keylen;
    s->key = malloc(o->keylen + 1);
    s->peers = calloc(MAX_PEERS, sizeof *s->peers);
    rc = s->key && s->peers ? 0 : MP_ENOMEM;
    if (!rc && o->keylen)
        memcpy(s->key, o->authkey, o->keylen);
    if (!rc && (s->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
        rc = -errno;
    if (!rc && o->curve_key)
        rc = start_curve(s, o);
    else if (!rc && !(s->ctx = zmq_ctx_new()))
        rc = MP_ENOMEM;
    if (!rc && (!(s->sock = zmq_socket(s->ctx, ZMQ_ROUTER)) ||
                mpp_socket_setup(s->sock, MPP_DEFAULT_MAX_MSG) ||
                (s->curve.on && mp__curve_server(s->sock, &s->curve))))
        rc = MP_ENOMEM;
    if (!rc && zmq_bind(s->sock, o->endpoint) < 0) {
        rc = -errno;
        mp__log(MP_LOG_ERROR, WHO, "cannot bind %s: %s", o->endpoint, zmq_strerror(errno));
    }
    size_t len = sizeof s->endpoint;
    if (!rc && zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len) < 0)
        rc = -errno;
    if (!rc && (rc = -pthread_create(&s->thread, NULL, server_thread, s)) == 0) {
        *server_p = s;
        return 0;
    }
    s->thread = 0;
    mp_manager_server_stop(&s);
    return rc;
}

int mp_manager_server_stats(const mp_manager_server_t *s, uint64_t *calls, uint64_t *refused)
{
    if (!s)
        return MP_EINVAL;
    if (calls)
        *calls = __atomic_load_n(&s->calls, __ATOMIC_RELAXED);
    if (refused)
        *refused = __atomic_load_n(&s->refused, __ATOMIC_RELAXED);
    return 0;
}

const char *mp_manager_server_endpoint(const mp_manager_server_t *s)
{
    return s ? s->endpoint : NULL;
}

void mp_manager_server_stop(mp_manager_server_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    mp_manager_server_t *s = *s_p;
    if (s->thread) {
        uint64_t one = 1;
        ssize_t w = write(s->stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(s->thread, NULL);
    }
    if (s->sock)
        zmq_close(s->sock);
    if (s->auth)
        mp__curve_auth_release(); /* the context is czmq's */
    else if (s->ctx)
        zmq_ctx_term(s->ctx);
    zcertstore_destroy(&s->admit);
    memset(&s->curve, 0, sizeof s->curve);
    if (strncmp(s->endpoint, "ipc://", 6) == 0 && s->endpoint[6] != '@')
        unlink(s->endpoint + 6); /* libzmq does not always remove it */
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    if (s->key)
        memset(s->key, 0, s->keylen);
    free(s->key);
    free(s->peers);
    free(s);
    *s_p = NULL;
}
