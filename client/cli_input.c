/*  cli_input.c - mp-client's input: one JSON value per line (map: the
    argument; starmap: an array of arguments), read as the pool asks for
    items, so memory stays constant whatever the input length.

    Invariants: blank lines are skipped; the first bad line (not JSON, the
    wrong shape, nested too deep, unreadable) ends the input with
    r->error saying where and why, and the items before it still run;
    r->items counts the items produced. Reading is the caller's thread's
    or, for map, the imap's feeder thread's (read_item), never both.
*/
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_format.h"
#include "cli_input.h"

#define COUNT_LIMIT (256ull << 20) /* count the lines of files up to this size */

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
int reader_next(reader_t *r, json_t **j)
{
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->line, &r->cap, r->in);
        if (n < 0) {
            if (!ferror(r->in)) {
                r->eof = true;
                return 0;
            }
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
int reader_add(reader_t *r, mp_items_t *items, const json_t *j)
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
    if (rc == 0 && r->keep) {
        size_t len = strlen(r->line);
        while (len && (r->line[len - 1] == '\n' || r->line[len - 1] == '\r'))
            len--;
        if ((rc = kept_put(r->keep, r->items, r->line, len)))
            reader_fail(r, "%s", mp_strerror(rc));
    }
    if (rc)
        return -1;
    r->items++;
    return 0;
}

/* imap generator (runs on the imap's feeder thread): one item per line. Bad
   input ends the input (MP_EEOF) with r->error set, so the results of the
   lines before it are still printed. */
int read_item(void *arg, mp_items_t *out)
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
size_t count_items(reader_t *r)
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

/* Bytes already in r->in's buffer (glibc's FILE), so that a poll on its
   descriptor is asked only when a read would block. */
static size_t buffered(FILE *f)
{
#if defined(__GLIBC__)
    return (size_t)(f->_IO_read_end - f->_IO_read_ptr);
#else
    (void)f;
    return 0;
#endif
}

size_t reader_rest(reader_t *r, int wait_ms, bool *complete)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t n = 0;
    *complete = r->eof;
    while (!r->eof && !r->error[0]) {
        if (!buffered(r->in)) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long left = wait_ms - (long)((now.tv_sec - t0.tv_sec) * 1000 +
                                         (now.tv_nsec - t0.tv_nsec) / 1000000);
            struct pollfd p = {fileno(r->in), POLLIN, 0};
            if (left <= 0 || poll(&p, 1, (int)left) != 1)
                return n; /* a pipe that goes on: n is a lower bound */
        }
        ssize_t len = getline(&r->line, &r->cap, r->in);
        if (len < 0) {
            r->eof = !ferror(r->in);
            break;
        }
        n += !blank(r->line, (size_t)len);
    }
    *complete = r->eof;
    return n;
}

/* ---- kept lines (--with-input) ------------------------------------------------------------ */

void kept_init(kept_t *k)
{
    pthread_mutex_init(&k->mutex, NULL);
    k->slots = NULL;
    k->cap = k->count = 0;
}

static size_t kept_home(const kept_t *k, size_t index)
{
    return (index * 0x9E3779B97F4A7C15ull) >> 7 & (k->cap - 1);
}

static void kept_insert(kept_t *k, size_t index, char *text)
{
    size_t i = kept_home(k, index);
    while (k->slots[i].text)
        i = (i + 1) & (k->cap - 1);
    k->slots[i] = (struct kept_line){index, text};
    k->count++;
}

int kept_put(kept_t *k, size_t index, const char *text, size_t len)
{
    char *copy = strndup(text, len);
    if (!copy)
        return MP_ENOMEM;
    pthread_mutex_lock(&k->mutex);
    if (2 * (k->count + 1) > k->cap) { /* at most half full: short probes */
        size_t cap = k->cap ? 2 * k->cap : 1024;
        struct kept_line *old = k->slots, *grown = calloc(cap, sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&k->mutex);
            free(copy);
            return MP_ENOMEM;
        }
        size_t oldcap = k->cap;
        k->slots = grown;
        k->cap = cap;
        k->count = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].text)
                kept_insert(k, old[i].index, old[i].text);
        free(old);
    }
    kept_insert(k, index, copy);
    pthread_mutex_unlock(&k->mutex);
    return 0;
}

char *kept_take(kept_t *k, size_t index)
{
    char *text = NULL;
    pthread_mutex_lock(&k->mutex);
    size_t i = k->cap ? kept_home(k, index) : 0;
    while (k->cap && k->slots[i].text && k->slots[i].index != index)
        i = (i + 1) & (k->cap - 1);
    if (k->cap && k->slots[i].text) {
        text = k->slots[i].text;
        k->slots[i].text = NULL;
        k->count--;
        /* backward shift: later members of the probe run move up, so a
           lookup never stops early at the hole */
        for (size_t j = (i + 1) & (k->cap - 1); k->slots[j].text; j = (j + 1) & (k->cap - 1)) {
            size_t home = kept_home(k, k->slots[j].index);
            /* j's entry may fill the hole i when its home is not in (i, j] */
            bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
            if (movable) {
                k->slots[i] = k->slots[j];
                k->slots[j].text = NULL;
                i = j;
            }
        }
    }
    pthread_mutex_unlock(&k->mutex);
    return text;
}

void kept_free(kept_t *k)
{
    for (size_t i = 0; i < k->cap; i++)
        free(k->slots[i].text);
    free(k->slots);
    k->slots = NULL;
    k->cap = k->count = 0;
    pthread_mutex_destroy(&k->mutex);
}
