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
#include <poll.h>
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
#include "manager/exec.h"
#include "manager/stream.h"
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
    bool challenged; /* a CHALLENGE went out and no AUTH has answered it */
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
    mp__ratelimit_t malformed_rl, refused_rl;
    /* mpm+tcp:// and mpm+ipc:// (stream.h): the listener and connections */
    int listen_fd;
    struct conn **conns;
    size_t nconns;
    uint64_t spin_ns;
    uint64_t accept_paused_until; /* out of descriptors: the listener rests */
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

/* Where an answer goes: a ZeroMQ peer (its routing id) or a stream
   connection. */
typedef struct conn conn_t;
typedef struct {
    const void *id;
    size_t idlen;
    conn_t *c;
    size_t *pending; /* the count of unauthenticated peers p is one of */
} to_t;

static int conn_send(mp_manager_server_t *s, conn_t *c, uint8_t cmd, const mp_obj_t *body);

static int answer(mp_manager_server_t *s, const to_t *to, uint8_t cmd, const mp_obj_t *body)
{
    return to->c ? conn_send(s, to->c, cmd, body) : mpm_send(s->sock, to->id, to->idlen, cmd, body);
}

static void deny(mp_manager_server_t *s, const to_t *to, const char *why)
{
    mp_obj_t *b = mp_obj_new_array();
    mp_obj_array_add(b, mp_obj_new_str(why));
    answer(s, to, MPM_DENIED, b);
    mp_obj_destroy(&b);
}

static void on_call(mp_manager_server_t *s, const to_t *to, const mp_obj_t *b)
{
    int64_t extra = 0;
    mp_obj_t *res = NULL, *r = mp_obj_new_array();
    int rc = mpm_execute(s->m, b, &res, &extra);
    __atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED);
    mp_obj_array_add(r, mp_obj_new_int(mpm_arg_int(b, 0)));
    mp_obj_array_add(r, mp_obj_new_int(rc));
    mp_obj_array_add(r, res ? res : mp_obj_new_nil());
    mp_obj_array_add(r, mp_obj_new_int(extra));
    if (answer(s, to, MPM_REPLY, r) == MP_E2BIG) {
        /* a result over the message limit: said, not sent (a BATCH of
           gets: the client asks again in smaller batches) */
        mp_obj_destroy(&r);
        r = mp_obj_new_array();
        mp_obj_array_add(r, mp_obj_new_int(mpm_arg_int(b, 0)));
        mp_obj_array_add(r, mp_obj_new_int(MP_E2BIG));
        mp_obj_array_add(r, mp_obj_new_nil());
        mp_obj_array_add(r, mp_obj_new_int(0));
        answer(s, to, MPM_REPLY, r);
    }
    mp_obj_destroy(&r);
}

/* A command from peer p (NULL: none, the table is full): the handshake,
   then calls. Both transports. */
