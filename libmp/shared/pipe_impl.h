/*  pipe_impl.h - what mp_wait (process/wait.c) needs to know of a
    connection beyond its public API. Not installed. */
#ifndef MP_PIPE_IMPL_H_INCLUDED
#define MP_PIPE_IMPL_H_INCLUDED

#include <stdbool.h>

struct mp_conn;
/* True when the connection's read buffer holds unread bytes (pipe.c). */
bool mp__conn_has_buffered(const struct mp_conn *c);

#endif
