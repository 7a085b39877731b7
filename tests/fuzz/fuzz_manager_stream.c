/*  fuzz_manager_stream.c - the remote Manager's server over a plain stream
    (mpm+ipc://; libmp/manager/serve.c's connections and stream.c's
    frames: partial frames, bad lengths and signatures, bodies that are
    not arrays, messages before and after the handshake, and every CALL).
    Each input is a script of writes on two fresh connections: connection
    0 has authenticated, connection 1 has not. After the script both are
    shut for writing and read until the server closes them: the server has
    then handled (or refused) every byte. The manager keeps what the
    scripts stored.

    A write of the script:
        op      u8: bit 0 the connection, bit 1 raw (the bytes as they are)
                or framed (a frame header with MPM01 and cmd before them)
        cmd     u8
        body    u16 big-endian length, then the bytes
    Seeds: tests/fuzz/make_seeds.py. Any input must be handled without a
    crash, a leak, a hang or an out-of-bounds access (ASan, UBSan). */
#include <dirent.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "manager/mpm.h"
#include "manager/stream.h"
#include "mp.h"

#define KEY "fuzz-key"

static mp_manager_t *manager;
static mp_manager_server_t *server;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_manager_stream: %s\n", what);
    abort();
}

static uint64_t in_ms(int ms)
{
    return mp__now_ns() + (uint64_t)ms * 1000000ull;
}

static void teardown(void)
{
    mp_manager_server_stop(&server);
    mp_manager_destroy(&manager); /* its shared memory unlinked */
}

static void setup(void)
{
    mp_log_set_level(MP_LOG_ERROR);
    char ep[96];
    snprintf(ep, sizeof ep, "mpm+ipc:///tmp/mp-fuzz-mpms-%d", (int)getpid());
    if (mp_manager_new(NULL, &manager) || mp_manager_serve(manager, ep, KEY, strlen(KEY), &server))
        die("cannot serve a manager");
    atexit(teardown);
}

/* A new connection; authenticated when auth (HELLO, CHALLENGE, AUTH,
   WELCOME). */
static int open_conn(bool auth)
{
    int fd;
    if (mpms_connect(mp_manager_server_endpoint(server), in_ms(5000), &fd))
        die("cannot connect");
    if (!auth)
        return fd;
    mpms_in_t in = {.limit = 1u << 20};
    mp_obj_t *b = mp_obj_new_array();
    uint8_t cmd = 0;
    if (mpms_send(fd, MPM_HELLO, b, in_ms(5000)))
        die("cannot send HELLO");
    mp_obj_destroy(&b);
    if (mpms_wait(&in, fd, in_ms(5000), 0, &cmd, &b) || cmd != MPM_CHALLENGE)
        die("no CHALLENGE");
    size_t len = 0;
    const void *nonce = mp_obj_bin(mpm_arg(b, 0), &len);
    uint8_t mac[32];
    if (!nonce || len != 32)
        die("a bad CHALLENGE");
    mpm_auth_mac(KEY, strlen(KEY), nonce, mac);
    mp_obj_destroy(&b);
    b = mp_obj_new_array();
    mp_obj_array_add(b, mp_obj_new_bin(mac, sizeof mac));
    if (mpms_send(fd, MPM_AUTH, b, in_ms(5000)))
        die("cannot send AUTH");
    mp_obj_destroy(&b);
    if (mpms_wait(&in, fd, in_ms(5000), 0, &cmd, &b) || cmd != MPM_WELCOME)
        die("no WELCOME");
    mp_obj_destroy(&b);
    mpms_in_free(&in);
    return fd;
}

/* Writes what the socket takes within 100 ms; the rest is dropped (the
   server stopped reading: it owes this connection answers). */
static void write_some(int fd, const uint8_t *p, size_t n)
{
    uint64_t end = in_ms(100);
    while (n > 0 && mp__now_ns() < end) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return; /* the server closed it */
        } else {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, 10);
        }
    }
}

/* Shut for writing, read until the server closes: within 10 s, or a hang. */
static void finish(int fd)
{
    shutdown(fd, SHUT_WR);
    uint64_t end = in_ms(10000);
    char buf[65536];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            break;
        if (r > 0)
            continue;
        if (mp__now_ns() > end)
            die("the server did not close a connection whose client finished");
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        poll(&pf, 1, 100);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!manager)
        setup();
    int fd[2] = {open_conn(true), open_conn(false)};
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; p + 2 <= end && k < 64; k++) {
        uint8_t op = *p++, cmd = *p++;
        size_t n = 0;
        for (int i = 0; i < 2 && p < end; i++)
            n = n << 8 | *p++;
        if (n > (size_t)(end - p))
            n = (size_t)(end - p);
        if (!(op & 2)) { /* framed: the length covers signature, cmd and body */
            uint32_t len = (uint32_t)(n + 6);
            uint8_t hdr[10] = {(uint8_t)(len >> 24),
                               (uint8_t)(len >> 16),
                               (uint8_t)(len >> 8),
                               (uint8_t)len,
                               'M',
                               'P',
                               'M',
                               '0',
                               '1',
                               cmd};
            write_some(fd[op & 1], hdr, sizeof hdr);
        }
        write_some(fd[op & 1], p, n);
        p += n;
    }
    finish(fd[0]);
    finish(fd[1]);
    return 0;
}

#include "replay.h"
