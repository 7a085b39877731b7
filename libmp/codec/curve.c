/*  curve.c - CurveZMQ keys for MPP/1 and MPM/1 sockets (curve.h).

    czmq's zcert reads and writes the key files (the format every ZeroMQ
    tool knows); libzmq does the handshake and the encryption. Nothing here
    keeps state: the keys live in the caller's mp__curve_t, and are set on
    each socket before it connects or binds (libzmq reads them at the
    handshake).

    Rejected: our own key-file format (zcert's is the ecosystem's, and
    zauth reads it), passing keys only as Z85 strings on the command line
    (they would show in ps; a file with mode 0600 does not).
*/
#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "codec/curve.h"
#include "codec/plain.h"
#include "mp/error.h"

#define ZAP_DOMAIN "mp"

/* A certificate file: cert, or cert + "_secret" when only that exists. */
static zcert_t *load_cert(const char *path)
{
    return zsys_file_exists(path) ? zcert_load(path) : NULL;
}

static bool is_z85_key(const char *s)
{
    return s && strlen(s) == 40 &&
           strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#") == 40;
}

int mp__curve_load(const char *cert, const char *server, mp__curve_t *c, char *why, size_t size)
{
    memset(c, 0, sizeof *c);
    zcert_t *own = cert ? load_cert(cert) : NULL;
    if (!own) {
        snprintf(why, size, "cannot read the certificate '%s' (make one: mp-client keygen NAME)",
                 cert ? cert : "");
        return MP_ENOENT;
    }
    static const uint8_t zero[32];
    if (memcmp(zcert_secret_key(own), zero, sizeof zero) == 0) {
        snprintf(why, size, "'%s' holds no secret key: give the NAME.key_secret file", cert);
        zcert_destroy(&own);
        return MP_EINVAL;
    }
    memcpy(c->public_key, zcert_public_key(own), 32);
    memcpy(c->secret_key, zcert_secret_key(own), 32);
    snprintf(c->public_txt, sizeof c->public_txt, "%s", zcert_public_txt(own));
    zcert_destroy(&own);
    if (server && is_z85_key(server)) {
        zmq_z85_decode(c->server_key, server);
    } else if (server) {
        zcert_t *s = load_cert(server);
        if (!s) {
            snprintf(why, size,
                     "the server key '%s' is neither 40 Z85 characters nor a certificate file",
                     server);
            return MP_EINVAL;
        }
        memcpy(c->server_key, zcert_public_key(s), 32);
        zcert_destroy(&s);
    }
    c->on = true;
    return 0;
}

int mp__curve_client(void *sock, const mp__curve_t *c)
{
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->server_key, 32) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->public_key, 32) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->secret_key, 32))
        return -errno;
    return 0;
}

int mp__curve_server(void *sock, const mp__curve_t *c)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->secret_key, 32) ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)))
        return -errno;
    return 0;
}

/* ---- the process's ZAP handler ---------------------------------------------------------- */

static struct {
    pthread_mutex_t lock;
    zactor_t *zauth;
    int users;
    char root[PATH_MAX];
} auth = {.lock = PTHREAD_MUTEX_INITIALIZER};

int mp__curve_auth_acquire(const char *allow_dir, void **ctx, char *why, size_t size)
{
    char root[PATH_MAX];
    struct stat st;
    if (!allow_dir || stat(allow_dir, &st) || !S_ISDIR(st.st_mode) || !realpath(allow_dir, root)) {
        snprintf(why, size, "the allow-list directory '%s' does not exist",
                 allow_dir ? allow_dir : "");
        return MP_ENOENT;
    }
    int rc = 0;
    pthread_mutex_lock(&auth.lock);
    if (auth.users && strcmp(auth.root, root) != 0) {
        snprintf(why, size,
                 "one allow-list directory per process: %s is in use, %s was asked for "
                 "(the process's CURVE servers share one ZAP handler; give them one root "
                 "with a subdirectory per role)",
                 auth.root, root);
        rc = MP_EINVAL;
    } else if (!auth.users) {
        zsys_handler_set(NULL); /* signals stay the program's */
        if (!zsys_init() || !(auth.zauth = zactor_new(zauth, NULL))) {
            snprintf(why, size, "cannot start the ZAP handler");
            rc = MP_ENOMEM;
        } else {
            zstr_sendx(auth.zauth, "CURVE", root, NULL);
            zsock_wait(auth.zauth);
            snprintf(auth.root, sizeof auth.root, "%s", root);
        }
    }
    if (!rc) {
        auth.users++;
        *ctx = zsys_init();
    }
    pthread_mutex_unlock(&auth.lock);
    return rc;
}