static void on_command(mp_manager_server_t *s, peer_t *p, const to_t *to, uint8_t cmd,
                       const mp_obj_t *b)
{
    if (cmd == MPM_HELLO && p) {
        if (p->authed) /* authenticating again */
            (*to->pending)++;
        p->authed = false;
        mp_obj_t *r = mp_obj_new_array();
        if (getrandom(p->nonce, sizeof p->nonce, 0) == (ssize_t)sizeof p->nonce) {
            p->challenged = true;
            mp_obj_array_add(r, mp_obj_new_bin(p->nonce, sizeof p->nonce));
            answer(s, to, MPM_CHALLENGE, r);
        }
        mp_obj_destroy(&r);
    } else if (cmd == MPM_AUTH && p && !p->authed && p->challenged) {
        p->challenged = false; /* one try per HELLO */
        uint8_t want[MP_SHA256_SIZE];
        mpm_auth_mac(s->key, s->keylen, p->nonce, want);
        mp_obj_t *mac = mpm_arg(b, 0);
        size_t len = 0;
        const void *got = mac && mp_obj_type(mac) == MP_OBJ_BIN ? mp_obj_bin(mac, &len) : NULL;
        if (got && len == sizeof want && mp__consttime_equal(got, want, sizeof want)) {
            p->authed = true;
            (*to->pending)--;
            mp_obj_t *r = mp_obj_new_array();
            answer(s, to, MPM_WELCOME, r);
            mp_obj_destroy(&r);
        } else {
            mp__log(MP_LOG_WARN, WHO, "a client gave a wrong authentication key; refused");
            memset(p->nonce, 0, sizeof p->nonce); /* one try per HELLO */
            deny(s, to, "authentication failed: wrong key");
        }
    } else if (cmd == MPM_CALL && p && p->authed) {
        on_call(s, to, b);
    } else if (cmd == MPM_HELLO) {
        deny(s, to, "refused: the server has too many live peers");
    } else {
        deny(s, to, "not authenticated");
    }
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
    to_t to = {.id = mpp_data(m, 0), .idlen = mpp_size(m, 0), .pending = &s->npending};
    if (s->admit && !admitted(s, m)) {
        if (cmd == MPM_HELLO)
            deny(s, &to, "refused: this CURVE key is not in the manager's allow-list");
    } else {
        on_command(s, peer_get(s, to.id, to.idlen, cmd == MPM_HELLO), &to, cmd, b);
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

/* ---- MPM/1 over a plain stream (stream.h) ---------------------------------------- */

struct conn {
    int fd;
    mpms_in_t in;
    char *out;             /* what the socket has not taken yet: no more calls are */
    size_t outoff, outlen; /* read from this connection until it has */
    peer_t peer;
};

static void conn_close(mp_manager_server_t *s, size_t i)
{
    conn_t *c = s->conns[i];
    if (!c->peer.authed)
        s->npending--;
    close(c->fd);
    mpms_in_free(&c->in);
    free(c->out);
    free(c);
    s->conns[i] = s->conns[--s->nconns];
}

/* Writes what it can now and keeps the rest for POLLOUT. */
static int conn_send(mp_manager_server_t *s, conn_t *c, uint8_t cmd, const mp_obj_t *body)
{
    (void)s;
    uint8_t hdr[MPMS_HEADER];
    char *data;
    size_t size;
    int rc = mpms_frame(cmd, body, hdr, &data, &size);
    if (rc)
        return rc;
    size_t total = MPMS_HEADER + size, done = 0;
    if (c->outlen == c->outoff) {
        long w = mpms_write_some(c->fd, hdr, MPMS_HEADER, data, size);
        done = w > 0 ? (size_t)w : 0; /* an error shows at the next read */
    }
    if (done < total) {
        size_t keep = c->outlen - c->outoff, more = total - done;
        char *o = malloc(keep + more);
        if (!o) {
            free(data);
            return MP_ENOMEM;
        }
        if (keep)
            memcpy(o, c->out + c->outoff, keep);
        size_t at = keep, from = done > MPMS_HEADER ? done - MPMS_HEADER : 0;
        if (done < MPMS_HEADER) { /* what is left of the header, then the body */
            memcpy(o + at, hdr + done, MPMS_HEADER - done);
            at += MPMS_HEADER - done;
        }
        if (size > from)
            memcpy(o + at, data + from, size - from);
        free(c->out);
        c->out = o;
        c->outoff = 0;
        c->outlen = keep + more;
    }
    free(data);
    return 0;
}

/* The connection's pending output, written as far as the socket takes it. */
static int conn_flush(conn_t *c)
{
    long w = mpms_write_some(c->fd, NULL, 0, c->out + c->outoff, c->outlen - c->outoff);
    if (w < 0)
        return (int)w;
    c->outoff += (size_t)w;
    if (c->outoff == c->outlen) {
        free(c->out);
        c->out = NULL;
        c->outoff = c->outlen = 0;
    }
    return 0;
}

/* New connections: each a peer that has not authenticated. Past
   MAX_PENDING of those, the one silent longest is closed; past MAX_PEERS
   connections, the new one is. */
static void conn_accept(mp_manager_server_t *s)
{
    for (int k = 0; k < 64; k++) {
        int fd = mpms_accept(s->listen_fd);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            /* the listener stays readable: rest it 100 ms, not spin */
            s->accept_paused_until = mp__now_ns() + 100000000ull;
            if (mp__ratelimit(&s->refused_rl, WHO, "refused connections"))
                mp__log(MP_LOG_WARN, WHO, "cannot accept a connection: %s", mp_strerror(fd));
        }
        if (fd < 0)
            return;
        if (s->nconns >= MAX_PEERS) {
            close(fd);
            if (mp__ratelimit(&s->refused_rl, WHO, "refused connections"))
                mp__log(MP_LOG_WARN, WHO, "refused a connection: %d peers", MAX_PEERS);
            continue;
        }
        if (s->npending >= MAX_PENDING) {
            size_t old = s->nconns;
            for (size_t i = 0; i < s->nconns; i++)
                if (!s->conns[i]->peer.authed &&
                    (old == s->nconns || s->conns[i]->peer.seen < s->conns[old]->peer.seen))
                    old = i;
            if (old < s->nconns)
                conn_close(s, old);
        }
        conn_t *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->in.limit = MPMS_UNAUTH_MAX;
        c->peer.seen = ++s->clock;
        s->conns[s->nconns++] = c;
        s->npending++;
    }
}

/* What connection i sent: whole messages run in order while its answers
   go out at once; 0, or an error (close it). At the end of its stream,
   the calls received whole are still run first (while nothing it is owed
   waits to be sent). */
static int conn_read(mp_manager_server_t *s, size_t i)
{
    conn_t *c = s->conns[i];
    int rc = mpms_fill(&c->in, c->fd), got = 0;
    to_t to = {.c = c, .pending = &s->npending};
    while (rc != MP_EBADMSG && c->outlen == c->outoff) {
        uint8_t cmd;
        mp_obj_t *b;
        if ((got = mpms_take(&c->in, &cmd, &b)) <= 0)
            break;
        c->peer.seen = ++s->clock;
        on_command(s, &c->peer, &to, cmd, b);
        mp_obj_destroy(&b);
        c->in.limit = c->peer.authed ? MPP_DEFAULT_MAX_MSG : MPMS_UNAUTH_MAX;
    }
    rc = got < 0 ? got : rc;
    if (rc == MP_EBADMSG && mp__ratelimit(&s->malformed_rl, WHO, "malformed messages"))
        mp__log(MP_LOG_WARN, WHO, "malformed message on a connection; closed it");
    return rc < 0 ? rc : 0;
}

/* One pass: poll (not sleeping while spinning), then what is ready. True
   when a message or connection was handled; -1 to stop. */
static int stream_pass(mp_manager_server_t *s, struct pollfd *pf, bool spinning)
{
    size_t n = s->nconns;
    pf[0] = (struct pollfd){.fd = s->stop_fd, .events = POLLIN};
    bool paused = mp__now_ns() < s->accept_paused_until;
    pf[1] = (struct pollfd){.fd = paused ? -1 : s->listen_fd, .events = POLLIN};
    for (size_t i = 0; i < n; i++)
        pf[2 + i] =
            (struct pollfd){.fd = s->conns[i]->fd,
                            .events = s->conns[i]->outlen > s->conns[i]->outoff ? POLLOUT : POLLIN};
    int ready = poll(pf, 2 + n, spinning ? 0 : paused ? 100 : -1);
    if (ready < 0 && errno != EINTR)
        return -1;
    if (ready <= 0)
        return 0;
    if (pf[0].revents)
        return -1;
    for (size_t i = n; i-- > 0;) { /* backwards: a close moves the last one here */
        short ev = pf[2 + i].revents;
        conn_t *c = s->conns[i];
        int rc = 0;
        if (ev & POLLOUT)
            rc = conn_flush(c);
        /* all sent: the calls it held back (received, not run) run now */
        if (!rc && (ev & (POLLIN | POLLHUP | POLLERR | POLLOUT)) && c->outlen == c->outoff)
            rc = conn_read(s, i);
        else if (!rc && (ev & (POLLHUP | POLLERR)))
            rc = MP_EEOF;
        if (rc)
            conn_close(s, i);
    }
    if (pf[1].revents)
        conn_accept(s);
    return 1;
}

static void *stream_thread(void *arg)
{
    mp_manager_server_t *s = arg;
    struct pollfd *pf = calloc(2 + MAX_PEERS, sizeof *pf);
    uint64_t spin_end = 0;
    for (int rc = 0; pf && rc >= 0;) {
        bool spinning = spin_end && mp__now_ns() < spin_end;
        if ((rc = stream_pass(s, pf, spinning)) > 0)
            spin_end = mp__now_ns() + s->spin_ns;
        else if (!spinning)
            spin_end = 0;
    }
    free(pf);
    while (s->nconns)
        conn_close(s, s->nconns - 1);
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
    bool stream = mpms_is_stream(o->endpoint);
    if (stream && o->curve_key) {
        mp__log(MP_LOG_ERROR, WHO, "CURVE runs over ZeroMQ only: serve tcp://, not %s",
                o->endpoint);
        return MP_EINVAL;
    }
    return mp__curve_policy(WHO, o->endpoint, o->curve_key != NULL, o->insecure,
                            "curve_key and allow_dir");
}

/* The ZeroMQ ROUTER, CURVE or not, bound. */
static int start_zmq(mp_manager_server_t *s, const mp_manager_serve_options_t *o)
{
    int rc = 0;
    if (o->curve_key)
        rc = start_curve(s, o);
    else if (!(s->ctx = zmq_ctx_new()))
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
    return rc;
}

/* The plain stream's listener (stream.h). */
static int start_stream(mp_manager_server_t *s, const mp_manager_serve_options_t *o)
{
    s->spin_ns =
        o->spin_us < 0 ? 0 : (uint64_t)(o->spin_us ? o->spin_us : MPMS_SPIN_DEFAULT_US) * 1000;
    if (!(s->conns = calloc(MAX_PEERS, sizeof *s->conns)))
        return MP_ENOMEM;
    int rc = mpms_listen(o->endpoint, &s->listen_fd, s->endpoint, sizeof s->endpoint);
    if (rc)
        mp__log(MP_LOG_ERROR, WHO, "cannot listen on %s: %s", o->endpoint, mp_strerror(rc));
    return rc;
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
    s->stop_fd = s->listen_fd = -1;
    s->keylen = o->keylen;
    s->key = malloc(o->keylen + 1);
    s->peers = calloc(MAX_PEERS, sizeof *s->peers);
    rc = s->key && s->peers ? 0 : MP_ENOMEM;
    if (!rc && o->keylen)
        memcpy(s->key, o->authkey, o->keylen);
    if (!rc && (s->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
        rc = -errno;
    bool stream = mpms_is_stream(o->endpoint);
    if (!rc)
        rc = stream ? start_stream(s, o) : start_zmq(s, o);
    if (!rc &&
        (rc = -pthread_create(&s->thread, NULL, stream ? stream_thread : server_thread, s)) == 0) {
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
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        if (strncmp(s->endpoint, "mpm+ipc://", 10) == 0)
            unlink(s->endpoint + 10);
    }
    free(s->conns);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    if (s->key)
        memset(s->key, 0, s->keylen);
    free(s->key);
    free(s->peers);
    free(s);
    *s_p = NULL;
}
