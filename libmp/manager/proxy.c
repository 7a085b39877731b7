/*  proxy.c - the remote manager's client (docs/MANAGER.md section 6,
    MPM/1): a connection to a served manager (serve.c), the proxies it
    hands out, which the mp_mdict_* / mp_mlist_* calls send through
    mr_call, and remote queues.

    One DEALER socket per connection, one call at a time (the mutex). A
    call that times out reopens the socket, so that a late server does not
    run what is still queued; a DENIED (the server forgot us) makes it
    authenticate again and retry once.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "base/hmac.h"
#include "base/log.h"
#include "codec/curve.h"
#include "manager/proxy.h"
#include "manager/stream.h"
#include "mp/error.h"

#define DEFAULT_TIMEOUT_MS 5000

typedef struct {
    struct mp_mobj head; /* type MO_PROXY | kind, slot, data: the object's gen (a
                            queue's: its id when reached by reference, else 0) */
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
    mp__curve_t curve;
    mp__curve_watch_t watch; /* a refused handshake: MP_EAUTH at once, not a timeout */
    /* mpm+tcp:// and mpm+ipc:// (stream.h): a socket of our own, or -1 */
    bool stream;
    int fd, spin_us;
    mpms_in_t in;
};

/* ---- connection and calls -------------------------------------------------------- */

/* A new connection: over a stream, closes the old one (the next handshake
   connects); over ZeroMQ, a new socket. */
static int open_socket(mp_remote_t *r)
{
    r->authed = false;
    if (r->stream) {
        if (r->fd >= 0)
            close(r->fd);
        r->fd = -1;
        mpms_in_free(&r->in);
        return 0;
    }
    mp__curve_unwatch(&r->watch);
    if (r->sock)
        zmq_close(r->sock); /* linger 0: what it still queued is dropped */
    r->authed = false;
    r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
    if (!r->sock || mpp_socket_setup(r->sock, MPP_DEFAULT_MAX_MSG) ||
        (r->curve.on && mp__curve_client(r->sock, &r->curve)) ||
        mp__curve_watch(r->ctx, r->sock, &r->watch))
        return MP_ENOMEM;
    return zmq_connect(r->sock, r->endpoint) < 0 ? -errno : 0;
}

/* Waits until deadline for a message; 0 with cmd and body, MP_EAUTH (the
   server refused the handshake), or MP_EMANAGERLOST. */
