/*  example_process.c - the seed repository's process example in C:
    Process + Queue + RLock + Manager.

    Four worker processes take numbers from a task Queue, compute the sum of
    the primes below each, print a line under a shared RLock so lines never
    interleave, put [worker, n, result] on a result Queue, and keep a tally
    in a Manager: a dict counting the tasks each worker did (an atomic
    increment) and a list of every n done. The main process feeds the
    tasks, one "stop" (nil) per worker, collects every result, joins the
    workers, checks each result against its own count and the Manager's
    tally against the number of tasks.

    Run: build/examples/example_process [tasks]
*/
#include <stdio.h>
#include <stdlib.h>

#include "mp.h"

#define WORKERS 4

struct shared {
    mp_queue_t *tasks;
    mp_queue_t *results;
    mp_lock_t *print_lock;  /* an RLock, as in the Python example */
    mp_mdict_t *per_worker; /* Manager().dict(): worker name -> tasks done */
    mp_mlist_t *done;       /* Manager().list(): every n done */
};

static long long sum_of_primes_below(long n)
{
    long long sum = 0;
    for (long k = 2; k < n; k++) {
        int prime = 1;
        for (long d = 2; d * d <= k && prime; d++)
            prime = k % d != 0;
        if (prime)
            sum += k;
    }
    return sum;
}

static int worker(void *arg)
{
    struct shared *s = arg;
    const char *me = mp_process_name(mp_current_process());
    for (;;) {
        mp_obj_t *task = NULL;
        if (mp_queue_get(s->tasks, &task, -1))
            return 1;
        if (mp_obj_type(task) == MP_OBJ_NIL) {
            mp_obj_destroy(&task);
            return 0;
        }
        long n = (long)mp_obj_int(task);
        mp_obj_destroy(&task);
        long long sum = sum_of_primes_below(n);

        mp_lock_acquire(s->print_lock, -1);
        printf("%-10s pid %-7d sum of primes below %6ld = %lld\n", me,
               mp_process_pid(mp_current_process()), n, sum);
        fflush(stdout);
        mp_lock_release(s->print_lock);

        mp_obj_t *name = mp_obj_new_str(me), *nobj = mp_obj_new_int(n);
        int tally = mp_mdict_incr(s->per_worker, name, 1, NULL) || mp_mlist_append(s->done, nobj);
        mp_obj_destroy(&name);
        mp_obj_destroy(&nobj);
        if (tally)
            return 3;

        mp_obj_t *r = mp_obj_new_array();
        mp_obj_array_add(r, mp_obj_new_str(me));
        mp_obj_array_add(r, mp_obj_new_int(n));
        mp_obj_array_add(r, mp_obj_new_int(sum));
        int rc = mp_queue_put(s->results, r, -1);
        mp_obj_destroy(&r);
        if (rc)
            return 2;
    }
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    int ntasks = argc > 1 ? atoi(argv[1]) : 16;
    mp_manager_t *manager = NULL;
    struct shared s = {mp_queue_new(NULL), mp_queue_new(NULL), mp_rlock_new(), NULL, NULL};
    if (!s.tasks || !s.results || !s.print_lock || mp_manager_new(NULL, &manager) ||
        mp_manager_dict(manager, &s.per_worker) || mp_manager_list(manager, &s.done))
        return 1;

    mp_process_t *workers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "worker-%d", i + 1);
        mp_process_opts_t opts = {.name = name};
        workers[i] = mp_process_new(worker, &s, &opts);
        if (!workers[i] || mp_process_start(workers[i]))
            return 1;
    }
    for (int i = 0; i < ntasks; i++) {
        mp_obj_t *n = mp_obj_new_int(10000 + 2500 * i);
        mp_queue_put(s.tasks, n, -1);
        mp_obj_destroy(&n);
    }
    mp_obj_t *stop = mp_obj_new_nil();
    for (int i = 0; i < WORKERS; i++)
        mp_queue_put(s.tasks, stop, -1);
    mp_obj_destroy(&stop);

    int bad = 0;
    for (int i = 0; i < ntasks; i++) {
        mp_obj_t *r = NULL;
        int rc = mp_queue_get(s.results, &r, 60000);
        if (rc) {
            fprintf(stderr, "result %d: %s\n", i, mp_strerror(rc));
            return 1;
        }
        long n = (long)mp_obj_int(mp_obj_array_at(r, 1));
        bad += mp_obj_int(mp_obj_array_at(r, 2)) != sum_of_primes_below(n);
        mp_obj_destroy(&r);
    }
    for (int i = 0; i < WORKERS; i++) {
        int code = -1;
        mp_process_join(workers[i], -1);
        mp_process_exitcode(workers[i], &code);
        bad += code != 0;
        mp_process_destroy(&workers[i]);
    }
    /* the Manager's tally: every task once */
    mp_obj_t *items = NULL;
    size_t ndone = 0;
    int64_t total = 0;
    if (mp_mdict_items(s.per_worker, &items) || mp_mlist_len(s.done, &ndone))
        return 1;
    printf("tasks per worker (Manager dict):");
    for (size_t i = 0; i < mp_obj_len(items); i++) {
        printf(" %s=%lld", mp_obj_str(mp_obj_map_key_at(items, i), NULL),
               (long long)mp_obj_int(mp_obj_map_value_at(items, i)));
        total += mp_obj_int(mp_obj_map_value_at(items, i));
    }
    printf("\n");
    mp_obj_destroy(&items);
    bad += total != ntasks || ndone != (size_t)ntasks;
    printf("%d tasks done by %d processes, %zu in the Manager list, %s\n", ntasks, WORKERS, ndone,
           bad ? "SOME RESULTS WRONG" : "all results checked");
    mp_manager_destroy(&manager);
    mp_queue_destroy(&s.tasks);
    mp_queue_destroy(&s.results);
    mp_lock_destroy(&s.print_lock);
    return bad ? 1 : 0;
}
