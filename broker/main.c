/*  mp-broker - serve MPP/1 (docs/PROTOCOL.md): route Pool tasks from
    clients to workers.

    A thin program: parse options (command line, then MP_* environment for
    what the command line did not set), start the broker engine, print the
    bound endpoints on stdout, wait for SIGTERM or SIGINT, stop cleanly.
*/
#include <getopt.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mp/broker.h"
#include "mp/error.h"
#include "mp/log.h"
#include "pool/progopt.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mp-broker [options]\n"
            "Routes libmp Pool tasks from clients to workers (MPP/1).\n\n"
            "  -b, --bind ENDPOINT     tcp://HOST:PORT or ipc://PATH; repeatable;\n"
            "                          port 0 or * picks a free port (default tcp://*:5555);\n"
            "                          mpp+tcp://HOST:PORT, mpp+ipc://PATH: a plain stream\n"
            "                          for workers, no ZeroMQ I/O threads, no CURVE\n"
            "                          (docs/PROTOCOL.md 9.3)\n"
            "      --heartbeat MS      heartbeat interval (default 1000); 3 missed = dead\n"
            "      --max-attempts N    tries per task before WORKER_LOST (default 3)\n"
            "      --max-message BYTES largest accepted message (default 64 MiB)\n"
            "      --max-queued N      chunks one client may have queued (default 4096;\n"
            "                          clients keep within it: docs/PROTOCOL.md 4.1)\n"
            "      --max-peers-per-source N  clients and workers from one key, or one\n"
            "                          address without keys (default 4096; more are\n"
            "                          refused, none evicted: docs/PROTOCOL.md 10)\n"
            "      --curve-key FILE    CURVE: this broker's certificate (NAME.key_secret,\n"
            "                          from mp-client keygen NAME)\n"
            "      --allow-dir DIR     CURVE: DIR/workers/ and DIR/clients/ hold the public\n"
            "                          certificates (NAME.key) of the peers admitted\n"
            "      --insecure          listen off loopback without CURVE (warned at start)\n"
            "      --http HOST:PORT    serve GET /metrics (OpenMetrics/Prometheus text) there;\n"
            "                          loopback unless --insecure; port 0 picks a free one\n"
            "      --journal DIR       keep durable jobs on disk there (made when missing;\n"
            "                          replayed at start: docs/JOURNAL.md)\n"
            "      --journal-max-mb MB journal size past which durable jobs are refused\n"
            "                          (default 1024)\n"
            "  -l, --log-level LEVEL   error, warn, info (default) or debug\n"
            "  -v, --verbose           the same as --log-level debug\n"
            "  -q, --quiet             the same as --log-level warn\n"
            "  -h, --help              this text\n"
            "  -V, --version           print the version\n\n"
            "Environment (used when the option is not given): MP_BROKER_BIND (comma-\n"
            "separated endpoints), MP_HEARTBEAT_MS, MP_MAX_ATTEMPTS, MP_MAX_MESSAGE,\n"
            "MP_MAX_QUEUED, MP_MAX_PEERS_PER_SOURCE, MP_CURVE_KEY, MP_CURVE_ALLOW_DIR,\n"
            "MP_INSECURE=1, MP_HTTP, MP_HTTP_CERT, MP_HTTP_KEY, MP_HTTP_TOKEN, MP_DRAIN_MS,\n"
            "MP_JOURNAL, MP_LOG_LEVEL.\n"
            "The bound endpoints are printed on stdout, one per line, then the metrics URL\n"
            "(http://HOST:PORT/metrics) with --http. Exit status: 0 after\n"
            "SIGTERM/SIGINT, 1 when it cannot start (e.g. cannot bind), 2 on bad usage.\n"
            "See docs/CLUSTER.md.\n");
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int parse_int(const char *s, const char *what, long min, long max, long *out)
{
    return mp_prog_parse_long("mp-broker", s, what, min, max, out);
}

/* The settings: the command line, then the environment for what it did
   not set (section 2 of docs/CLUSTER.md). */
typedef struct {
    const char *binds[64];
    size_t nbinds;
    long heartbeat, attempts, maxmsg, maxqueued, maxpeers, drain_ms, journal_mb;
    const char *journal;
    const char *curve_key, *allow_dir, *level_name, *http, *http_cert, *http_key, *http_token;
    bool insecure, drain_ms_set;
    char *envbinds; /* MP_BROKER_BIND's copy, the binds point into it */
} settings_t;

