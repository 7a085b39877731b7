/*  mp/broker.h - the MPP/1 broker engine (docs/PROTOCOL.md), embeddable.

    mp_broker_new binds a ROUTER socket to every endpoint given and runs the
    broker in its own thread until mp_broker_destroy. mp-broker is a thin
    program around it; an embedded pool runs one inside the calling program.

    Endpoints: "tcp://127.0.0.1:0" or "tcp://HOST:*" pick a free port;
    mp_broker_endpoint() returns what was actually bound (with the port).

    Thread-safety: a broker handle may be used from one thread at a time;
    the broker's own thread never calls back into the caller.
    Fork: never fork a process that has a live broker unless the child only
    execs (ZeroMQ contexts and threads do not survive fork). Signals: none
    are handled here; mp-broker handles SIGTERM/SIGINT itself.
*/
#ifndef MP_BROKER_H_INCLUDED
#define MP_BROKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_broker mp_broker_t;

typedef struct {
    const char *const *binds; /* endpoints to bind, at least one */
    size_t nbinds;
    void *zmq_context;           /* NULL: the broker makes its own */
    int heartbeat_ms;            /* 0: 1000 */
    int max_attempts;            /* 0: 3 */
    size_t max_message;          /* bytes; 0: 64 MiB */
    size_t max_queued;           /* chunks per client; 0: 4096 */
    size_t max_peers_per_source; /* clients and workers from one CURVE key, or
                                    one IP address without keys (ipc and
                                    inproc: one source); 0: 4096. A new peer
                                    over it is refused, no peer is evicted */
    int verbose;                 /* 0: warnings only; 1: lifecycle too; 2: every event
                                    (sets the process's log level when > 0) */
    /* CURVE (docs/PROTOCOL.md 10), both or neither: this broker's
       certificate (a NAME.key_secret file: mp-client keygen NAME), and the
       allow-list directory: allow_dir/workers/ and allow_dir/clients/ hold
       the public certificates (NAME.key) of the workers and of the clients
       admitted, read again when they change. Not with zmq_context (the ZAP
       handler needs czmq's). */
    const char *curve_key;
    const char *allow_dir;
    bool insecure; /* allow a tcp endpoint off loopback without CURVE (and http) */
    /* "HOST:PORT" (port 0: any free one): serve GET /metrics there, in
       OpenMetrics or Prometheus text (docs/CLUSTER.md, "Metrics"). Loopback
       only, unless insecure. NULL: no HTTP port. */
    const char *http;
    /* Securing the HTTP port (docs/CLUSTER.md 7): HTTPS with this PEM
       certificate and key (both or neither), and a bearer token (a file
       holding at least 16 characters) every request must show, as
       "Authorization: Bearer TOKEN" or "?token=TOKEN". Off loopback the HTTP
       port needs all three, or insecure. */
    const char *http_cert, *http_key, *http_token;
    /* Durable jobs (docs/JOURNAL.md, PROTOCOL.md 7.3): the directory of
       the journal (made when missing, locked: one broker per directory),
       replayed at start; NULL: no durable jobs. Its size limit in bytes
       (0: 1 GiB): past it, durable SUBMITs fail with OVERLOADED. */
    const char *journal_dir;
    uint64_t journal_max_bytes;
} mp_broker_options_t;

/* Binds and starts the broker thread. On success *broker_p is a new broker
   the caller owns. Fails with the libzmq error of a bind as -errno (for
   example -EADDRINUSE), MP_EINSECURE (a tcp endpoint other hosts can reach,
   without CURVE keys or insecure), MP_ENOENT (a key file or the allow-list
   directory is missing), MP_EINVAL, or MP_ENOMEM; nothing is left running.
   Each refusal is also logged with what to pass. */
MP_EXPORT int mp_broker_new(const mp_broker_options_t *options, mp_broker_t **broker_p);

/* Stops the broker (peers are sent DISCONNECT), joins its thread, unbinds
   and removes its ipc files. Safe on NULL and twice. */
MP_EXPORT void mp_broker_destroy(mp_broker_t **broker_p);

/* Checks a broker address before connecting to it: its form
   (tcp://HOST:PORT, with HOST a name, an IPv4 address or [an IPv6 one], or
   ipc://PATH; a worker's may also be mpp+tcp:// or mpp+ipc://, the plain
   stream of docs/PROTOCOL.md 9.3) and, for tcp, that HOST resolves.
   0, MP_EINVAL (malformed:
   why shows the expected forms) or MP_EHOSTUNKNOWN (why names the host and
   the resolver's message). why may be NULL; it is always NUL-terminated.
   mp_pool_new, mp-worker and mp-client all check with this. */
MP_EXPORT int mp_broker_address_check(const char *address, char *why, size_t size);

/* Graceful stop, step 1 (mp-broker on SIGTERM): nothing new is dispatched
   from now on; the dispatches running finish and their results reach
   their clients. Wait until mp_broker_running() is 0 (or as long as you
   give it), then mp_broker_destroy: its DISCONNECT hands what is still
   queued back to the clients, which send it again to the next broker at
   the same address (docs/PROTOCOL.md 7.1). 0 or MP_EINVAL. */
MP_EXPORT int mp_broker_drain(mp_broker_t *broker);
/* Dispatches running on workers: exact while draining (mp_broker_drain
   returns once the broker counted them), else counted 10 times a second. */
MP_EXPORT size_t mp_broker_running(const mp_broker_t *broker);

/* The HTTP port's "HOST:PORT" as bound (the port chosen), or NULL. */
MP_EXPORT const char *mp_broker_http_address(const mp_broker_t *broker);
/* Whether that port speaks HTTPS (http_cert, http_key). */
MP_EXPORT bool mp_broker_http_tls(const mp_broker_t *broker);

/* The endpoints actually bound, in the order given. */
MP_EXPORT size_t mp_broker_endpoint_count(const mp_broker_t *broker);
MP_EXPORT const char *mp_broker_endpoint(const mp_broker_t *broker, size_t i);

#ifdef __cplusplus
}
#endif

#endif
