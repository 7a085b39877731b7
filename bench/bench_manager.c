/*  bench_manager.c - the Manager's dict and list against Python's Manager()
    (bench_manager.py, same workloads). Prints "name <TAB> unit <TAB> value"
    lines, the median of RUNS runs, in microseconds per operation.

    Remote: a child process serves a manager on tcp loopback, over a plain
    TCP stream (mpm+tcp://, as Python's manager) and over ZeroMQ (tcp://,
    with and without CURVE); this process times a dict get through a proxy
    on each, and the raw echo round trips to the same child they stand on:
    a plain TCP socket (both sides polling briefly, as the stream does) and
    a ZeroMQ DEALER -> ROUTER. */
#include <czmq.h>
#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <mp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_util.h"

#define RUNS 5
#define OPS 200000
#define KEYS 1000

static double dict_set_us(mp_mdict_t *d)
{
    mp_obj_t *k = mp_obj_new_int(0), *v = mp_obj_new_int(0);
    double t0 = now_s();
    for (int i = 0; i < OPS; i++) {
        mp_obj_destroy(&k);
        mp_obj_destroy(&v);
        k = mp_obj_new_int(i % KEYS);
        v = mp_obj_new_int(i);
        if (mp_mdict_set(d, k, v))
            exit(1);
    }
    double t = now_s() - t0;
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    return t / OPS * 1e6;
}

static double dict_get_us(mp_mdict_t *d)
{
    double t0 = now_s();
    for (int i = 0; i < OPS; i++) {
        mp_obj_t *k = mp_obj_new_int(i % KEYS), *v = NULL;
        if (mp_mdict_get(d, k, NULL, &v))
            exit(1);
        mp_obj_destroy(&k);
        mp_obj_destroy(&v);
    }
    return (now_s() - t0) / OPS * 1e6;
}

/* d["supplies"]["water"] = i: a reference followed, then a set */
static double nested_set_us(mp_manager_t *m, mp_mdict_t *d)
{
    mp_mdict_t *inner;
    mp_obj_t *sup = mp_obj_new_str("supplies"), *water = mp_obj_new_str("water"), *ref;
    if (mp_manager_dict(m, &inner) || !(ref = mp_mobj_ref(inner)) || mp_mdict_set(d, sup, ref))
        exit(1);
    mp_obj_destroy(&ref);
    double t0 = now_s();
    for (int i = 0; i < OPS; i++) {
        mp_obj_t *v = mp_obj_new_int(i);
        if (mp_mdict_get_ref(d, sup, &inner) || mp_mdict_set(inner, water, v))
            exit(1);
        mp_obj_destroy(&v);
    }
    double t = now_s() - t0;
    mp_obj_destroy(&sup);
    mp_obj_destroy(&water);
    return t / OPS * 1e6;
}

static double dict_incr_us(mp_mdict_t *d)
{
    mp_obj_t *k = mp_obj_new_str("counter");
    double t0 = now_s();
    for (int i = 0; i < OPS; i++)
        if (mp_mdict_incr(d, k, 1, NULL))
            exit(1);
    double t = now_s() - t0;
    mp_obj_destroy(&k);
    return t / OPS * 1e6;
}

static double list_append_us(mp_mlist_t *l)
{
    double t0 = now_s();
    for (int i = 0; i < OPS; i++) {
        mp_obj_t *v = mp_obj_new_int(i);
        if (mp_mlist_append(l, v))
            exit(1);
        mp_obj_destroy(&v);
    }
    return (now_s() - t0) / OPS * 1e6;
}

#define REMOTE_OPS 20000

static void *echo_thread(void *sock)
{
    for (;;) { /* [id][payload] back as it came */
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, sock, 0) < 0 || zmq_msg_recv(&body, sock, 0) < 0)
            return NULL;
        zmq_msg_send(&id, sock, ZMQ_SNDMORE);
        zmq_msg_send(&body, sock, 0);
    }
}

#define SPIN_NS 50000 /* as the stream transport's default */

