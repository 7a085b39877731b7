/* An outside project using an installed libmp: a child process moves a
   value through a Queue; exit 0 when it arrived. */
#include <mp.h>

static int child(void *arg)
{
    mp_obj_t *o = mp_obj_new_str("from the child");
    int rc = mp_queue_put(arg, o, -1);
    mp_obj_destroy(&o);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    mp_queue_t *q = mp_queue_new(NULL);
    mp_process_t *p = mp_process_new(child, q, NULL);
    mp_obj_t *got = NULL;
    int code = -1;
    if (mp_process_start(p) || mp_queue_get(q, &got, 5000) || mp_process_join(p, 5000) ||
        !mp_process_exitcode(p, &code) || code != 0)
        return 1;
    int ok = mp_obj_str(got, NULL) != NULL;
    mp_obj_destroy(&got);
    mp_process_destroy(&p);
    mp_queue_destroy(&q);
    return ok ? 0 : 2;
}
