/*  mp-client - run libmp Pool tasks on a cluster from the command line.

        mp-client --broker tcp://host:5555 apply square 7           -> 49
        seq 1 1000 | mp-client map square                           -> 1, 4, 9, ...
        mp-client starmap add --input pairs.jsonl                   -> a+b per line
        mp-client status [--json]
        mp-client drain WORKER-ID
        mp-client top [--interval MS] [--iterations N]
        mp-client submit JOB NAME; mp-client fetch JOB; mp-client forget JOB

    A thin program around the pool API (mp/pool.h), always on a cluster
    (mp-broker + mp-worker): it never starts an embedded pool. Values are
    JSON on the command line and one JSON value per line in and out
    (jansson does all parsing and printing):

      JSON null/true/false/integer/real/string/array/object
        <-> mp_obj_t nil/bool/int/float/str/array/map (string keys).
      Results only: bin -> array of byte values; uint above INT64_MAX -> real;
      NaN and infinities -> null; map keys that are not strings -> their JSON
      text; strings that are not valid UTF-8 -> U+FFFD for each bad byte.

    map streams: mp_pool_imap[_unordered] pulls one input line per item
    through a generator, so memory stays constant whatever the input length.
    starmap has no imap in the pool API, so it runs mp_pool_starmap_async on
    batches of BATCH_ITEMS lines, two batches in flight (one runs while the
    next is read); output stays in input order (--unordered: batch order of
    completion).

    A failed item prints {"error": {...}} in its place and the exit status
    becomes 1; the rest goes on. Bad usage exits 2, a runtime failure (bad
    input line, broker unreachable, output closed) exits 1, each with one
    line on stderr. A progress line is drawn on stderr only when it is a
    terminal.

    This file is the program: the command line and the commands. Output
    (JSON, result lines, progress, the status report) is cli_format.c's,
    the line reader cli_input.c's; neither calls back in here.
*/
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_durable.h"
#include "cli_format.h"
#include "cli_input.h"
#include "cli_keygen.h"
#include "mp.h"
#include "pool/progopt.h"

#define BATCH_ITEMS 10000        /* starmap: lines per starmap call */
#define DEFAULT_TIMEOUT_MS 10000 /* the pool's default connect timeout */

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_STOPPED = 3 };
#define REST_WAIT_MS 2000 /* how long the rest of a stopped input is read to be counted */
enum {
    CMD_APPLY,
    CMD_MAP,
    CMD_STARMAP,
    CMD_STATUS,
    CMD_DRAIN,
    CMD_TOP,
    CMD_SUBMIT, /* durable jobs: cli_durable.c */
    CMD_STARSUBMIT,
    CMD_FETCH,
    CMD_FORGET,
    NCOMMANDS
};
/* which options were given, to reject those that do not fit the command */
enum {
    OPT_CHUNKSIZE = 1,
    OPT_UNORDERED = 2,
    OPT_INPUT = 4,
    OPT_JSON = 8,
    OPT_HOST = 16,
    OPT_WITH_INPUT = 32,
    OPT_TOP = 64 /* --interval, --iterations */
};

typedef struct {
    const char *broker;
    int timeout_ms; /* 0: the pool's default */
    size_t chunksize;
    int time_limit_ms; /* --task-timeout */
    bool unordered, json, with_input, no_progress;
    int interval_ms;                          /* top: 0 = 1000 */
    long iterations;                          /* top: 0 = until interrupted */
    const char *input;                        /* NULL or "-": stdin */
    const char *host;                         /* status --host: a worker on it must be connected */
    const char *curve_key, *curve_server_key; /* NULL: MP_CURVE_KEY, MP_CURVE_SERVER_KEY */
    unsigned given;                           /* OPT_* */
    int command;
    const char *task;
    char **args; /* apply's arguments */
    int nargs;
    uint64_t worker; /* drain's WORKER-ID */
    const char *job; /* submit, fetch, forget: the durable job's name */
} cli_t;

/* One command's run: where results go and how it went. */
typedef struct {
    mp_pool_t *pool;
    const cli_t *cli;
    output_t out; /* result lines, failures, progress (cli_format.h) */
    kept_t *kept; /* --with-input: the input lines not printed yet */
} run_t;

