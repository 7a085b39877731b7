/*  mp-worker - run libmp Pool tasks for an MPP/1 broker.

    A thin program: parse options (command line, then MP_* environment for
    what the command line did not set), then run the worker engine
    (mp/worker.h) until SIGTERM or SIGINT.
*/
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp/broker.h"
#include "mp/error.h"
#include "mp/log.h"
#include "mp/worker.h"
#include "pool/progopt.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mp-worker --broker ENDPOINT [options]\n"
                 "Runs libmp Pool tasks: a supervisor connected to the broker plus N executor\n"
                 "processes.\n\n"
                 "  -b, --broker ENDPOINT      tcp://HOST:PORT or ipc://PATH of mp-broker, or\n"
                 "                             its mpp+tcp:// (mpp+ipc://) plain stream: lower\n"
                 "                             latency, no CURVE (docs/PROTOCOL.md 9.3)\n"
                 "  -t, --tasks LIB.so         task library to load (repeatable)\n"
                 "  -p, --processes N          executor processes (default: CPU count)\n"
                 "  -m, --maxtasksperchild N   replace an executor after N dispatches\n"
                 "      --heartbeat MS         heartbeat interval (default 1000)\n"
                 "      --connect-timeout MS   exit 1 when no broker answers this long after\n"
                 "                             the start (default 0: wait for it forever)\n"
                 "      --hold-ms MS           hand queued dispatches back to the broker when\n"
                 "                             every executor has been busy this long\n"
                 "                             (default 250; 0 or -1: never)\n"
                 "      --flush-ms MS          when an item has run this long, send what its\n"
                 "                             dispatch finished before it and hand back the\n"
                 "                             items after it (default 200; 0 or -1: never)\n"
                 "      --curve-key FILE       CURVE: this worker's certificate (NAME.key_secret)\n"
                 "      --curve-server-key KEY CURVE: the broker's public key (its NAME.key file,\n"
                 "                             or 40 Z85 characters)\n"
                 "  -l, --log-level LEVEL      error, warn, info (default) or debug\n"
                 "  -v, --verbose              the same as --log-level debug\n"
                 "  -q, --quiet                the same as --log-level warn\n"
                 "  -h, --help                 this text\n"
                 "  -V, --version              print the version\n\n"
                 "Environment (used when the option is not given): MP_BROKER, MP_TASKS\n"
                 "(colon-separated libraries), MP_PROCESSES, MP_MAXTASKSPERCHILD,\n"
                 "MP_HEARTBEAT_MS, MP_CONNECT_TIMEOUT_MS, MP_HOLD_MS, MP_FLUSH_MS, MP_CURVE_KEY,\n"
                 "MP_CURVE_SERVER_KEY, MP_LOG_LEVEL.\n"
                 "Exit status: 0 after SIGTERM/SIGINT (what it holds is handed back to the\n"
                 "broker), 1 when it cannot start (a broker host that does not resolve, a\n"
                 "task library that does not load), 2 on bad usage. See docs/CLUSTER.md.\n");
}

/* The broker address, checked at once (mp_broker_address_check): 0, 2 for
   a malformed one, 1 for a host that does not resolve. */
static int check_endpoint(const char *ep)
{
    char why[512];
    int rc = mp_broker_address_check(ep, why, sizeof why);
    if (rc)
        fprintf(stderr, "mp-worker: %s\n", why);
    return rc == MP_EINVAL ? 2 : rc ? 1 : 0;
}

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int parse_int(const char *s, const char *what, long min, long max, long *out)
{
    return mp_prog_parse_long("mp-worker", s, what, min, max, out);
}

/* MP_TASKS (colon-separated libraries) into libs: the copy the pointers
   point into (caller frees), or NULL. */
static char *env_tasks(const char **libs, size_t *nlibs)
{
    const char *env = getenv("MP_TASKS");
    char *copy = env && *env ? strdup(env) : NULL;
    for (char *save = NULL, *t = copy ? strtok_r(copy, ":", &save) : NULL; t && *nlibs < 64;
         t = strtok_r(NULL, ":", &save))
        libs[(*nlibs)++] = t;
    return copy;
}

/* The numeric options' environment twins, where the option was not given. */
static int env_numbers(long *processes, long *maxtasks, long *heartbeat, long *connect_timeout,
                       long *hold, long *flush)
{
    return mp_prog_env_long("mp-worker", "MP_PROCESSES", 1, 1024, -1, processes) ||
           mp_prog_env_long("mp-worker", "MP_MAXTASKSPERCHILD", 0, 1L << 30, -1, maxtasks) ||
           mp_prog_env_long("mp-worker", "MP_HEARTBEAT_MS", 10, 60000, 0, heartbeat) ||
           mp_prog_env_long("mp-worker", "MP_CONNECT_TIMEOUT_MS", 0, 86400000, -1,
                            connect_timeout) ||
           mp_prog_env_long("mp-worker", "MP_HOLD_MS", -1, 86400000, -2, hold) ||
           mp_prog_env_long("mp-worker", "MP_FLUSH_MS", -1, 86400000, -2, flush);
}