void mp__curve_auth_release(void)
{
    pthread_mutex_lock(&auth.lock);
    if (auth.users > 0 && --auth.users == 0)
        zactor_destroy(&auth.zauth);
    pthread_mutex_unlock(&auth.lock);
}

/* ---- policy and refusals ---------------------------------------------------------------- */

int mp__curve_policy(const char *who, const char *endpoint, bool curve, bool insecure,
                     const char *hint)
{
    if (curve || mp__endpoint_is_local(endpoint))
        return 0;
    if (!insecure) {
        mp__log(MP_LOG_ERROR, who,
                "refusing to listen on %s without CURVE keys: other hosts can reach it; "
                "pass %s (keys: mp-client keygen NAME), or --insecure (MP_INSECURE=1) on a "
                "network you trust",
                endpoint, hint);
        return MP_EINSECURE;
    }
    mp__log(MP_LOG_WARN, who,
            "listening on %s with no encryption and no authentication (insecure): whoever "
            "reaches it is served",
            endpoint);
    return 0;
}

int mp__curve_watch(void *ctx, void *sock, mp__curve_watch_t *w)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://mp-curve-watch-%p", sock);
    *w = (mp__curve_watch_t){0};
    if (zmq_socket_monitor(sock, ep,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED) ||
        !(w->pair = zmq_socket(ctx, ZMQ_PAIR)) ||
        zmq_setsockopt(w->pair, ZMQ_LINGER, &(int){0}, sizeof(int)) || zmq_connect(w->pair, ep)) {
        int err = errno;
        mp__curve_unwatch(w);
        return -err;
    }
    return 0;
}

int mp__curve_refused(mp__curve_watch_t *w)
{
    int refused = 0;
    while (w->pair) { /* an event is [event:u16 value:u32] [endpoint] */
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, w->pair, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= 2)
            memcpy(&event, zmq_msg_data(&ev), 2);
        const char *why = NULL;
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            w->failures = 0;
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            why = "refused this end's key (not in its allow-list)";
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
            why = "does not speak the same security (one end CURVE, the other plaintext)";
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL &&
                 ++w->failures >= MP_CURVE_WATCH_FAILURES)
            why = "closed every handshake (the server key given here is not its key, or it "
                  "speaks CURVE and this end does not)";
        if (why) {
            w->why = why;
            refused = MP_EAUTH;
        }
        while (zmq_msg_more(&ev) && zmq_msg_recv(&ev, w->pair, 0) >= 0)
            ;
        zmq_msg_close(&ev);
    }
    return refused;
}

void mp__curve_unwatch(mp__curve_watch_t *w)
{
    if (w->pair) {
        zmq_close(w->pair);
        w->pair = NULL;
    }
}

bool mp__endpoint_is_local(const char *ep)
{
    /* a plain stream (mpp+tcp://, mpm+ipc://, codec/plain.h) is as local
       as the tcp:// or ipc:// it names */
    const char *plain = mp__plain_transport("mpp", ep);
    plain = plain ? plain : mp__plain_transport("mpm", ep);
    ep = plain ? plain : ep;
    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9))
        return true;
    if (strncmp(ep, "tcp://", 6))
        return false;
    const char *h = ep + 6;
    return !strncmp(h, "127.", 4) || !strncmp(h, "[::1]:", 6) || !strncmp(h, "localhost:", 10);
}