/* --with-input: the input of item index goes before its result line (the
   text is freed by the caller after the line is out). */
static char *with_input(run_t *run, size_t index)
{
    char *text = run->kept ? kept_take(run->kept, index) : NULL;
    run->out.input = text;
    return text;
}

/* ---- usage ------------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    cli_usage(out, BATCH_ITEMS);
}

/* ---- commands --------------------------------------------------------------------------- */

/* An apply argument: JSON, or the text itself when it is not JSON. */
static int parse_arg(const char *text, mp_obj_t **o_p)
{
    json_t *j = json_loads(text, JSON_IN, NULL);
    if (!j)
        return (*o_p = mp_obj_new_str(text)) ? 0 : MP_ENOMEM;
    int rc = json_to_obj(j, 1, o_p);
    json_decref(j);
    return rc;
}

static int run_apply(run_t *run)
{
    const cli_t *cli = run->cli;
    mp_obj_t *args = mp_obj_new_array();
    int rc = args ? 0 : MP_ENOMEM;
    for (int i = 0; rc == 0 && i < cli->nargs; i++) {
        mp_obj_t *a = NULL;
        if ((rc = parse_arg(cli->args[i], &a)) == 0)
            rc = mp_obj_array_add(args, a);
        else if (rc == MP_E2BIG)
            say(NULL, "argument %d is nested deeper than %d levels", i + 1, MP_OBJ_MAX_DEPTH - 1);
    }
    mp_async_t *job = NULL;
    if (rc == 0)
        rc = mp_pool_apply_async(run->pool, cli->task, args, NULL, &job);
    mp_obj_destroy(&args);
    if (rc == MP_E2BIG)
        return EXIT_USAGE;
    if (rc) {
        say(NULL, "apply %s: %s", cli->task, mp_strerror(rc));
        return EXIT_FAIL;
    }
    mp_obj_t *v = NULL;
    rc = mp_async_get_obj(job, -1, &v);
    const mp_task_error_t *e = rc ? mp_async_error(job) : NULL;
    if (rc == 0) {
        emit_value(&run->out, v);
    } else if (e) {
        emit_error(&run->out, e, 0);
        if (e->code == MP_ETASK)
            say(NULL, "apply %s: %s (task error %d)", cli->task, e->message, e->task_code);
        else
            say(NULL, "apply %s: %s", cli->task, e->message);
    } else {
        say(NULL, "apply %s: %s", cli->task, mp_strerror(rc));
        run->out.broken = true;
    }
    mp_obj_destroy(&v);
    mp_async_destroy(&job);
    if (run->out.broken || !flush_output(&run->out))
        return EXIT_FAIL;
    return run->out.failed ? EXIT_FAIL : 0;
}

/* The next imap result, flushing stdout before any wait and drawing the
   progress line while waiting. */
static int next_result(run_t *run, mp_imap_t *it, mp_obj_t **v)
{
    int rc = mp_imap_next(it, 0, v);
    if (rc != MP_ETIMEDOUT)
        return rc;
    if (!flush_output(&run->out))
        return MP_EEOF;
    while ((rc = mp_imap_next(it, run->out.progress.on ? PROGRESS_MS : -1, v)) == MP_ETIMEDOUT) {
        size_t done, sent;
        mp_imap_progress(it, &done, &sent);
        progress_draw(&run->out.progress, done, sent);
    }
    return rc;
}

static int run_map(run_t *run, reader_t *r)
{
    const cli_t *cli = run->cli;
    mp_imap_t *it = NULL;
    int rc = cli->unordered
                 ? mp_pool_imap_unordered(run->pool, cli->task, read_item, r, cli->chunksize, &it)
                 : mp_pool_imap(run->pool, cli->task, read_item, r, cli->chunksize, &it);
    if (rc) {
        say(NULL, "map %s: %s", cli->task, mp_strerror(rc));
        return EXIT_FAIL;
    }
    while (!run->out.broken) {
        mp_obj_t *v = NULL;
        const mp_task_error_t *e;
        rc = next_result(run, it, &v);
        if (rc == MP_EEOF) {
            break;
        } else if (rc == 0) {
            char *text = with_input(run, mp_imap_index(it));
            emit_value(&run->out, v);
            free(text);
            mp_obj_destroy(&v);
        } else if ((e = mp_imap_error(it))) {
            char *text = with_input(run, e->index);
            emit_error(&run->out, e, e->index);
            free(text);
        } else {
            say(&run->out.progress, "map %s: %s", cli->task, mp_strerror(rc));
            run->out.broken = true;
        }
        if (run->out.progress.on) {
            size_t done, sent;
            mp_imap_progress(it, &done, &sent);
            progress_draw(&run->out.progress, done, sent);
        }
    }
    /* the generator may still be running on the pool's thread: r stays
       alive until the pool is destroyed (main) */
    mp_imap_destroy(&it);
    return 0;
}

