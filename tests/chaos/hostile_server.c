/*  hostile_server.c - a raw ZeroMQ ROUTER that plays a server to a real
    peer (hostile_server.h), and the classes of bad input it sends. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "hostile_server.h"
#include "support.h"

/* ---- a tiny msgpack writer ------------------------------------------------------ */

void pk_raw(pk_t *p, const void *d, size_t n)
{
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

void pk_arr(pk_t *p, unsigned n)
{
    p->b[p->n++] = (uint8_t)(0x90 | n); /* n < 16 */
}

void pk_uint(pk_t *p, uint64_t v)
{
    if (v < 128) {
        p->b[p->n++] = (uint8_t)v;
        return;
    }
    p->b[p->n++] = 0xcf;
    for (int i = 7; i >= 0; i--)
        p->b[p->n++] = (uint8_t)(v >> (8 * i));
}

void pk_str(pk_t *p, const char *s)
{
    size_t n = strlen(s);
    if (n < 32) {
        p->b[p->n++] = (uint8_t)(0xa0 | n);
    } else {
        p->b[p->n++] = 0xd9;
        p->b[p->n++] = (uint8_t)n;
    }
    pk_raw(p, s, n);
}

/* ---- the hostile broker ---------------------------------------------------------- */

void hb_open(hb_t *h, const char *sig)
{
    memset(h, 0, sizeof *h);
    h->sig = sig;
    h->ctx = zmq_ctx_new();
    h->router = zmq_socket(h->ctx, ZMQ_ROUTER);
    int linger = 0, hwm = 0; /* no high-water mark: nothing we send is dropped */
    zmq_setsockopt(h->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(h->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    assert_int_equal(zmq_bind(h->router, "tcp://127.0.0.1:0"), 0);
    size_t len = sizeof h->ep;
    zmq_getsockopt(h->router, ZMQ_LAST_ENDPOINT, h->ep, &len);
}

void hb_close(hb_t *h)
{
    zmq_close(h->router);
    zmq_ctx_term(h->ctx);
}

/* Frames to the peer, behind its id (DONTWAIT: a peer that is gone loses them). */
void hb_frames(hb_t *h, int n, const void *const *d, const size_t *z)
{
    zmq_send(h->router, h->id, h->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    for (int i = 0; i < n; i++)
        zmq_send(h->router, d[i], z[i], (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
}

/* sig, cmd, header, then up to two payload frames. */
void hb_send(hb_t *h, uint8_t cmd, const pk_t *hdr, const void *p1, size_t n1, const void *p2,
             size_t n2, int npayload)
{
    const void *d[] = {h->sig, &cmd, hdr->b, p1, p2};
    size_t z[] = {5, 1, hdr->n, n1, n2};
    hb_frames(h, 3 + npayload, d, z);
}

void hb_heartbeat(hb_t *h)
{
    if (tu_now_ms() - h->last_hb < 100)
        return;
    h->last_hb = tu_now_ms();
    pk_t hdr = {.n = 0};
    bool worker = strcmp(h->sig, "MPW01") == 0;
    pk_arr(&hdr, worker ? 0 : 1);
    if (!worker)
        pk_uint(&hdr, 2);
    hb_send(h, worker ? 0x82 : 0x85, &hdr, NULL, 0, NULL, 0, 0);
}

/* The next message within timeout_ms (heartbeats sent meanwhile): its cmd
   (-1: none), header and first payload frame copied out. */
int hb_recv(hb_t *h, int timeout_ms, pk_t *header, pk_t *payload)
{
    uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
    while (tu_now_ms() < end) {
        hb_heartbeat(h);
        zmq_pollitem_t pi = {h->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&pi, 1, 50) != 1)
            continue;
        zmq_msg_t f[8];
        int n = 0, more = 1;
        while (more && n < 8) {
            zmq_msg_init(&f[n]);
            zmq_msg_recv(&f[n], h->router, 0);
            more = zmq_msg_more(&f[n]);
            n++;
        }
        int cmd = -1;
        if (n >= 4 && zmq_msg_size(&f[2]) == 1) {
            h->idlen = zmq_msg_size(&f[0]);
            memcpy(h->id, zmq_msg_data(&f[0]), h->idlen);
            cmd = *(uint8_t *)zmq_msg_data(&f[2]);
            header->n = zmq_msg_size(&f[3]) < sizeof header->b ? zmq_msg_size(&f[3]) : 0;
            memcpy(header->b, zmq_msg_data(&f[3]), header->n);
            payload->n =
                n >= 5 && zmq_msg_size(&f[4]) < sizeof payload->b ? zmq_msg_size(&f[4]) : 0;
            if (payload->n)
                memcpy(payload->b, zmq_msg_data(&f[4]), payload->n);
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
        if (cmd >= 0)
            return cmd;
    }
    return -1;
}

/* ---- classes of bad input, from either side ----------------------------------- */

/* 3,000 messages of 1..5 random frames, a third of them behind our
   signature and a random command, so that the header decoders see them. */
void random_frames(hb_t *h, unsigned seed)
{
    uint8_t buf[5][64];
    for (int i = 0; i < 3000; i++) {
        int n = 1 + rand_r(&seed) % 5;
        const void *d[5];
        size_t z[5];
        for (int k = 0; k < n; k++) {
            z[k] = (size_t)(rand_r(&seed) % 64);
            for (size_t b = 0; b < z[k]; b++)
                buf[k][b] = (uint8_t)rand_r(&seed);
            d[k] = buf[k];
        }
        if (i % 3 == 0 && n >= 3) {
            d[0] = h->sig;
            z[0] = 5;
            z[1] = 1;
        }
        hb_frames(h, n, d, z);
        if (i % 100 == 0)
            hb_heartbeat(h);
    }
}

/* Every prefix of a valid header, with its payload. */
void truncations(hb_t *h, uint8_t cmd, const pk_t *valid, const pk_t *payload)
{
    for (size_t cut = 0; cut < valid->n; cut++) {
        pk_t t = *valid;
        t.n = cut;
        hb_send(h, cmd, &t, payload->b, payload->n, NULL, 0, 1);
    }
}

/* Headers and payloads that claim what they do not hold. */
void bombs(hb_t *h, uint8_t cmd)
{
    static uint8_t deep[100000];
    memset(deep, 0x91, sizeof deep); /* [[[[...]]]] 10^5 deep, unterminated */
    static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    pk_t hdr = {.n = 0};
    pk_raw(&hdr, huge_array, sizeof huge_array);
    hb_send(h, cmd, &hdr, deep, sizeof deep, NULL, 0, 1);
    hb_send(h, cmd, &hdr, huge_array, sizeof huge_array, huge_array, sizeof huge_array, 2);
    pk_t nested = {.n = 0};
    pk_raw(&nested, deep, 4000);
    hb_send(h, cmd, &nested, deep, sizeof deep, NULL, 0, 1);
}

/* Strings where a peer logs them: with newlines and escape sequences. */
const char *forged = "x\nFORGED ERROR mp: owned\r\x1b[31mred\x07";
