/*  cli_durable.c - mp-client's durable-job commands (docs/JOURNAL.md):

        seq 1 1000 | mp-client submit nightly square   -> stored on the broker's disk
        mp-client fetch nightly                        -> 1, 4, 9, ... (each line once)
        mp-client forget nightly

    submit reads every input line (JSON, as map's; starsubmit: argument
    arrays, as starmap's) and returns once the broker has them on disk; the
    job then runs whether or not anyone waits. fetch waits (--timeout, or
    for ever) until the job is done and prints its results in input order,
    failed items as {"error": {...}} lines, as map does.
*/
#include <stdio.h>

#include "cli_durable.h"

int cli_submit(mp_pool_t *pool, reader_t *r, const char *job, const char *task,
               const mp_submit_options_t *o)
{
    mp_items_t *items = mp_items_new();
    json_t *j = NULL;
    int got;
    while (items && (got = reader_next(r, &j)) == 1) {
        int rc = reader_add(r, items, j);
        json_decref(j);
        if (rc) {
            say(NULL, "%s", r->error);
            mp_items_destroy(&items);
            return 1;
        }
    }
    if (!items || got < 0) {
        say(NULL, "%s", items ? r->error : "out of memory");
        mp_items_destroy(&items);
        return 1;
    }
    size_t n = mp_items_len(items);
    int rc = n ? mp_pool_submit(pool, job, task, items, o) : MP_EINVAL;
    mp_items_destroy(&items);
    if (rc == MP_EINVAL && n == 0) {
        say(NULL, "submit %s: no input items", job);
        return 1;
    }
    if (rc) {
        say(NULL, "submit %s: %s", job, mp_strerror(rc));
        return 1;
    }
    fprintf(stderr, PROG ": job %s: %zu items stored; collect them with: mp-client fetch %s\n", job,
            n, job);
    return 0;
}

int cli_fetch(mp_pool_t *pool, output_t *out, const char *job, int timeout_ms)
{
    mp_items_t *results = NULL;
    int rc = mp_pool_fetch(pool, job, timeout_ms, &results);
    if (rc == MP_ENOENT) {
        say(NULL, "fetch %s: no such job on this broker", job);
        return 1;
    }
    if (rc == MP_ETIMEDOUT) {
        say(NULL, "fetch %s: not done within %d ms (it goes on: fetch again later)", job,
            timeout_ms);
        return 1;
    }
    if (rc) {
        say(NULL, "fetch %s: %s", job, mp_strerror(rc));
        return 1;
    }
    size_t n = mp_items_len(results);
    for (size_t i = 0; i < n && !out->broken; i++) {
        const mp_task_error_t *e = mp_items_error(results, i);
        mp_obj_t *v = NULL;
        if (e)
            emit_error(out, e, i);
        else if (mp_items_get(results, i, &v) == 0)
            emit_value(out, v);
        else
            out->broken = true;
        mp_obj_destroy(&v);
    }
    mp_items_destroy(&results);
    if (out->broken || !flush_output(out))
        return 1;
    return out->failed ? 1 : 0;
}

int cli_forget(mp_pool_t *pool, const char *job)
{
    int rc = mp_pool_forget(pool, job);
    if (rc == MP_ENOENT)
        say(NULL, "forget %s: no such job on this broker", job);
    else if (rc)
        say(NULL, "forget %s: %s", job, mp_strerror(rc));
    return rc ? 1 : 0;
}
