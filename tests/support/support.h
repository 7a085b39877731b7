/*  support.h - what the libmp test programs share besides cmocka (the
    static library mp_test_support, tests/support/).

    Rules the helpers enforce: every process a test starts is reaped (no
    zombie, no stray child), and nothing is left in /dev/shm. Code running
    in a child process must not use cmocka asserts (they would unwind into
    the parent's copy of cmocka state): children report through exit codes.

    The library uses libmp's public API only and does not link libmp: each
    test program links the libmp it tests (libmp.so, or libmp.a for the
    internal tests) after it.
*/
#ifndef MP_TEST_SUPPORT_H_INCLUDED
#define MP_TEST_SUPPORT_H_INCLUDED

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mp.h"

/* ---- time, and waiting for something instead of sleeping ----------------------- */

uint64_t tu_now_ms(void);

/* Asserts that elapsed ms is within [want - 20, want + slack]. */
#define TU_ASSERT_ELAPSED(start_ms, want, slack)                                                   \
    do {                                                                                           \
        uint64_t el_ = tu_now_ms() - (start_ms);                                                   \
        assert_in_range(el_, (want) > 20 ? (want)-20 : 0, (want) + (slack));                       \
    } while (0)

/* Evaluates cond every millisecond until it holds or timeout_ms have
   passed: true when it held (a statement expression: gnu11). */
#define TU_WAIT_UNTIL(cond, timeout_ms)                                                            \
    ({                                                                                             \
        uint64_t tu_deadline_ = tu_now_ms() + (uint64_t)(timeout_ms);                              \
        bool tu_held_;                                                                             \
        while (!(tu_held_ = (cond)) && tu_now_ms() < tu_deadline_)                                 \
            usleep(1000);                                                                          \
        tu_held_;                                                                                  \
    })

/* ---- what a test must leave behind: nothing -------------------------------------- */

/* Number of /dev/shm entries whose name starts with prefix. */
int tu_shm_count(const char *prefix);

/* Fails the test when this process still has a child (zombie or alive). */
void tu_assert_no_children(void);

/* Shared by every group: each test must leave no child and no shm file of
   this process. */
int tu_teardown(void **state);

/* Where embedded pools put their ipc sockets: $XDG_RUNTIME_DIR when
   writable, else /tmp. */
const char *tu_ipc_dir(void);

/* Embedded-pool ipc files of process pid; the first one's path in path
   (when path is not NULL). */
int tu_ipc_files(pid_t pid, char *path, size_t size);
/* tu_teardown for embedded pools: no ipc file of this process left either. */
int tu_pool_teardown(void **state);

/* ---- mp_process children ---------------------------------------------------------- */

/* Creates and starts fn(arg) with opts (may be NULL). */
mp_process_t *tu_start(mp_target_fn *fn, void *arg, const mp_process_opts_t *opts);

/* Joins *p within timeout_ms (it must end), destroys it, returns its exit
   code. */
int tu_join(mp_process_t **p, int timeout_ms);

/* Starts fn(arg) with fork, joins it, returns its exit code. */
int tu_run(mp_target_fn *fn, void *arg);

/* Starts n daemon fork children running fn(arg) (daemon: a failed test
   cannot leave one behind that the exit handler would wait for). */
void tu_start_n(mp_process_t **ps, int n, mp_target_fn *fn, void *arg);

/* Joins the n processes within one shared timeout and destroys them (a
   process still running is killed and reaped). codes[i] is the exit code,
   -1000 when it did not end in time. Returns how many ended in time. */
int tu_join_n(mp_process_t **ps, int n, int timeout_ms, int *codes);

/* ---- plain children (fork, exec): killed and reaped by tu_kill_children ---------- */

/* fork(): the child (0 returned) is SIGKILLed when this process dies; the
   parent remembers its pid. */
pid_t tu_fork(void);

/* Runs argv[0] with argv in a tu_fork child, its stdout on out_fd (when
   out_fd >= 0). */
pid_t tu_spawn(char *const argv[], int out_fd);

/* Waits up to timeout_ms for pid to exit: its wait status, or -1. */
int tu_wait_exit(pid_t pid, int timeout_ms);

/* Waits for pid to exit: its wait status. */
int tu_reap(pid_t pid);

