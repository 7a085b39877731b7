/*  log.c - "2026-11-23T10:00:00.123Z INFO mp-broker: worker ... ready".

    One write(2) per line so lines from several processes sharing stderr do
    not interleave. The level lives in state.c with the other process-wide
    state.
*/
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

/* The message as it may reach a terminal or a log file: a peer's string
   (a host name, a task name, a reason) must not forge a line or move the
   cursor. Control characters (C0, DEL, and C1 as UTF-8 encodes them) are
   shown as \xNN; the line stays within out (size bytes, NUL included). */
static size_t escape(const char *in, size_t n, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < size; i++) {
        unsigned char c = (unsigned char)in[i];
        bool c1 = c == 0xc2 && i + 1 < n && (unsigned char)in[i + 1] >= 0x80 &&
                  (unsigned char)in[i + 1] <= 0x9f;
        if (c >= 0x20 && c != 0x7f && !c1) {
            out[o++] = (char)c;
            continue;
        }
        if (c1)
            c = (unsigned char)in[++i];
        if (o + 5 > size)
            break;
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 15];
    }
    out[o] = '\0';
    return o;
}

void mp__log(int level, const char *who, const char *fmt, ...)
{
    if (level > mp__log_get_level())
        return;
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(
        line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s[%d]: ", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
        names[level < 0   ? 0
              : level > 3 ? 3
                          : level],
        who, (int)getpid());
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0 || m < 0 || (size_t)n >= sizeof line)
        return;
    n += (int)escape(msg, (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1, line + n,
                     sizeof line - (size_t)n);
    if ((size_t)n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

bool mp__ratelimit(mp__ratelimit_t *rl, const char *who, const char *what)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    if (now - rl->start_ns > 10 * 1000000000ull) {
        if (rl->suppressed)
            mp__log(MP_LOG_WARN, who, "... %llu more %s in the last %llu s",
                    (unsigned long long)rl->suppressed, what,
                    (unsigned long long)((now - rl->start_ns) / 1000000000ull));
        rl->start_ns = now;
        rl->count = 0;
        rl->suppressed = 0;
    }
    if (rl->count < 20) {
        rl->count++;
        return true;
    }
    rl->suppressed++;
    return false;
}
