/*  http.c - the broker's HTTP port (docs/CLUSTER.md 7), served by
    libmicrohttpd: GET /metrics (OpenMetrics or Prometheus text), GET
    /api/status (the JSON the dashboard polls) and GET / (the dashboard, a
    page embedded in the binary: broker/dashboard.html).

    libmicrohttpd runs its own thread; the broker's state belongs to the
    broker thread. So a request is a question on an inproc PAIR: the HTTP
    thread sends [seq, what] and waits (2 s at most) for [seq, body], which
    the broker thread renders between two messages of its loop
    (bk_http_answer). seq tells a late answer (to a request that timed out)
    from the one awaited. One HTTP thread (MHD's internal polling thread),
    so one question at a time.

    The port follows the task ports' rule: loopback, or secured (HTTPS
    with the operator's certificate, and a bearer token every request
    shows: what CURVE's encryption and allow-list are to the task ports),
    or insecure said explicitly.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker_impl.h"
#include "dashboard_html.h" /* generated from broker/dashboard.html (cmake/embed.cmake) */
#include "mp/error.h"

#define ANSWER_MS 2000

enum { ASK_PROMETHEUS = 1, ASK_OPENMETRICS = 2, ASK_JSON = 3 };

struct bk_http {
    struct MHD_Daemon *daemon;
    void *ask;     /* the HTTP thread's end of the pair */
    uint64_t seq;  /* of the last question */
    char addr[80]; /* host:port bound */
    bool tls;
    char *cert, *key; /* PEM, kept while the daemon runs (MHD reads them in place) */
    char *token;      /* NULL: none asked */
    bool insecure;    /* off loopback without a token: any Host */
};

/* Asks the broker thread for the text; NULL on timeout (or out of memory),
   else a malloc'ed body of *size bytes. */
static char *ask_broker(struct bk_http *h, int what, size_t *size)
{
    uint64_t seq = ++h->seq;
    uint8_t q[9];
    memcpy(q, &seq, 8);
    q[8] = (uint8_t)what;
    if (zmq_send(h->ask, q, sizeof q, ZMQ_DONTWAIT) != sizeof q)
        return NULL;
    uint64_t deadline = mp__now_ns() + (uint64_t)ANSWER_MS * 1000000u;
    for (;;) {
        uint64_t now = mp__now_ns();
        if (now >= deadline)
            return NULL;
        zmq_pollitem_t it = {h->ask, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, (long)((deadline - now) / 1000000u) + 1) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, h->ask, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        size_t n = zmq_msg_size(&msg);
        uint64_t got;
        if (n >= 8 && (memcpy(&got, zmq_msg_data(&msg), 8), got == seq)) {
            char *body = malloc(n - 8 + 1);
            if (body) {
                memcpy(body, (char *)zmq_msg_data(&msg) + 8, n - 8);
                *size = n - 8;
            }
            zmq_msg_close(&msg);
            return body;
        }
        zmq_msg_close(&msg); /* a late answer to an earlier question */
    }
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             void *body, size_t size)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(size, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return reply(c, status, "text/plain; charset=utf-8", strdup(text), strlen(text));
}