typedef struct {
    mp_async_t *job;
    size_t first; /* index of its first item in the whole input */
} batch_t;

/* Reads up to BATCH_ITEMS lines into a new starmap call; *eof when the
   input ended (or stopped at bad input). No batch when nothing was read. */
static int submit_batch(run_t *run, reader_t *r, batch_t *b, bool *eof)
{
    mp_items_t *items = mp_items_new();
    if (!items)
        return MP_ENOMEM;
    b->job = NULL;
    b->first = r->items;
    while (mp_items_len(items) < BATCH_ITEMS) {
        json_t *j = NULL;
        int got = reader_next(r, &j);
        if (got > 0)
            got = reader_add(r, items, j) ? -1 : 1;
        json_decref(j);
        if (got <= 0) {
            *eof = true;
            break;
        }
    }
    mp_call_options_t o = {.chunksize = run->cli->chunksize};
    int rc = mp_items_len(items)
                 ? mp_pool_starmap_async(run->pool, run->cli->task, items, &o, &b->job)
                 : 0;
    mp_items_destroy(&items); /* the call keeps a copy */
    return rc;
}

/* Which batch to print next: the oldest, or (unordered) the first finished.
   Flushes stdout before waiting; draws the progress line while waiting. */
static size_t wait_batch(run_t *run, const reader_t *r, batch_t *q, size_t nq)
{
    if (!flush_output(&run->out))
        return 0;
    for (;;) {
        for (size_t k = 0; k < nq; k++)
            if (mp_async_ready(q[k].job))
                return k;
            else if (!run->cli->unordered)
                break;
        size_t done, total;
        mp_async_progress(q[0].job, &done, &total);
        progress_draw(&run->out.progress, run->out.printed + done, r->items);
        mp_async_wait(q[0].job, run->out.progress.on || run->cli->unordered ? PROGRESS_MS / 2 : -1);
    }
}

static void print_batch(run_t *run, const reader_t *r, const batch_t *b)
{
    const mp_items_t *res = NULL;
    mp_async_get(b->job, -1, &res);
    if (!res) {
        say(&run->out.progress, "starmap %s: no results", run->cli->task);
        run->out.broken = true;
        return;
    }
    for (size_t i = 0; i < mp_items_len(res) && !run->out.broken; i++) {
        const mp_task_error_t *e = mp_items_error(res, i);
        mp_obj_t *v = NULL;
        int rc;
        char *text = with_input(run, b->first + i);
        if (e) {
            emit_error(&run->out, e, b->first + i);
        } else if ((rc = mp_items_get(res, i, &v)) == 0) {
            emit_value(&run->out, v);
            mp_obj_destroy(&v);
        } else {
            say(&run->out.progress, "starmap %s: result %zu: %s", run->cli->task, b->first + i,
                mp_strerror(rc));
            run->out.broken = true;
        }
        free(text);
        progress_draw(&run->out.progress, run->out.printed, r->items);
    }
}

static int run_starmap(run_t *run, reader_t *r)
{
    batch_t q[2];
    size_t nq = 0;
    bool eof = false;
    int rc = 0;
    bool lost = false; /* the broker was lost: no more input is sent */
    while (!run->out.broken && ((!eof && !lost) || nq)) {
        if (!eof && !lost && nq < 2) {
            if ((rc = submit_batch(run, r, &q[nq], &eof))) {
                say(&run->out.progress, "starmap %s: %s", run->cli->task, mp_strerror(rc));
                run->out.broken = true;
            } else if (q[nq].job) {
                nq++;
            }
            continue;
        }
        size_t k = wait_batch(run, r, q, nq);
        if (run->out.broken)
            break;
        print_batch(run, r, &q[k]);
        const mp_task_error_t *e = mp_async_error(q[k].job);
        lost = lost || (e && e->code == MP_EBROKERLOST);
        mp_async_destroy(&q[k].job);
        q[k] = q[--nq]; /* nq <= 2: the other one, if any, is now first */
    }
    while (nq)
        mp_async_destroy(&q[--nq].job);
    return 0;
}

