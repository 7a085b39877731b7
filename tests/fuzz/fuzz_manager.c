/*  fuzz_manager.c - the remote Manager's server (MPM/1, libmp/manager/
    serve.c: the handshake, the peer table, every CALL on dicts, lists,
    namespaces and queues) with state: one served manager on ipc, two
    peers (DEALERs); peer 0 has authenticated, peer 1 has not. Each input
    is a script of messages from either; after it, each peer makes one
    known request and waits for its answer, so that the server has handled
    the whole script before the next input (and peer 0 authenticates again
    if the script undid it). The manager keeps what the scripts stored.

    A message of the script:
        op      u8: bit 0 the peer, bit 1 a wrong signature, bit 2 one
                    frame too many
        cmd     u8
        body    u16 big-endian length, then the bytes (msgpack)
    Seeds: tests/fuzz/make_seeds.py. Any input must be handled without a
    crash, a leak, a hang or an out-of-bounds access (ASan, UBSan). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "manager/mpm.h"
#include "mp.h"

#define KEY "fuzz-key"

static mp_manager_t *manager;
static mp_manager_server_t *server;
static void *ctx, *peer[2];
static bool authed;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_manager: %s\n", what);
    abort();
}

static void send_msg(void *s, const char *sig, uint8_t cmd, const void *body, size_t n, bool extra)
{
    zmq_send(s, sig, 5, ZMQ_SNDMORE);
    zmq_send(s, &cmd, 1, ZMQ_SNDMORE);
    zmq_send(s, body, n, extra ? ZMQ_SNDMORE : 0);
    if (extra)
        zmq_send(s, "", 0, 0);
}

/* The next message to peer s within 5 s: its command, body in *b. */
static int recv_msg(void *s, mp_obj_t **b)
{
    zmq_pollitem_t pi = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&pi, 1, 5000) != 1)
        die("the server did not answer");
    zmq_msg_t f[4];
    int n = 0, more = 1;
    while (more && n < 4) {
        zmq_msg_init(&f[n]);
        zmq_msg_recv(&f[n], s, 0);
        more = zmq_msg_more(&f[n]);
        n++;
    }
    int cmd = n == 3 && zmq_msg_size(&f[1]) == 1 ? *(uint8_t *)zmq_msg_data(&f[1]) : -1;
    *b = NULL;
    if (cmd >= 0 && mp_obj_unpack(zmq_msg_data(&f[2]), zmq_msg_size(&f[2]), b))
        *b = NULL;
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return cmd;
}

static void send_obj(void *s, uint8_t cmd, mp_obj_t *body)
{
    char *data;
    size_t n;
    if (mp_obj_pack(body, &data, &n))
        die("cannot pack");
    send_msg(s, "MPM01", cmd, data, n, false);
    free(data);
    mp_obj_destroy(&body);
}

/* HELLO, CHALLENGE, AUTH, WELCOME for peer 0. */
static void authenticate(void)
{
    send_obj(peer[0], MPM_HELLO, mp_obj_new_array());
    mp_obj_t *b;
    int cmd;
    while ((cmd = recv_msg(peer[0], &b)) != MPM_CHALLENGE)
        mp_obj_destroy(&b);
    size_t len = 0;
    mp_obj_t *nonce = b ? mp_obj_array_at(b, 0) : NULL;
    const void *p = nonce ? mp_obj_bin(nonce, &len) : NULL;
    if (!p || len != 32)
        die("a bad CHALLENGE");
    uint8_t mac[32];
    mpm_auth_mac(KEY, strlen(KEY), p, mac);
    mp_obj_destroy(&b);
    mp_obj_t *auth = mp_obj_new_array();
    mp_obj_array_add(auth, mp_obj_new_bin(mac, sizeof mac));
    send_obj(peer[0], MPM_AUTH, auth);
    while ((cmd = recv_msg(peer[0], &b)) != MPM_WELCOME && cmd != MPM_DENIED)
        mp_obj_destroy(&b);
    mp_obj_destroy(&b);
    authed = cmd == MPM_WELCOME;
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++)
        zmq_close(peer[i]);
    zmq_ctx_term(ctx);
    mp_manager_server_stop(&server);
    mp_manager_destroy(&manager); /* its shared memory unlinked */
}

static void setup(void)
{
    mp_log_set_level(MP_LOG_ERROR);
    mp_manager_options_t mo = {0};
    char ep[96];
    snprintf(ep, sizeof ep, "ipc:///tmp/mp-fuzz-manager-%d", (int)getpid());
    if (mp_manager_new(&mo, &manager) || mp_manager_serve(manager, ep, KEY, strlen(KEY), &server))
        die("cannot serve a manager");
    ctx = zmq_ctx_new();
    for (int i = 0; i < 2; i++) {
        peer[i] = zmq_socket(ctx, ZMQ_DEALER);
        int linger = 0;
        zmq_setsockopt(peer[i], ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_connect(peer[i], mp_manager_server_endpoint(server)))
            die("cannot connect");
    }
    authenticate();
    atexit(teardown);
}

/* Each peer asks something and waits for the answer to it: the server
   has handled everything before. Peer 1's HELLO makes it a pending peer,
   as it was. */
static void sync_peers(void)
{
    for (int i = 0; i < 2; i++) {
        mp_obj_t *call = mp_obj_new_array(), *b;
        if (i == 0) { /* CALL [id OPEN dict "sync"]: a REPLY, or DENIED */
            mp_obj_array_add(call, mp_obj_new_int(INT64_MAX));
            mp_obj_array_add(call, mp_obj_new_int(1));
            mp_obj_array_add(call, mp_obj_new_int(1));
            mp_obj_array_add(call, mp_obj_new_nil());
            mp_obj_array_add(call, mp_obj_new_str("sync"));
        }
        send_obj(peer[i], i == 0 ? MPM_CALL : MPM_HELLO, call);
        for (;;) {
            int cmd = recv_msg(peer[i], &b);
            mp_obj_t *id = b ? mp_obj_array_at(b, 0) : NULL;
            bool mine = i == 0 ? cmd == MPM_DENIED ||
                                     (cmd == MPM_REPLY && id && mp_obj_int(id) == INT64_MAX)
                               : cmd == MPM_CHALLENGE || cmd == MPM_DENIED;
            if (i == 0 && cmd == MPM_DENIED)
                authed = false;
            mp_obj_destroy(&b);
            if (mine)
                break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!manager)
        setup();
    if (!authed)
        authenticate();
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; p + 2 <= end && k < 64; k++) {
        uint8_t op = *p++, cmd = *p++;
        size_t n = 0;
        for (int i = 0; i < 2 && p < end; i++)
            n = n << 8 | *p++;
        if (n > (size_t)(end - p))
            n = (size_t)(end - p);
        send_msg(peer[op & 1], op & 2 ? "MPX01" : "MPM01", cmd, p, n, op & 4);
        p += n;
    }
    sync_peers();
    return 0;
}

#include "replay.h"
