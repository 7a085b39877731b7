/*  cli_input.h - mp-client's input lines (cli_input.c). */
#ifndef MP_CLI_INPUT_H_INCLUDED
#define MP_CLI_INPUT_H_INCLUDED

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "mp.h"

/* The input of map / starmap: one JSON value per line. */
/* --with-input: the text of each input line not printed yet, by item
   index. The reader (maybe the imap's feeder thread) puts, the printer
   takes: its own mutex. Open addressing on the index, so memory follows
   the lines waiting, not the distance between the oldest and the newest
   (imap_unordered: a slow item may wait while thousands pass it). */
typedef struct {
    pthread_mutex_t mutex;
    struct kept_line {
        size_t index;
        char *text; /* NULL: a free slot */
    } * slots;
    size_t cap, count; /* cap: a power of two */
} kept_t;

void kept_init(kept_t *k);
/* A copy of text[0..len) for item index. 0 or MP_ENOMEM. */
int kept_put(kept_t *k, size_t index, const char *text, size_t len);
/* The text of item index, removed (caller frees), or NULL. */
char *kept_take(kept_t *k, size_t index);
void kept_free(kept_t *k);

typedef struct {
    FILE *in;
    kept_t *keep;     /* --with-input: each item's line goes here, or NULL */
    const char *name; /* for messages */
    bool star;        /* each line is an argument tuple */
    char *line;
    size_t cap;
    size_t lineno;
    size_t items;    /* items produced */
    bool eof;        /* the input ended (reader_next returned 0) */
    char error[512]; /* set when reading stopped at bad input */
} reader_t;

/* Parses the next non-blank line: 1 and *j (caller owns), 0 at the end, -1
   when the line is not JSON or reading failed (r->error says why). */
int reader_next(reader_t *r, json_t **j);
/* Appends the value of one line to items: the single argument (map) or an
   argument tuple (starmap). 0, or -1 with r->error set. */
int reader_add(reader_t *r, mp_items_t *items, const json_t *j);
/* imap generator (mp_generator_fn; arg: the reader): one item per line. */
int read_item(void *arg, mp_items_t *out);
/* Items in a regular file (non-blank lines), read ahead and rewound; 0 when
   unknown (not a file, too large, not seekable). */
size_t count_items(reader_t *r);
/* After a run that stopped early: reads the rest of the input and counts
   its items (non-blank lines), waiting at most wait_ms for a pipe that
   does not end; *complete is false when it gave up (then the count is a
   lower bound). */
size_t reader_rest(reader_t *r, int wait_ms, bool *complete);

#endif
