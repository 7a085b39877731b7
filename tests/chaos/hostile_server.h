/*  hostile_server.h - a raw ZeroMQ ROUTER that plays a server (mp-broker,
    a Manager server) to a real peer, and the classes of bad input it sends
    (hostile_server.c). Shared by the hostile-server tests. */
#ifndef MP_TEST_HOSTILE_SERVER_H_INCLUDED
#define MP_TEST_HOSTILE_SERVER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/* A message part being written (a tiny msgpack writer). */
typedef struct {
    uint8_t b[8192];
    size_t n;
} pk_t;

/* The hostile server: its socket, and the peer as it last spoke. */
typedef struct {
    void *ctx, *router;
    char ep[256];
    uint8_t id[256]; /* the peer's routing id, as it last spoke */
    size_t idlen;
    const char *sig; /* what we sign with: "MPW01" to a worker, "MPC01" to a client */
    uint64_t last_hb;
} hb_t;

/* Appends raw bytes, an array header (n < 16), an uint, a str. */
void pk_raw(pk_t *p, const void *d, size_t n);
void pk_arr(pk_t *p, unsigned n);
void pk_uint(pk_t *p, uint64_t v);
void pk_str(pk_t *p, const char *s);

/* A ROUTER on a free loopback port (h->ep) signing with sig; no
   high-water mark, so nothing it sends is dropped. */
void hb_open(hb_t *h, const char *sig);
void hb_close(hb_t *h);

/* Frames to the peer, behind its id (DONTWAIT: a peer that is gone loses them). */
void hb_frames(hb_t *h, int n, const void *const *d, const size_t *z);

/* sig, cmd, header, then up to two payload frames. */
void hb_send(hb_t *h, uint8_t cmd, const pk_t *hdr, const void *p1, size_t n1, const void *p2,
             size_t n2, int npayload);

/* A heartbeat to the peer, at most every 100 ms (a broker's to a worker
   or a client, by h->sig). */
void hb_heartbeat(hb_t *h);

/* The next message within timeout_ms (heartbeats sent meanwhile): its cmd
   (-1: none), header and first payload frame copied out. */
int hb_recv(hb_t *h, int timeout_ms, pk_t *header, pk_t *payload);

/* 3,000 messages of 1..5 random frames, a third of them behind our
   signature and a random command, so that the header decoders see them. */
void random_frames(hb_t *h, unsigned seed);

/* Every prefix of a valid header, with its payload. */
void truncations(hb_t *h, uint8_t cmd, const pk_t *valid, const pk_t *payload);

/* Headers and payloads that claim what they do not hold. */
void bombs(hb_t *h, uint8_t cmd);

/* Strings where a peer logs them: with newlines and escape sequences. */
extern const char *forged;

#endif
