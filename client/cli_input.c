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
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
