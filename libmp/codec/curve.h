/*  curve.h - CurveZMQ keys for MPP/1 and MPM/1 sockets (docs/PROTOCOL.md
    section 10). Not installed.

    Key pairs are czmq certificates (zcert): NAME.key holds the public key,
    NAME.key_secret both; mp-client keygen writes them. A peer that speaks
    CURVE gives its own certificate (the secret file) and the server's
    public key (40 Z85 characters, or a certificate file). A server gives
    its certificate; who may connect is the broker's business (zauth with
    an allow-list directory, broker/engine.c).

    Thread-safety: the functions touch no shared state. Fork: no state;
    czmq's certificate calls start no thread and no ZeroMQ context.
    Signals: no.
*/
#ifndef MP_CODEC_CURVE_H_INCLUDED
#define MP_CODEC_CURVE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    bool on;
    uint8_t public_key[32], secret_key[32]; /* this end's pair */
    uint8_t server_key[32];                 /* a client's: the server's public key */
    char public_txt[41];                    /* Z85 of public_key */
} mp__curve_t;

/* Loads this end's certificate (cert: a NAME.key_secret file, or NAME.key
   beside it) and, for a client, the server's public key (server: 40 Z85
   characters, or a certificate file; NULL for a server). 0, or MP_EINVAL /
   MP_ENOENT with why naming the file and what is wrong. */
int mp__curve_load(const char *cert, const char *server, mp__curve_t *c, char *why, size_t size);

/* Socket options of a CURVE client (DEALER) or server (ROUTER, with the
   ZAP domain "mp"): before connect / bind. 0 or -errno. */
int mp__curve_client(void *sock, const mp__curve_t *c);
int mp__curve_server(void *sock, const mp__curve_t *c);

/* True for an endpoint only this host can reach: ipc://, inproc://,
   tcp://127.x.x.x, tcp://[::1], tcp://localhost. */
bool mp__endpoint_is_local(const char *endpoint);

#endif
