/*  mp-client - run libmp Pool tasks on a cluster from the command line.

        mp-client --broker tcp://host:5555 apply square 7           -> 49
        seq 1 1000 | mp-client map square                           -> 1, 4, 9, ...
        mp-client starmap add --input pairs.jsonl                   -> a+b per line
        mp-client status [--json]

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
*/
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mp.h"
#include "pool/progopt.h"

#define PROG "mp-client"
#define BATCH_ITEMS 10000          /* starmap: lines per starmap call */
#define PROGRESS_MS 100            /* progress line refresh interval */
#define PROGRESS_BAR 30            /* bar width in characters */
#define COUNT_LIMIT (256ull << 20) /* count the lines of files up to this size */
#define DEFAULT_TIMEOUT_MS 10000   /* the pool's default connect timeout */
#define JSON_OUT (JSON_ENCODE_ANY | JSON_COMPACT)
#define JSON_IN (JSON_DECODE_ANY | JSON_ALLOW_NUL)

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };
enum { CMD_APPLY, CMD_MAP, CMD_STARMAP, CMD_STATUS };
/* which options were given, to reject those that do not fit the command */
enum { OPT_CHUNKSIZE = 1, OPT_UNORDERED = 2, OPT_INPUT = 4, OPT_JSON = 8, OPT_HOST = 16 };

typedef struct {
    const char *broker;
    int timeout_ms; /* 0: the pool's default */
    size_t chunksize;
    bool unordered, json;
    const char *input; /* NULL or "-": stdin */
    const char *host;  /* status --host: a worker on it must be connected */
    unsigned given;    /* OPT_* */
    int command;
    const char *task;
    char **args; /* apply's arguments */
    int nargs;
} cli_t;

typedef struct {
    bool on;         /* stderr is a terminal */
    bool stdout_tty; /* results share the screen: clear the line first */
    bool shown;      /* a progress line is on screen */
    size_t total;    /* items in the input; 0 when unknown */
    uint64_t start_ns, last_ns;
} progress_t;

/* The input of map / starmap: one JSON value per line. */
typedef struct {
    FILE *in;
    const char *name; /* for messages */
    bool star;        /* each line is an argument tuple */
    char *line;
    size_t cap;
    size_t lineno;
    size_t items;    /* items produced */
    char error[512]; /* set when reading stopped at bad input */
} reader_t;

/* One command's run: where results go and how it went. */
typedef struct {
    mp_pool_t *pool;
    const cli_t *cli;
    progress_t progress;
    size_t printed; /* result lines written */
    size_t failed;  /* items that failed */
    bool broken;    /* stdout failed or out of memory: stop */
} run_t;

