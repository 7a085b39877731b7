/*  progopt.h - what the thin programs (mp-broker, mp-worker, mp-client)
    share to read numeric options. Header-only, not installed: the programs
    link only libmp's public API. */
#ifndef MP_PROGOPT_H_INCLUDED
#define MP_PROGOPT_H_INCLUDED

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