/* map and starmap: input, progress, the summary line, the exit status. */
static int run_stream(run_t *run, reader_t *r)
{
    if (run->out.progress.on)
        run->out.progress.total = count_items(r);
    int rc = r->star ? run_starmap(run, r) : run_map(run, r);
    bool flushed = !run->out.broken && flush_output(&run->out);
    progress_clear(&run->out.progress);
    if (rc)
        return rc;
    if (r->error[0])
        say(NULL, "%s", r->error);
    const char *cmd = r->star ? "starmap" : "map";
    if (run->out.failed)
        say(NULL, "%s %s: %zu of %zu items failed", cmd, run->cli->task, run->out.failed,
            run->out.printed);
    if (!r->eof && !r->error[0] && flushed) {
        /* the call ended before the input did (the broker was lost): every
           input item is accounted for, the ones never run too */
        bool complete;
        size_t rest = reader_rest(r, REST_WAIT_MS, &complete);
        say(NULL, "%s %s: stopped early: %s%zu input item%s not run (%zu printed above)", cmd,
            run->cli->task, complete ? "" : "at least ", rest, rest == 1 ? " was" : "s were",
            run->out.printed);
        return EXIT_STOPPED;
    }
    return flushed && !r->error[0] && !run->out.failed ? 0 : EXIT_FAIL;
}

static int run_status(run_t *run)
{
    const cli_t *cli = run->cli;
    mp_obj_t *st = NULL;
    int timeout = cli->timeout_ms ? cli->timeout_ms : DEFAULT_TIMEOUT_MS;
    int rc = mp_pool_status(run->pool, timeout, &st);
    if (rc) {
        say(NULL, "status: no answer from the broker at %s: %s", cli->broker, mp_strerror(rc));
        return EXIT_FAIL;
    }
    if (mp_obj_type(st) != MP_OBJ_MAP) {
        say(NULL, "status: the broker sent something that is not a map");
        mp_obj_destroy(&st);
        return EXIT_FAIL;
    }
    if (cli->json)
        emit_value(&run->out, st);
    else
        print_status(cli->broker, st);
    bool host_ok = !cli->host || has_worker_on(st, cli->host);
    mp_obj_destroy(&st);
    if (!host_ok)
        say(NULL, "status: no worker on host %s is connected to %s", cli->host, cli->broker);
    return !run->out.broken && flush_output(&run->out) && host_ok ? 0 : EXIT_FAIL;
}

/* ---- command line ----------------------------------------------------------------------- */

static int parse_int(const char *s, const char *what, long min, long max, long *out)
{
    return mp_prog_parse_long("mp-client", s, what, min, max, out);
}

/* One getopt_long pass over argv[0..argc): options anywhere (permute) or
   up to the first operand. Returns 0, -1 when done (--help, --version), or
   EXIT_USAGE; *next is the index of the first operand. */