static int wait_message(mp_remote_t *r, uint64_t deadline, uint8_t *cmd, mp_obj_t **body)
{
    if (r->stream) { /* the connection's end or a timeout: the server is lost */
        int rc = r->fd >= 0 ? mpms_wait(&r->in, r->fd, deadline, r->spin_us, cmd, body)
                            : MP_EMANAGERLOST;
        if (rc == MP_EBADMSG)
            mp__log(MP_LOG_WARN, "mp-remote", "%s sent a malformed message", r->endpoint);
        return rc ? MP_EMANAGERLOST : 0;
    }
    for (;;) {
        uint64_t now = mp__now_ns();
        if (now >= deadline)
            return MP_EMANAGERLOST;
        zmq_pollitem_t items[2] = {{r->sock, 0, ZMQ_POLLIN, 0}, {r->watch.pair, 0, ZMQ_POLLIN, 0}};
        long ms = (long)((deadline - now + 999999) / 1000000);
        if (zmq_poll(items, 2, ms) < 0 && errno != EINTR)
            return MP_EMANAGERLOST;
        if ((items[1].revents & ZMQ_POLLIN) && mp__curve_refused(&r->watch)) {
            mp__log(MP_LOG_WARN, "mp-remote", "%s refused the handshake: it %s", r->endpoint,
                    r->watch.why);
            return MP_EAUTH;
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        mpp_msg_t m;
        if (mpp_recv(r->sock, &m, ZMQ_DONTWAIT))
            continue;
        int bad = mpm_parse(&m, 0, cmd, body);
        mpp_close(&m);
        if (!bad)
            return 0;
    }
}

static int send_message(mp_remote_t *r, uint8_t cmd, const mp_obj_t *body, uint64_t deadline)
{
    if (!r->stream)
        return mpm_send(r->sock, NULL, 0, cmd, body);
    int rc = r->fd >= 0 ? mpms_send(r->fd, cmd, body, deadline) : MP_EMANAGERLOST;
    return rc == MP_E2BIG || rc == MP_ENOMEM || rc == 0 ? rc : MP_EMANAGERLOST;
}

/* Over a stream: a connection, tried again every 10 ms until deadline
   (a server restarting comes back). 0 or MP_EMANAGERLOST. */
static int stream_connect(mp_remote_t *r, uint64_t deadline)
{
    if (r->fd >= 0) { /* one the server closed (it restarted) is replaced */
        int rc = mpms_fill(&r->in, r->fd);
        if (rc >= 0)
            return 0;
        open_socket(r);
    }
    for (;;) {
        int rc = mpms_connect(r->endpoint, deadline, &r->fd);
        if (!rc || rc == MP_EINVAL)
            return rc;
        uint64_t now = mp__now_ns();
        if (now + 10000000ull >= deadline)
            return MP_EMANAGERLOST;
        usleep(10000);
    }
}

static int handshake(mp_remote_t *r, uint64_t deadline)
{
    if (r->stream) {
        int rc = stream_connect(r, deadline);
        if (rc)
            return rc;
        r->in.limit = MPP_DEFAULT_MAX_MSG;
    }
    mp_obj_t *b = mp_obj_new_array(), *reply = NULL;
    uint8_t cmd = 0;
    int rc = b ? send_message(r, MPM_HELLO, b, deadline) : MP_ENOMEM;
    mp_obj_destroy(&b);
    while (!rc && !(rc = wait_message(r, deadline, &cmd, &reply)) && cmd != MPM_CHALLENGE &&
           cmd != MPM_DENIED)
        mp_obj_destroy(&reply);     /* a late answer to an earlier call */
    if (!rc && cmd == MPM_DENIED) { /* e.g. a CURVE key this server does not serve */
        mp_obj_destroy(&reply);
        return MP_EAUTH;
    }
    if (rc)
        return rc;
    mp_obj_t *nonce = mpm_arg(reply, 0);
    size_t len = 0;
    const void *n = nonce && mp_obj_type(nonce) == MP_OBJ_BIN ? mp_obj_bin(nonce, &len) : NULL;
    static const uint8_t zero[32];
    if (!n || len != 32 || memcmp(n, zero, 32) == 0) { /* no real server sends zeros */
        mp_obj_destroy(&reply);
        return MP_EBADMSG;
    }
    uint8_t mac[MP_SHA256_SIZE];
    mpm_auth_mac(r->key, r->keylen, n, mac);
    mp_obj_destroy(&reply);
    b = mp_obj_new_array();
    mp_obj_array_add(b, mp_obj_new_bin(mac, sizeof mac));
    rc = send_message(r, MPM_AUTH, b, deadline);
    mp_obj_destroy(&b);
    while (!rc && !(rc = wait_message(r, deadline, &cmd, &reply)) && cmd != MPM_WELCOME &&
           cmd != MPM_DENIED)
        mp_obj_destroy(&reply);
    mp_obj_destroy(&reply);
    if (rc)
        return rc;
    if (cmd == MPM_DENIED)
        return MP_EAUTH;
    r->authed = true;
    return 0;
}

/* A REPLY's body [id rc result extra]: four items, the rc and extra ints. */
static bool well_formed(const mp_obj_t *reply)
{
    const mp_obj_t *rc = mpm_arg(reply, 1), *extra = mpm_arg(reply, 3);
    return mp_obj_len(reply) >= 4 && rc && mp_obj_type(rc) == MP_OBJ_INT && extra &&
           (mp_obj_type(extra) == MP_OBJ_INT || mp_obj_type(extra) == MP_OBJ_UINT);
}

/* One call: [id, op, address, args...] -> rc, *result (may be NULL), *extra. */
static int call(mp_remote_t *r, int op, int64_t address, mp_obj_t *args[3], int nargs,
                mp_obj_t **result, int64_t *extra)
{
    pthread_mutex_lock(&r->mutex);
    uint64_t deadline = mp__now_ns() + (uint64_t)r->timeout_ms * 1000000ull;
    int rc = 0;
    if (r->stream && r->authed && r->fd >= 0 && mpms_fill(&r->in, r->fd) < 0)
        open_socket(r); /* the server closed it (it restarted): a new one */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!r->authed && (rc = handshake(r, deadline)))
            break;
        uint64_t id = ++r->next_id;
        mp_obj_t *b = mp_obj_new_array();
        mp_obj_array_add(b, mp_obj_new_uint(id));
        mp_obj_array_add(b, mp_obj_new_int(op));
        mp_obj_array_add(b, mp_obj_new_int(address));
        for (int i = 0; i < nargs; i++)
            mp_obj_array_add(b, args[i] ? mp_obj_dup(args[i]) : mp_obj_new_nil());
        rc = send_message(r, MPM_CALL, b, deadline);
        mp_obj_destroy(&b);
        uint8_t cmd = 0;
        mp_obj_t *reply = NULL;
        while (!rc && !(rc = wait_message(r, deadline, &cmd, &reply))) {
            if (cmd == MPM_DENIED) /* the server forgot us (restarted): once more */
                break;
            if (cmd == MPM_REPLY && (uint64_t)mpm_arg_int(reply, 0) == id && well_formed(reply))
                break;
            mp_obj_destroy(&reply); /* a late reply to a call that timed out */
        }
        if (rc)
            break;
        if (cmd == MPM_DENIED) {
            mp_obj_destroy(&reply);
            r->authed = false;
            rc = MP_EAUTH;
            continue;
        }
        int64_t code = mpm_arg_int(reply, 1);
        /* the server's code: 0, 1 (a yes, e.g. contains), an errno or a
           libmp code; anything else is a malformed reply, not a success */
        rc = code >= -5000 && code <= 1 ? (int)code : MP_EBADMSG;
        if (extra)
            *extra = mpm_arg_int(reply, 3);
        mp_obj_t *res = mpm_arg(reply, 2);
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
    /* the address (MANAGER.md 6.1): an object's slot and gen, which the
       server checks; a named queue's number, or minus a queue's id */
    int64_t address = kind != MO_QUEUE ? (int64_t)p->head.slot | (int64_t)p->head.data << 16
                      : p->head.data   ? -(int64_t)p->head.data
                                       : (int64_t)p->head.slot;
    return call(p->remote, op, address, args, n, result, extra);
}

