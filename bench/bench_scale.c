/*  bench_scale.c - one mp-broker under scale (issue 17; docs/BENCHMARKS.md,
    "Scale"): many workers, many queued items, several clients.

    The workers are *simulated*: one process (workers_main) holds N DEALER
    sockets, each a worker speaking MPP/1 (READY with the one task "echo",
    1 executor, credit 2; every TASK answered at once with a RESULT whose
    values are the TASK's items; a HEARTBEAT per interval). To the broker
    they are N workers like any other; they cost no process each, so that
    1,000 of them fit on a 2-core machine, and they do no work, so that what
    is measured is the broker.

    usage: bench_scale --broker EP --pid BROKER_PID MODE
      workers N            run N simulated workers until SIGTERM (prints
                           "ready" once the broker counts them all)
      throughput C ITEMS   C client processes, each an mp_pool_map of
                           ITEMS/C ints (chunk size 10,000): items/s
      latency CALLS        blocking applies one after the other: us each
      queue ITEMS          ITEMS ints submitted while no worker serves the
                           task: the broker's RSS growth per item, less the
                           payload (the items' msgpack bytes)
      rawrelay CALLS       (no broker) the raw limit of a blocking apply on
                           a cluster: three processes, a client DEALER, a
                           relay ROUTER and an echoing worker DEALER on tcp
                           loopback, CALLS round trips client -> relay ->
                           worker -> relay -> client: us each
      hops CALLS           (no broker) what one hop costs here, three rows:
                           an echo between two threads over inproc://, two
                           processes over ipc:// (DEALER -> ROUTER, as an
                           embedded pool's broker and worker), and two
                           processes over a socketpair (plain reads and
                           writes): us per round trip
    Each mode prints one tab-separated row (hops: three): name, unit, value.
*/
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_util.h"
#include "mp.h"

#define CHUNK 10000

static volatile sig_atomic_t stopping;
static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

/* ---- msgpack, just enough for the headers here ---- */

static size_t w_uint(unsigned char *p, uint64_t v)
{
    if (v < 128) {
        p[0] = (unsigned char)v;
        return 1;
    }
    p[0] = 0xcf;
    for (int i = 0; i < 8; i++)
        p[1 + i] = (unsigned char)(v >> (56 - 8 * i));
    return 9;
}

static size_t w_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (unsigned char)(0xa0 | n); /* short strings only */
    memcpy(p + 1, s, n);
    return 1 + n;
}

/* reads a msgpack uint at *p (positive fixint, or uint8..64) */
static int r_uint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    if (*p >= end)
        return -1;
    unsigned char t = *(*p)++;
    int w = t < 0x80 ? 0 : t == 0xcc ? 1 : t == 0xcd ? 2 : t == 0xce ? 4 : t == 0xcf ? 8 : -1;
    if (w < 0 || end - *p < w)
        return -1;
    *v = w ? 0 : t;
    for (int i = 0; i < w; i++)
        *v = *v << 8 | *(*p)++;
    return 0;
}

static void send_frames(void *s, unsigned char cmd, const void *hdr, size_t hlen,
                        zmq_msg_t *payload)
{
    zmq_send(s, "MPW01", 5, ZMQ_SNDMORE);
    zmq_send(s, &cmd, 1, ZMQ_SNDMORE);
    zmq_send(s, hdr, hlen, payload ? ZMQ_SNDMORE : 0);
    if (payload)
        zmq_msg_send(payload, s, 0);
}

/* ---- the simulated workers ---- */

