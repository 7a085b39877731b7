/*  io.h - the pool's I/O thread (io.c). */
#ifndef MP_CLIENT_IO_H_INCLUDED
#define MP_CLIENT_IO_H_INCLUDED

/* The thread's function; arg is the pool (pool.c starts it once the
   context, and the broker of an embedded pool, exist). */
void *mp__pool_io_thread(void *arg);

#endif
