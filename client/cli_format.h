/*  cli_format.h - mp-client's output (cli_format.c): values as JSON, the
    result lines, the progress line, the status report, messages; and the
    operator commands top and drain (cli_ops.c). */
#ifndef MP_CLI_FORMAT_H_INCLUDED
#define MP_CLI_FORMAT_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mp.h"

#define PROG "mp-client"
#define PROGRESS_MS 100 /* progress line refresh interval */
#define JSON_OUT (JSON_ENCODE_ANY | JSON_COMPACT)
#define JSON_IN (JSON_DECODE_ANY | JSON_ALLOW_NUL)

typedef struct {
    bool on;         /* stderr is a terminal */
    bool stdout_tty; /* results share the screen: clear the line first */
    bool shown;      /* a progress line is on screen */
    size_t total;    /* items in the input; 0 when unknown */
    uint64_t start_ns, last_ns;
} progress_t;

/* Where a command's results go and how it went. */
typedef struct {
    progress_t progress;
    size_t printed;    /* result lines written */
    size_t failed;     /* items that failed */
    bool broken;       /* stdout failed or out of memory: stop */
    const char *input; /* --with-input: the next line's input text, or NULL */
} output_t;

/* One line on stderr, "mp-client: ...", after clearing the progress line
   (p: NULL when none is drawn). */
void say(progress_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* mp-client's --help text (batch_items: starmap's lines per call). */
void cli_usage(FILE *out, int batch_items);

void progress_init(progress_t *p);
void progress_clear(progress_t *p);
/* Redraws at most every PROGRESS_MS: done/total with a bar when the total is
   known, else done and sent counts. */
void progress_draw(progress_t *p, size_t done, size_t sent);

/* Converts j into *o_p (caller owns). 0, MP_ENOMEM, or MP_E2BIG when nested
   deeper than an mp_obj_t can be. */
int json_to_obj(const json_t *j, int depth, mp_obj_t **o_p);

/* One result line: a value, or {"error": {...}} for item index (counted
   in out->failed); "INPUT<TAB>" before it when out->input is set (the
   input line as it was read; cleared after the line). */
void emit_value(output_t *out, const mp_obj_t *v);
void emit_error(output_t *out, const mp_task_error_t *e, size_t index);
/* Flushes stdout: false (with a message unless the reader went away) when
   writing failed. */
bool flush_output(output_t *out);

/* The STATUS map (docs/PROTOCOL.md 4.3), for people, on stdout. */
void print_status(const char *broker, const mp_obj_t *st);
/* A worker on host is in the STATUS map. */
bool has_worker_on(const mp_obj_t *st, const char *host);
/* A STATUS map's fields: map[key] as an unsigned (0 when absent), as a
   string ("" when absent); an array's length (0 when not one); "s" or "". */
uint64_t field_uint(const mp_obj_t *map, const char *key);
const char *field_str(const mp_obj_t *map, const char *key);
size_t array_len(const mp_obj_t *o);
const char *plural(uint64_t n);
/* mp-client top: the cluster every interval_ms, iterations times (0: until
   interrupted); cleared and redrawn when stdout is a terminal, snapshots
   one after another otherwise. Its exit status. */
int cli_top(mp_pool_t *pool, const char *broker, int interval_ms, long iterations);
/* mp-client drain: DRAIN worker id, then wait (wait_ms) until it is gone.
   0, or 1 (no such worker, still busy, no broker; said on stderr). */
int cli_drain(mp_pool_t *pool, const char *broker, uint64_t id, int wait_ms);
/* The worker of STATUS st whose "id" is id, or NULL. */
const mp_obj_t *worker_by_id(const mp_obj_t *st, uint64_t id);

#endif