/* -1: go on; else the exit status (help, version, bad usage). */
static int parse_args(int argc, char **argv, settings_t *s)
{
    static const struct option opts[] = {{"bind", required_argument, 0, 'b'},
                                         {"heartbeat", required_argument, 0, 'H'},
                                         {"max-attempts", required_argument, 0, 'A'},
                                         {"max-message", required_argument, 0, 'M'},
                                         {"max-queued", required_argument, 0, 'Q'},
                                         {"max-peers-per-source", required_argument, 0, 'P'},
                                         {"curve-key", required_argument, 0, 'K'},
                                         {"allow-dir", required_argument, 0, 'D'},
                                         {"insecure", no_argument, 0, 'I'},
                                         {"http", required_argument, 0, 'T'},
                                         {"drain-ms", required_argument, 0, 'G'},
                                         {"http-cert", required_argument, 0, 'C'},
                                         {"http-key", required_argument, 0, 'Y'},
                                         {"http-token", required_argument, 0, 'O'},
                                         {"journal", required_argument, 0, 'J'},
                                         {"journal-max-mb", required_argument, 0, 'S'},
                                         {"log-level", required_argument, 0, 'l'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":b:l:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (s->nbinds == 64) {
                fprintf(stderr, "mp-broker: too many --bind options (64 at most)\n");
                return 2;
            }
            s->binds[s->nbinds++] = optarg;
            break;
        case 'H':
            if (parse_int(optarg, "--heartbeat", 10, 60000, &s->heartbeat))
                return 2;
            break;
        case 'A':
            if (parse_int(optarg, "--max-attempts", 1, 100, &s->attempts))
                return 2;
            break;
        case 'M':
            if (parse_int(optarg, "--max-message", 4096, 1L << 31, &s->maxmsg))
                return 2;
            break;
        case 'P':
            if (parse_int(optarg, "--max-peers-per-source", 1, 1L << 20, &s->maxpeers))
                return 2;
            break;
        case 'Q':
            if (parse_int(optarg, "--max-queued", 1, 1L << 20, &s->maxqueued))
                return 2;
            break;
        case 'K':
            s->curve_key = optarg;
            break;
        case 'D':
            s->allow_dir = optarg;
            break;
        case 'T':
            s->http = optarg;
            break;
        case 'C':
            s->http_cert = optarg;
            break;
        case 'Y':
            s->http_key = optarg;
            break;
        case 'O':
            s->http_token = optarg;
            break;
        case 'G':
            if (parse_int(optarg, "--drain-ms", 0, 3600000, &s->drain_ms))
                return 2;
            s->drain_ms_set = true;
            break;
        case 'I':
            s->insecure = true;
            break;
        case 'J':
            s->journal = optarg;
            break;
        case 'S':
            if (parse_int(optarg, "--journal-max-mb", 1, 1L << 24, &s->journal_mb))
                return 2;
            break;
        default: {
            int rc = mp_prog_common_option("mp-broker", c, argv, usage, &s->level_name);
            if (rc >= 0)
                return rc;
        }
        }
    }
    return mp_prog_no_operands("mp-broker", argc, argv) >= 0 ? 2 : -1;
}

/* The environment for what the command line did not set. 0, or 2 with a
   message for a bad value. */
