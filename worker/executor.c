/*  executor.c - the zygote and the executors it forks.

    The zygote is forked by the supervisor before the supervisor has any
    ZeroMQ context or thread, and stays single-threaded: it is the only safe
    place to fork executors from later (a dead executor is replaced, an
    executor is recycled after maxtasksperchild). It owns the executors as
    their parent: it reaps them and reports each wait status.

        supervisor --seqpacket ctl--> zygote --fork--> executor
             ^                          |  SCM_RIGHTS   |
             +------ executor socket ---+---------------+

    An executor reads one request at a time from its socket, runs the chunk
    (task.c), writes the reply, and before each item stores the item's index
    in its shared progress slot, which is how the supervisor can tell which
    item was running when the executor died.

    Request:  u32 len | u32 hlen header | u32 ilen items | u32 nlen init
    Reply:    u32 len | u64 dispatch | u32 count | u32 nerrors |
              u32 vlen values | u32 elen errors [| u32 slot | u32 vsize | u64 at]

    The last part is there when the values went to the executor's output
    ring (a TASK whose items are in the pool's input ring, poolshm.h):
    vlen is 0 then and the pool reads them where `at` says.
*/
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "mp/error.h"
#include "pool/poolshm.h"
#include "pool/task_impl.h"
#include "codec/wire.h"
#include "worker_impl.h"

int mp__write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int mp__read_all(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r == 0)
            return got == 0 ? MP_EEOF : MP_EBADMSG;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    return 0;
}

void mp__describe_status(int status, char *out, size_t size)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(out, size, "killed by signal %d (SIG%s)%s", sig, abbrev ? abbrev : "?",
                 WCOREDUMP(status) ? ", core dumped" : "");
    } else if (WIFEXITED(status)) {
        snprintf(out, size, "exit status %d", WEXITSTATUS(status));
    } else {
        snprintf(out, size, "wait status 0x%x", status);
    }
}

/* ---- the executor -------------------------------------------------------- */

static uint32_t rd32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Splits a request into its three parts; false when malformed. */
static bool parse_request(const char *p, size_t n, const char *part[3], size_t size[3])
{
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        if (n - at < 4)
            return false;
        size[i] = rd32(p + at);
        at += 4;
        if (n - at < size[i])
            return false;
        part[i] = p + at;
        at += size[i];
    }
    return at == n;
}

/* A TASK's shm item [pos len]: where its items are in the pool's input
   ring. false when absent; a malformed or out-of-range one reads as no
   items (every item then fails as malformed, nothing is read). */
static bool shm_input(mp__rd_t *r, size_t n, mp__pshm_t *shm, const char **items, size_t *size)
{
    size_t k;
    uint64_t pos, len;
    if (n < 6 || !shm || mp__rd_peek(r) == MP_OBJ_NIL) /* nil: none, a time limit follows */
        return false;
    *items = "";
    *size = 0;
    if (mp__rd_array(r, &k) || k < 2 || mp__rd_uint(r, &pos) || mp__rd_uint(r, &len))
        return true;
    const char *p = mp__pshm_in_read(shm, pos, len);
    if (p) {
        *items = p;
        *size = (size_t)len;
    }
    return true;
}

/* The reply's values and errors after the supervisor sent the first `sent`
   items ahead (W-PARTIAL), up to the `count` items run (fewer than the
   dispatch's when it handed the rest back): inline
   (docs/PARTIAL-RESULTS.md). */
static void strip_sent(const mp__progress_t *pg, uint64_t sent, const mp__buf_t *vals,
                       const mp__buf_t *errors, size_t count, mp__buf_t *vout, mp__buf_t *eout,
                       uint32_t *nerr)
{
    if (mp__partial_slice(vals->data, (size_t)pg->vstart, vals->size, errors->data, errors->size,
                          sent, count, vout, eout, nerr))
        _exit(3); /* our own reply does not parse: reported as lost, run again */
}

/* Writes the reply to dispatch (count items) that c ran: its values stay in
   the output ring when out is not NULL and they are still there; what the
   supervisor sent ahead is left out. Releases c's buffers. 0 or -errno. */
