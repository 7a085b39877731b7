/*  support_cluster.c - mp-broker and mp-worker as child processes, pools,
    and the items the pool tests send and check.
*/
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "support.h"

#ifndef MP_BUILD_DIR
#error "MP_BUILD_DIR (the build tree, where mp-broker and mp-worker are) is not defined"
#endif

/* ---- mp-broker and mp-worker as child processes ------------------------------------ */

size_t tu_read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n < size - 1) {
        ssize_t r = read(fd, buf + n, 1);
        if (r != 1 || buf[n] == '\n' || buf[n] == '\0')
            break;
        n++;
    }
    buf[n] = '\0';
    close(fd);
    return n;
}

int tu_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

pid_t tu_start_broker(const char *bind, const char *heartbeat_ms, char *endpoint, size_t size)
{
    return tu_start_broker_with(bind, heartbeat_ms, NULL, endpoint, size);
}

pid_t tu_start_broker_with(const char *bind, const char *heartbeat_ms, const char *const *extra,
                           char *endpoint, size_t size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char *argv[32] = {MP_BUILD_DIR "/broker/mp-broker",
                      "--bind",
                      (char *)bind,
                      "--heartbeat",
                      (char *)heartbeat_ms,
                      "-q"};
    int n = 6;
    for (; extra && *extra && n < 31; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    pid_t pid = tu_spawn(argv, fds[1]);
    close(fds[1]);
    tu_read_line(fds[0], endpoint, size); /* the first line is the bound endpoint */
    return pid;
}

pid_t tu_start_worker(const char *broker, const char *processes, const char *heartbeat_ms)
{
    char *argv[] = {MP_BUILD_DIR "/worker/mp-worker",
                    "--broker",
                    (char *)broker,
                    "--tasks",
                    MP_BUILD_DIR "/tests/libtest_tasks.so",
                    "-p",
                    (char *)processes,
                    "--heartbeat",
                    (char *)heartbeat_ms,
                    "-q",
                    NULL};
    return tu_spawn(argv, -1);
}

/* ---- pools and their items -------------------------------------------------------- */

mp_pool_t *tu_new_pool(int processes, const mp_pool_options_t *extra)
{
    mp_pool_options_t o = extra ? *extra : (mp_pool_options_t){0};
    o.processes = processes;
    o.heartbeat_ms = 500;
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(mp_pool_processes(pool), processes);
    return pool;
}

int tu_wait_processes(mp_pool_t *pool, int n, int timeout_ms)
{
    TU_WAIT_UNTIL(mp_pool_processes(pool) >= n, timeout_ms);
    return mp_pool_processes(pool);
}

mp_items_t *tu_range(int n)
{
    mp_items_t *l = mp_items_new();
    for (int i = 0; i < n; i++)
        assert_int_equal(mp_items_add_int(l, i), 0);
    return l;
}

mp_items_t *tu_repeat(int n, int64_t value)
{
    mp_items_t *l = mp_items_new();
    for (int i = 0; i < n; i++)
        mp_items_add_int(l, value);
    return l;
}

mp_items_t *tu_pairs_with(int n, int64_t second)
{
    mp_items_t *l = mp_items_new();
    for (int i = 0; i < n; i++) {
        mp_items_add_tuple(l, 2);
        mp_items_add_int(l, i);
        mp_items_add_int(l, second);
    }
    return l;
}

void tu_assert_squares(const mp_items_t *r, int n)
{
    assert_int_equal(mp_items_len(r), n);
    assert_int_equal(mp_items_nerrors(r), 0);
    for (int i = 0; i < n; i++) {
        int64_t v = -1;
        assert_int_equal(mp_items_int(r, (size_t)i, &v), 0);
        assert_int_equal(v, (int64_t)i * i);
    }
}

void tu_assert_map_squares(mp_pool_t *pool, int n)
{
    mp_items_t *in = tu_range(n), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "square", in, 0, &out), 0);
    tu_assert_squares(out, n);
    mp_items_destroy(&out);
    mp_items_destroy(&in);
}

void tu_assert_indexes(const mp_items_t *r, int n, int skip)
{
    for (int i = 0; i < n; i++) {
        int64_t v = -1;
        if (i == skip)
            continue;
        assert_int_equal(mp_items_int(r, (size_t)i, &v), 0);
        assert_int_equal(v, i);
    }
}

size_t tu_log_scan(const char *path, size_t *warns, bool *raw_control)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    size_t n = 0;
    *raw_control = false;
    if (warns)
        *warns = 0;
    while (f && fgets(line, sizeof line, f)) {
        n++;
        if (warns && strstr(line, " WARN "))
            ++*warns;
        for (char *p = line; *p && *p != '\n'; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
                *raw_control = true;
        if (strncmp(line, "FORGED", 6) == 0)
            *raw_control = true;
    }
    if (f)
        fclose(f);
    return n;
}

long tu_rss_kib(pid_t pid)
{
    char path[64], line[256];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

mp_pool_t *tu_cluster_pool(const char *endpoint, int heartbeat_ms, int processes)
{
    mp_pool_options_t o = {
        .broker = endpoint, .heartbeat_ms = heartbeat_ms, .connect_timeout_ms = 5000};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, processes, 10000), processes);
    return pool;
}

/* ---- HTTP ------------------------------------------------------------------------- */

int tu_http_get(const char *hostport, const char *path, const char *accept, char **body,
                char *ctype, size_t ctsize)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    assert_non_null(colon);
    snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    assert_int_equal(inet_pton(AF_INET, host, &a.sin_addr), 1);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    *body = NULL;
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        close(s);
        return 0;
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s%s%s\r\n\r\n", path, hostport,
                     accept ? "\r\nAccept: " : "", accept ? accept : "");
    assert_int_equal(write(s, req, (size_t)n), n);
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    ssize_t k;
    while ((k = read(s, buf + len, cap - len - 1)) > 0) {
        len += (size_t)k;
        if (cap - len < 4096)
            buf = realloc(buf, cap *= 2);
    }
    close(s);
    buf[len] = '\0';
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    char *ct = strstr(buf, "\r\nContent-Type: ");
    if (ct && ctype)
        snprintf(ctype, ctsize, "%.*s", (int)strcspn(ct + 16, "\r"), ct + 16);
    char *start = strstr(buf, "\r\n\r\n");
    *body = strdup(start ? start + 4 : "");
    free(buf);
    return status;
}

double tu_metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}
