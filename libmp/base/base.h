/*  base.h - the bottom layer of libmp: what every other layer may use.
    Not installed.

    Robust process-shared mutexes and condition variables (platform.c),
    monotonic deadlines, shared anonymous memory, and the per-thread id
    cache (state.c). It includes no other libmp header: nothing here knows
    about objects, processes or sockets.

    The base layer (libmp/base/): this header with platform.c and state.c,
    the error strings (error.c), the log line format (log.c, log.h) and
    SHA-256/HMAC (hmac.c). Every other layer may use it; it uses none.
*/
#ifndef MP_BASE_H_INCLUDED
#define MP_BASE_H_INCLUDED

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- deadlines (CLOCK_MONOTONIC) ---------------------------------------- */

/* Fills *ts with now + timeout_ms. Returns NULL for timeout_ms < 0 (forever),
   so the result can be passed straight to the waits below. */
struct timespec *mp__deadline(int timeout_ms, struct timespec *ts);
/* Milliseconds left until deadline (rounded up, >= 0); -1 when NULL. */
int mp__remaining_ms(const struct timespec *deadline);
uint64_t mp__now_ns(void);

/* ---- robust process-shared mutex and condition -------------------------- */

int mp__mutex_init(pthread_mutex_t *m);
/* 0, MP_EOWNERDEAD (the caller now holds it; state may need repair; the mutex
   has already been made consistent), or MP_ETIMEDOUT. */
int mp__mutex_lock(pthread_mutex_t *m, const struct timespec *deadline);
void mp__mutex_unlock(pthread_mutex_t *m);
/* A condition variable that survives the death of its waiters: a sequence
   number and a futex, no per-waiter state (glibc's process-shared
   pthread_cond_t does keep some: a waiter SIGKILLed inside wait makes the
   next pthread_cond_signal block forever). Zero-filled memory is a valid,
   initialised condition. */
typedef struct {
    uint32_t seq;     /* bumped by every signal/broadcast */
    uint32_t waiters; /* atomic; stale after a waiter died,
                         which only costs a spare wake-up */
} mp__cond_t;

/* Caller holds m. 0 (woken or spurious), MP_ETIMEDOUT or MP_EOWNERDEAD
   (mutex reacquired from a dead owner). m is held again on return. */
int mp__cond_wait(mp__cond_t *c, pthread_mutex_t *m, const struct timespec *deadline);
/* For state changed by processes that do not hold m: waits until
   ready(arg), evaluated with m held, is true. The caller registers as a
   waiter before its last check of ready(), and wakers change the state
   before they look for waiters (mp__cond_signal has a full fence), so no
   wake-up is lost between the two. 0, MP_ETIMEDOUT, MP_EOWNERDEAD (m was
   recovered from a dead owner: repair, then call again). */
int mp__cond_wait_until(mp__cond_t *c, pthread_mutex_t *m, const struct timespec *deadline,
                        bool (*ready)(void *arg), void *arg);
/* Need not hold the mutex when the waiters use mp__cond_wait_until. */
void mp__cond_signal(mp__cond_t *c);
/* Wakes up to n waiters. */
void mp__cond_wake(mp__cond_t *c, int n);
void mp__cond_broadcast(mp__cond_t *c);

/* ---- shared memory for fork-inherited objects ---------------------------- */

/* Zeroed MAP_SHARED|MAP_ANONYMOUS memory: visible to every process forked
   after the call. NULL when out of memory. */
void *mp__shared_alloc(size_t size);
/* mp__shared_alloc with MAP_NORESERVE: address space for what may be
   written, memory only for the pages that are. */
void *mp__shared_reserve(size_t size);
void mp__shared_free(void *p, size_t size);

/* ---- thread id (state.c) ------------------------------------------------ */

/* The calling thread's kernel id, cached per thread (reset in fork
   children by state.c's atfork handler). Inline: it is on the lock path. */
extern __thread int mp__tid_cache __attribute__((tls_model("initial-exec")));
int mp__tid_slow(void);
static inline int mp__tid(void)
{
    int tid = mp__tid_cache;
    return __builtin_expect(tid != 0, 1) ? tid : mp__tid_slow();
}

static inline void mp__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

#define MP__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
