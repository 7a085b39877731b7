/*  log.h - one line per event, with a time, a level and who speaks.
    Used by the broker and the worker (daemons). Not installed. */
#ifndef MP_LOG_H_INCLUDED
#define MP_LOG_H_INCLUDED

enum { MP_LOG_ERROR, MP_LOG_WARN, MP_LOG_INFO, MP_LOG_DEBUG };

/* Lines above the process's level (state.c; default INFO) are dropped. */
void mp__log(int level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mp__log_set_level(int level);
int mp__log_get_level(void);

#endif