/* ---- messages --------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mp-client [options] apply NAME [ARG...]\n"
            "       mp-client [options] map NAME [--input FILE] [--unordered] [--chunksize N]\n"
            "       mp-client [options] starmap NAME [--input FILE] [--unordered] [--chunksize N]\n"
            "       mp-client [options] status [--json] [--host HOST]\n"
            "Runs libmp Pool tasks on a cluster (mp-broker + mp-worker); JSON in and out.\n\n"
            "  apply NAME ARG...   call NAME once; each ARG is JSON, or a plain string when\n"
            "                      it is not valid JSON (\"7\" is an int, '\"7\"' a string);\n"
            "                      options go before NAME\n"
            "  map NAME            call NAME on each input line (one JSON value per line)\n"
            "  starmap NAME        same, each line a JSON array of arguments\n"
            "  status              the broker's workers, queues and counters\n\n"
            "  -b, --broker EP     tcp://HOST:PORT or ipc://PATH of mp-broker\n"
            "                      (default: $MP_BROKER; one of them is required)\n"
            "      --timeout MS    wait this long for the broker (default 10000)\n"
            "  -i, --input FILE    read FILE instead of stdin\n"
            "  -u, --unordered     print results as they complete\n"
            "  -c, --chunksize N   items per message (map: default 1, as Python's imap,\n"
            "                      100 or more for large inputs; starmap: automatic for\n"
            "                      each batch of %d lines)\n"
            "      --json          status: print the whole status map as JSON\n"
            "      --host HOST     status: exit 1 unless a worker on HOST is connected\n"
            "                      (a worker's healthcheck: --host \"$(hostname)\")\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n\n"
            "One result line per item, in input order. A failed item prints\n"
            "{\"error\": {\"code\", \"message\", \"task\", \"host\", \"pid\", \"index\"}} in its\n"
            "place and the exit status is 1. Blank input lines are skipped. Exit status:\n"
            "0 all done, 1 a failure (an item, the input, the broker), 2 bad usage.\n",
            BATCH_ITEMS);
}

static void progress_clear(progress_t *p);

/* One line on stderr, "mp-client: ...", after clearing the progress line. */
static void __attribute__((format(printf, 2, 3))) say(progress_t *p, const char *fmt, ...)
{
    if (p)
        progress_clear(p);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- progress line (stderr, terminals only) ---------------------------------------------- */

static void progress_init(progress_t *p)
{
    memset(p, 0, sizeof *p);
    p->on = isatty(STDERR_FILENO) == 1;
    p->stdout_tty = isatty(STDOUT_FILENO) == 1;
    p->start_ns = now_ns();
}

static void progress_clear(progress_t *p)
{
    if (p->shown) {
        fputs("\r\033[K", stderr);
        p->shown = false;
    }
}

/* Redraws at most every PROGRESS_MS: done/total with a bar when the total is
   known, else done and sent counts. */
static void progress_draw(progress_t *p, size_t done, size_t sent)
{
    if (!p->on)
        return;
    uint64_t now = now_ns();
    if (p->shown && now - p->last_ns < PROGRESS_MS * 1000000ull)
        return;
    p->last_ns = now;
    double secs = (double)(now - p->start_ns) / 1e9;
    double rate = secs > 0 ? (double)done / secs : 0;
    if (p->total) {
        size_t shown = done < p->total ? done : p->total;
        size_t fill = shown * PROGRESS_BAR / p->total;
        char bar[PROGRESS_BAR + 1];
        memset(bar, '#', fill);
        memset(bar + fill, '.', PROGRESS_BAR - fill);
        bar[PROGRESS_BAR] = '\0';
        fprintf(stderr, "\r\033[K[%s] %3u%% %zu/%zu items  %.0f/s", bar,
                (unsigned)(shown * 100 / p->total), done, p->total, rate);
    } else {
        fprintf(stderr, "\r\033[K%zu items done, %zu sent  %.0f/s", done, sent, rate);
    }
    fflush(stderr);
    p->shown = true;
}

/* ---- JSON -> mp_obj_t ------------------------------------------------------------------- */

/* Converts j into *o_p (caller owns). 0, MP_ENOMEM, or MP_E2BIG when nested
   deeper than an mp_obj_t can be. */
static int json_to_obj(const json_t *j, int depth, mp_obj_t **o_p)
{
    if (depth > MP_OBJ_MAX_DEPTH)
        return MP_E2BIG;
    mp_obj_t *o = NULL;
    int rc = 0;
    switch (json_typeof(j)) {
    case JSON_NULL:
        o = mp_obj_new_nil();
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        o = mp_obj_new_bool(json_is_true(j));
        break;
    case JSON_INTEGER:
        o = mp_obj_new_int(json_integer_value(j));
        break;
    case JSON_REAL:
        o = mp_obj_new_float(json_real_value(j));
        break;
    case JSON_STRING:
        o = mp_obj_new_strn(json_string_value(j), json_string_length(j));
        break;
    case JSON_ARRAY: {
        o = mp_obj_new_array();
        size_t i;
        const json_t *v;
        json_array_foreach(j, i, v)
        {
            mp_obj_t *item = NULL;
            if (!o || (rc = json_to_obj(v, depth + 1, &item)) || (rc = mp_obj_array_add(o, item)))
                break;
        }
        break;
    }
    case JSON_OBJECT: {
        o = mp_obj_new_map();
        const char *key;
        size_t keylen;
        json_t *v;
        json_object_keylen_foreach((json_t *)j, key, keylen, v)
        {
            mp_obj_t *value = NULL;
            if (!o || (rc = json_to_obj(v, depth + 1, &value)))
                break;
            if ((rc = mp_obj_map_add(o, mp_obj_new_strn(key, keylen), value)))
                break;
        }
        break;
    }
    }
    if (!rc && !o)
        rc = MP_ENOMEM;
    if (rc) {
        mp_obj_destroy(&o);
        return rc;
    }
    *o_p = o;
    return 0;
}

/* ---- mp_obj_t -> JSON ------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (as jansson checks it), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* s[0..n) as a JSON string; bytes that are not UTF-8 become U+FFFD. */
static json_t *str_to_json(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j || n > SIZE_MAX / 3)
        return j;
    char *fixed = malloc(3 * n + 1);
    if (!fixed)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len((const unsigned char *)s + i, n - i);
        if (len) {
            memcpy(fixed + k, s + i, len);
            k += len;
            i += len;
        } else {
            memcpy(fixed + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    j = json_stringn(fixed, k);
    free(fixed);
    return j;
}

static json_t *obj_to_json(const mp_obj_t *o);

/* A map key as a JSON object key: strings as they are, others as JSON text. */
static int map_set(json_t *object, const mp_obj_t *key, json_t *value)
{
    json_t *k = mp_obj_type(key) == MP_OBJ_STR ? obj_to_json(key) : NULL;
    char *text = NULL;
    if (!k) {
        json_t *kj = obj_to_json(key);
        text = kj ? json_dumps(kj, JSON_OUT) : NULL;
        json_decref(kj);
        k = text ? str_to_json(text, strlen(text)) : NULL;
        free(text);
    }
    int rc = k ? json_object_setn_new(object, json_string_value(k), json_string_length(k), value)
               : (json_decref(value), -1);
    json_decref(k);
    return rc;
}

/* A new JSON value for o, or NULL when out of memory. */
static json_t *obj_to_json(const mp_obj_t *o)
{
    size_t n;
    switch (mp_obj_type(o)) {
    case MP_OBJ_NIL:
        return json_null();
    case MP_OBJ_BOOL:
        return json_boolean(mp_obj_bool(o));
    case MP_OBJ_INT:
        return json_integer(mp_obj_int(o));
    case MP_OBJ_UINT: /* above INT64_MAX: no JSON integer holds it here */
        return json_real((double)mp_obj_uint(o));
    case MP_OBJ_FLOAT: {
        double d = mp_obj_float(o);
        return isfinite(d) ? json_real(d) : json_null();
    }
    case MP_OBJ_STR: {
        const char *s = mp_obj_str(o, &n);
        return str_to_json(s, n);
    }
    case MP_OBJ_BIN: {
        const unsigned char *p = mp_obj_bin(o, &n);
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
            if (json_array_append_new(a, json_integer(p[i])))
                json_decref(a), a = NULL;
        return a;
    }
    case MP_OBJ_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < mp_obj_len(o); i++)
            if (json_array_append_new(a, obj_to_json(mp_obj_array_at(o, i))))
                json_decref(a), a = NULL;
        return a;
    }
    case MP_OBJ_MAP: {
        json_t *m = json_object();
        for (size_t i = 0; m && i < mp_obj_len(o); i++)
            if (map_set(m, mp_obj_map_key_at(o, i), obj_to_json(mp_obj_map_value_at(o, i))))
                json_decref(m), m = NULL;
        return m;
    }
    }
    return NULL;
}

