/*  bench_manager.c - the Manager's dict and list against Python's Manager()
    (bench_manager.py, same workloads). Prints "name <TAB> unit <TAB> value"
    lines, the median of RUNS runs, in microseconds per operation.

    Remote: a child process serves a manager on tcp loopback; this process
    times a dict get through a proxy, and a raw ZeroMQ DEALER -> ROUTER echo
    round trip to the same child (the floor a remote call stands on). */
#include <czmq.h>
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

/* The serving child: a manager with d[0..KEYS) and a raw echo ROUTER; the
   two endpoints go to out, one per line; exits when ctl closes. */
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
    if (mp_manager_serve_with(m, &o, &s))
        _exit(2);
    void *ctx = zmq_ctx_new(), *echo = zmq_socket(ctx, ZMQ_ROUTER);
    char ep[256];
    size_t len = sizeof ep;
    if (zmq_bind(echo, "tcp://127.0.0.1:0") || zmq_getsockopt(echo, ZMQ_LAST_ENDPOINT, ep, &len))
        _exit(3);
    pthread_t t;
    pthread_create(&t, NULL, echo_thread, echo);
    dprintf(out, "%s\n%s\n", mp_manager_server_endpoint(s), ep);
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

static void remote_figures(bool curve, double *get_us, double *raw_us, double *many_get_us,
                           double *many_set_us)
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
    char buf[600] = {0}, mgr[256], raw[256];
    size_t n = 0;
    ssize_t r;
    while ((r = read(out[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    if (sscanf(buf, "%255s %255s", mgr, raw) != 2)
        exit(1);
    mp_remote_t *rm;
    mp_mdict_t *d;
    mp_remote_options_t ro = {.curve_key = curve ? key("client.key_secret") : NULL,
                              .curve_server_key = curve ? key("server.key") : NULL};
    if (mp_manager_connect(mgr, "key", 3, &ro, &rm) || mp_remote_dict(rm, "d", &d))
        exit(1);
    double g[RUNS], w[RUNS];
    void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(sock, raw);
    char msg[32] = "MPM01", back[64];
    for (int run = 0; run < RUNS; run++) {
        double t0 = now_s();
        for (int i = 0; i < REMOTE_OPS; i++) {
            mp_obj_t *k = mp_obj_new_int(i % KEYS), *v = NULL;
            if (mp_mdict_get(d, k, NULL, &v))
                exit(1);
            mp_obj_destroy(&k);
            mp_obj_destroy(&v);
        }
        g[run] = (now_s() - t0) / REMOTE_OPS * 1e6;
        t0 = now_s();
        for (int i = 0; i < REMOTE_OPS; i++)
            if (zmq_send(sock, msg, 16, 0) < 0 || zmq_recv(sock, back, sizeof back, 0) < 0)
                exit(1);
        w[run] = (now_s() - t0) / REMOTE_OPS * 1e6;
    }
    *get_us = median(g, RUNS);
    *raw_us = median(w, RUNS);
    if (many_get_us)
        batch_figures(d, many_get_us, many_set_us);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    mp_remote_disconnect(&rm);
    close(ctl[1]);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    /* first: forks before this process has ZeroMQ threads */
    double remote_get, raw_rtt, remote_curve, raw_curve, many_get, many_set;
    keygen();
    remote_figures(false, &remote_get, &raw_rtt, &many_get, &many_set);
    remote_figures(true, &remote_curve, &raw_curve, NULL, NULL);
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
    printf("remote_dict_get_tcp\tus/op\t%.4f\n", remote_get);
    printf("remote_dict_get_tcp_curve\tus/op\t%.4f\n", remote_curve);
    printf("remote_dict_get_many_tcp\tus/op\t%.4f\n", many_get);
    printf("remote_dict_set_many_tcp\tus/op\t%.4f\n", many_set);
    printf("raw_zmq_round_trip_tcp\tus/op\t%.4f\n", raw_rtt);
    return 0;
}
