/*  cli_format.c - mp-client's output: values as JSON, result and error
    lines, the progress line, the status report, messages on stderr.

    Values cross as JSON both ways (cli.c's note has the mapping): on input
    json_to_obj, on output obj_to_json, which never fails on a value
    (bytes that are not UTF-8 become U+FFFD, NaN null, keys that are not
    strings their JSON text). One result line per item on stdout, one
    message line on stderr ("mp-client: ..."); the progress line is drawn
    on stderr only when it is a terminal, and cleared before anything else
    is written where it is shown.

    Invariants: nothing here knows the command line, the pool or the
    input; an output failure (stdout closed, out of memory) sets
    out->broken and every later line is dropped, so a command stops at its
    next check.
*/
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_format.h"

#define PROGRESS_BAR 30 /* bar width in characters */

/* One line on stderr, "mp-client: ...", after clearing the progress line. */
void say(progress_t *p, const char *fmt, ...)
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

void progress_init(progress_t *p)
{
    memset(p, 0, sizeof *p);
    p->on = isatty(STDERR_FILENO) == 1;
    p->stdout_tty = isatty(STDOUT_FILENO) == 1;
    p->start_ns = now_ns();
}

void progress_clear(progress_t *p)
{
    if (p->shown) {
        fputs("\r\033[K", stderr);
        p->shown = false;
    }
}

/* Redraws at most every PROGRESS_MS: done/total with a bar when the total is
   known, else done and sent counts. */
void progress_draw(progress_t *p, size_t done, size_t sent)
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
        if (rate > 0 && shown < p->total) { /* the time left at the rate so far */
            unsigned long eta = (unsigned long)((double)(p->total - shown) / rate + 0.5);
            fprintf(stderr, "  ETA %lum%02lus", eta / 60, eta % 60);
        }
    } else {
        fprintf(stderr, "\r\033[K%zu items done, %zu sent  %.0f/s", done, sent, rate);
    }
    fflush(stderr);
    p->shown = true;
}

/* ---- JSON -> mp_obj_t ------------------------------------------------------------------- */

/* Converts j into *o_p (caller owns). 0, MP_ENOMEM, or MP_E2BIG when nested
   deeper than an mp_obj_t can be. */
int json_to_obj(const json_t *j, int depth, mp_obj_t **o_p)
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
    case MP_OBJ_EXT: { /* {"ext": type, "data": [bytes]}: JSON has no such type */
        int8_t type = 0;
        const unsigned char *p = mp_obj_ext(o, &type, &n);
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
            if (json_array_append_new(a, json_integer(p[i])))
                json_decref(a), a = NULL;
        return a ? json_pack("{s:i, s:o}", "ext", type, "data", a) : NULL;
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
static void emit(output_t *out, json_t *j)
{
    if (out->broken) {
        json_decref(j);
        return;
    }
    if (!j) {
        say(&out->progress, "out of memory");
        out->broken = true;
        return;
    }
    if (out->progress.stdout_tty)
        progress_clear(&out->progress);
    if (out->input && (fputs(out->input, stdout) == EOF || putchar('\t') == EOF))
        out->broken = true;
    out->input = NULL;
    if (json_dumpf(j, stdout, JSON_OUT) || putchar('\n') == EOF)
        out->broken = true;
    json_decref(j);
    out->printed++;
}

void emit_value(output_t *out, const mp_obj_t *v)
{
    emit(out, obj_to_json(v));
}

void emit_error(output_t *out, const mp_task_error_t *e, size_t index)
{
    out->failed++;
    emit(out, error_to_json(e, index));
}

/* Flushes stdout: false (with a message unless the reader went away) when
   writing failed. */
bool flush_output(output_t *out)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return true;
    if (errno != EPIPE)
        say(&out->progress, "cannot write the results: %s", strerror(errno));
    out->broken = true;
    return false;
}

/* ---- status report ---------------------------------------------------------------------- */

uint64_t field_uint(const mp_obj_t *map, const char *key)
{
    const mp_obj_t *v = mp_obj_map_get(map, key);
    mp_obj_type_t t = v ? mp_obj_type(v) : MP_OBJ_NIL;
    return t == MP_OBJ_INT || t == MP_OBJ_UINT ? mp_obj_uint(v) : 0;
}

const char *field_str(const mp_obj_t *map, const char *key)
{
    const mp_obj_t *v = mp_obj_map_get(map, key);
    return v && mp_obj_type(v) == MP_OBJ_STR ? mp_obj_str(v, NULL) : "?";
}