static int apply_env(settings_t *s)
{
    const char *env;
    if (s->nbinds == 0 && (env = getenv("MP_BROKER_BIND")) && *env) {
        s->envbinds = strdup(env);
        for (char *save = NULL, *t = strtok_r(s->envbinds, ", ", &save); t && s->nbinds < 64;
             t = strtok_r(NULL, ", ", &save))
            s->binds[s->nbinds++] = t;
    }
    if (s->nbinds == 0)
        s->binds[s->nbinds++] = "tcp://*:5555";
    if (!s->curve_key && (env = getenv("MP_CURVE_KEY")) && *env)
        s->curve_key = env;
    if (!s->allow_dir && (env = getenv("MP_CURVE_ALLOW_DIR")) && *env)
        s->allow_dir = env;
    if (!s->insecure && (env = getenv("MP_INSECURE")) && !strcmp(env, "1"))
        s->insecure = true;
    if (!s->http && (env = getenv("MP_HTTP")) && *env)
        s->http = env;
    if (!s->http_cert && (env = getenv("MP_HTTP_CERT")) && *env)
        s->http_cert = env;
    if (!s->http_key && (env = getenv("MP_HTTP_KEY")) && *env)
        s->http_key = env;
    if (!s->http_token && (env = getenv("MP_HTTP_TOKEN")) && *env)
        s->http_token = env;
    if (!s->journal && (env = getenv("MP_JOURNAL")) && *env)
        s->journal = env;
    if (!s->drain_ms_set)
        s->drain_ms = 8000; /* the default; MP_DRAIN_MS below */
    int level = mp_prog_log_level("mp-broker", s->level_name);
    if (level < 0 ||
        mp_prog_env_long("mp-broker", "MP_HEARTBEAT_MS", 10, 60000, 0, &s->heartbeat) ||
        mp_prog_env_long("mp-broker", "MP_MAX_ATTEMPTS", 1, 100, 0, &s->attempts) ||
        mp_prog_env_long("mp-broker", "MP_MAX_MESSAGE", 4096, 1L << 31, 0, &s->maxmsg) ||
        mp_prog_env_long("mp-broker", "MP_MAX_QUEUED", 1, 1L << 20, 0, &s->maxqueued) ||
        mp_prog_env_long("mp-broker", "MP_MAX_PEERS_PER_SOURCE", 1, 1L << 20, 0, &s->maxpeers) ||
        (!s->drain_ms_set &&
         mp_prog_env_long("mp-broker", "MP_DRAIN_MS", 0, 3600000, 8000, &s->drain_ms)))
        return 2;
    mp_log_set_level(level);
    return 0;
}

int main(int argc, char **argv)
{
    settings_t s = {0};
    int rc = parse_args(argc, argv, &s);
    if (rc >= 0)
        return rc;
    if ((rc = apply_env(&s))) {
        free(s.envbinds);
        return rc;
    }
    /* block the stop signals before any thread exists; sigwait takes them */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    mp_prog_tune_heap();

    mp_broker_options_t o = {.binds = s.binds,
                             .nbinds = s.nbinds,
                             .heartbeat_ms = (int)s.heartbeat,
                             .max_attempts = (int)s.attempts,
                             .max_message = (size_t)s.maxmsg,
                             .max_queued = (size_t)s.maxqueued,
                             .max_peers_per_source = (size_t)s.maxpeers,
                             .curve_key = s.curve_key,
                             .allow_dir = s.allow_dir,
                             .insecure = s.insecure,
                             .http = s.http,
                             .http_cert = s.http_cert,
                             .http_key = s.http_key,
                             .http_token = s.http_token,
                             .journal_dir = s.journal,
                             .journal_max_bytes = (uint64_t)s.journal_mb << 20,
                             .verbose = 0 /* the level set above */};
    mp_broker_t *broker = NULL;
    rc = mp_broker_new(&o, &broker);
    if (rc) {
        fprintf(stderr, "mp-broker: cannot start: %s\n", mp_strerror(rc));
        free(s.envbinds);
        return rc == MP_EINSECURE ? 2 : 1;
    }
    for (size_t i = 0; i < mp_broker_endpoint_count(broker); i++)
        printf("%s\n", mp_broker_endpoint(broker, i));
    if (mp_broker_http_address(broker))
        printf("%s://%s/metrics\n", mp_broker_http_tls(broker) ? "https" : "http",
               mp_broker_http_address(broker));
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    /* graceful: what runs finishes (at most --drain-ms), what is queued goes
       back to its clients with the DISCONNECT; a second signal cuts it short */
    mp_broker_drain(broker);
    mp_log(MP_LOG_INFO, "mp-broker", "signal %d: draining (%zu dispatches running, %ld ms at most)",
           sig, mp_broker_running(broker), s.drain_ms);
    uint64_t deadline = now_ms() + (uint64_t)s.drain_ms;
    struct timespec tick = {0, 50 * 1000 * 1000};
    while (mp_broker_running(broker) > 0 && now_ms() < deadline) {
        if (sigtimedwait(&stop, NULL, &tick) > 0) {
            mp_log(MP_LOG_WARN, "mp-broker", "second signal: stopping now, %zu dispatches running",
                   mp_broker_running(broker));
            break;
        }
    }
    mp_log(MP_LOG_INFO, "mp-broker", "shutting down");
    mp_broker_destroy(&broker);
    free(s.envbinds);
    return 0;
}