/* a == b, in a time that does not depend on where they differ */
static bool same(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    unsigned char d = n != m;
    for (size_t i = 0; i < n && i < m; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* Without a token the port is on loopback (or insecure): then the Host a
   browser asked for must be a loopback name, so that a web page elsewhere
   cannot read the cluster through a name it makes resolve to 127.0.0.1
   (DNS rebinding). With a token, the token decides. */
static bool host_ok(const struct bk_http *h, struct MHD_Connection *c)
{
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    return h->token || h->insecure || !host || !strncmp(host, "127.", 4) ||
           !strncmp(host, "localhost", 9) || !strncmp(host, "[::1]", 5) || !strcmp(host, h->addr);
}

/* The token the request shows (header or ?token=) is the broker's. */
static bool authorized(const struct bk_http *h, struct MHD_Connection *c)
{
    if (!h->token)
        return true;
    const char *auth =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    return (auth && !strncmp(auth, "Bearer ", 7) && same(auth + 7, h->token)) ||
           (arg && same(arg, h->token));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    struct bk_http *h = cls;
    /* refused at once, on the headers, before any body is read */
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
    if (!host_ok(h, c))
        return reply_text(c, MHD_HTTP_FORBIDDEN,
                          "Host is not a loopback name (use 127.0.0.1, or a token)\n");
    if (!authorized(h, c)) {
        const char *text = "a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n";
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, r);
        MHD_destroy_response(r);
        return rc;
    }
    if (!*state) { /* answered once the (empty) body is in */
        *state = h;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* a body we do not read */
        return MHD_YES;
    }
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
        void *page = malloc(dashboard_html_len);
        if (!page)
            return MHD_NO;
        memcpy(page, dashboard_html, dashboard_html_len);
        return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", page, dashboard_html_len);
    }
    if (!strcmp(url, "/api/status")) {
        size_t size = 0;
        char *body = ask_broker(h, ASK_JSON, &size);
        if (!body)
            return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "the broker did not answer in time\n");
        return reply(c, MHD_HTTP_OK, "application/json", body, size);
    }
    if (strcmp(url, "/metrics"))
        return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: GET /, /metrics, /api/status\n");
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    bool om = accept && strstr(accept, "application/openmetrics-text");
    size_t size = 0;
    char *body = ask_broker(h, om ? ASK_OPENMETRICS : ASK_PROMETHEUS, &size);
    if (!body)
        return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "the broker did not answer in time\n");
    return reply(c, MHD_HTTP_OK,
                 om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                    : "text/plain; version=0.0.4; charset=utf-8",
                 body, size);
}

static bool loopback(const struct sockaddr_in *sa)
{
    return (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
}

/* "HOST:PORT" (HOST an IPv4 address or a name, PORT 0 for any) into sa. */
static int parse_addr(const char *addr, struct sockaddr_in *sa)
{
    const char *colon = strrchr(addr, ':');
    char host[64];
    if (!colon || (size_t)(colon - addr) >= sizeof host || colon == addr)
        return MP_EINVAL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return MP_EINVAL;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) || !res)
        return MP_EHOSTUNKNOWN;
    memcpy(sa, res->ai_addr, sizeof *sa);
    freeaddrinfo(res);
    sa->sin_port = htons((uint16_t)port);
    return 0;
}

/* The whole file path, NUL-terminated, in *text (malloc'ed). */
static int slurp(const char *what, const char *path, char **text)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mp__log(MP_LOG_ERROR, WHO, "%s %s: %s", what, path, strerror(errno));
        return MP_ENOENT;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0)
        if ((n += k) == cap - 1) {
            char *grown = n < (1u << 20) ? realloc(buf, cap *= 2) : NULL;
            if (!grown)
                free(buf);
            buf = grown;
        }
    fclose(f);
    if (!buf) {
        mp__log(MP_LOG_ERROR, WHO, "%s %s: too large (1 MiB at most) or out of memory", what, path);
        return MP_EINVAL;
    }
    buf[n] = '\0';
    *text = buf;
    return 0;
}

/* TLS and the token, as o says (the files are read now). */
static int secure(struct bk_http *h, const mp_broker_options_t *o)
{
    if (!o->http_cert != !o->http_key) {
        mp__log(MP_LOG_ERROR, WHO, "HTTPS needs both --http-cert and --http-key");
        return MP_EINVAL;
    }
    int rc = 0;
    if (o->http_cert && !(rc = slurp("--http-cert", o->http_cert, &h->cert)) &&
        !(rc = slurp("--http-key", o->http_key, &h->key))) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            mp__log(MP_LOG_ERROR, WHO, "this libmicrohttpd has no TLS");
            return MP_EINVAL;
        }
        h->tls = true;
    }
    if (!rc && o->http_token && !(rc = slurp("--http-token", o->http_token, &h->token))) {
        size_t n = strlen(h->token);
        while (n && (h->token[n - 1] == '\n' || h->token[n - 1] == '\r' || h->token[n - 1] == ' '))
            h->token[--n] = '\0';
        if (n < 16) {
            mp__log(MP_LOG_ERROR, WHO, "--http-token %s: at least 16 characters", o->http_token);
            rc = MP_EINVAL;
        }
    }
    return rc;
}

