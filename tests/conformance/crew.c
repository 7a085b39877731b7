/*  crew.c - a crew of processes and threads running one function: the
    helper of the synchronization conformance tests (crew.h).
*/
#define _GNU_SOURCE /* pthread_timedjoin_np */

#include "crew.h"

static void *thread_main(void *arg)
{
    thread_arg_t *t = arg;
    return (void *)(intptr_t)t->fn(t->arg);
}

void crew_add(crew_t *c, enum form form, mp_target_fn *fn, void *arg)
{
    if (form == PROCESSES) {
        assert_true(c->np < CREW_MAX);
        tu_start_n(&c->ps[c->np++], 1, fn, arg);
    } else {
        assert_true(c->nt < CREW_MAX);
        c->targs[c->nt] = (thread_arg_t){fn, arg};
        assert_int_equal(pthread_create(&c->ts[c->nt], NULL, thread_main, &c->targs[c->nt]), 0);
        c->nt++;
    }
}

void crew_join(crew_t *c, int timeout_ms)
{
    int codes[CREW_MAX * 2];
    int n = 0;
    if (c->np)
        tu_join_n(c->ps, c->np, timeout_ms, codes);
    n = c->np;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000 + 1;
    for (int i = 0; i < c->nt; i++) {
        void *ret = (void *)(intptr_t)-1000;
        if (pthread_timedjoin_np(c->ts[i], &ret, &deadline) != 0)
            pthread_detach(c->ts[i]);
        codes[n++] = (int)(intptr_t)ret;
    }
    c->np = c->nt = 0;
    for (int i = 0; i < n; i++)
        assert_int_equal(codes[i], 0);
}