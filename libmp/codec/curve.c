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
#include <stdio.h>
#include <string.h>

#include "codec/curve.h"
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

bool mp__endpoint_is_local(const char *ep)
{
    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9))
        return true;
    if (strncmp(ep, "tcp://", 6))
        return false;
    const char *h = ep + 6;
    return !strncmp(h, "127.", 4) || !strncmp(h, "[::1]:", 6) || !strncmp(h, "localhost:", 10);
}
