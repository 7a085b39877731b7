/*  cli_durable.h - mp-client's durable-job commands (cli_durable.c). */
#ifndef MP_CLI_DURABLE_H_INCLUDED
#define MP_CLI_DURABLE_H_INCLUDED

#include "cli_format.h"
#include "cli_input.h"

/* Reads every input line and submits them as job (mp_pool_submit). Exit
   status: 0, or 1 with a message. */
int cli_submit(mp_pool_t *pool, reader_t *r, const char *job, const char *task,
               const mp_submit_options_t *o);
/* Waits for job (timeout_ms, < 0 for ever) and prints its results. */
int cli_fetch(mp_pool_t *pool, output_t *out, const char *job, int timeout_ms);
int cli_forget(mp_pool_t *pool, const char *job);

#endif