static int write_reply(int fd, mp__progress_t *pg, uint64_t dispatch, size_t count,
                       const mp__chunk_t *c, const mp__pshm_out_t *out, mp__pshm_t *shm, int slot)
{
    mp__buf_t *vals = c->values;
    /* what the supervisor sent ahead is left out; it sends no more */
    uint64_t sent = __atomic_exchange_n(&pg->sent, MP__SENT_CLOSED, __ATOMIC_ACQ_REL);
    mp__buf_t rest_v, rest_e;
    mp__buf_init(&rest_v, NULL, 0);
    mp__buf_init(&rest_e, NULL, 0);
    uint32_t cnt = (uint32_t)c->count, nerr = (uint32_t)c->nerrors;
    if (sent > c->count)
        _exit(3);                       /* cannot be: reported as lost, run again */
    if (sent > 0 || c->count < count) { /* some sent ahead, or the rest handed back */
        strip_sent(pg, sent, vals, c->errors, c->count, &rest_v, &rest_e, &nerr);
        cnt = (uint32_t)(c->count - sent);
    }
    bool stripped = rest_v.size > 0;
    /* still in the ring (a reply that outgrew it moved to the heap) */
    bool in_ring = out && vals->data == out->base && !stripped;
    char ah[8]; /* a raw reply sent inline needs its array header */
    mp__buf_t arr;
    mp__buf_init(&arr, ah, sizeof ah);
    if (c->raw && !in_ring && !stripped)
        mp__w_array(&arr, c->count);
    struct {
        uint32_t slot, vsize;
        uint64_t at;
    } desc = {(uint32_t)slot, (uint32_t)vals->size, out ? out->at : 0};
    if (in_ring)
        mp__pshm_out_commit(shm, out, (size_t)mp__pshm_reply_len(vals->size));
    const mp__buf_t *v = stripped ? &rest_v : vals, *e = stripped ? &rest_e : c->errors;
    uint32_t head[4];
    uint64_t id = dispatch;
    uint32_t vlen = in_ring ? 0 : (uint32_t)(arr.size + v->size);
    uint32_t elen = nerr ? (uint32_t)e->size : 0, dlen = in_ring ? (uint32_t)sizeof desc : 0;
    head[0] = 8 + 4 + 4 + 4 + vlen + 4 + elen + dlen;
    struct iovec iov[] = {{head, 4},
                          {&id, 8},
                          {&cnt, 4},
                          {&nerr, 4},
                          {&vlen, 4},
                          {arr.data, in_ring ? 0 : arr.size},
                          {v->data, in_ring ? 0 : v->size},
                          {&elen, 4},
                          {e->data, elen},
                          {&desc, dlen}};
    int wrc = mp__write_all(fd, iov, (int)MP__ARRAY_SIZE(iov));
    mp__buf_release(&rest_v);
    mp__buf_release(&rest_e);
    mp__buf_release(vals); /* frees only what outgrew the area or ring */
    mp__buf_release(c->errors);
    return wrc;
}

static void executor_main(int fd, mp__progress_t *pg, char *area, int maxtasks, const char *host,
                          mp__pshm_t *shm, int slot)
{
    char *req = NULL;
    size_t reqcap = 0;
    mp__buf_t values, errors;
    int pid = (int)getpid();
    size_t per_item = 16; /* bytes per value of the last reply: what to map ahead */
    for (int done = 0; maxtasks <= 0 || done < maxtasks; done++) {
        uint32_t len;
        if (mp__read_all(fd, &len, 4))
            break; /* the supervisor is gone (or closed us): leave */
        if (len > reqcap) {
            char *grown = realloc(req, len);
            if (!grown)
                _exit(3);
            req = grown;
            reqcap = len;
        }
        if (mp__read_all(fd, req, len))
            break;
        const char *part[3];
        size_t size[3];
        if (!parse_request(req, len, part, size))
            _exit(4); /* the supervisor wrote garbage: a bug, not a peer */
        /* header: [dispatch-id task-name mode count attempt] (validated by
           the supervisor before it forwarded it) */
        mp__rd_t r;
        size_t n, namelen;
        uint64_t dispatch = 0, mode = 0, count = 0, attempt = 1;
        const char *name = "";
        mp__rd_init(&r, part[0], size[0]);
        if (mp__rd_array(&r, &n) || n < 5 || mp__rd_uint(&r, &dispatch) ||
            mp__rd_str(&r, &name, &namelen) || namelen > MPP_MAX_NAME || mp__rd_uint(&r, &mode) ||
            mp__rd_uint(&r, &count) || mp__rd_uint(&r, &attempt))
            _exit(4);
        char tname[MPP_MAX_NAME + 1];
        memcpy(tname, name, namelen);
        tname[namelen] = '\0';
        /* built where the supervisor can read them (partial results) */
        mp__buf_init(&values, area, MP__RESULT_VALUES);
        mp__buf_init(&errors, area + MP__RESULT_VALUES, MP__RESULT_ERRORS);
        __atomic_store_n(&pg->sent, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&pg->dispatch, dispatch, __ATOMIC_RELEASE);
        const char *items = part[1];
        size_t items_size = size[1];
        bool raw = shm_input(&r, n, shm, &items, &items_size);
        /* a raw chunk's reply goes to this slot's output ring when it fits */
        mp__pshm_out_t out;
        bool ring = raw && mp__pshm_out_reserve(shm, slot, 4096 + (size_t)count * 2, &out);
        mp__buf_t ringvals;
        if (ring) {
            mp__buf_init(&ringvals, out.base, out.room);
            /* about as many bytes per item as the last reply had */
            mp__pshm_out_expect(shm, &out, (size_t)count * per_item + 4096);
        }
        mp__chunk_t c = {.name = tname,
                         .mode = (int)mode,
                         .attempt = (unsigned)attempt,
                         .items = items,
                         .items_size = items_size,
                         .raw = raw,
                         .raw_count = (size_t)count,
                         .init = size[2] ? part[2] : NULL,
                         .init_size = size[2],
                         .host = host,
                         .pid = pid,
                         .progress = pg,
                         .values = ring ? &ringvals : &values,
                         .errors = &errors};
        if (mp__task_run_chunk(&c))
            _exit(3); /* out of memory: the supervisor reports it as lost */
        if (c.count)
            per_item = c.values->size / c.count + 1;
        int wrc = write_reply(fd, pg, dispatch, (size_t)count, &c, ring ? &out : NULL, shm, slot);
        if (wrc)
            break;
    }
    _exit(0); /* maxtasksperchild reached, or EOF: a clean exit */
}

