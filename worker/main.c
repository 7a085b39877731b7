/*  mp-worker - run libmp Pool tasks for an MPP/1 broker.

    A thin program: parse options (command line, then MP_* environment for
    what the command line did not set), then run the worker engine
    (mp/worker.h) until SIGTERM or SIGINT.
*/
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "progopt.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mp-worker --broker ENDPOINT [options]\n"
                 "Runs libmp Pool tasks: a supervisor connected to the broker plus N executor\n"
                 "processes.\n\n"
                 "  -b, --broker ENDPOINT      tcp://HOST:PORT or ipc://PATH of mp-broker\n"
                 "  -t, --tasks LIB.so         task library to load (repeatable)\n"
                 "  -p, --processes N          executor processes (default: CPU count)\n"
                 "  -m, --maxtasksperchild N   replace an executor after N dispatches\n"
                 "      --heartbeat MS         heartbeat interval (default 1000)\n"
                 "  -v, --verbose              log every event\n"
                 "  -q, --quiet                log warnings and errors only\n"
                 "  -h, --help                 this text\n"
                 "  -V, --version              print the version\n\n"
                 "Environment (used when the option is not given): MP_BROKER, MP_TASKS\n"
                 "(colon-separated libraries), MP_PROCESSES, MP_MAXTASKSPERCHILD,\n"
                 "MP_HEARTBEAT_MS, MP_VERBOSE=1.\n");
}

static int parse_int(const char *s, const char *what, long min, long max, long *out)
{
    return mp_prog_parse_long("mp-worker", s, what, min, max, out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"broker", required_argument, 0, 'b'},    {"tasks", required_argument, 0, 't'},
        {"processes", required_argument, 0, 'p'}, {"maxtasksperchild", required_argument, 0, 'm'},
        {"heartbeat", required_argument, 0, 'H'}, {"verbose", no_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'},           {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},         {0, 0, 0, 0}};
    const char *broker = NULL;
    const char *libs[64];
    size_t nlibs = 0;
    long processes = -1, maxtasks = -1, heartbeat = 0;
    int level = -1, c;
    while ((c = getopt_long(argc, argv, "b:t:p:m:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            broker = optarg;
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
        case 'v':
            level = 2;
            break;
        case 'q':
            level = 0;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("mp-worker %s\n", MP_VERSION_STRING);
            return 0;
        default:
            fprintf(stderr, "mp-worker: try --help\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mp-worker: unexpected argument '%s'; try --help\n", argv[optind]);
        return 2;
    }
    const char *env;
    if (!broker && (env = getenv("MP_BROKER")) && *env)
        broker = env;
    if (!broker) {
        fprintf(stderr, "mp-worker: no broker: give --broker ENDPOINT or set MP_BROKER\n");
        return 2;
    }
    if (strncmp(broker, "tcp://", 6) && strncmp(broker, "ipc://", 6)) {
        fprintf(stderr, "mp-worker: bad broker endpoint '%s' (tcp://HOST:PORT or ipc://PATH)\n",
                broker);
        return 2;
    }
    char *envlibs = NULL;
    if (nlibs == 0 && (env = getenv("MP_TASKS")) && *env) {
        envlibs = strdup(env);
        for (char *save = NULL, *t = strtok_r(envlibs, ":", &save); t && nlibs < 64;
             t = strtok_r(NULL, ":", &save))
            libs[nlibs++] = t;
    }
    if (processes < 0 && (env = getenv("MP_PROCESSES")) &&
        parse_int(env, "MP_PROCESSES", 1, 1024, &processes))
        return 2;
    if (maxtasks < 0 && (env = getenv("MP_MAXTASKSPERCHILD")) &&
        parse_int(env, "MP_MAXTASKSPERCHILD", 0, 1L << 30, &maxtasks))
        return 2;
    if (!heartbeat && (env = getenv("MP_HEARTBEAT_MS")) &&
        parse_int(env, "MP_HEARTBEAT_MS", 10, 60000, &heartbeat))
        return 2;
    if (level < 0 && (env = getenv("MP_VERBOSE")) && strcmp(env, "1") == 0)
        level = 2;

    mp_worker_options_t o = {.broker = broker,
                             .processes = processes > 0 ? (int)processes : 0,
                             .maxtasksperchild = maxtasks > 0 ? (int)maxtasks : 0,
                             .heartbeat_ms = (int)heartbeat,
                             .task_libs = libs,
                             .ntask_libs = nlibs,
                             .verbose = level < 0 ? 1 : level,
                             .stop_fd = -1};
    int rc = mp_worker_run(&o);
    free(envlibs);
    if (rc) {
        fprintf(stderr, "mp-worker: %s\n", mp_strerror(rc));
        return 1;
    }
    return 0;
}