/* {"error": {"code", "message", "task", "host", "pid", "index"[, "task_code"]}} */
static json_t *error_to_json(const mp_task_error_t *e, size_t index)
{
    json_t *err = json_pack(
        "{s:i, s:o, s:o, s:o, s:i, s:I}", "code", e->code, "message",
        str_to_json(e->message, strlen(e->message)), "task", str_to_json(e->task, strlen(e->task)),
        "host", str_to_json(e->host, strlen(e->host)), "pid", e->pid, "index", (json_int_t)index);
    if (err && e->code == MP_ETASK &&
        json_object_set_new(err, "task_code", json_integer(e->task_code))) {
        json_decref(err);
        err = NULL;
    }
    return err ? json_pack("{s:o}", "error", err) : NULL;
}

/* ---- output ----------------------------------------------------------------------------- */

/* Prints j as one line (takes j). */
static void emit(run_t *run, json_t *j)
{
    if (run->broken) {
        json_decref(j);
        return;
    }
    if (!j) {
        say(&run->progress, "out of memory");
        run->broken = true;
        return;
    }
    if (run->progress.stdout_tty)
        progress_clear(&run->progress);
    if (json_dumpf(j, stdout, JSON_OUT) || putchar('\n') == EOF)
        run->broken = true;
    json_decref(j);
    run->printed++;
}

static void emit_value(run_t *run, const mp_obj_t *v)
{
    emit(run, obj_to_json(v));
}

static void emit_error(run_t *run, const mp_task_error_t *e, size_t index)
{
    run->failed++;
    emit(run, error_to_json(e, index));
}