/* ---- the zygote ------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int slot;
} child_t;

static int send_event(int ctl, const mp__zygote_event_t *ev)
{
    struct iovec iov = {(void *)ev, sizeof *ev};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (ev->type == ZYGOTE_SPAWNED) {
        memset(cbuf, 0, sizeof cbuf);
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof cbuf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &ev->fd, sizeof(int));
    }
    while (sendmsg(ctl, &mh, MSG_NOSIGNAL) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

static void zygote_main(int ctl, mp__progress_t *progress, char *results, int maxtasks,
                        const char *host, mp__pshm_t *shm)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    child_t children[1024];
    int nchildren = 0;
    struct pollfd pf[2] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}};
    for (;;) {
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) < 0 && errno == EINTR) {
            }
        }
        /* reap on every wake-up: SIGCHLDs coalesce */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < nchildren; i++)
                if (children[i].pid == pid) {
                    mp__zygote_event_t ev = {ZYGOTE_EXITED, children[i].slot, pid, status, -1};
                    send_event(ctl, &ev);
                    children[i] = children[--nchildren];
                    break;
                }
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            int slot;
            ssize_t r = recv(ctl, &slot, sizeof slot, 0);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
                break; /* the supervisor is gone */
            if (r != sizeof slot)
                continue;
            int sv[2];
            mp__zygote_event_t ev = {ZYGOTE_FAILED, slot, 0, 0, -1};
            if (nchildren == (int)MP__ARRAY_SIZE(children) ||
                socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                ev.status = nchildren == (int)MP__ARRAY_SIZE(children) ? MP_E2BIG : -errno;
                send_event(ctl, &ev);
                continue;
            }
            pid = fork();
            if (pid == 0) {
                close(sv[0]);
                close(ctl);
                close(sfd);
                /* a crash is a crash: not the host program's handler (a
                   test framework's, say) running in the executor */
                static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGCHLD};
                for (size_t k = 0; k < MP__ARRAY_SIZE(fatal); k++)
                    signal(fatal[k], SIG_DFL);
                /* a stop signal sent to the whole group (Ctrl-C, systemd,
                   timeout) is the supervisor's to handle: it hands the work
                   back and stops the executors itself (SIGKILL) */
                signal(SIGINT, SIG_IGN);
                signal(SIGTERM, SIG_IGN);
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() == 1)
                    _exit(1);
                mp__task_reset_inits();
                executor_main(sv[1], &progress[slot], results + (size_t)slot * MP__RESULT_AREA,
                              maxtasks, host, shm, slot);
            }
            close(sv[1]);
            if (pid < 0) {
                ev.status = -errno;
                close(sv[0]);
                send_event(ctl, &ev);
                continue;
            }
            children[nchildren++] = (child_t){pid, slot};
            ev.type = ZYGOTE_SPAWNED;
            ev.pid = pid;
            ev.fd = sv[0];
            send_event(ctl, &ev);
            close(sv[0]);
        }
    }
    for (int i = 0; i < nchildren; i++)
        kill(children[i].pid, SIGKILL);
    for (int i = 0; i < nchildren; i++)
        waitpid(children[i].pid, NULL, 0);
    _exit(0);
}

int mp__zygote_start(mp__zygote_t *z, mp__progress_t *progress, char *results, int maxtasks,
                     const char *host, mp__pshm_t *shm, int close_fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        return -err;
    }
    if (pid == 0) {
        close(sv[0]);
        if (close_fd >= 0)
            close(close_fd);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        zygote_main(sv[1], progress, results, maxtasks, host, shm);
    }
    close(sv[1]);
    z->ctl = sv[0];
    z->pid = pid;
    return 0;
}

int mp__zygote_spawn(mp__zygote_t *z, int slot)
{
    while (send(z->ctl, &slot, sizeof slot, MSG_NOSIGNAL) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

int mp__zygote_read(mp__zygote_t *z, mp__zygote_event_t *ev)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {ev, sizeof *ev};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t r = recvmsg(z->ctl, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0)
        return errno == EAGAIN || errno == EINTR ? MP_EAGAIN : -errno;
    if (r == 0)
        return MP_EEOF;
    if (r != sizeof *ev)
        return MP_EBADMSG;
    ev->fd = -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
            memcpy(&ev->fd, CMSG_DATA(cm), sizeof(int));
    return 0;
}

void mp__zygote_stop(mp__zygote_t *z)
{
    if (z->ctl >= 0)
        close(z->ctl);
    z->ctl = -1;
    if (z->pid > 0)
        while (waitpid(z->pid, NULL, 0) < 0 && errno == EINTR) {
        }
    z->pid = 0;
}