/* Reads n bytes, polling without sleeping for SPIN_NS first. */
static int spin_read(int fd, char *buf, size_t n)
{
    size_t got = 0;
    double spin_end = now_s() + SPIN_NS / 1e9;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            return -1;
        if (now_s() > spin_end) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, -1);
        }
    }
    return 0;
}

/* A plain TCP echo of 16-byte messages: the floor of the stream transport. */
static void *tcp_echo_thread(void *arg)
{
    int lfd = (int)(intptr_t)arg, fd = accept(lfd, NULL, NULL), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[16];
    while (spin_read(fd, buf, sizeof buf) == 0 && send(fd, buf, sizeof buf, 0) == sizeof buf) {
    }
    close(fd);
    return NULL;
}

/* A listening loopback socket: its fd, its port in *port. */
static int tcp_listener(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 1) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        exit(1);
    *port = ntohs(a.sin_port);
    return fd;
}

/* The serving child: a manager with d[0..KEYS) served on ZeroMQ (CURVE or
   not) and on a plain stream, a raw echo ROUTER and a raw TCP echo; the
   four endpoints go to out, one per line; exits when ctl closes. */
static char keydir[64]; /* CURVE keys for the _curve row (keygen) */

static void keygen(void)
{
    char path[128];
    snprintf(keydir, sizeof keydir, "/tmp/mp-bench-keys-XXXXXX");
    if (!mkdtemp(keydir))
        exit(1);
    snprintf(path, sizeof path, "%s/allow", keydir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/allow/managers", keydir);
    mkdir(path, 0700);
    const char *names[] = {"server", "client"};
    for (int i = 0; i < 2; i++) {
        zcert_t *c = zcert_new();
        snprintf(path, sizeof path, "%s/%s.key", keydir, names[i]);
        if (!c || zcert_save(c, path))
            exit(1);
        snprintf(path, sizeof path, "%s/allow/managers/%s.key", keydir, names[i]);
        if (i == 1 && zcert_save_public(c, path))
            exit(1);
        zcert_destroy(&c);
    }
}

static const char *key(const char *name)
{
    static char path[2][128];
    static int k;
    k ^= 1;
    snprintf(path[k], sizeof path[k], "%s/%s", keydir, name);
    return path[k];
}

static void serve(int ctl, int out, bool curve)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    mp_manager_t *m;
    mp_mdict_t *d;
    mp_manager_server_t *s;
    if (mp_manager_new(NULL, &m) || mp_manager_named_dict(m, "d", &d))
        _exit(1);
    for (int i = 0; i < KEYS; i++) {
        mp_obj_t *k = mp_obj_new_int(i);
        mp_mdict_set(d, k, k);
        mp_obj_destroy(&k);
    }
    mp_manager_serve_options_t o = {.endpoint = "tcp://127.0.0.1:0",
                                    .authkey = "key",
                                    .keylen = 3,
                                    .curve_key = curve ? key("server.key_secret") : NULL,
                                    .allow_dir = curve ? key("allow") : NULL};
    mp_manager_serve_options_t so = {
        .endpoint = "mpm+tcp://127.0.0.1:0", .authkey = "key", .keylen = 3};
    mp_manager_server_t *ss;
    if (mp_manager_serve_with(m, &o, &s) || mp_manager_serve_with(m, &so, &ss))
        _exit(2);
    int port, lfd = tcp_listener(&port);
    pthread_t te;
    pthread_create(&te, NULL, tcp_echo_thread, (void *)(intptr_t)lfd);
    void *ctx = zmq_ctx_new(), *echo = zmq_socket(ctx, ZMQ_ROUTER);
    char ep[256];
    size_t len = sizeof ep;
    if (zmq_bind(echo, "tcp://127.0.0.1:0") || zmq_getsockopt(echo, ZMQ_LAST_ENDPOINT, ep, &len))
        _exit(3);
    pthread_t t;
    pthread_create(&t, NULL, echo_thread, echo);
    dprintf(out, "%s\n%s\n%s\n%d\n", mp_manager_server_endpoint(s), ep,
            mp_manager_server_endpoint(ss), port);
    close(out);
    char c;
    while (read(ctl, &c, 1) > 0) {
    }
    _exit(0);
}

