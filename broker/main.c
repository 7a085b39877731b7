/*  mp-broker - serve MPP/1 (docs/PROTOCOL.md): route Pool tasks from
    clients to workers.

    A thin program: parse options (command line, then MP_* environment for
    what the command line did not set), start the broker engine, print the
    bound endpoints on stdout, wait for SIGTERM or SIGINT, stop cleanly.
*/
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp/broker.h"
#include "mp/error.h"
#include "mp/log.h"
#include "pool/progopt.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mp-broker [options]\n"
                 "Routes libmp Pool tasks from clients to workers (MPP/1).\n\n"
                 "  -b, --bind ENDPOINT     tcp://HOST:PORT or ipc://PATH; repeatable;\n"
                 "                          port 0 or * picks a free port (default tcp://*:5555)\n"
                 "      --heartbeat MS      heartbeat interval (default 1000); 3 missed = dead\n"
                 "      --max-attempts N    tries per task before WORKER_LOST (default 3)\n"
                 "      --max-message BYTES largest accepted message (default 64 MiB)\n"
                 "      --max-queued N      chunks one client may have queued (default 4096;\n"
                 "                          clients keep within it: docs/PROTOCOL.md 4.1)\n"
                 "  -l, --log-level LEVEL   error, warn, info (default) or debug\n"
                 "  -v, --verbose           the same as --log-level debug\n"
                 "  -q, --quiet             the same as --log-level warn\n"
                 "  -h, --help              this text\n"
                 "  -V, --version           print the version\n\n"
                 "Environment (used when the option is not given): MP_BROKER_BIND (comma-\n"
                 "separated endpoints), MP_HEARTBEAT_MS, MP_MAX_ATTEMPTS, MP_MAX_MESSAGE,\n"
                 "MP_MAX_QUEUED,\n"
                 "MP_LOG_LEVEL.\n"
                 "The bound endpoints are printed on stdout, one per line. Exit status: 0 after\n"
                 "SIGTERM/SIGINT, 1 when it cannot start (e.g. cannot bind), 2 on bad usage.\n"
                 "See docs/CLUSTER.md.\n");
}

static int parse_int(const char *s, const char *what, long min, long max, long *out)
{
    return mp_prog_parse_long("mp-broker", s, what, min, max, out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"bind", required_argument, 0, 'b'},
                                         {"heartbeat", required_argument, 0, 'H'},
                                         {"max-attempts", required_argument, 0, 'A'},
                                         {"max-message", required_argument, 0, 'M'},
                                         {"max-queued", required_argument, 0, 'Q'},
                                         {"log-level", required_argument, 0, 'l'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    const char *binds[64];
    size_t nbinds = 0;
    long heartbeat = 0, attempts = 0, maxmsg = 0, maxqueued = 0;
    const char *level_name = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":b:l:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (nbinds == 64) {
                fprintf(stderr, "mp-broker: too many --bind options (64 at most)\n");
                return 2;
            }
            binds[nbinds++] = optarg;
            break;
        case 'H':
            if (parse_int(optarg, "--heartbeat", 10, 60000, &heartbeat))
                return 2;
            break;
        case 'A':
            if (parse_int(optarg, "--max-attempts", 1, 100, &attempts))
                return 2;
            break;
        case 'M':
            if (parse_int(optarg, "--max-message", 4096, 1L << 31, &maxmsg))
                return 2;
            break;
        case 'Q':
            if (parse_int(optarg, "--max-queued", 1, 1L << 20, &maxqueued))
                return 2;
            break;
        default: {
            int rc = mp_prog_common_option("mp-broker", c, argv, usage, &level_name);
            if (rc >= 0)
                return rc;
        }
        }
    }
    if (mp_prog_no_operands("mp-broker", argc, argv) >= 0)
        return 2;
    char *envbinds = NULL;
    const char *env;
    if (nbinds == 0 && (env = getenv("MP_BROKER_BIND")) && *env) {
        envbinds = strdup(env);
        for (char *save = NULL, *t = strtok_r(envbinds, ", ", &save); t && nbinds < 64;
             t = strtok_r(NULL, ", ", &save))
            binds[nbinds++] = t;
    }
    if (nbinds == 0)
        binds[nbinds++] = "tcp://*:5555";
    int level = mp_prog_log_level("mp-broker", level_name);
    if (level < 0 || mp_prog_env_long("mp-broker", "MP_HEARTBEAT_MS", 10, 60000, 0, &heartbeat) ||
        mp_prog_env_long("mp-broker", "MP_MAX_ATTEMPTS", 1, 100, 0, &attempts) ||
        mp_prog_env_long("mp-broker", "MP_MAX_MESSAGE", 4096, 1L << 31, 0, &maxmsg) ||
        mp_prog_env_long("mp-broker", "MP_MAX_QUEUED", 1, 1L << 20, 0, &maxqueued)) {
        free(envbinds);
        return 2;
    }
    mp_log_set_level(level);

    /* block the stop signals before any thread exists; sigwait takes them */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    mp_broker_options_t o = {.binds = binds,
                             .nbinds = nbinds,
                             .heartbeat_ms = (int)heartbeat,
                             .max_attempts = (int)attempts,
                             .max_message = (size_t)maxmsg,
                             .max_queued = (size_t)maxqueued,
                             .verbose = 0 /* the level set above */};
    mp_broker_t *broker = NULL;
    int rc = mp_broker_new(&o, &broker);
    if (rc) {
        fprintf(stderr, "mp-broker: cannot start: %s\n", mp_strerror(rc));
        free(envbinds);
        return 1;
    }
    for (size_t i = 0; i < mp_broker_endpoint_count(broker); i++)
        printf("%s\n", mp_broker_endpoint(broker, i));
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    mp_log(MP_LOG_INFO, "mp-broker", "signal %d: shutting down", sig);
    mp_broker_destroy(&broker);
    free(envbinds);
    return 0;
}
