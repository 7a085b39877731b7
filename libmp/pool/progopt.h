/*  progopt.h - what the thin programs (mp-broker, mp-worker, mp-client)
    share to read numeric options. Header-only, not installed: the programs
    link only libmp's public API. */
#ifndef MP_PROGOPT_H_INCLUDED
#define MP_PROGOPT_H_INCLUDED

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "mp/log.h"
#include "mp/version.h"

/* Parses s as a decimal in [min, max] into *out; on failure prints
   "<prog>: bad <what> '<s>' (expected min..max)" and returns -1. */
static inline int mp_prog_parse_long(const char *prog, const char *s, const char *what, long min,
                                     long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) {
        fprintf(stderr, "%s: bad %s '%s' (expected %ld..%ld)\n", prog, what, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* When the option was not given (*out == unset) and the environment
   variable `name` is set and not empty, parses it as mp_prog_parse_long
   does. Returns -1 on a bad value (the message names the variable). */
static inline int mp_prog_env_long(const char *prog, const char *name, long min, long max,
                                   long unset, long *out)
{
    const char *env = getenv(name);
    if (*out != unset || !env || !*env)
        return 0;
    return mp_prog_parse_long(prog, env, name, min, max, out);
}

/* The log level of a daemon: `arg` (--log-level, -v, -q) when given, else
   MP_LOG_LEVEL, else MP_VERBOSE=1 (debug), else info. Returns the MP_LOG_*
   level, or -1 after a message on a bad name. */
static inline int mp_prog_log_level(const char *prog, const char *arg)
{
    const char *what = "--log-level";
    if (!arg) {
        const char *env = getenv("MP_LOG_LEVEL"), *verbose = getenv("MP_VERBOSE");
        if (!env || !*env)
            return verbose && strcmp(verbose, "1") == 0 ? MP_LOG_DEBUG : MP_LOG_INFO;
        arg = env;
        what = "MP_LOG_LEVEL";
    }
    int level = mp_log_level_parse(arg);
    if (level < 0)
        fprintf(stderr, "%s: bad %s '%s' (expected error, warn, info or debug)\n", prog, what, arg);
    return level;
}

/* The options both daemons share, for the default branch of their getopt
   switch (getopt run with opterr = 0 and a leading ':' in optstring):
   -l/--log-level, -v, -q set *level_name; -h prints usage, -V the version
   (exit 0); anything else is one line and exit 2. Returns -1 when parsing
   goes on, else the exit status. */
static inline int mp_prog_common_option(const char *prog, int c, char **argv, void (*usage)(FILE *),
                                        const char **level_name)
{
    switch (c) {
    case 'l':
        *level_name = optarg;
        return -1;
    case 'v':
        *level_name = "debug";
        return -1;
    case 'q':
        *level_name = "warn";
        return -1;
    case 'h':
        usage(stdout);
        return 0;
    case 'V':
        printf("%s %s\n", prog, MP_VERSION_STRING);
        return 0;
    default:
        fprintf(stderr, "%s: %s option '%s'; try --help\n", prog,
                c == ':' ? "missing value for" : "unknown", argv[optind - 1]);
        return 2;
    }
}

/* Exit status 2 with one line when operands follow the options, else -1. */
static inline int mp_prog_no_operands(const char *prog, int argc, char **argv)
{
    if (optind >= argc)
        return -1;
    fprintf(stderr, "%s: unexpected argument '%s'; try --help\n", prog, argv[optind]);
    return 2;
}

/* A daemon's heap keeps what it frees. libzmq allocates a fresh buffer for
   every large message it receives, and two more for each one it encrypts or
   decrypts under CURVE; glibc serves a block over its mmap threshold (128
   KiB at first) with mmap and returns it with munmap, so each such message
   page-faults its whole size in again (~10 us per 4 KiB page on a VM). The
   daemons serve those blocks from a heap that is trimmed only past 128
   MiB: a TCP map of 10^6 ints ran 2x faster (docs/BENCHMARKS.md). Not done
   inside libmp: a library does not set its caller's allocator.
   MP_HEAP_TUNE=0 leaves glibc's defaults (and GLIBC_TUNABLES) in force. */
static inline void mp_prog_tune_heap(void)
{
#if defined(__GLIBC__)
    const char *env = getenv("MP_HEAP_TUNE");
    if (env && strcmp(env, "0") == 0)
        return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

#endif
