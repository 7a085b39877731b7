/*  mremote.c - remote managers (docs/MANAGER.md section 6, MPM/1): a server
    thread that runs clients' calls on a local manager, and the client side
    that the mp_mdict_* / mp_mlist_* calls use when given a proxy.

    Frames as MPP/1 (mpp.h): [routing id] signature "MPM01", a one-byte
    command, a msgpack body. The server executes a CALL through the public
    local API on its own view of the arena, so remote and local callers
    share one lock and one set of rules.
*/
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>
#include <zmq.h>

#include "base/hmac.h"
#include "base/log.h"
#include "manager/manager_impl.h"
#include "mp/error.h"
#include "codec/mpp.h"

#define WHO "mp-manager"
#define SIG "MPM01"
#define AUTH_TAG "mp-manager-client"
#define MAX_PEERS 4096
#define DEFAULT_TIMEOUT_MS 5000

enum { C_HELLO = 1, C_AUTH, C_CALL, S_CHALLENGE = 0x81, S_WELCOME, S_DENIED, S_REPLY };

/* ---- msgpack bodies -------------------------------------------------------------- */

static int send_body(void *sock, const void *id, size_t idlen, uint8_t cmd, const mp_obj_t *body)
{
    char *data = NULL;
    size_t size = 0;
    int rc = mp_obj_pack(body, &data, &size);
    if (!rc)
        rc = mpp_send(sock, id, idlen, SIG, cmd, data, size, NULL, 0, ZMQ_DONTWAIT);
    free(data);
    return rc;
}

/* Reads frames [sig, cmd, body] from m starting at frame `at`: the command
   and the decoded body (an array). -1 when malformed. */
static int parse(mpp_msg_t *m, int at, uint8_t *cmd, mp_obj_t **body)
{
    *body = NULL;
    if (m->too_many || m->n != at + 3 || mpp_size(m, at) != 5 || memcmp(mpp_data(m, at), SIG, 5) ||
        mpp_size(m, at + 1) != 1)
        return -1;
    *cmd = mpp_data(m, at + 1)[0];
    if (mp_obj_unpack(mpp_data(m, at + 2), mpp_size(m, at + 2), body) ||
        mp_obj_type(*body) != MP_OBJ_ARRAY) {
        mp_obj_destroy(body);
        return -1;
    }
    return 0;
}

static mp_obj_t *arg(const mp_obj_t *body, size_t i)
{
    return i < mp_obj_len(body) ? mp_obj_array_at(body, i) : NULL;
}

static int64_t arg_int(const mp_obj_t *body, size_t i)
{
    mp_obj_t *a = arg(body, i);
    return a && (mp_obj_type(a) == MP_OBJ_INT || mp_obj_type(a) == MP_OBJ_UINT) ? mp_obj_int(a)
                                                                                : -1;
}

/* ---- server ---------------------------------------------------------------------- */

typedef struct {
    uint8_t id[256];
    size_t idlen;
    bool authed;
    uint8_t nonce[32];
    uint64_t seen;
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
    size_t npeers;
    uint64_t clock;
};

static peer_t *peer_get(mp_manager_server_t *s, const void *id, size_t idlen, bool add)
{
    for (size_t i = 0; i < s->npeers; i++)
        if (s->peers[i].idlen == idlen && memcmp(s->peers[i].id, id, idlen) == 0) {
            s->peers[i].seen = ++s->clock;
            return &s->peers[i];
        }
    if (!add || idlen > sizeof s->peers[0].id)
        return NULL;
    size_t at = s->npeers;
    if (at == MAX_PEERS) { /* forget the least recently seen */
        at = 0;
        for (size_t i = 1; i < s->npeers; i++)
            if (s->peers[i].seen < s->peers[at].seen)
                at = i;
    } else {
        s->npeers++;
    }
    peer_t *p = &s->peers[at];
    memset(p, 0, sizeof *p);
    memcpy(p->id, id, idlen);
    p->idlen = idlen;
    p->seen = ++s->clock;
    return p;
}