/* get_many and set_many of the KEYS keys, REMOTE_OPS of each: us per key. */
static void batch_figures(mp_mdict_t *d, double *get_us, double *set_us)
{
    mp_obj_t *keys[KEYS], *vals[KEYS], *got[KEYS];
    for (int i = 0; i < KEYS; i++)
        keys[i] = mp_obj_new_int(i);
    double g[RUNS], s[RUNS];
    for (int run = 0; run < RUNS; run++) {
        double t0 = now_s();
        for (int b = 0; b < REMOTE_OPS / KEYS; b++) {
            if (mp_mdict_get_many(d, (const mp_obj_t *const *)keys, KEYS, got, NULL))
                exit(1);
            for (int i = 0; i < KEYS; i++)
                mp_obj_destroy(&got[i]);
        }
        g[run] = (now_s() - t0) / REMOTE_OPS * 1e6;
        for (int i = 0; i < KEYS; i++)
            vals[i] = mp_obj_new_int(i + run);
        t0 = now_s();
        for (int b = 0; b < REMOTE_OPS / KEYS; b++)
            if (mp_mdict_set_many(d, (const mp_obj_t *const *)keys, (const mp_obj_t *const *)vals,
                                  KEYS))
                exit(1);
        s[run] = (now_s() - t0) / REMOTE_OPS * 1e6;
        for (int i = 0; i < KEYS; i++)
            mp_obj_destroy(&vals[i]);
    }
    for (int i = 0; i < KEYS; i++)
        mp_obj_destroy(&keys[i]);
    *get_us = median(g, RUNS);
    *set_us = median(s, RUNS);
}

typedef struct {
    double zmq_get, zmq_raw;                /* over ZeroMQ (CURVE or not), and its echo */
    double stream_get, stream_set, tcp_raw; /* over mpm+tcp://, and the plain TCP echo */
    double many_get, many_set;              /* batches over mpm+tcp:// */
} remote_t;

/* A get (or a set) through a proxy of d: us per call (the median of RUNS runs). */
static double proxy_call_us(mp_mdict_t *d, bool set)
{
    double g[RUNS];
    for (int run = 0; run < RUNS; run++) {
        double t0 = now_s();
        for (int i = 0; i < REMOTE_OPS; i++) {
            mp_obj_t *k = mp_obj_new_int(i % KEYS), *v = set ? mp_obj_new_int(i) : NULL;
            if (set ? mp_mdict_set(d, k, v) : mp_mdict_get(d, k, NULL, &v))
                exit(1);
            mp_obj_destroy(&k);
            mp_obj_destroy(&v);
        }
        g[run] = (now_s() - t0) / REMOTE_OPS * 1e6;
    }
    return median(g, RUNS);
}

static double zmq_echo_us(const char *endpoint)
{
    double w[RUNS];
    void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(sock, endpoint);
    char msg[32] = "MPM01", back[64];
    for (int run = 0; run < RUNS; run++) {
        double t0 = now_s();
        for (int i = 0; i < REMOTE_OPS; i++)
            if (zmq_send(sock, msg, 16, 0) < 0 || zmq_recv(sock, back, sizeof back, 0) < 0)
                exit(1);
        w[run] = (now_s() - t0) / REMOTE_OPS * 1e6;
    }
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return median(w, RUNS);
}

static double tcp_echo_us(int port)
{
    double w[RUNS];
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a))
        exit(1);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char msg[16] = "MPM01";
    for (int run = 0; run < RUNS; run++) {
        double t0 = now_s();
        for (int i = 0; i < REMOTE_OPS; i++)
            if (send(fd, msg, sizeof msg, 0) != sizeof msg || spin_read(fd, msg, sizeof msg))
                exit(1);
        w[run] = (now_s() - t0) / REMOTE_OPS * 1e6;
    }
    close(fd);
    return median(w, RUNS);
}

