/*  platform.c - the POSIX plumbing every primitive stands on.

    All blocking waits use absolute CLOCK_MONOTONIC deadlines, so a retried
    wait (spurious wake-up, EINTR) never extends the caller's timeout and a
    wall-clock jump never shortens or stretches it.

    Every mutex is process-shared and robust: when a holder dies, the kernel
    hands the mutex to the next waiter with EOWNERDEAD. We mark it consistent
    at once and report MP_EOWNERDEAD, leaving it to the caller to repair the
    state it protects (queue.c re-walks its ring) or to tell the user (lock.c).
    Conditions are our own futex sequence counters, not pthread_cond_t:
    glibc's process-shared condvar keeps per-waiter group counts in shared
    memory, and a waiter SIGKILLed inside pthread_cond_wait leaves them
    behind, so the next pthread_cond_signal blocks forever (found by
    test_queue's SIGKILL test). A counter and FUTEX_WAIT/FUTEX_WAKE keep no
    per-waiter state at all.
    Rejected: SysV or POSIX semaphores (no owner, so a dead holder deadlocks
    everyone, which is cpython gh-88304).
*/
#include <errno.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/base.h"
#include "mp/error.h"

uint64_t mp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct timespec *mp__deadline(int timeout_ms, struct timespec *ts)
{
    if (timeout_ms < 0)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
    return ts;
}

int mp__remaining_ms(const struct timespec *deadline)
{
    if (!deadline)
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns =
        (int64_t)(deadline->tv_sec - now.tv_sec) * 1000000000 + (deadline->tv_nsec - now.tv_nsec);
    if (ns <= 0)
        return 0;
    int64_t ms = (ns + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

int mp__mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (!rc)
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (!rc)
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (!rc)
        rc = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return -rc;
}

static int after_lock(pthread_mutex_t *m, int rc)
{
    if (rc == 0)
        return 0;
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        return MP_EOWNERDEAD;
    }
    return -rc;
}

int mp__mutex_lock(pthread_mutex_t *m, const struct timespec *deadline)
{
    int rc =
        deadline ? pthread_mutex_clocklock(m, CLOCK_MONOTONIC, deadline) : pthread_mutex_lock(m);
    return after_lock(m, rc);
}

void mp__mutex_unlock(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
}

static int futex_wait(uint32_t *word, uint32_t seq, const struct timespec *deadline)
{
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so
       retries never stretch the caller's timeout */
    long r =
        syscall(SYS_futex, word, FUTEX_WAIT_BITSET, seq, deadline, NULL, FUTEX_BITSET_MATCH_ANY);
    return r < 0 && errno == ETIMEDOUT ? MP_ETIMEDOUT : 0;
}

int mp__cond_wait(mp__cond_t *c, pthread_mutex_t *m, const struct timespec *deadline)
{
    uint32_t seq = __atomic_load_n(&c->seq, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&c->waiters, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(m);
    /* a signal between the unlock and the wait changed seq: the kernel sees
       it and returns at once, so no wake-up is lost */
    int timed_out = futex_wait(&c->seq, seq, deadline);
    int rc = mp__mutex_lock(m, NULL);
    __atomic_fetch_sub(&c->waiters, 1, __ATOMIC_SEQ_CST);
    return rc ? rc : timed_out;
}

int mp__cond_wait_until(mp__cond_t *c, pthread_mutex_t *m, const struct timespec *deadline,
                        bool (*ready)(void *arg), void *arg)
{
    for (;;) {
        if (ready(arg))
            return 0;
        __atomic_fetch_add(&c->waiters, 1, __ATOMIC_SEQ_CST);
        /* pairs with the waker's fence: either it sees us registered, or
           our check below sees its state change (store-buffering) */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint32_t seq = __atomic_load_n(&c->seq, __ATOMIC_SEQ_CST);
        int timed_out = 0, rc = 0;
        if (!ready(arg)) {
            pthread_mutex_unlock(m);
            timed_out = futex_wait(&c->seq, seq, deadline);
            rc = mp__mutex_lock(m, NULL);
        }
        __atomic_fetch_sub(&c->waiters, 1, __ATOMIC_SEQ_CST);
        if (rc)
            return rc;
        if (timed_out)
            return ready(arg) ? 0 : MP_ETIMEDOUT;
    }
}

void mp__cond_wake(mp__cond_t *c, int n)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->waiters, __ATOMIC_RELAXED) == 0 || n <= 0)
        return;
    __atomic_fetch_add(&c->seq, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &c->seq, FUTEX_WAKE, n, NULL, NULL, 0);
}

void mp__cond_signal(mp__cond_t *c)
{
    mp__cond_wake(c, 1);
}

void mp__cond_broadcast(mp__cond_t *c)
{
    mp__cond_wake(c, INT32_MAX);
}

void *mp__shared_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *mp__shared_reserve(size_t size)
{
    void *p =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void mp__shared_free(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}
