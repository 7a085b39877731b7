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

/* The process's ZAP handler. czmq's zauth answers ZAP on czmq's context
   (zsys), and a context has one ZAP endpoint, so every CURVE server of a
   process (a broker, a manager server) shares one zauth, admitting the
   public keys under one allow-list root; each server then checks the role
   subdirectory it serves (workers/, clients/, managers/) on every message.
   Acquire starts it on the first call (and hands back zsys's context, on
   which the server makes its socket) and counts; release stops it with the
   last. MP_EINVAL when another root is in use, MP_ENOENT when allow_dir is
   not a directory (why says which). Thread-safe. */
int mp__curve_auth_acquire(const char *allow_dir, void **ctx, char *why, size_t size);
void mp__curve_auth_release(void);

/* The security policy of a server about to bind: an endpoint other hosts
   can reach needs CURVE (curve) or insecure, which is then warned about
   (who: the log's name; hint: the options that turn CURVE on). 0 or
   MP_EINSECURE, logged. */
int mp__curve_policy(const char *who, const char *endpoint, bool curve, bool insecure,
                     const char *hint);

/* A client's watch on its handshakes: after mp__curve_watch (before
   connect), mp__curve_refused says whether the server refused this end:
   its ZAP handler refused the key (ZMTP ERROR 400), the mechanisms do not
   match (CURVE against plaintext), or the server closed the connection in
   the handshake WATCH_FAILURES times in a row with none completed (what a
   wrong server key looks like: the server cannot read the HELLO and drops
   it; so does a plaintext client whose greeting the server reads first).
   0, or MP_EAUTH with why set to a phrase for the log. */
#define MP_CURVE_WATCH_FAILURES 3
typedef struct {
    void *pair;
    int failures; /* handshakes cut in a row */
    const char *why;
} mp__curve_watch_t;
int mp__curve_watch(void *ctx, void *sock, mp__curve_watch_t *w);
int mp__curve_refused(mp__curve_watch_t *w);
void mp__curve_unwatch(mp__curve_watch_t *w);

/* True for an endpoint only this host can reach: ipc://, inproc://,
   tcp://127.x.x.x, tcp://[::1], tcp://localhost. */
bool mp__endpoint_is_local(const char *endpoint);

#endif