static void remote_figures(bool curve, remote_t *f)
{
    int ctl[2], out[2];
    if (pipe(ctl) || pipe(out))
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        close(ctl[1]);
        close(out[0]);
        serve(ctl[0], out[1], curve);
    }
    close(ctl[0]);
    close(out[1]);
    char buf[1024] = {0}, mgr[256], raw[256], stream[256];
    int port;
    size_t n = 0;
    ssize_t r;
    while ((r = read(out[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    if (sscanf(buf, "%255s %255s %255s %d", mgr, raw, stream, &port) != 4)
        exit(1);
    mp_remote_t *rm, *rs;
    mp_mdict_t *d, *ds;
    mp_remote_options_t ro = {.curve_key = curve ? key("client.key_secret") : NULL,
                              .curve_server_key = curve ? key("server.key") : NULL};
    if (mp_manager_connect(mgr, "key", 3, &ro, &rm) || mp_remote_dict(rm, "d", &d) ||
        mp_manager_connect(stream, "key", 3, NULL, &rs) || mp_remote_dict(rs, "d", &ds))
        exit(1);
    f->zmq_get = proxy_call_us(d, false);
    f->zmq_raw = zmq_echo_us(raw);
    f->stream_get = proxy_call_us(ds, false);
    f->stream_set = proxy_call_us(ds, true);
    f->tcp_raw = tcp_echo_us(port);
    if (!curve)
        batch_figures(ds, &f->many_get, &f->many_set);
    mp_remote_disconnect(&rm);
    mp_remote_disconnect(&rs);
    close(ctl[1]);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    /* first: forks before this process has ZeroMQ threads */
    remote_t plain = {0}, curve = {0};
    keygen();
    remote_figures(false, &plain);
    remote_figures(true, &curve);
    char rm[160];
    snprintf(rm, sizeof rm, "rm -rf '%s'", keydir);
    if (system(rm) != 0)
        return 1;
    double set[RUNS], get[RUNS], incr[RUNS], append[RUNS], nested[RUNS];
    for (int r = 0; r < RUNS; r++) {
        mp_manager_t *m;
        mp_mdict_t *d;
        mp_mlist_t *l;
        if (mp_manager_new(NULL, &m) || mp_manager_dict(m, &d) || mp_manager_list(m, &l))
            return 1;
        set[r] = dict_set_us(d);
        get[r] = dict_get_us(d);
        incr[r] = dict_incr_us(d);
        append[r] = list_append_us(l);
        nested[r] = nested_set_us(m, d);
        mp_manager_destroy(&m);
    }
    printf("dict_set\tus/op\t%.4f\n", median(set, RUNS));
    printf("dict_get\tus/op\t%.4f\n", median(get, RUNS));
    printf("dict_incr_atomic\tus/op\t%.4f\n", median(incr, RUNS));
    printf("list_append\tus/op\t%.4f\n", median(append, RUNS));
    printf("nested_dict_set\tus/op\t%.4f\n", median(nested, RUNS));
    printf("remote_dict_get_tcp\tus/op\t%.4f\n", plain.stream_get);
    printf("remote_dict_set_tcp\tus/op\t%.4f\n", plain.stream_set);
    printf("remote_dict_get_zmq_tcp\tus/op\t%.4f\n", plain.zmq_get);
    printf("remote_dict_get_zmq_tcp_curve\tus/op\t%.4f\n", curve.zmq_get);
    printf("remote_dict_get_many_tcp\tus/op\t%.4f\n", plain.many_get);
    printf("remote_dict_set_many_tcp\tus/op\t%.4f\n", plain.many_set);
    printf("raw_tcp_round_trip\tus/op\t%.4f\n", plain.tcp_raw);
    printf("raw_zmq_round_trip_tcp\tus/op\t%.4f\n", plain.zmq_raw);
    return 0;
}
