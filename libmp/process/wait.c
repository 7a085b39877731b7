/*  wait.c - mp_wait: one poll() over sentinels, connections and fds.

    A connection may already hold a whole message in its read buffer while
    its socket has nothing more to read; such a connection is ready without
    asking the kernel, so poll() then only checks the others (timeout 0).
*/
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "base/base.h"
#include "shared/pipe_impl.h"
#include "mp/error.h"
#include "mp/wait.h"

static int item_fd(const mp_waitable_t *item)
{
    switch (item->kind) {
    case MP_WAIT_FD:
        return item->u.fd;
    case MP_WAIT_PROCESS:
        return mp_process_sentinel(item->u.process);
    case MP_WAIT_CONN:
        return mp_conn_fileno(item->u.conn);
    }
    return -1;
}

int mp_wait(mp_waitable_t *items, size_t n, int timeout_ms)
{
    if (!items && n)
        return MP_EINVAL;
    struct pollfd small[16];
    struct pollfd *pfd = n <= MP__ARRAY_SIZE(small) ? small : malloc(n * sizeof *pfd);
    if (!pfd)
        return MP_ENOMEM;
    int ready = 0, rc = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].ready = items[i].kind == MP_WAIT_CONN && mp__conn_has_buffered(items[i].u.conn);
        ready += items[i].ready;
        pfd[i].fd = item_fd(&items[i]);
        pfd[i].events = POLLIN;
        pfd[i].revents = 0;
        if (pfd[i].fd < 0)
            rc = MP_EINVAL;
    }
    if (!rc) {
        struct timespec ts;
        const struct timespec *deadline = mp__deadline(ready ? 0 : timeout_ms, &ts);
        int got;
        while ((got = poll(pfd, n, mp__remaining_ms(deadline))) < 0 && errno == EINTR)
            ;
        if (got < 0)
            rc = -errno;
        for (size_t i = 0; !rc && i < n; i++)
            if (pfd[i].revents && !items[i].ready) {
                items[i].ready = true;
                ready++;
            }
    }
    if (pfd != small)
        free(pfd);
    return rc ? rc : ready;
}