int bk_http_start(mp_broker_t *b, const mp_broker_options_t *o)
{
    const char *addr = o->http;
    struct sockaddr_in sa;
    int rc = parse_addr(addr, &sa);
    if (rc) {
        mp__log(MP_LOG_ERROR, WHO, "--http %s: expected HOST:PORT (IPv4 address or name)", addr);
        return rc;
    }
    bool secured = o->http_cert && o->http_key && o->http_token;
    if (!loopback(&sa) && !secured && !o->insecure) {
        mp__log(MP_LOG_ERROR, WHO,
                "--http %s: other hosts could reach it; serve it on loopback "
                "(127.0.0.1:PORT), or secure it (--http-cert FILE --http-key FILE "
                "--http-token FILE), or pass --insecure",
                addr);
        return MP_EINSECURE;
    }
    struct bk_http *h = calloc(1, sizeof *h);
    if (!h || bk_recent_init(b)) {
        free(h);
        return MP_ENOMEM;
    }
    b->http = h;
    h->insecure = o->insecure && !loopback(&sa);
    if ((rc = secure(h, o)))
        return rc;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://mp-broker-http-%p", (void *)b);
    b->http_thread_sock = zmq_socket(b->ctx, ZMQ_PAIR);
    h->ask = zmq_socket(b->ctx, ZMQ_PAIR);
    int zero = 0;
    if (!b->http_thread_sock || !h->ask || zmq_bind(b->http_thread_sock, ep) ||
        zmq_connect(h->ask, ep) || zmq_setsockopt(h->ask, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(b->http_thread_sock, ZMQ_LINGER, &zero, sizeof zero))
        return -errno;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | (h->tls ? MHD_USE_TLS : 0);
    h->daemon = h->tls
                    ? MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                                       (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                       MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_HTTPS_MEM_KEY,
                                       h->key, MHD_OPTION_HTTPS_MEM_CERT, h->cert, MHD_OPTION_END)
                    : MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                                       (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                       MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!h->daemon) {
        int err = errno ? errno : EADDRINUSE;
        mp__log(MP_LOG_ERROR, WHO, "--http %s: cannot listen: %s", addr, strerror(err));
        return -err;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    snprintf(h->addr, sizeof h->addr, "%s:%u", ip,
             info ? (unsigned)info->port : (unsigned)ntohs(sa.sin_port));
    mp__log(MP_LOG_INFO, WHO, "dashboard on %s://%s/, metrics on %s://%s/metrics%s",
            h->tls ? "https" : "http", h->addr, h->tls ? "https" : "http", h->addr,
            h->token ? " (token required)" : "");
    return 0;
}

void bk_http_answer(mp_broker_t *b)
{
    uint8_t q[9], next[9];
    /* only the newest question is awaited (the others timed out): answer
       it; then read again to EAGAIN, since the send may have taken the
       wake-up of a question that came meanwhile (mpp_poll's rule) */
    for (bool have = true; have;) {
        have = false;
        for (int n; (n = zmq_recv(b->http_thread_sock, next, sizeof next, ZMQ_DONTWAIT)) >= 0;)
            if (n == sizeof next) {
                memcpy(q, next, sizeof q);
                have = true;
            }
        if (!have)
            break;
        mp__buf_t out;
        mp__buf_init(&out, NULL, 0);
        int rc = mp__buf_append(&out, q, 8); /* the seq, then the body */
        if (!rc)
            rc = q[8] == ASK_JSON ? bk_status_json(b, &out)
                                  : bk_metrics_render(b, q[8] == ASK_OPENMETRICS, &out);
        if (!rc)
            zmq_send(b->http_thread_sock, out.data, out.size, ZMQ_DONTWAIT);
        mp__buf_release(&out);
    }
}

void bk_http_stop(mp_broker_t *b)
{
    if (b->http && b->http->daemon) { /* its thread ends; an asked question is answered */
        MHD_stop_daemon(b->http->daemon);
        b->http->daemon = NULL;
    }
}

void bk_http_free(mp_broker_t *b)
{
    struct bk_http *h = b->http;
    bk_recent_free(b);
    if (b->http_thread_sock)
        zmq_close(b->http_thread_sock);
    b->http_thread_sock = NULL;
    if (!h)
        return;
    bk_http_stop(b);
    if (h->ask)
        zmq_close(h->ask);
    free(h->cert);
    if (h->key)
        explicit_bzero(h->key, strlen(h->key));
    free(h->key);
    if (h->token)
        explicit_bzero(h->token, strlen(h->token));
    free(h->token);
    free(h);
    b->http = NULL;
}

const char *bk_http_addr(const mp_broker_t *b)
{
    return b->http ? b->http->addr : NULL;
}

bool bk_http_tls(const mp_broker_t *b)
{
    return b->http && b->http->tls;
}