static int workers_main(const char *ep, int n, int hb_ms)
{
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, n + 16);
    void **sock = calloc(n, sizeof *sock);
    zmq_pollitem_t *items = calloc(n, sizeof *items);
    for (int i = 0; i < n; i++) {
        sock[i] = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0;
        zmq_setsockopt(sock[i], ZMQ_LINGER, &zero, sizeof zero);
        if (!sock[i] || zmq_connect(sock[i], ep))
            return 1;
        unsigned char h[64];
        size_t k = 0;
        h[k++] = 0x95;
        h[k++] = 0x91; /* names: ["echo"] */
        k += w_str(h + k, "echo");
        k += w_uint(h + k, 1); /* processes */
        k += w_uint(h + k, 2); /* credit */
        k += w_str(h + k, "sim");
        k += w_uint(h + k, (uint64_t)i + 1);
        send_frames(sock[i], 0x01, h, k, NULL);
        items[i] = (zmq_pollitem_t){sock[i], 0, ZMQ_POLLIN, 0};
    }
    printf("ready\n");
    fflush(stdout);
    double next_hb = now_s() + hb_ms / 1000.0;
    while (!stopping) {
        if (zmq_poll(items, n, 50) < 0 && !stopping)
            continue;
        for (int i = 0; i < n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            for (int m = 0; m < 64; m++) { /* one message: sig, cmd, header, [items, [init]] */
                zmq_msg_t f[6];
                int nf = 0, more = 1;
                while (more && nf < 6) {
                    zmq_msg_init(&f[nf]);
                    if (zmq_msg_recv(&f[nf], sock[i], nf ? 0 : ZMQ_DONTWAIT) < 0) {
                        zmq_msg_close(&f[nf]);
                        break;
                    }
                    more = zmq_msg_more(&f[nf]);
                    nf++;
                }
                if (nf == 0)
                    break;
                if (nf >= 4 && zmq_msg_size(&f[1]) == 1 &&
                    ((unsigned char *)zmq_msg_data(&f[1]))[0] == 0x81) { /* TASK */
                    const unsigned char *p = zmq_msg_data(&f[2]), *end = p + zmq_msg_size(&f[2]);
                    uint64_t id = 0, count = 0;
                    p++; /* array header */
                    r_uint(&p, end, &id);
                    if (p < end && (*p & 0xe0) == 0xa0)
                        p += 1 + (*p & 0x1f); /* task name */
                    p++;                      /* mode */
                    r_uint(&p, end, &count);
                    unsigned char h[32];
                    size_t k = 0;
                    h[k++] = 0x93;
                    k += w_uint(h + k, id);
                    k += w_uint(h + k, count);
                    k += w_uint(h + k, 0);
                    send_frames(sock[i], 0x02, h, k, &f[3]); /* the items come back as values */
                }
                for (int k = 0; k < nf; k++)
                    zmq_msg_close(&f[k]);
            }
        }
        if (now_s() >= next_hb) {
            unsigned char h[2] = {0x91, 0x00};
            for (int i = 0; i < n; i++)
                send_frames(sock[i], 0x04, h, 2, NULL);
            next_hb = now_s() + hb_ms / 1000.0;
        }
    }
    for (int i = 0; i < n; i++) {
        unsigned char h[1] = {0x90};
        send_frames(sock[i], 0x05, h, 1, NULL); /* DISCONNECT */
        zmq_close(sock[i]);
    }
    zmq_ctx_term(ctx);
    return 0;
}

/* ---- the clients ---- */

static mp_pool_t *client(const char *ep, int window)
{
    mp_pool_options_t o = {.broker = ep, .connect_timeout_ms = 20000, .window = window};
    mp_pool_t *pool = NULL;
    return mp_pool_new(&o, &pool) ? NULL : pool;
}

static int throughput(const char *ep, int nclients, long items)
{
    long per = items / nclients;
    int fds[2];
    if (pipe(fds))
        return 1;
    double t0 = now_s();
    for (int c = 0; c < nclients; c++)
        if (fork() == 0) {
            mp_pool_t *pool = client(ep, 0);
            mp_items_t *in = mp_items_new(), *out = NULL;
            for (long i = 0; i < per; i++)
                mp_items_add_int(in, i);
            char ok = pool && mp_pool_map(pool, "echo", in, CHUNK, &out) == 0 &&
                      mp_items_len(out) == (size_t)per;
            ssize_t w = write(fds[1], &ok, 1);
            (void)w;
            _exit(0);
        }
    close(fds[1]);
    int good = 0;
    char ok;
    while (read(fds[0], &ok, 1) == 1)
        good += ok;
    while (wait(NULL) > 0)
        ;
    double dt = now_s() - t0;
    if (good != nclients) {
        fprintf(stderr, "bench_scale: %d of %d clients failed\n", nclients - good, nclients);
        return 1;
    }
    printf("throughput_%dclients\titems/s\t%.0f\n", nclients, per * nclients / dt);
    return 0;
}

