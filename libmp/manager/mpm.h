/*  mpm.h - MPM/1, the remote manager's protocol (docs/MANAGER.md section 6):
    its commands and operation codes, and sending and reading a message's
    msgpack body (mpm.c). Shared by the client (proxy.c, and through
    proxy.h the ops dict.c / list.c send) and the server (serve.c). Not
    installed.

    Frames as MPP/1 (mpp.h): [routing id] signature "MPM01", a one-byte
    command, a msgpack body (an array).
*/
#ifndef MP_MANAGER_MPM_H_INCLUDED
#define MP_MANAGER_MPM_H_INCLUDED

#include <stdint.h>

#include "codec/mpp.h"
#include "mp/obj.h"

/* Commands: the client's, then the server's. */
enum {
    MPM_HELLO = 1,
    MPM_AUTH,
    MPM_CALL,
    MPM_CHALLENGE = 0x81,
    MPM_WELCOME,
    MPM_DENIED,
    MPM_REPLY
};

/* MPM/1 operations: one per public call; the list ones last. */
enum {
    MR_OPEN = 1,
    MR_D_SET,
    MR_D_GET,
    MR_D_GET_DFLT,
    MR_D_DEL,
    MR_D_CONTAINS,
    MR_D_LEN,
    MR_D_KEYS,
    MR_D_VALUES,
    MR_D_ITEMS,
    MR_D_UPDATE,
    MR_D_POP,
    MR_D_POP_DFLT,
    MR_D_SETDEFAULT,
    MR_D_CLEAR,
    MR_D_INCR,
    MR_D_INCRF,
    MR_D_CAS,
    MR_D_CAS_ABSENT,
    MR_Q_PUT, /* queues: slot is the named queue's number */
    MR_Q_GET,
    MR_Q_QSIZE,
    MR_L_FIRST,
    MR_L_APPEND = MR_L_FIRST,
    MR_L_EXTEND,
    MR_L_GET,
    MR_L_SET,
    MR_L_INSERT,
    MR_L_POP,
    MR_L_REMOVE,
    MR_L_INDEX,
    MR_L_COUNT,
    MR_L_LEN,
    MR_L_SLICE,
    MR_L_CLEAR,
    MR_L_APPEND_UNIQUE,
    MR_BATCH, /* a0: [[0, op, address, args...], ...]: many calls, one round trip */
};
#define MR_BATCH_MAX 4096 /* calls in one BATCH */

/* Sends [id] signature cmd body (body packed; id NULL on a DEALER).
   0, MP_E2BIG (packed, it is over the message limit: not sent), or -errno. */
int mpm_send(void *sock, const void *id, size_t idlen, uint8_t cmd, const mp_obj_t *body);
/* Reads frames [sig, cmd, body] from m starting at frame `at`: the command
   and the decoded body (an array). -1 when malformed. */
int mpm_parse(mpp_msg_t *m, int at, uint8_t *cmd, mp_obj_t **body);
/* A body's item i, or NULL; as an integer, or -1. */
mp_obj_t *mpm_arg(const mp_obj_t *body, size_t i);
int64_t mpm_arg_int(const mp_obj_t *body, size_t i);
/* The AUTH answer to a CHALLENGE: HMAC-SHA256(key, nonce || "mp-manager-client"). */
void mpm_auth_mac(const void *key, size_t keylen, const uint8_t nonce[32], uint8_t mac[32]);

#endif