/* Items of an array, 0 for anything else. */
size_t array_len(const mp_obj_t *o)
{
    return mp_obj_type(o) == MP_OBJ_ARRAY ? mp_obj_len(o) : 0;
}

const char *plural(uint64_t n)
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
void print_status(const char *broker, const mp_obj_t *st)
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

bool has_worker_on(const mp_obj_t *st, const char *host)
{
    const mp_obj_t *workers = mp_obj_map_get(st, "workers");
    for (size_t i = 0; i < array_len(workers); i++)
        if (strcmp(field_str(mp_obj_array_at(workers, i), "host"), host) == 0)
            return true;
    return false;
}

const mp_obj_t *worker_by_id(const mp_obj_t *st, uint64_t id)
{
    const mp_obj_t *workers = mp_obj_map_get(st, "workers");
    for (size_t i = 0; i < array_len(workers); i++) {
        const mp_obj_t *w = mp_obj_array_at(workers, i), *wid = mp_obj_map_get(w, "id");
        if (wid && mp_obj_type(wid) == MP_OBJ_INT && (uint64_t)mp_obj_int(wid) == id)
            return w;
    }
    return NULL;
}

/* The --help text (batch_items: starmap's lines per call). */
void cli_usage(FILE *out, int batch_items)
{
    fprintf(out,
            "usage: mp-client [options] apply NAME [ARG...]\n"
            "       mp-client [options] map NAME [--input FILE] [--unordered] [--chunksize N]\n"
            "                                    [--with-input]\n"
            "       mp-client [options] starmap NAME [--input FILE] [--unordered] [--chunksize N]\n"
            "                                        [--with-input]\n"
            "       mp-client [options] status [--json] [--host HOST]\n"
            "       mp-client [options] drain WORKER-ID\n"
            "       mp-client [options] top [--interval MS] [--iterations N]\n"
            "       mp-client [options] submit|starsubmit JOB NAME [--input FILE] [--chunksize N]\n"
            "       mp-client [options] fetch|forget JOB\n"
            "       mp-client keygen NAME\n"
            "Runs libmp Pool tasks on a cluster (mp-broker + mp-worker); JSON in and out.\n\n"
            "  apply NAME ARG...   call NAME once; each ARG is JSON, or a plain string when\n"
            "                      it is not valid JSON (\"7\" is an int, '\"7\"' a string);\n"
            "                      options go before NAME\n"
            "  map NAME            call NAME on each input line (one JSON value per line)\n"
            "  starmap NAME        same, each line a JSON array of arguments\n"
            "  status              the broker's workers, queues and counters\n"
            "  drain               a worker (its id in status) finishes what it holds, takes\n"
            "                      nothing new, and exits; waits until it is gone (--timeout)\n"
            "  top                 the cluster, redrawn every --interval MS (default 1000):\n"
            "                      workers, items/s, queues; --iterations N stops after N\n"
            "  submit JOB NAME     a durable job: the input lines (starsubmit: argument\n"
            "                      arrays) kept on the broker's disk (mp-broker --journal),\n"
            "                      run whoever waits; fetch JOB prints its results once it\n"
            "                      is done (--timeout MS, else waits), forget JOB deletes it\n"
            "  keygen NAME         write a CURVE key pair: NAME.key (public) and\n"
            "                      NAME.key_secret (docs/CLUSTER.md, Security)\n\n"
            "  -b, --broker EP     tcp://HOST:PORT or ipc://PATH of mp-broker\n"
            "                      (default: $MP_BROKER; one of them is required)\n"
            "      --timeout MS    wait this long for the broker (default 10000)\n"
            "      --task-timeout MS  a task still running after MS is killed and its\n"
            "                      item fails (MP_ETIMELIMIT); the others complete\n"
            "      --curve-key FILE       CURVE: this client's NAME.key_secret\n"
            "      --curve-server-key KEY CURVE: the broker's NAME.key, or its 40 Z85\n"
            "                      characters ($MP_CURVE_KEY, $MP_CURVE_SERVER_KEY)\n"
            "  -i, --input FILE    read FILE instead of stdin\n"
            "  -u, --unordered     print results as they complete\n"
            "  -w, --with-input    print each input line, a tab, then its result\n"
            "      --no-progress   no progress line (drawn on stderr when it is a terminal)\n"
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
            "0 all done, 1 a failure (an item, the input, the broker), 2 bad usage,\n"
            "3 stopped early: the call ended before the input did (the broker was lost);\n"
            "the last line says how many input items were not run.\n",
            batch_items);
}