/* CPU time (user + system) the process pid has used, in seconds. */
static double cpu_s(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    unsigned long ut = 0, st = 0;
    if (f) {
        int c, field = 1; /* skip to field 14 (utime), after the ")" of the name */
        while ((c = fgetc(f)) != EOF && c != ')')
            ;
        while (field < 13 && (c = fgetc(f)) != EOF)
            field += c == ' ';
        if (fscanf(f, "%lu %lu", &ut, &st) != 2)
            ut = st = 0;
        fclose(f);
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int latency(const char *ep, int broker_pid, int calls, const char *name)
{
    mp_pool_t *pool = client(ep, 0);
    if (!pool)
        return 1;
    mp_obj_t *args = mp_obj_new_array(), *v = NULL;
    mp_obj_array_add(args, mp_obj_new_int(7));
    for (int i = 0; i < calls / 10; i++) { /* warm up */
        if (mp_pool_apply(pool, "echo", args, &v))
            return 1;
        mp_obj_destroy(&v);
    }
    /* the broker's CPU while nothing is asked of it (heartbeats of its
       workers, both ways): subtracted below, leaving the dispatch's own */
    double i0 = now_s(), ic0 = broker_pid ? cpu_s(broker_pid) : 0;
    if (broker_pid)
        nanosleep(&(struct timespec){3, 0}, NULL);
    double idle = broker_pid ? (cpu_s(broker_pid) - ic0) / (now_s() - i0) : 0;
    double t0 = now_s(), c0 = broker_pid ? cpu_s(broker_pid) : 0;
    for (int i = 0; i < calls; i++) {
        if (mp_pool_apply(pool, "echo", args, &v))
            return 1;
        mp_obj_destroy(&v);
    }
    double dt = now_s() - t0, dc = broker_pid ? cpu_s(broker_pid) - c0 : 0;
    printf("%s\tus\t%.1f\n", name, dt / calls * 1e6);
    if (broker_pid) { /* the broker's own share: CPU per apply, less its idle rate */
        printf("%s_broker_cpu\tus\t%.1f\n", name, (dc - idle * dt) / calls * 1e6);
        printf("%s_broker_idle\t%%cpu\t%.1f\n", name, idle * 100);
    }
    mp_obj_destroy(&args);
    mp_pool_destroy(&pool);
    return 0;
}

static long rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* ITEMS queued with no worker for the task: RSS growth per item, less the
   items' own msgpack bytes. */
static int queue(const char *ep, int broker_pid, long items)
{
    mp_pool_t *pool = client(ep, 4096); /* every chunk sent: the broker holds them all */
    if (!pool)
        return 1;
    mp_items_t *in = mp_items_new();
    for (long i = 0; i < items; i++)
        mp_items_add_int(in, i);
    size_t payload = 0;
    for (long i = 0; i < items; i++) {
        const void *p;
        size_t n;
        if (mp_items_packed(in, (size_t)i, &p, &n) == 0)
            payload += n;
    }
    long before = rss_kib(broker_pid);
    mp_call_options_t co = {.chunksize = CHUNK};
    mp_async_t *r = NULL;
    if (mp_pool_map_async(pool, "nobody_serves", in, &co, &r))
        return 1;
    long chunks = (items + CHUNK - 1) / CHUNK, queued = 0;
    for (int t = 0; t < 600 && queued < chunks; t++) { /* until the broker holds them all */
        nanosleep(&(struct timespec){0, 100000000}, NULL);
        mp_obj_t *st = NULL;
        if (mp_pool_status(pool, 5000, &st) == 0) {
            const mp_obj_t *q = mp_obj_map_get(st, "queued");
            const mp_obj_t *n = q ? mp_obj_map_get(q, "nobody_serves") : NULL;
            queued = n ? (long)mp_obj_int(n) : 0;
        }
        mp_obj_destroy(&st);
    }
    long after = rss_kib(broker_pid);
    double per = ((double)(after - before) * 1024 - (double)payload) / (double)items;
    printf("queued_%ld_items\tB/item\t%.1f\n", items, per);
    printf("queued_payload\tB/item\t%.1f\n", (double)payload / (double)items);
    mp_pool_terminate(pool);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
    return queued == chunks ? 0 : 1;
}

/* The relay: a ROUTER that passes each message from "C" to "W" and back. */
static void relay_main(int ready_fd)
{
    void *ctx = zmq_ctx_new(), *r = zmq_socket(ctx, ZMQ_ROUTER);
    char ep[128];
    size_t len = sizeof ep;
    if (zmq_bind(r, "tcp://127.0.0.1:0") || zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, ep, &len))
        _exit(1);
    if (write(ready_fd, ep, strlen(ep) + 1) < 0)
        _exit(1);
    for (;;) {
        char id[16], body[256];
        int n = zmq_recv(r, id, sizeof id, 0), m = zmq_recv(r, body, sizeof body, 0);
        if (n < 0 || m < 0)
            _exit(0);
        const char *to = n == 1 && id[0] == 'C' ? "W" : "C";
        zmq_send(r, to, 1, ZMQ_SNDMORE);
        zmq_send(r, body, (size_t)m, 0);
    }
}

static void *dealer(void *ctx, const char *id, const char *ep)
{
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(d, ZMQ_ROUTING_ID, id, 1);
    int zero = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
    return zmq_connect(d, ep) ? NULL : d;
}

static int rawrelay(int calls)
{
    int fds[2];
    if (pipe(fds))
        return 1;
    pid_t relay = fork();
    if (relay == 0)
        relay_main(fds[1]); /* before any ZeroMQ context here */
    char ep[128] = {0};
    if (read(fds[0], ep, sizeof ep) <= 0)
        return 1;
    pid_t worker = fork();
    if (worker == 0) { /* echoes what the relay passes it */
        void *ctx = zmq_ctx_new(), *w = dealer(ctx, "W", ep);
        zmq_send(w, "hi", 2, 0); /* the relay learns its id */
        for (char b[256];;) {
            int n = zmq_recv(w, b, sizeof b, 0);
            if (n < 0 || zmq_send(w, b, (size_t)n, 0) < 0)
                _exit(0);
        }
    }
    void *ctx = zmq_ctx_new(), *c = dealer(ctx, "C", ep);
    char b[256], msg[32] = "0123456789abcdef";
    if (zmq_recv(c, b, sizeof b, 0) < 0) /* the worker's "hi", relayed: both are known */
        return 1;
    for (int i = 0; i < calls / 10; i++)
        if (zmq_send(c, msg, 24, 0) < 0 || zmq_recv(c, b, sizeof b, 0) < 0)
            return 1;
    double t0 = now_s();
    for (int i = 0; i < calls; i++)
        if (zmq_send(c, msg, 24, 0) < 0 || zmq_recv(c, b, sizeof b, 0) < 0)
            return 1;
    printf("raw_relay_round_trip_tcp\tus\t%.3f\n", (now_s() - t0) / calls * 1e6);
    zmq_close(c);
    zmq_ctx_term(ctx);
    kill(worker, SIGKILL);
    kill(relay, SIGKILL);
    waitpid(worker, NULL, 0);
    waitpid(relay, NULL, 0);
    return 0;
}

/* ---- hops ---------------------------------------------------------------------------- */

static void *inproc_echo(void *sock)
{
    for (char b[64];;) {
        int n = zmq_recv(sock, b, sizeof b, 0);
        if (n <= 0 || zmq_send(sock, b, (size_t)n, 0) < 0)
            return NULL; /* an empty message: stop */
    }
}

/* calls round trips of a 16-byte message on a DEALER (or PAIR): us each. */
static double zmq_rtt(void *s, int calls)
{
    char b[64], msg[16] = "0123456789abcde";
    for (int i = 0; i < calls / 10; i++)
        if (zmq_send(s, msg, sizeof msg, 0) < 0 || zmq_recv(s, b, sizeof b, 0) < 0)
            return -1;
    double t0 = now_s();
    for (int i = 0; i < calls; i++)
        if (zmq_send(s, msg, sizeof msg, 0) < 0 || zmq_recv(s, b, sizeof b, 0) < 0)
            return -1;
    return (now_s() - t0) / calls * 1e6;
}

static int hops(int calls)
{
    /* two processes on a socketpair, first: no ZeroMQ thread yet */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 1;
    pid_t echo = fork();
    if (echo == 0) {
        close(sv[0]);
        for (char b[64];;) {
            ssize_t n = read(sv[1], b, sizeof b);
            if (n <= 0 || write(sv[1], b, (size_t)n) != n)
                _exit(0);
        }
    }
    close(sv[1]);
    char b[64], msg[16] = "0123456789abcde";
    double t0 = 0;
    for (int i = -calls / 10; i < calls; i++) {
        if (i == 0)
            t0 = now_s();
        if (write(sv[0], msg, sizeof msg) != sizeof msg || read(sv[0], b, sizeof b) != sizeof msg)
            return 1;
    }
    double pair_us = (now_s() - t0) / calls * 1e6;
    close(sv[0]);
    waitpid(echo, NULL, 0);
    /* two processes over ipc://: a ROUTER echo forked before this
       process makes its context */
    char path[64];
    snprintf(path, sizeof path, "ipc:///tmp/mp-bench-hops-%d.ipc", (int)getpid());
    int ready[2];
    if (pipe(ready))
        return 1;
    echo = fork();
    if (echo == 0) {
        void *ctx = zmq_ctx_new(), *r = zmq_socket(ctx, ZMQ_ROUTER);
        if (zmq_bind(r, path) || write(ready[1], "x", 1) != 1)
            _exit(1);
        for (;;) {
            zmq_msg_t id, body;
            zmq_msg_init(&id);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&id, r, 0) < 0 || zmq_msg_recv(&body, r, 0) < 0)
                _exit(0);
            zmq_msg_send(&id, r, ZMQ_SNDMORE);
            zmq_msg_send(&body, r, 0);
        }
    }
    if (read(ready[0], b, 1) != 1)
        return 1;
    void *ctx = zmq_ctx_new(), *d = dealer(ctx, "D", path);
    double ipc_us = d ? zmq_rtt(d, calls) : -1;
    zmq_close(d);
    kill(echo, SIGKILL);
    waitpid(echo, NULL, 0);
    unlink(path + 6);
    /* two threads over inproc:// */
    void *p0 = zmq_socket(ctx, ZMQ_PAIR), *p1 = zmq_socket(ctx, ZMQ_PAIR);
    zmq_bind(p0, "inproc://hops");
    zmq_connect(p1, "inproc://hops");
    pthread_t t;
    pthread_create(&t, NULL, inproc_echo, p1);
    double inproc_us = zmq_rtt(p0, calls);
    zmq_send(p0, "", 0, 0);
    pthread_join(t, NULL);
    zmq_close(p0);
    zmq_close(p1);
    zmq_ctx_term(ctx);
    if (ipc_us < 0 || inproc_us < 0)
        return 1;
    printf("raw_hop_inproc_round_trip\tus\t%.3f\n", inproc_us);
    printf("raw_hop_ipc_round_trip\tus\t%.3f\n", ipc_us);
    printf("raw_hop_socketpair_round_trip\tus\t%.3f\n", pair_us);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "rawrelay"))
        return rawrelay(atoi(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "hops"))
        return hops(atoi(argv[2]));
    const char *ep = NULL;
    int pid = 0, a = 1;
    for (; a + 1 < argc && argv[a][0] == '-'; a += 2)
        if (!strcmp(argv[a], "--broker"))
            ep = argv[a + 1];
        else if (!strcmp(argv[a], "--pid"))
            pid = atoi(argv[a + 1]);
    if (!ep || a >= argc) {
        fprintf(stderr, "usage: bench_scale --broker EP [--pid PID] MODE ARGS\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    mp_log_set_level(MP_LOG_ERROR);
    const char *mode = argv[a];
    if (!strcmp(mode, "workers") && a + 1 < argc)
        return workers_main(ep, atoi(argv[a + 1]), a + 2 < argc ? atoi(argv[a + 2]) : 1000);
    if (!strcmp(mode, "throughput") && a + 2 < argc)
        return throughput(ep, atoi(argv[a + 1]), atol(argv[a + 2]));
    if (!strcmp(mode, "latency") && a + 2 < argc)
        return latency(ep, pid, atoi(argv[a + 1]), argv[a + 2]);
    if (!strcmp(mode, "queue") && a + 1 < argc && pid)
        return queue(ep, pid, atol(argv[a + 1]));
    fprintf(stderr, "bench_scale: bad mode\n");
    return 2;
}
