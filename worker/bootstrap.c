/*  bootstrap.c - mp_bootstrap(): what role this run of a program plays.

    A program calls mp_bootstrap(argc, argv) first thing in main(). Three
    answers: `--mp-worker ENDPOINT` makes the program a Pool worker serving
    its own MP_TASKs (it never returns); the spawn start method's payload
    in the environment makes it that child (process/spawn.c; it never
    returns); otherwise it returns 0 and main() goes on. It lives above the
    worker and the process layer because it dispatches to both.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp/error.h"
#include "mp/worker.h"
#include "process/process_impl.h"

/* `program --mp-worker ENDPOINT [--mp-processes N]`: the program serves its
   own registered tasks as a Pool worker, then exits. */
static void maybe_run_worker(int argc, char **argv)
{
    const char *endpoint = NULL;
    int processes = 0;
    for (int i = 1; argv && i < argc; i++) {
        if (strcmp(argv[i], "--mp-worker") == 0 && i + 1 < argc)
            endpoint = argv[++i];
        else if (strcmp(argv[i], "--mp-processes") == 0 && i + 1 < argc)
            processes = atoi(argv[++i]);
    }
    if (!endpoint)
        return;
    mp_worker_options_t o = {.broker = endpoint,
                             .processes = processes > 0 ? processes : 0,
                             /* a daemon logs at INFO unless MP_LOG_LEVEL says */
                             .verbose = getenv("MP_LOG_LEVEL") ? 0 : 1,
                             .stop_fd = -1};
    int rc = mp_worker_run(&o);
    if (rc)
        fprintf(stderr, "%s --mp-worker: %s\n", argv[0], mp_strerror(rc));
    exit(rc ? 1 : 0);
}

int mp_bootstrap(int argc, char **argv)
{
    maybe_run_worker(argc, argv);
    int code;
    if (mp__spawn_child(&code))
        mp__child_exit(code);
    return 0;
}