static void deny(mp_manager_server_t *s, const void *id, size_t idlen, const char *why)
{
    mp_obj_t *b = mp_obj_new_array();
    mp_obj_array_add(b, mp_obj_new_str(why));
    send_body(s->sock, id, idlen, S_DENIED, b);
    mp_obj_destroy(&b);
}

/* The object a CALL names, if it exists and has a type the op accepts. */
static struct mp_mobj *object_at(mp_manager_server_t *s, int64_t slot, bool list)
{
    ma_arena_t *a = s->m->arena;
    if (slot < 1 || slot > MA_MAX_OBJECTS)
        return NULL;
    uint32_t off = __atomic_load_n(&a->objects[slot], __ATOMIC_ACQUIRE);
    if (!off)
        return NULL;
    struct mp_mobj *o = ma_at(a, off);
    return (o->type == MO_LIST) == list ? o : NULL;
}

/* Runs one CALL body [id, op, slot, args...]; fills rc, result, extra. */
static void execute(mp_manager_server_t *s, const mp_obj_t *b, int *rc_p, mp_obj_t **res,
                    int64_t *extra)
{
    int64_t op = arg_int(b, 1), slot = arg_int(b, 2);
    mp_obj_t *a0 = arg(b, 3), *a1 = arg(b, 4), *a2 = arg(b, 5);
    int64_t i0 = arg_int(b, 3), i1 = arg_int(b, 4);
    *res = NULL;
    *extra = 0;
    if (op == MR_OPEN) { /* [id, OPEN, kind, name] */
        const char *name = a1 && mp_obj_type(a1) == MP_OBJ_STR ? mp_obj_str(a1, NULL) : NULL;
        struct mp_mobj *o = NULL;
        int rc = MP_EINVAL;
        if (name && slot == MO_DICT)
            rc = mp_manager_named_dict(s->m, name, &o);
        else if (name && slot == MO_LIST)
            rc = mp_manager_named_list(s->m, name, &o);
        else if (name && slot == MO_NS)
            rc = mp_manager_named_namespace(s->m, name, &o);
        if (name && slot == MO_QUEUE) {
            *extra = ma_queue_named(s->m, name);
            *rc_p = *extra ? 0 : MP_ENOMEM;
            return;
        }
        *extra = rc ? 0 : o->slot;
        *rc_p = rc;
        return;
    }
    if (op == MR_Q_PUT || op == MR_Q_GET || op == MR_Q_QSIZE) {
        /* never blocks the server: the client waits and tries again */
        mp_queue_t *q = ma_queue_at(s->m, slot);
        *rc_p = !q               ? MP_EINVAL
                : op == MR_Q_PUT ? mp_queue_put(q, a0, 0)
                : op == MR_Q_GET ? mp_queue_get(q, res, 0)
                                 : 0;
        if (q && op == MR_Q_QSIZE)
            *extra = (int64_t)mp_queue_qsize(q);
        return;
    }
    bool list = op >= MR_L_FIRST;
    struct mp_mobj *o = object_at(s, slot, list);
    size_t n = 0;
    bool flag = false;
    int rc = MP_ENOENT;
    if (!o) {
        *rc_p = MP_EINVAL;
        return;
    }
    switch (op) {
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
    *rc_p = rc;
}

static void on_message(mp_manager_server_t *s, mpp_msg_t *m)
{
    uint8_t cmd;
    mp_obj_t *b;
    if (m->n < 1 || parse(m, 1, &cmd, &b)) {
        mp__log(MP_LOG_WARN, WHO, "malformed message; dropped");
        return;
    }
    const void *id = mpp_data(m, 0);
    size_t idlen = mpp_size(m, 0);
    peer_t *p = peer_get(s, id, idlen, cmd == C_HELLO);
    if (cmd == C_HELLO && p) {
        p->authed = false;
        mp_obj_t *r = mp_obj_new_array();
        if (getrandom(p->nonce, sizeof p->nonce, 0) == (ssize_t)sizeof p->nonce) {
            mp_obj_array_add(r, mp_obj_new_bin(p->nonce, sizeof p->nonce));
            send_body(s->sock, id, idlen, S_CHALLENGE, r);
        }
        mp_obj_destroy(&r);
    } else if (cmd == C_AUTH && p && !p->authed) {
        uint8_t msg[32 + sizeof AUTH_TAG], want[MP_SHA256_SIZE];
        memcpy(msg, p->nonce, 32);
        memcpy(msg + 32, AUTH_TAG, sizeof AUTH_TAG - 1);
        mp__hmac_sha256(s->key, s->keylen, msg, 32 + sizeof AUTH_TAG - 1, want);
        mp_obj_t *mac = arg(b, 0);
        size_t len = 0;
        const void *got = mac && mp_obj_type(mac) == MP_OBJ_BIN ? mp_obj_bin(mac, &len) : NULL;
        if (got && len == sizeof want && mp__consttime_equal(got, want, sizeof want)) {
            p->authed = true;
            mp_obj_t *r = mp_obj_new_array();
            send_body(s->sock, id, idlen, S_WELCOME, r);
            mp_obj_destroy(&r);
        } else {
            mp__log(MP_LOG_WARN, WHO, "a client gave a wrong authentication key; refused");
            memset(p->nonce, 0, sizeof p->nonce); /* one try per HELLO */
            deny(s, id, idlen, "authentication failed: wrong key");
        }
    } else if (cmd == C_CALL && p && p->authed) {
        int rc = 0;
        int64_t extra = 0;
        mp_obj_t *res = NULL, *r = mp_obj_new_array();
        execute(s, b, &rc, &res, &extra);
        mp_obj_array_add(r, mp_obj_new_int(arg_int(b, 0)));
        mp_obj_array_add(r, mp_obj_new_int(rc));
        mp_obj_array_add(r, res ? res : mp_obj_new_nil());
        mp_obj_array_add(r, mp_obj_new_int(extra));
        send_body(s->sock, id, idlen, S_REPLY, r);
        mp_obj_destroy(&r);
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
    if (!m || !endpoint || !server_p || (!key && keylen))
        return MP_EINVAL;
    *server_p = NULL;
    mp_manager_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return MP_ENOMEM;
    s->m = m;
    s->stop_fd = -1;
    s->keylen = keylen;
    s->key = malloc(keylen + 1);
    s->peers = calloc(MAX_PEERS, sizeof *s->peers);
    int rc = s->key && s->peers ? 0 : MP_ENOMEM;
    if (!rc && keylen)
        memcpy(s->key, key, keylen);
    if (!rc && (s->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
        rc = -errno;
    if (!rc && (!(s->ctx = zmq_ctx_new()) || !(s->sock = zmq_socket(s->ctx, ZMQ_ROUTER)) ||
                mpp_socket_setup(s->sock, MPP_DEFAULT_MAX_MSG)))
        rc = MP_ENOMEM;
    if (!rc && zmq_bind(s->sock, endpoint) < 0) {
        rc = -errno;
        mp__log(MP_LOG_ERROR, WHO, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
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
    if (s->ctx)
        zmq_ctx_term(s->ctx);
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

/* ---- client ---------------------------------------------------------------------- */

typedef struct {
    struct mp_mobj head; /* type MO_PROXY | kind, slot */
    mp_remote_t *remote;
} proxy_t;

struct mp_remote {
    pthread_mutex_t mutex;
    void *ctx, *sock;
    char endpoint[256];
    uint8_t *key;
    size_t keylen;
    int timeout_ms;
    bool authed;
    uint64_t next_id;
    proxy_t **proxies;
    size_t nproxies, cap;
};

static int open_socket(mp_remote_t *r)
{
    if (r->sock)
        zmq_close(r->sock); /* linger 0: what it still queued is dropped */
    r->authed = false;
    r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
    if (!r->sock || mpp_socket_setup(r->sock, MPP_DEFAULT_MAX_MSG))
        return MP_ENOMEM;
    return zmq_connect(r->sock, r->endpoint) < 0 ? -errno : 0;
}

/* Waits until deadline for a message; 0 with cmd and body, or
   MP_EMANAGERLOST. */
static int wait_message(mp_remote_t *r, uint64_t deadline, uint8_t *cmd, mp_obj_t **body)
{
    for (;;) {
        uint64_t now = mp__now_ns();
        if (now >= deadline)
            return MP_EMANAGERLOST;
        zmq_pollitem_t item = {r->sock, 0, ZMQ_POLLIN, 0};
        long ms = (long)((deadline - now + 999999) / 1000000);
        if (zmq_poll(&item, 1, ms) < 0 && errno != EINTR)
            return MP_EMANAGERLOST;
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        mpp_msg_t m;
        if (mpp_recv(r->sock, &m, ZMQ_DONTWAIT))
            continue;
        int bad = parse(&m, 0, cmd, body);
        mpp_close(&m);
        if (!bad)
            return 0;
    }
}

static int handshake(mp_remote_t *r, uint64_t deadline)
{
    mp_obj_t *b = mp_obj_new_array(), *reply = NULL;
    uint8_t cmd = 0;
    int rc = b ? send_body(r->sock, NULL, 0, C_HELLO, b) : MP_ENOMEM;
    mp_obj_destroy(&b);
    while (!rc && !(rc = wait_message(r, deadline, &cmd, &reply)) && cmd != S_CHALLENGE)
        mp_obj_destroy(&reply); /* a late answer to an earlier call */
    if (rc)
        return rc;
    mp_obj_t *nonce = arg(reply, 0);
    size_t len = 0;
    const void *n = nonce && mp_obj_type(nonce) == MP_OBJ_BIN ? mp_obj_bin(nonce, &len) : NULL;
    if (!n || len != 32) {
        mp_obj_destroy(&reply);
        return MP_EBADMSG;
    }
    uint8_t msg[32 + sizeof AUTH_TAG], mac[MP_SHA256_SIZE];
    memcpy(msg, n, 32);
    memcpy(msg + 32, AUTH_TAG, sizeof AUTH_TAG - 1);
    mp_obj_destroy(&reply);
    mp__hmac_sha256(r->key, r->keylen, msg, 32 + sizeof AUTH_TAG - 1, mac);
    b = mp_obj_new_array();
    mp_obj_array_add(b, mp_obj_new_bin(mac, sizeof mac));
    rc = send_body(r->sock, NULL, 0, C_AUTH, b);
    mp_obj_destroy(&b);
    while (!rc && !(rc = wait_message(r, deadline, &cmd, &reply)) && cmd != S_WELCOME &&
           cmd != S_DENIED)
        mp_obj_destroy(&reply);
    mp_obj_destroy(&reply);
    if (rc)
        return rc;
    if (cmd == S_DENIED)
        return MP_EAUTH;
    r->authed = true;
    return 0;
}

/* One call: [id, op, slot, args...] -> rc, *result (may be NULL), *extra. */
static int call(mp_remote_t *r, int op, uint32_t slot, mp_obj_t *args[3], int nargs,
                mp_obj_t **result, int64_t *extra)
{
    pthread_mutex_lock(&r->mutex);
    uint64_t deadline = mp__now_ns() + (uint64_t)r->timeout_ms * 1000000ull;
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!r->authed && (rc = handshake(r, deadline)))
            break;
        uint64_t id = ++r->next_id;
        mp_obj_t *b = mp_obj_new_array();
        mp_obj_array_add(b, mp_obj_new_uint(id));
        mp_obj_array_add(b, mp_obj_new_int(op));
        mp_obj_array_add(b, mp_obj_new_uint(slot));
        for (int i = 0; i < nargs; i++)
            mp_obj_array_add(b, args[i] ? mp_obj_dup(args[i]) : mp_obj_new_nil());
        rc = send_body(r->sock, NULL, 0, C_CALL, b);
        mp_obj_destroy(&b);
        uint8_t cmd = 0;
        mp_obj_t *reply = NULL;
        while (!rc && !(rc = wait_message(r, deadline, &cmd, &reply))) {
            if (cmd == S_DENIED) /* the server forgot us (restarted): once more */
                break;
            if (cmd == S_REPLY && (uint64_t)arg_int(reply, 0) == id)
                break;
            mp_obj_destroy(&reply); /* a late reply to a call that timed out */
        }
        if (rc)
            break;
        if (cmd == S_DENIED) {
            mp_obj_destroy(&reply);
            r->authed = false;
            rc = MP_EAUTH;
            continue;
        }
        rc = (int)arg_int(reply, 1);
        if (extra)
            *extra = arg_int(reply, 3);
        mp_obj_t *res = arg(reply, 2);
        if (result && rc >= 0 && res && mp_obj_type(res) != MP_OBJ_NIL)
            *result = mp_obj_dup(res);
        mp_obj_destroy(&reply);
        break;
    }
    if (rc == MP_EMANAGERLOST)
        open_socket(r); /* drop what is still queued: a late server must not run it */
    pthread_mutex_unlock(&r->mutex);
    return rc;
}

int mr_call(struct mp_mobj *o, int op, const mp_obj_t *a0, const mp_obj_t *a1, const mp_obj_t *a2,
            mp_obj_t **result, int64_t *extra)
{
    proxy_t *p = (proxy_t *)o;
    uint32_t kind = o->type & ~(uint32_t)MO_PROXY;
    bool fits = op >= MR_L_FIRST ? kind == MO_LIST
                : op >= MR_Q_PUT ? kind == MO_QUEUE
                                 : kind == MO_DICT || kind == MO_NS;
    if (result)
        *result = NULL;
    if (!fits) /* e.g. a dict call on a list's proxy */
        return MP_EINVAL;
    mp_obj_t *args[3] = {(mp_obj_t *)a0, (mp_obj_t *)a1, (mp_obj_t *)a2};
    int n = a2 ? 3 : a1 ? 2 : a0 ? 1 : 0;
    if (result)
        *result = NULL;
    return call(p->remote, op, p->head.slot, args, n, result, extra);
}

int mp_manager_connect(const char *endpoint, const void *key, size_t keylen,
                       const mp_remote_options_t *o, mp_remote_t **remote_p)
{
    if (!endpoint || !remote_p || (!key && keylen) || strlen(endpoint) >= 256)
        return MP_EINVAL;
    *remote_p = NULL;
    mp_remote_t *r = calloc(1, sizeof *r);
    if (!r)
        return MP_ENOMEM;
    pthread_mutex_init(&r->mutex, NULL);
    strcpy(r->endpoint, endpoint);
    r->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    r->keylen = keylen;
    r->key = malloc(keylen + 1);
    int rc = r->key ? 0 : MP_ENOMEM;
    if (!rc && keylen)
        memcpy(r->key, key, keylen);
    if (!rc)
        rc = (r->ctx = zmq_ctx_new()) ? open_socket(r) : MP_ENOMEM;
    if (!rc) {
        pthread_mutex_lock(&r->mutex);
        rc = handshake(r, mp__now_ns() + (uint64_t)r->timeout_ms * 1000000ull);
        pthread_mutex_unlock(&r->mutex);
    }
    if (rc) {
        mp_remote_disconnect(&r);
        return rc;
    }
    *remote_p = r;
    return 0;
}

void mp_remote_disconnect(mp_remote_t **remote_p)
{
    if (!remote_p || !*remote_p)
        return;
    mp_remote_t *r = *remote_p;
    for (size_t i = 0; i < r->nproxies; i++)
        free(r->proxies[i]);
    free(r->proxies);
    if (r->sock)
        zmq_close(r->sock);
    if (r->ctx)
        zmq_ctx_term(r->ctx);
    if (r->key)
        memset(r->key, 0, r->keylen);
    free(r->key);
    pthread_mutex_destroy(&r->mutex);
    free(r);
    *remote_p = NULL;
}

static int remote_open(mp_remote_t *r, uint32_t kind, const char *name, struct mp_mobj **o_p)
{
    if (!r || !name || !o_p)
        return MP_EINVAL;
    *o_p = NULL;
    mp_obj_t *nm = mp_obj_new_str(name), *args[3] = {NULL, nm, NULL};
    int64_t slot = 0;
    int rc = nm ? call(r, MR_OPEN, kind, args, 2, NULL, &slot) : MP_ENOMEM;
    mp_obj_destroy(&nm);
    if (rc)
        return rc;
    proxy_t *p = calloc(1, sizeof *p);
    pthread_mutex_lock(&r->mutex);
    if (p && r->nproxies == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        proxy_t **grown = realloc(r->proxies, cap * sizeof *grown);
        if (grown) {
            r->proxies = grown;
            r->cap = cap;
        }
    }
    if (p && r->nproxies < r->cap) {
        p->head = (struct mp_mobj){.type = MO_PROXY | kind, .slot = (uint32_t)slot};
        p->remote = r;
        r->proxies[r->nproxies++] = p;
        *o_p = &p->head;
    } else {
        free(p);
        rc = MP_ENOMEM;
    }
    pthread_mutex_unlock(&r->mutex);
    return rc;
}

int mp_remote_dict(mp_remote_t *r, const char *name, mp_mdict_t **dict_p)
{
    return remote_open(r, MO_DICT, name, dict_p);
}

int mp_remote_list(mp_remote_t *r, const char *name, mp_mlist_t **list_p)
{
    return remote_open(r, MO_LIST, name, list_p);
}

int mp_remote_namespace(mp_remote_t *r, const char *name, mp_mns_t **ns_p)
{
    return remote_open(r, MO_NS, name, ns_p);
}

/* ---- remote queues ------------------------------------------------------------------ */

int mp_remote_queue(mp_remote_t *r, const char *name, mp_rqueue_t **queue_p)
{
    return remote_open(r, MO_QUEUE, name, (struct mp_mobj **)queue_p);
}

/* put or get: the server tries without waiting; until timeout_ms (< 0:
   forever) the client tries again, 1 ms apart at first, at most 20 ms. */
static int queue_op(mp_rqueue_t *rq, int op, const mp_obj_t *item, mp_obj_t **item_p,
                    int timeout_ms)
{
    struct mp_mobj *o = (struct mp_mobj *)rq;
    if (!mo_is_proxy(o) || (o->type & ~MO_PROXY) != MO_QUEUE)
        return MP_EINVAL;
    uint64_t deadline = mp__now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
    for (useconds_t pause = 1000;; pause = pause < 20000 ? pause * 2 : 20000) {
        int rc = mr_call(o, op, item, NULL, NULL, item_p, NULL);
        if (rc != (op == MR_Q_PUT ? MP_EFULL : MP_EEMPTY))
            return rc;
        if (timeout_ms >= 0 && mp__now_ns() + pause * 1000ull > deadline)
            return rc;
        usleep(pause);
    }
}

int mp_rqueue_put(mp_rqueue_t *rq, const mp_obj_t *item, int timeout_ms)
{
    return item ? queue_op(rq, MR_Q_PUT, item, NULL, timeout_ms) : MP_EINVAL;
}

int mp_rqueue_get(mp_rqueue_t *rq, mp_obj_t **item_p, int timeout_ms)
{
    return item_p ? queue_op(rq, MR_Q_GET, NULL, item_p, timeout_ms) : MP_EINVAL;
}

int mp_rqueue_qsize(mp_rqueue_t *rq, size_t *size_p)
{
    struct mp_mobj *o = (struct mp_mobj *)rq;
    if (!size_p || !mo_is_proxy(o) || (o->type & ~MO_PROXY) != MO_QUEUE)
        return MP_EINVAL;
    int64_t n = 0;
    int rc = mr_call(o, MR_Q_QSIZE, NULL, NULL, NULL, NULL, &n);
    *size_p = rc ? 0 : (size_t)n;
    return rc;
}
