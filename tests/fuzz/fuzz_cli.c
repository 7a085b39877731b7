/*  fuzz_cli.c - mp-client's own parsers and renderers of untrusted data:
    its input lines (one JSON value per line, map or starmap, with or
    without --with-input) turned into items, each value rendered back as a
    result line; and a broker's STATUS (msgpack) rendered as the status
    report.

    An input: a flags byte (bit 0 starmap, bit 1 --with-input), the input
    text up to the first NUL byte, then a STATUS map (msgpack) to render.
    Output goes to /dev/null. Any input must be handled without a crash, a
    leak or an out-of-bounds access (ASan, UBSan). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli_format.h"
#include "client/cli_input.h"
#include "mp.h"

static void lines(const uint8_t *text, size_t n, bool star, bool keep)
{
    FILE *in = fmemopen((void *)text, n, "r");
    if (!in)
        return;
    kept_t kept;
    kept_init(&kept);
    reader_t r = {.in = in, .keep = keep ? &kept : NULL, .name = "fuzz", .star = star};
    output_t out = {.input = NULL};
    mp_items_t *items = mp_items_new();
    json_t *j;
    while (items && reader_next(&r, &j) == 1) {
        int rc = reader_add(&r, items, j);
        json_decref(j);
        if (rc)
            break;
    }
    for (size_t i = 0; items && i < mp_items_len(items); i++) {
        mp_obj_t *v = NULL;
        if (mp_items_get(items, i, &v) == 0)
            emit_value(&out, v);
        mp_obj_destroy(&v);
        free(kept_take(&kept, i));
    }
    mp_items_destroy(&items);
    kept_free(&kept);
    free(r.line);
    fclose(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) { /* result lines and the report: written, not shown */
        quiet = freopen("/dev/null", "w", stdout) != NULL;
        mp_log_set_level(MP_LOG_ERROR);
    }
    if (size < 1)
        return 0;
    const uint8_t *text = data + 1, *nul = memchr(text, 0, size - 1);
    size_t tn = nul ? (size_t)(nul - text) : size - 1;
    lines(text, tn, data[0] & 1, data[0] & 2);
    if (nul) {
        mp_obj_t *st = NULL;
        if (mp_obj_unpack(nul + 1, size - 1 - tn - 1, &st) == 0) {
            print_status("tcp://fuzz:5555", st);
            has_worker_on(st, "host");
        }
        mp_obj_destroy(&st);
    }
    fflush(stdout);
    return 0;
}

#include "replay.h"