static int parse_options(int argc, char **argv, bool permute, cli_t *cli, int *next)
{
    static const struct option opts[] = {{"broker", required_argument, 0, 'b'},
                                         {"timeout", required_argument, 0, 'T'},
                                         {"task-timeout", required_argument, 0, 'L'},
                                         {"chunksize", required_argument, 0, 'c'},
                                         {"unordered", no_argument, 0, 'u'},
                                         {"input", required_argument, 0, 'i'},
                                         {"json", no_argument, 0, 'j'},
                                         {"host", required_argument, 0, 'H'},
                                         {"with-input", no_argument, 0, 'w'},
                                         {"no-progress", no_argument, 0, 'P'},
                                         {"interval", required_argument, 0, 'I'},
                                         {"iterations", required_argument, 0, 'N'},
                                         {"curve-key", required_argument, 0, 'K'},
                                         {"curve-server-key", required_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    long v;
    int c;
    optind = 0; /* glibc: start over (a second pass) */
    opterr = 0; /* our own one-line messages */
    while ((c = getopt_long(argc, argv, permute ? ":b:c:i:uwhV" : "+:b:c:i:uwhV", opts, NULL)) !=
           -1) {
        switch (c) {
        case 'b':
            cli->broker = optarg;
            break;
        case 'T':
            if (parse_int(optarg, "--timeout", 1, 3600000, &v))
                return EXIT_USAGE;
            cli->timeout_ms = (int)v;
            break;
        case 'L':
            if (parse_int(optarg, "--task-timeout", 1, 86400000, &v))
                return EXIT_USAGE;
            cli->time_limit_ms = (int)v;
            break;
        case 'c':
            if (parse_int(optarg, "--chunksize", 1, 1048576, &v))
                return EXIT_USAGE;
            cli->chunksize = (size_t)v;
            cli->given |= OPT_CHUNKSIZE;
            break;
        case 'u':
            cli->unordered = true;
            cli->given |= OPT_UNORDERED;
            break;
        case 'i':
            cli->input = optarg;
            cli->given |= OPT_INPUT;
            break;
        case 'K':
            cli->curve_key = optarg;
            break;
        case 'S':
            cli->curve_server_key = optarg;
            break;
        case 'w':
            cli->with_input = true;
            cli->given |= OPT_WITH_INPUT;
            break;
        case 'P':
            cli->no_progress = true;
            break;
        case 'I':
            if (parse_int(optarg, "--interval", 100, 3600000, &v))
                return EXIT_USAGE;
            cli->interval_ms = (int)v;
            cli->given |= OPT_TOP;
            break;
        case 'N':
            if (parse_int(optarg, "--iterations", 1, LONG_MAX, &v))
                return EXIT_USAGE;
            cli->iterations = v;
            cli->given |= OPT_TOP;
            break;
        case 'j':
            cli->json = true;
            cli->given |= OPT_JSON;
            break;
        case 'H':
            cli->host = optarg;
            cli->given |= OPT_HOST;
            break;
        case 'h':
            usage(stdout);
            return -1;
        case 'V':
            printf(PROG " %s\n", MP_VERSION_STRING);
            return -1;
        case ':':
            say(NULL, "option '%s' needs a value; try --help", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            if (optopt && strncmp(argv[optind - 1], "--", 2) != 0)
                say(NULL, "unknown option '-%c'; try --help", optopt);
            else
                say(NULL, "bad option '%s'; try --help", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    *next = optind;
    return 0;
}

/* Global options, the command, its options and operands, the broker.
   0, -1 (done: help or version) or EXIT_USAGE. */
static int parse_cli(int argc, char **argv, cli_t *cli)
{
    static const char *commands[] = {"apply", "map",    "starmap",    "status", "drain",
                                     "top",   "submit", "starsubmit", "fetch",  "forget"};
    static const unsigned stream = OPT_CHUNKSIZE | OPT_UNORDERED | OPT_INPUT | OPT_WITH_INPUT;
    static const unsigned durable = OPT_CHUNKSIZE | OPT_INPUT;
    static const unsigned allowed[] = {
        0, stream, stream, OPT_JSON | OPT_HOST, 0, OPT_TOP, durable, durable, 0, 0};
    int at, rest, rc = parse_options(argc, argv, false, cli, &at);
    if (rc)
        return rc;
    if (at >= argc) {
        say(NULL, "missing command (apply, map, starmap, status, drain or top); try --help");
        return EXIT_USAGE;
    }
    cli->command = -1;
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[at], commands[i]) == 0)
            cli->command = i;
    if (cli->command < 0) {
        say(NULL, "unknown command '%s'; try --help", argv[at]);
        return EXIT_USAGE;
    }
    /* apply: options before NAME only, so that ARGs like -5 stay arguments */
    argc -= at;
    argv += at;
    if ((rc = parse_options(argc, argv, cli->command != CMD_APPLY, cli, &rest)))
        return rc;
    const char *cmd = commands[cli->command];
    unsigned extra = cli->given & ~allowed[cli->command];
    if (extra) {
        say(NULL, "%s does not take %s; try --help", cmd,
            extra & OPT_CHUNKSIZE    ? "--chunksize"
            : extra & OPT_UNORDERED  ? "--unordered"
            : extra & OPT_INPUT      ? "--input"
            : extra & OPT_JSON       ? "--json"
            : extra & OPT_WITH_INPUT ? "--with-input"
            : extra & OPT_TOP        ? "--interval or --iterations"
                                     : "--host");
        return EXIT_USAGE;
    }
    if (cli->command == CMD_STATUS || cli->command == CMD_TOP) {
        if (rest < argc) {
            say(NULL, "%s takes no operand ('%s'); try --help", cmd, argv[rest]);
            return EXIT_USAGE;
        }
    } else if (cli->command == CMD_DRAIN) {
        long id;
        if (rest + 1 != argc) {
            say(NULL, "drain takes one WORKER-ID (mp-client status lists them); try --help");
            return EXIT_USAGE;
        }
        if (parse_int(argv[rest], "WORKER-ID", 1, LONG_MAX, &id))
            return EXIT_USAGE;
        cli->worker = (uint64_t)id;
    } else if (cli->command >= CMD_SUBMIT) {
        int want = cli->command <= CMD_STARSUBMIT ? 2 : 1;
        if (argc - rest != want) {
            say(NULL, "%s takes %s; try --help", cmd, want == 2 ? "JOB NAME" : "one JOB");
            return EXIT_USAGE;
        }
        cli->job = argv[rest];
        cli->task = want == 2 ? argv[rest + 1] : NULL;
    } else {
        if (rest >= argc) {
            say(NULL, "%s needs a task NAME; try --help", cmd);
            return EXIT_USAGE;
        }
        cli->task = argv[rest++];
        size_t len = strlen(cli->task);
        if (len == 0 || len > MP_TASK_NAME_MAX) {
            say(NULL, "bad task name '%s' (1..%d bytes)", cli->task, MP_TASK_NAME_MAX);
            return EXIT_USAGE;
        }
        cli->args = argv + rest;
        cli->nargs = argc - rest;
        if (cli->command != CMD_APPLY && cli->nargs) {
            say(NULL, "%s reads its items from stdin or --input, not '%s'; try --help", cmd,
                cli->args[0]);
            return EXIT_USAGE;
        }
    }
    if (!cli->broker || !*cli->broker)
        cli->broker = getenv("MP_BROKER");
    if (!cli->broker || !*cli->broker) {
        say(NULL, "no broker: give --broker tcp://HOST:PORT or set MP_BROKER "
                  "(mp-client runs on a cluster: mp-broker + mp-worker)");
        return EXIT_USAGE;
    }
    char why[512];
    rc = mp_broker_address_check(cli->broker, why, sizeof why);
    if (rc) { /* at once, not after the connect timeout */
        say(NULL, "%s", why);
        return rc == MP_EINVAL ? EXIT_USAGE : EXIT_FAIL;
    }
    if (strncmp(cli->broker, "mpp+", 4) == 0) { /* workers' only (PROTOCOL.md 9.3) */
        say(NULL,
            "%s is a plain stream endpoint, which serves workers: give the broker's "
            "tcp:// or ipc:// endpoint",
            cli->broker);
        return EXIT_USAGE;
    }
    return 0;
}

/* Opens the input of map / starmap. 0, or EXIT_FAIL with a message. */
static int open_input(const cli_t *cli, reader_t *r)
{
    memset(r, 0, sizeof *r);
    r->star = cli->command == CMD_STARMAP || cli->command == CMD_STARSUBMIT;
    if (!cli->input || strcmp(cli->input, "-") == 0) {
        r->in = stdin;
        r->name = "<stdin>";
        return 0;
    }
    r->name = cli->input;
    if (!(r->in = fopen(cli->input, "r"))) {
        say(NULL, "cannot open %s: %s", cli->input, strerror(errno));
        return EXIT_FAIL;
    }
    return 0;
}

static void close_input(reader_t *r)
{
    if (r->in && r->in != stdin)
        fclose(r->in);
    free(r->line);
    r->line = NULL;
}

static int connect_pool(const cli_t *cli, mp_pool_t **pool)
{
    mp_pool_options_t o = {.broker = cli->broker,
                           .connect_timeout_ms = cli->timeout_ms,
                           .time_limit_ms = cli->time_limit_ms,
                           /* a lost broker: calls wait as long for it to come back */
                           .reconnect_timeout_ms =
                               cli->timeout_ms ? cli->timeout_ms : DEFAULT_TIMEOUT_MS,
                           .curve_key = cli->curve_key,
                           .curve_server_key = cli->curve_server_key};
    if (!getenv("MP_LOG_LEVEL")) /* the pool's warnings: say() words them for here */
        mp_log_set_level(MP_LOG_ERROR);
    int rc = mp_pool_new(&o, pool);
    if (rc == MP_EBROKERUNREACHABLE)
        say(NULL,
            "no broker answered at %s within %d ms: is mp-broker running there, and its "
            "port reachable from here?",
            cli->broker, cli->timeout_ms ? cli->timeout_ms : DEFAULT_TIMEOUT_MS);
    else if (rc == MP_EAUTH)
        say(NULL, "the broker at %s refused this client: %s", cli->broker,
            o.curve_key || getenv("MP_CURVE_KEY")
                ? "check that the public key of --curve-key is in its allow-list's clients/ "
                  "and that --curve-server-key is the broker's key"
                : "it speaks CURVE: give --curve-key and --curve-server-key (keys: mp-client "
                  "keygen NAME)");
    else if (rc == MP_EBROKERLOST)
        say(NULL, "the broker at %s answered, then went away", cli->broker);
    else if (rc)
        say(NULL, "cannot connect to %s: %s", cli->broker, mp_strerror(rc));
    return rc ? EXIT_FAIL : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
        return cli_keygen(argc - 1, argv + 1);
    cli_t cli = {0};
    int rc = parse_cli(argc, argv, &cli);
    if (rc)
        return rc < 0 ? 0 : rc;
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is a write error, handled */
    mp_prog_tune_heap();

    reader_t reader = {0};
    bool stream = cli.command == CMD_MAP || cli.command == CMD_STARMAP ||
                  cli.command == CMD_SUBMIT || cli.command == CMD_STARSUBMIT;
    if (stream && (rc = open_input(&cli, &reader)))
        return rc;
    kept_t kept;
    run_t run = {.cli = &cli};
    if (stream && cli.with_input) {
        kept_init(&kept);
        reader.keep = run.kept = &kept;
    }
    progress_init(&run.out.progress);
    if (cli.no_progress)
        run.out.progress.on = false;
    if ((rc = connect_pool(&cli, &run.pool)) == 0) {
        if (cli.command <= CMD_STARMAP && mp_pool_processes(run.pool) == 0 && run.out.progress.on)
            say(NULL, "no worker is connected yet: waiting for one");
        switch (cli.command) {
        case CMD_APPLY:
            rc = run_apply(&run);
            break;
        case CMD_STATUS:
            rc = run_status(&run);
            break;
        case CMD_DRAIN:
            rc = cli_drain(run.pool, cli.broker, cli.worker,
                           cli.timeout_ms ? cli.timeout_ms : 60000);
            break;
        case CMD_TOP:
            rc = cli_top(run.pool, cli.broker, cli.interval_ms ? cli.interval_ms : 1000,
                         cli.iterations);
            break;
        case CMD_SUBMIT:
        case CMD_STARSUBMIT: {
            mp_submit_options_t so = {.chunksize = cli.chunksize,
                                      .star = cli.command == CMD_STARSUBMIT,
                                      .timeout_ms = cli.timeout_ms};
            rc = cli_submit(run.pool, &reader, cli.job, cli.task, &so);
            break;
        }
        case CMD_FETCH:
            rc = cli_fetch(run.pool, &run.out, cli.job, cli.timeout_ms ? cli.timeout_ms : -1);
            break;
        case CMD_FORGET:
            rc = cli_forget(run.pool, cli.job);
            break;
        default:
            rc = run_stream(&run, &reader);
            break;
        }
    }
    mp_pool_destroy(&run.pool); /* the generator is done with the reader */
    close_input(&reader);
    if (run.kept)
        kept_free(run.kept);
    return rc;
}