/* One BATCH of m sub-calls op(a0[i], a1[i]) on address: its REPLY's
   entries into results and rcs. */
static int call_batch(proxy_t *p, int op, int64_t address, size_t m, const mp_obj_t *const *a0,
                      const mp_obj_t *const *a1, mp_obj_t **results, int *rcs)
{
    mp_obj_t *subs = mp_obj_new_array(), *res = NULL;
    int bad = !subs;
    for (size_t i = 0; i < m && !bad; i++) {
        mp_obj_t *b = mp_obj_new_array();
        /* each add takes its item, also when it fails */
        bad |= mp_obj_array_add(b, mp_obj_new_int(0)) != 0;
        bad |= mp_obj_array_add(b, mp_obj_new_int(op)) != 0;
        bad |= mp_obj_array_add(b, mp_obj_new_int(address)) != 0;
        bad |= mp_obj_array_add(b, mp_obj_dup(a0[i])) != 0;
        if (a1)
            bad |= mp_obj_array_add(b, mp_obj_dup(a1[i])) != 0;
        bad |= mp_obj_array_add(subs, b) != 0;
    }
    mp_obj_t *args[3] = {subs, NULL, NULL};
    int rc = bad ? MP_ENOMEM : call(p->remote, MR_BATCH, address, args, 1, &res, NULL);
    mp_obj_destroy(&subs);
    if (!rc && (!res || mp_obj_type(res) != MP_OBJ_ARRAY || mp_obj_len(res) != m))
        rc = MP_EBADMSG;
    for (size_t i = 0; !rc && i < m; i++) { /* [rc, result, extra], checked as a REPLY is */
        const mp_obj_t *one = mp_obj_array_at(res, i);
        const mp_obj_t *code = one && mp_obj_type(one) == MP_OBJ_ARRAY && mp_obj_len(one) >= 3
                                   ? mp_obj_array_at(one, 0)
                                   : NULL;
        if (!code || mp_obj_type(code) != MP_OBJ_INT || mp_obj_int(code) < -5000 ||
            mp_obj_int(code) > 1) {
            rc = MP_EBADMSG;
            break;
        }
        rcs[i] = (int)mp_obj_int(code);
        const mp_obj_t *v = mp_obj_array_at(one, 1);
        if (results && rcs[i] == 0 && v && mp_obj_type(v) != MP_OBJ_NIL &&
            !(results[i] = mp_obj_dup(v)))
            rcs[i] = MP_ENOMEM;
    }
    mp_obj_destroy(&res);
    return rc;
}

int mr_call_many(struct mp_mobj *o, int op, size_t n, const mp_obj_t *const *a0,
                 const mp_obj_t *const *a1, mp_obj_t **results, int *rcs)
{
    proxy_t *p = (proxy_t *)o;
    uint32_t kind = o->type & ~(uint32_t)MO_PROXY;
    if ((kind != MO_DICT && kind != MO_NS) || op >= MR_Q_PUT || (!a0 && n) || !rcs)
        return MP_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!a0[i] || (a1 && !a1[i])) /* as the single calls: no NULL key or value */
            return MP_EINVAL;
    int64_t address = (int64_t)p->head.slot | (int64_t)p->head.data << 16;
    size_t m = MR_BATCH_MAX;
    for (size_t at = 0; at < n;) {
        m = m < n - at ? m : n - at;
        int rc = call_batch(p, op, address, m, a0 + at, a1 ? a1 + at : NULL,
                            results ? results + at : NULL, rcs + at);
        if (rc == MP_E2BIG && m > 1) { /* over the message limit: the same in halves */
            m /= 2;
            continue;
        }
        if (rc) { /* what was not answered carries the error */
            for (size_t i = at; i < n; i++)
                rcs[i] = rc;
            return rc;
        }
        at += m;
    }
    return 0;
}

