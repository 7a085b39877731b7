/*  example_manager.c - the seed repository's Manager example in C: a Pool
    whose tasks fill a Manager dict and list, and keep a Namespace.

    Python:
        def work(d, l, ns, i):
            d[i] = i * i; l.append(i); (with lock) ns.calls += 1
        with Manager() as m, Pool() as p:
            d, l, ns = m.dict(), m.list(), m.Namespace(); ns.calls = 0
            p.starmap(work, [(d, l, ns, i) for i in range(N)])

    In C the shared objects are made before the pool, so its worker
    processes (forked afterwards) share them; a task reaches them through
    these globals. `ns.calls += 1` needs no lock: mp_mdict_incr is atomic.

    Run: build/examples/example_manager [N]
*/
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mp.h"

static mp_mdict_t *squares; /* Manager().dict(): i -> i * i */
static mp_mlist_t *seen;    /* Manager().list(): every i */
static mp_mns_t *ns;        /* Manager().Namespace(): calls */

MP_TASK(work)
{
    int64_t i = mp_task_int(task, 0);
    mp_obj_t *k = mp_obj_new_int(i), *v = mp_obj_new_int(i * i), *calls = mp_obj_new_str("calls");
    int rc = mp_mdict_set(squares, k, v);
    if (!rc)
        rc = mp_mlist_append(seen, k);
    if (!rc)
        rc = mp_mdict_incr(ns, calls, 1, NULL); /* a Namespace is a dict */
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    mp_obj_destroy(&calls);
    if (rc)
        return mp_task_fail(task, rc, "manager: %s", mp_strerror(rc));
    return mp_task_return_int(task, (int64_t)getpid());
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    mp_manager_t *manager = NULL;
    if (mp_manager_new(NULL, &manager) || mp_manager_dict(manager, &squares) ||
        mp_manager_list(manager, &seen) || mp_manager_namespace(manager, &ns))
        return 1;
    mp_obj_t *zero = mp_obj_new_int(0);
    mp_mns_set(ns, "calls", zero);
    mp_obj_destroy(&zero);

    mp_pool_t *pool = NULL; /* after the manager: its processes share it */
    int rc = mp_pool_new(NULL, &pool);
    if (rc) {
        fprintf(stderr, "pool: %s\n", mp_strerror(rc));
        return 1;
    }
    mp_items_t *in = mp_items_new(), *out = NULL;
    for (int i = 0; i < n; i++)
        mp_items_add_int(in, i);
    rc = mp_pool_map(pool, "work", in, 0, &out);
    if (rc) {
        fprintf(stderr, "map: %s\n", mp_strerror(rc));
        return 1;
    }
    size_t npids = 0; /* how many processes did the work */
    int64_t pids[64];
    for (size_t i = 0; i < mp_items_len(out); i++) {
        int64_t pid = 0;
        mp_items_int(out, i, &pid);
        size_t k = 0;
        while (k < npids && pids[k] != pid)
            k++;
        if (k == npids && npids < 64)
            pids[npids++] = pid;
    }
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);

    size_t dlen = 0, llen = 0;
    mp_obj_t *calls = NULL, *items = NULL;
    mp_mdict_len(squares, &dlen);
    mp_mlist_len(seen, &llen);
    mp_mns_get(ns, "calls", &calls);
    mp_mdict_items(squares, &items);
    int bad = dlen != (size_t)n || llen != (size_t)n || mp_obj_int(calls) != n;
    for (size_t i = 0; i < mp_obj_len(items); i++) {
        int64_t k = mp_obj_int(mp_obj_map_key_at(items, i));
        bad += mp_obj_int(mp_obj_map_value_at(items, i)) != k * k;
    }
    mp_obj_t *seven = mp_obj_new_int(7), *none = mp_obj_new_nil(), *d7 = NULL;
    mp_mdict_get(squares, seven, none, &d7);
    printf("dict: %zu squares (d[7] = %lld), list: %zu items, ns.calls = %lld, by %zu processes\n",
           dlen, (long long)mp_obj_int(d7), llen, (long long)mp_obj_int(calls), npids);
    mp_obj_destroy(&seven);
    mp_obj_destroy(&none);
    mp_obj_destroy(&d7);
    printf("%s\n", bad ? "WRONG" : "all checked");
    mp_obj_destroy(&calls);
    mp_obj_destroy(&items);
    mp_manager_destroy(&manager);
    return bad ? 1 : 0;
}