/* SIGKILLs and reaps every tu_fork child not yet waited for. */
void tu_kill_children(void);

/* tu_kill_children, then tu_teardown. */
int tu_kill_teardown(void **state);

/* ---- mp-broker and mp-worker as child processes ------------------------------------ */

/* Reads one line (up to '\n', a NUL byte or the end) from fd into buf,
   closes fd; returns its length. */
size_t tu_read_line(int fd, char *buf, size_t size);

/* VmRSS of pid (0: this process), in KiB; -1 when unreadable. */
long tu_rss_kib(pid_t pid);

/* A daemon's log at path: its lines, in *warns (may be NULL) those at
   WARN, and whether any line holds a raw control byte or starts a forged
   line ("FORGED", what the hostile tests plant in peer strings). */
size_t tu_log_scan(const char *path, size_t *warns, bool *raw_control);

/* A pool on the broker at endpoint (heartbeat_ms), once it counts
   processes executors. */
mp_pool_t *tu_cluster_pool(const char *endpoint, int heartbeat_ms, int processes);

/* A loopback port nobody listens on right now. */
int tu_free_port(void);

/* Starts mp-broker --bind bind --heartbeat heartbeat_ms -q and puts the
   first line it prints (its bound endpoint) into endpoint. */
pid_t tu_start_broker(const char *bind, const char *heartbeat_ms, char *endpoint, size_t size);
/* The same with more options (a NULL-terminated list, or NULL). */
pid_t tu_start_broker_with(const char *bind, const char *heartbeat_ms, const char *const *extra,
                           char *endpoint, size_t size);

/* Starts mp-worker --broker broker with the test tasks (libtest_tasks.so),
   processes executors and heartbeat_ms, quiet. */
pid_t tu_start_worker(const char *broker, const char *processes, const char *heartbeat_ms);

/* ---- pools and their items -------------------------------------------------------- */

/* An embedded pool of processes executors (extra: other options, may be
   NULL), heartbeat 500 ms: short, with room for a loaded (sanitizer) run. */
mp_pool_t *tu_new_pool(int processes, const mp_pool_options_t *extra);

/* Waits up to timeout_ms until pool counts n processes: the count then. */
int tu_wait_processes(mp_pool_t *pool, int n, int timeout_ms);

/* The ints 0 .. n-1, added one by one. */
mp_items_t *tu_range(int n);

/* The int value, n times. */
mp_items_t *tu_repeat(int n, int64_t value);

/* The tuples (i, second) for i in 0 .. n-1. */
mp_items_t *tu_pairs_with(int n, int64_t second);

/* Asserts that r holds the n squares 0, 1, 4, ... and no error. */
void tu_assert_squares(const mp_items_t *r, int n);

/* Maps "square" over 0 .. n-1 on pool and checks every result. */
void tu_assert_map_squares(mp_pool_t *pool, int n);

/* Asserts that item i of r is the int i, for i in 0 .. n-1 but skip. */
void tu_assert_indexes(const mp_items_t *r, int n, int skip);

/* ---- HTTP ------------------------------------------------------------------------- */

/* GET http://hostport/path (accept: an Accept header, or NULL), at most
   5 s. The status (0: no answer); *body (malloc'ed, NUL-terminated, the
   caller frees) and the Content-Type into ctype. */
int tu_http_get(const char *hostport, const char *path, const char *accept, char **body,
                char *ctype, size_t ctsize);
/* The value of the sample line `series value` in an OpenMetrics text (the
   series with its labels, exactly as written); NAN when absent. */
double tu_metric(const char *text, const char *series);

/* ---- ZeroMQ (the program links libzmq) -------------------------------------------- */

/* A DEALER socket of ctx, linger 0, connected to endpoint. */
void *tu_dealer(void *ctx, const char *endpoint);

/* Sends the n frames (data[i], size[i]) as one message. */
void tu_send_frames(void *sock, int n, const void *const *data, const size_t *size);

/* Receives one whole message; frame k (0-based) is copied to buf (at most
   size bytes, *len its whole size, 0 when there is no frame k). Its frame
   count, or -1 (nothing to receive: a timeout, a closed socket). */
int tu_recv_frames(void *sock, int k, void *buf, size_t size, size_t *len);

#endif
