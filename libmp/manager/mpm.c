/*  mpm.c - MPM/1 messages (docs/MANAGER.md section 6): a msgpack body sent
    and read in the frames MPP/1 uses (mpp.h), and the authentication
    answer, for both ends (proxy.c, serve.c). The key never crosses the
    wire: the client proves it holds it by the HMAC of the server's nonce.
*/
#include <stdlib.h>
#include <string.h>

#include "base/hmac.h"
#include "manager/mpm.h"

#define SIG "MPM01"
#define AUTH_TAG "mp-manager-client"

/* ---- msgpack bodies -------------------------------------------------------------- */

int mpm_send(void *sock, const void *id, size_t idlen, uint8_t cmd, const mp_obj_t *body)
{
    char *data = NULL;
    size_t size = 0;
    int rc = mp_obj_pack(body, &data, &size);
    if (!rc && size > MPP_DEFAULT_MAX_MSG - 64) /* the other side would drop it, and us */
        rc = MP_E2BIG;
    if (!rc)
        rc = mpp_send(sock, id, idlen, SIG, cmd, data, size, NULL, 0, ZMQ_DONTWAIT);
    free(data);
    return rc;
}

/* Reads frames [sig, cmd, body] from m starting at frame `at`: the command
   and the decoded body (an array). -1 when malformed. */
int mpm_parse(mpp_msg_t *m, int at, uint8_t *cmd, mp_obj_t **body)
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

mp_obj_t *mpm_arg(const mp_obj_t *body, size_t i)
{
    return i < mp_obj_len(body) ? mp_obj_array_at(body, i) : NULL;
}

int64_t mpm_arg_int(const mp_obj_t *body, size_t i)
{
    mp_obj_t *a = mpm_arg(body, i);
    return a && (mp_obj_type(a) == MP_OBJ_INT || mp_obj_type(a) == MP_OBJ_UINT) ? mp_obj_int(a)
                                                                                : -1;
}

/* ---- authentication ---------------------------------------------------------------- */

void mpm_auth_mac(const void *key, size_t keylen, const uint8_t nonce[32], uint8_t mac[32])
{
    uint8_t msg[32 + sizeof AUTH_TAG];
    memcpy(msg, nonce, 32);
    memcpy(msg + 32, AUTH_TAG, sizeof AUTH_TAG - 1);
    mp__hmac_sha256(key, keylen, msg, 32 + sizeof AUTH_TAG - 1, mac);
}