/* Flushes stdout: false (with a message unless the reader went away) when
   writing failed. */
static bool flush_output(run_t *run)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return true;
    if (errno != EPIPE)
        say(&run->progress, "cannot write the results: %s", strerror(errno));
    run->broken = true;
    return false;
}

/* ---- input ------------------------------------------------------------------------------ */

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static void reader_fail(reader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reader_fail(reader_t *r, const char *fmt, ...)
{
    int n = snprintf(r->error, sizeof r->error, "%s line %zu: ", r->name, r->lineno);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof r->error)
        vsnprintf(r->error + n, sizeof r->error - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Parses the next non-blank line: 1 and *j (caller owns), 0 at the end, -1
   when the line is not JSON or reading failed (r->error says why). */
static int reader_next(reader_t *r, json_t **j)
{
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->line, &r->cap, r->in);
        if (n < 0) {
            if (!ferror(r->in))
                return 0;
            snprintf(r->error, sizeof r->error, "%s: cannot read: %s", r->name,
                     strerror(errno ? errno : EIO));
            return -1;
        }
        r->lineno++;
        if (blank(r->line, (size_t)n))
            continue;
        json_error_t e;
        if (!(*j = json_loadb(r->line, (size_t)n, JSON_IN, &e))) {
            reader_fail(r, "invalid JSON: %s (column %d)", e.text, e.column);
            return -1;
        }
        return 1;
    }
}

/* Appends the value of one line to items: the single argument (map) or an
   argument tuple (starmap). 0, or -1 with r->error set. */
static int reader_add(reader_t *r, mp_items_t *items, const json_t *j)
{
    if (r->star && !json_is_array(j)) {
        reader_fail(r, "starmap needs a JSON array of arguments, got %s",
                    json_is_object(j) ? "an object" : "a single value");
        return -1;
    }
    mp_obj_t *o = NULL;
    int rc = json_to_obj(j, 0, &o);
    if (rc == 0 && !r->star) {
        rc = mp_items_add_obj(items, o);
    } else if (rc == 0) {
        /* every member is converted before the tuple opens: never left half-open */
        size_t argc = mp_obj_len(o);
        rc = mp_items_add_tuple(items, argc);
        for (size_t i = 0; rc == 0 && i < argc; i++)
            rc = mp_items_add_obj(items, mp_obj_array_at(o, i));
    }
    mp_obj_destroy(&o);
    if (rc == MP_E2BIG)
        reader_fail(r, "value nested deeper than %d levels", MP_OBJ_MAX_DEPTH);
    else if (rc)
        reader_fail(r, "%s", mp_strerror(rc));
    if (rc)
        return -1;
    r->items++;
    return 0;
}

/* imap generator (runs on the pool's I/O thread): one item per line. Bad
   input ends the input (MP_EEOF) with r->error set, so the results of the
   lines before it are still printed. */
static int read_item(void *arg, mp_items_t *out)
{
    reader_t *r = arg;
    json_t *j = NULL;
    int rc = reader_next(r, &j);
    if (rc > 0)
        rc = reader_add(r, out, j);
    else
        rc = -1;
    json_decref(j);
    return rc ? MP_EEOF : 0;
}

/* Items in a regular file (non-blank lines), read ahead and rewound; 0 when
   unknown (not a file, too large, not seekable). */
static size_t count_items(reader_t *r)
{
    struct stat st;
    off_t start = ftello(r->in);
    if (start < 0 || fstat(fileno(r->in), &st) || !S_ISREG(st.st_mode) ||
        (unsigned long long)st.st_size > COUNT_LIMIT)
        return 0;
    size_t n = 0;
    ssize_t len;
    while ((len = getline(&r->line, &r->cap, r->in)) >= 0)
        n += !blank(r->line, (size_t)len);
    clearerr(r->in);
    return fseeko(r->in, start, SEEK_SET) == 0 ? n : 0;
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
        emit_value(run, v);
    } else if (e) {
        emit_error(run, e, 0);
        if (e->code == MP_ETASK)
            say(NULL, "apply %s: %s (task error %d)", cli->task, e->message, e->task_code);
        else
            say(NULL, "apply %s: %s", cli->task, e->message);
    } else {
        say(NULL, "apply %s: %s", cli->task, mp_strerror(rc));
        run->broken = true;
    }
    mp_obj_destroy(&v);
    mp_async_destroy(&job);
    return run->broken || !flush_output(run) ? EXIT_FAIL : run->failed ? EXIT_FAIL : 0;
}

