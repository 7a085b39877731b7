/*  process_impl.h - the layout of mp_process_t, shared by process.c (child
    handles), spawn.c (bootstrap) and self.c (the current and parent
    process objects, the children list). Not installed. */
#ifndef MP_PROCESS_IMPL_H_INCLUDED
#define MP_PROCESS_IMPL_H_INCLUDED

#include "mp/process.h"

#define MP__NAME_MAX 64
#define MP__IDENT_MAX 48

typedef enum { PROC_CHILD, PROC_SELF, PROC_PARENT } proc_kind_t;
typedef enum { PROC_NEW, PROC_STARTED, PROC_DONE, PROC_CLOSED } proc_state_t;

struct mp_process {
    proc_kind_t kind;
    proc_state_t state;
    char name[MP__NAME_MAX];
    char ident[MP__IDENT_MAX]; /* identity path: "" main, "1", "1:3" ... */
    bool daemon;
    mp_start_method_t method;
    mp_target_fn *fn;
    void *arg;
    mp_obj_t *args; /* owned copy of opts.args */
    int pid;
    int pidfd; /* the sentinel */
    int exitcode;
    mp_process_t *next; /* children list, guarded by self.c's mutex */
};

/* self.c */
void mp__state_lock(void);
void mp__state_unlock(void);
mp_process_t *mp__children_head(void); /* call with the state lock held */
/* Identity for a new child of this process: its "Process-N" ident path. */
void mp__next_child_ident(char *ident, size_t size);
/* In a new child (fork, or spawn bootstrap): become `self`. */
void mp__become_child(const mp_process_t *self, int parent_pid, const char *parent_name);
const char *mp__executable(void);
mp_target_fn *mp__target_lookup(const char *name);
const char *mp__target_name(mp_target_fn *fn);
/* True for the first caller only: it installs the at-exit handler
   (daemon termination, child joins). */
bool mp__claim_atexit(void);
/* The children list; mp__children_remove: caller holds the state lock. */
void mp__children_add(mp_process_t *p);
void mp__children_remove(mp_process_t *p);

/* spawn.c */
/* In a program started by the spawn method (its payload in the
   environment): becomes that child, runs its target, stores what it
   returned in *code_p and returns true; the caller ends the child with
   mp__child_exit. False at once in any other program. */
bool mp__spawn_child(int *code_p);

/* process.c */
/* The cleanup a libmp child runs before _exit: terminate daemonic children,
   join the others (as Python's multiprocessing does at exit). */
void mp__exit_children(void);
/* Reaps p if it has ended (non-blocking). Caller holds the state lock. */
void mp__reap_locked(mp_process_t *p);
/* A libmp child's way out: clean up its own children, flush, _exit(rc). */
_Noreturn void mp__child_exit(int rc);

/* spawn.c */
int mp__spawn_start(mp_process_t *p);

#endif