/* A --hold-ms or --flush-ms as mp_worker_options_t takes it: not given
   (-2) is 0, the default; 0 or -1 is -1, never. */
static int ms_option(long ms)
{
    return ms == -2 ? 0 : ms <= 0 ? -1 : (int)ms;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"broker", required_argument, 0, 'b'},
                                         {"tasks", required_argument, 0, 't'},
                                         {"processes", required_argument, 0, 'p'},
                                         {"maxtasksperchild", required_argument, 0, 'm'},
                                         {"heartbeat", required_argument, 0, 'H'},
                                         {"log-level", required_argument, 0, 'l'},
                                         {"connect-timeout", required_argument, 0, 'C'},
                                         {"hold-ms", required_argument, 0, 'O'},
                                         {"flush-ms", required_argument, 0, 'F'},
                                         {"curve-key", required_argument, 0, 'K'},
                                         {"curve-server-key", required_argument, 0, 'S'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    const char *broker = NULL, *curve_key = NULL, *server_key = NULL;
    const char *libs[64];
    size_t nlibs = 0;
    long processes = -1, maxtasks = -1, heartbeat = 0, connect_timeout = -1, hold = -2, flush = -2;
    const char *level_name = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":b:t:p:m:l:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            broker = optarg;
            break;
        case 'K':
            curve_key = optarg;
            break;
        case 'S':
            server_key = optarg;
            break;
        case 't':
            if (nlibs == 64) {
                fprintf(stderr, "mp-worker: too many --tasks options (64 at most)\n");
                return 2;
            }
            libs[nlibs++] = optarg;
            break;
        case 'p':
            if (parse_int(optarg, "--processes", 1, 1024, &processes))
                return 2;
            break;
        case 'm':
            if (parse_int(optarg, "--maxtasksperchild", 0, 1L << 30, &maxtasks))
                return 2;
            break;
        case 'H':
            if (parse_int(optarg, "--heartbeat", 10, 60000, &heartbeat))
                return 2;
            break;
        case 'O':
            if (parse_int(optarg, "--hold-ms", -1, 86400000, &hold))
                return 2;
            break;
        case 'F':
            if (parse_int(optarg, "--flush-ms", -1, 86400000, &flush))
                return 2;
            break;
        case 'C':
            if (parse_int(optarg, "--connect-timeout", 0, 86400000, &connect_timeout))
                return 2;
            break;
        default: {
            int rc = mp_prog_common_option("mp-worker", c, argv, usage, &level_name);
            if (rc >= 0)
                return rc;
        }
        }
    }
    if (mp_prog_no_operands("mp-worker", argc, argv) >= 0)
        return 2;
    const char *env;
    if (!broker && (env = getenv("MP_BROKER")) && *env)
        broker = env;
    if (!broker) {
        fprintf(stderr, "mp-worker: no broker: give --broker ENDPOINT or set MP_BROKER\n");
        return 2;
    }
    int rc = check_endpoint(broker);
    if (rc)
        return rc;
    char *envlibs = nlibs ? NULL : env_tasks(libs, &nlibs);
    int level = mp_prog_log_level("mp-worker", level_name);
    if (level < 0 ||
        env_numbers(&processes, &maxtasks, &heartbeat, &connect_timeout, &hold, &flush)) {
        free(envlibs);
        return 2;
    }
    mp_log_set_level(level);
    mp_prog_tune_heap();

    mp_worker_options_t o = {.broker = broker,
                             .processes = processes > 0 ? (int)processes : 0,
                             .maxtasksperchild = maxtasks > 0 ? (int)maxtasks : 0,
                             .heartbeat_ms = (int)heartbeat,
                             .task_libs = libs,
                             .ntask_libs = nlibs,
                             .verbose = 0 /* the level set above */,
                             .stop_fd = -1,
                             .connect_timeout_ms = connect_timeout > 0 ? (int)connect_timeout : 0,
                             .hold_ms = ms_option(hold),
                             .flush_ms = ms_option(flush),
                             .curve_key = curve_key ? curve_key : env_or_null("MP_CURVE_KEY"),
                             .curve_server_key =
                                 server_key ? server_key : env_or_null("MP_CURVE_SERVER_KEY")};
    rc = mp_worker_run(&o);
    free(envlibs);
    if (rc == MP_EBROKERUNREACHABLE)
        return 1; /* its log line said why */
    if (rc) {
        fprintf(stderr, "mp-worker: cannot start: %s\n", mp_strerror(rc));
        return 1;
    }
    return 0;
}