/* The next imap result, flushing stdout before any wait and drawing the
   progress line while waiting. */
static int next_result(run_t *run, mp_imap_t *it, mp_obj_t **v)
{
    int rc = mp_imap_next(it, 0, v);
    if (rc != MP_ETIMEDOUT)
        return rc;
    if (!flush_output(run))
        return MP_EEOF;
    while ((rc = mp_imap_next(it, run->progress.on ? PROGRESS_MS : -1, v)) == MP_ETIMEDOUT) {
        size_t done, sent;
        mp_imap_progress(it, &done, &sent);
        progress_draw(&run->progress, done, sent);
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
    while (!run->broken) {
        mp_obj_t *v = NULL;
        const mp_task_error_t *e;
        rc = next_result(run, it, &v);
        if (rc == MP_EEOF) {
            break;
        } else if (rc == 0) {
            emit_value(run, v);
            mp_obj_destroy(&v);
        } else if ((e = mp_imap_error(it))) {
            emit_error(run, e, e->index);
        } else {
            say(&run->progress, "map %s: %s", cli->task, mp_strerror(rc));
            run->broken = true;
        }
        if (run->progress.on) {
            size_t done, sent;
            mp_imap_progress(it, &done, &sent);
            progress_draw(&run->progress, done, sent);
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
    if (!flush_output(run))
        return 0;
    for (;;) {
        for (size_t k = 0; k < nq; k++)
            if (mp_async_ready(q[k].job))
                return k;
            else if (!run->cli->unordered)
                break;
        size_t done, total;
        mp_async_progress(q[0].job, &done, &total);
        progress_draw(&run->progress, run->printed + done, r->items);
        mp_async_wait(q[0].job, run->progress.on || run->cli->unordered ? PROGRESS_MS / 2 : -1);
    }
}

static void print_batch(run_t *run, const reader_t *r, const batch_t *b)
{
    const mp_items_t *res = NULL;
    mp_async_get(b->job, -1, &res);
    if (!res) {
        say(&run->progress, "starmap %s: no results", run->cli->task);
        run->broken = true;
        return;
    }
    for (size_t i = 0; i < mp_items_len(res) && !run->broken; i++) {
        const mp_task_error_t *e = mp_items_error(res, i);
        mp_obj_t *v = NULL;
        int rc;
        if (e) {
            emit_error(run, e, b->first + i);
        } else if ((rc = mp_items_get(res, i, &v)) == 0) {
            emit_value(run, v);
            mp_obj_destroy(&v);
        } else {
            say(&run->progress, "starmap %s: result %zu: %s", run->cli->task, b->first + i,
                mp_strerror(rc));
            run->broken = true;
        }
        progress_draw(&run->progress, run->printed, r->items);
    }
}

static int run_starmap(run_t *run, reader_t *r)
{
    batch_t q[2];
    size_t nq = 0;
    bool eof = false;
    int rc = 0;
    while (!run->broken && (!eof || nq)) {
        if (!eof && nq < 2) {
            if ((rc = submit_batch(run, r, &q[nq], &eof))) {
                say(&run->progress, "starmap %s: %s", run->cli->task, mp_strerror(rc));
                run->broken = true;
            } else if (q[nq].job) {
                nq++;
            }
            continue;
        }
        size_t k = wait_batch(run, r, q, nq);
        if (run->broken)
            break;
        print_batch(run, r, &q[k]);
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
    if (run->progress.on)
        run->progress.total = count_items(r);
    int rc = r->star ? run_starmap(run, r) : run_map(run, r);
    bool flushed = !run->broken && flush_output(run);
    progress_clear(&run->progress);
    if (rc)
        return rc;
    if (r->error[0])
        say(NULL, "%s", r->error);
    if (run->failed)
        say(NULL, "%s %s: %zu of %zu items failed", r->star ? "starmap" : "map", run->cli->task,
            run->failed, run->printed);
    return flushed && !r->error[0] && !run->failed ? 0 : EXIT_FAIL;
}

/* ---- status ----------------------------------------------------------------------------- */

static uint64_t field_uint(const mp_obj_t *map, const char *key)
{
    const mp_obj_t *v = mp_obj_map_get(map, key);
    mp_obj_type_t t = v ? mp_obj_type(v) : MP_OBJ_NIL;
    return t == MP_OBJ_INT || t == MP_OBJ_UINT ? mp_obj_uint(v) : 0;
}

static const char *field_str(const mp_obj_t *map, const char *key)
{
    const mp_obj_t *v = mp_obj_map_get(map, key);
    return v && mp_obj_type(v) == MP_OBJ_STR ? mp_obj_str(v, NULL) : "?";
}

/* Items of an array, 0 for anything else. */
static size_t array_len(const mp_obj_t *o)
{
    return mp_obj_type(o) == MP_OBJ_ARRAY ? mp_obj_len(o) : 0;
}

static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

static void print_worker(const mp_obj_t *w)
{
    const mp_obj_t *running = mp_obj_map_get(w, "running");
    const mp_obj_t *names = mp_obj_map_get(w, "names");
    uint64_t procs = field_uint(w, "processes");
    printf("  worker %llu: host %s, pid %llu, %llu process%s, credit %llu, %llu done, "
           "%llu failed, %zu running\n",
           (unsigned long long)field_uint(w, "id"), field_str(w, "host"),
           (unsigned long long)field_uint(w, "pid"), (unsigned long long)procs,
           procs == 1 ? "" : "es", (unsigned long long)field_uint(w, "credit"),
           (unsigned long long)field_uint(w, "done"), (unsigned long long)field_uint(w, "failed"),
           array_len(running));
    for (size_t i = 0; i < array_len(running); i++) {
        const mp_obj_t *d = mp_obj_array_at(running, i);
        uint64_t count = field_uint(d, "count");
        printf("    dispatch %llu: %s, %llu item%s, attempt %llu\n",
               (unsigned long long)field_uint(d, "dispatch"), field_str(d, "task"),
               (unsigned long long)count, plural(count),
               (unsigned long long)field_uint(d, "attempt"));
    }
    if (array_len(names)) {
        printf("    tasks:");
        for (size_t i = 0; i < array_len(names); i++) {
            const mp_obj_t *n = mp_obj_array_at(names, i);
            printf(" %s", mp_obj_type(n) == MP_OBJ_STR ? mp_obj_str(n, NULL) : "?");
        }
        printf("\n");
    }
}

/* The STATUS map (docs/PROTOCOL.md 4.3), for people. */
static void print_status(const char *broker, const mp_obj_t *st)
{
    uint64_t up = field_uint(st, "uptime_ms") / 1000, clients = field_uint(st, "clients");
    printf("broker %s: version %s, up %lluh%02llum%02llus, %llu client%s\n", broker,
           field_str(st, "version"), (unsigned long long)(up / 3600),
           (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60),
           (unsigned long long)clients, plural(clients));
    printf("items: %llu done, %llu failed, %llu lost\n", (unsigned long long)field_uint(st, "done"),
           (unsigned long long)field_uint(st, "failed"),
           (unsigned long long)field_uint(st, "lost"));
    const mp_obj_t *queued = mp_obj_map_get(st, "queued");
    size_t nq = mp_obj_type(queued) == MP_OBJ_MAP ? mp_obj_len(queued) : 0;
    printf("queued:%s", nq ? "" : " none");
    for (size_t i = 0; i < nq; i++) {
        const mp_obj_t *k = mp_obj_map_key_at(queued, i), *v = mp_obj_map_value_at(queued, i);
        uint64_t n =
            mp_obj_type(v) == MP_OBJ_INT || mp_obj_type(v) == MP_OBJ_UINT ? mp_obj_uint(v) : 0;
        printf("%s %s %llu chunk%s", i ? "," : "",
               mp_obj_type(k) == MP_OBJ_STR ? mp_obj_str(k, NULL) : "?", (unsigned long long)n,
               plural(n));
    }
    printf("\n");
    const mp_obj_t *workers = mp_obj_map_get(st, "workers");
    size_t nw = array_len(workers);
    uint64_t procs = 0;
    for (size_t i = 0; i < nw; i++)
        procs += field_uint(mp_obj_array_at(workers, i), "processes");
    printf("workers: %zu (%llu process%s)\n", nw, (unsigned long long)procs,
           procs == 1 ? "" : "es");
    for (size_t i = 0; i < nw; i++)
        print_worker(mp_obj_array_at(workers, i));
}

static bool has_worker_on(const mp_obj_t *st, const char *host)
{
    const mp_obj_t *workers = mp_obj_map_get(st, "workers");
    for (size_t i = 0; i < array_len(workers); i++)
        if (strcmp(field_str(mp_obj_array_at(workers, i), "host"), host) == 0)
            return true;
    return false;
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
        emit_value(run, st);
    else
        print_status(cli->broker, st);
    bool host_ok = !cli->host || has_worker_on(st, cli->host);
    mp_obj_destroy(&st);
    if (!host_ok)
        say(NULL, "status: no worker on host %s is connected to %s", cli->host, cli->broker);
    return !run->broken && flush_output(run) && host_ok ? 0 : EXIT_FAIL;
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
    static const struct option opts[] = {
        {"broker", required_argument, 0, 'b'},    {"timeout", required_argument, 0, 'T'},
        {"chunksize", required_argument, 0, 'c'}, {"unordered", no_argument, 0, 'u'},
        {"input", required_argument, 0, 'i'},     {"json", no_argument, 0, 'j'},
        {"host", required_argument, 0, 'H'},      {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},         {0, 0, 0, 0}};
    long v;
    int c;
    optind = 0; /* glibc: start over (a second pass) */
    opterr = 0; /* our own one-line messages */
    while ((c = getopt_long(argc, argv, permute ? ":b:c:i:uhV" : "+:b:c:i:uhV", opts, NULL)) !=
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
    static const char *commands[] = {"apply", "map", "starmap", "status"};
    static const unsigned allowed[] = {0, OPT_CHUNKSIZE | OPT_UNORDERED | OPT_INPUT,
                                       OPT_CHUNKSIZE | OPT_UNORDERED | OPT_INPUT,
                                       OPT_JSON | OPT_HOST};
    int at, rest, rc = parse_options(argc, argv, false, cli, &at);
    if (rc)
        return rc;
    if (at >= argc) {
        say(NULL, "missing command (apply, map, starmap or status); try --help");
        return EXIT_USAGE;
    }
    cli->command = -1;
    for (int i = 0; i < 4; i++)
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
            extra & OPT_CHUNKSIZE   ? "--chunksize"
            : extra & OPT_UNORDERED ? "--unordered"
            : extra & OPT_INPUT     ? "--input"
            : extra & OPT_JSON      ? "--json"
                                    : "--host");
        return EXIT_USAGE;
    }
    if (cli->command == CMD_STATUS) {
        if (rest < argc) {
            say(NULL, "status takes no operand ('%s'); try --help", argv[rest]);
            return EXIT_USAGE;
        }
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
    return 0;
}

/* Opens the input of map / starmap. 0, or EXIT_FAIL with a message. */
static int open_input(const cli_t *cli, reader_t *r)
{
    memset(r, 0, sizeof *r);
    r->star = cli->command == CMD_STARMAP;
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
    mp_pool_options_t o = {.broker = cli->broker, .connect_timeout_ms = cli->timeout_ms};
    int rc = mp_pool_new(&o, pool);
    if (rc == MP_EBROKERLOST)
        say(NULL, "no broker answered at %s within %d ms", cli->broker,
            cli->timeout_ms ? cli->timeout_ms : DEFAULT_TIMEOUT_MS);
    else if (rc)
        say(NULL, "cannot connect to %s: %s", cli->broker, mp_strerror(rc));
    return rc ? EXIT_FAIL : 0;
}

int main(int argc, char **argv)
{
    cli_t cli = {0};
    int rc = parse_cli(argc, argv, &cli);
    if (rc)
        return rc < 0 ? 0 : rc;
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is a write error, handled */

    reader_t reader = {0};
    bool stream = cli.command == CMD_MAP || cli.command == CMD_STARMAP;
    if (stream && (rc = open_input(&cli, &reader)))
        return rc;
    run_t run = {.cli = &cli};
    progress_init(&run.progress);
    if ((rc = connect_pool(&cli, &run.pool)) == 0) {
        if (cli.command != CMD_STATUS && mp_pool_processes(run.pool) == 0 && run.progress.on)
            say(NULL, "no worker is connected yet: waiting for one");
        switch (cli.command) {
        case CMD_APPLY:
            rc = run_apply(&run);
            break;
        case CMD_STATUS:
            rc = run_status(&run);
            break;
        default:
            rc = run_stream(&run, &reader);
            break;
        }
    }
    mp_pool_destroy(&run.pool);
    close_input(&reader);
    return rc;
}