static int load_curve(mp_remote_t *r, const mp_remote_options_t *o)
{
    char why[1024];
    int rc = o->curve_key && o->curve_server_key
                 ? mp__curve_load(o->curve_key, o->curve_server_key, &r->curve, why, sizeof why)
                 : MP_EINVAL;
    if (rc == MP_EINVAL && !(o->curve_key && o->curve_server_key))
        snprintf(why, sizeof why, "CURVE needs both curve_key and curve_server_key");
    if (rc)
        mp__log(MP_LOG_ERROR, "mp-remote", "%s", why);
    return rc;
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
    r->stream = mpms_is_stream(endpoint);
    r->fd = -1;
    r->spin_us = !o || !o->spin_us ? MPMS_SPIN_DEFAULT_US : o->spin_us < 0 ? 0 : o->spin_us;
    r->keylen = keylen;
    r->key = malloc(keylen + 1);
    int rc = r->key ? 0 : MP_ENOMEM;
    if (!rc && keylen)
        memcpy(r->key, key, keylen);
    if (!rc && o && (o->curve_key || o->curve_server_key))
        rc = r->stream ? MP_EINVAL : load_curve(r, o); /* CURVE is ZeroMQ's */
    if (!rc)
        rc = r->stream ? 0 : (r->ctx = zmq_ctx_new()) ? open_socket(r) : MP_ENOMEM;
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
    mp__curve_unwatch(&r->watch);
    if (r->sock)
        zmq_close(r->sock);
    if (r->fd >= 0)
        close(r->fd);
    mpms_in_free(&r->in);
    if (r->ctx)
        zmq_ctx_term(r->ctx);
    memset(&r->curve, 0, sizeof r->curve);
    if (r->key)
        memset(r->key, 0, r->keylen);
    free(r->key);
    pthread_mutex_destroy(&r->mutex);
    free(r);
    *remote_p = NULL;
}

/* ---- proxies --------------------------------------------------------------------- */

/* The proxy of (kind, slot, data) on r: the one handed out before, else a
   new one, freed with the connection. */
static int add_proxy(mp_remote_t *r, uint32_t kind, uint32_t slot, uint32_t data,
                     struct mp_mobj **o_p)
{
    struct mp_mobj head = {.type = MO_PROXY | kind, .slot = slot, .data = data};
    int rc = 0;
    pthread_mutex_lock(&r->mutex);
    for (size_t i = 0; i < r->nproxies; i++)
        if (!memcmp(&r->proxies[i]->head, &head, sizeof head)) {
            *o_p = &r->proxies[i]->head;
            pthread_mutex_unlock(&r->mutex);
            return 0;
        }
    proxy_t *p = calloc(1, sizeof *p);
    if (p && r->nproxies == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        proxy_t **grown = realloc(r->proxies, cap * sizeof *grown);
        if (grown) {
            r->proxies = grown;
            r->cap = cap;
        }
    }
    if (p && r->nproxies < r->cap) {
        p->head = head;
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

static int remote_open(mp_remote_t *r, uint32_t kind, const char *name, struct mp_mobj **o_p)
{
    if (!r || !name || !o_p)
        return MP_EINVAL;
    *o_p = NULL;
    mp_obj_t *nm = mp_obj_new_str(name), *args[3] = {NULL, nm, NULL};
    int64_t at = 0;
    int rc = nm ? call(r, MR_OPEN, kind, args, 2, NULL, &at) : MP_ENOMEM;
    mp_obj_destroy(&nm);
    if (rc)
        return rc;
    if (kind == MO_QUEUE) /* its number */
        return add_proxy(r, kind, (uint32_t)at, 0, o_p);
    if (at < 1 || (at & 0xffff) > MA_MAX_OBJECTS || at >> 48) /* slot | gen << 16 */
        return MP_EBADMSG;
    return add_proxy(r, kind, (uint32_t)(at & 0xffff), (uint32_t)(at >> 16), o_p);
}

int mr_proxy(struct mp_mobj *via, const ma_ref_t *ref, struct mp_mobj **o_p)
{
    mp_remote_t *r = ((proxy_t *)via)->remote;
    return add_proxy(r, ref->kind, ref->slot, ref->gen, o_p);
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

/* ---- remote queues --------------------------------------------------------------- */

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
