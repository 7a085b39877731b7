/*  results.c - result lists made by the client itself.

    Two things every path that ends items needs, whoever it is (the I/O
    thread's chunks, a map's placement, a blocking apply): a list of
    failures made here (an item that never got an answer gets one error,
    never nothing), and the errors frame of a RESULT (docs/PROTOCOL.md 3.1,
    `errors`) decoded into a list's error table. Nothing here locks or
    knows of pools, jobs or sockets; a malformed frame is MP_EBADMSG and
    commits nothing the caller cannot drop.
*/
#include <stdlib.h>
#include <string.h>

#include "codec/items_impl.h"
#include "codec/wire.h"
#include "mp/error.h"
#include "results.h"

mp_items_t *mp__pool_failed_items(const char *task, size_t count, size_t first_index, int code,
                                  const char *msg)
{
    mp_items_t *l = mp_items_new();
    if (!l)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        mp_task_error_t e = {.code = code,
                             .task_code = code,
                             .message = msg,
                             .task = task,
                             .host = "",
                             .index = first_index + i};
        if (mp_items_add_nil(l) || mp__items_add_error(l, &e)) {
            mp_items_destroy(&l);
            return NULL;
        }
    }
    return l;
}

int mp__pool_decode_errors(mp_items_t *items, const char *task, const void *data, size_t size,
                           size_t base)
{
    mp__rd_t r;
    size_t n;
    mp__rd_init(&r, data, size);
    if (mp__rd_array(&r, &n))
        return MP_EBADMSG;
    for (size_t k = 0; k < n; k++) {
        size_t fields, msglen, hostlen;
        uint64_t index, kind, pid;
        int64_t code;
        const char *msg, *host;
        if (mp__rd_array(&r, &fields) || fields < 6 || mp__rd_uint(&r, &index) ||
            mp__rd_int(&r, &code) || mp__rd_uint(&r, &kind) || mp__rd_str(&r, &msg, &msglen) ||
            mp__rd_str(&r, &host, &hostlen) || mp__rd_uint(&r, &pid))
            return MP_EBADMSG;
        for (size_t extra = 6; extra < fields; extra++)
            if (mp__rd_skip(&r))
                return MP_EBADMSG;
        char *m = strndup(msg, msglen), *h = strndup(host, hostlen);
        int mapped = mp__kind_code((unsigned)kind);
        mp_task_error_t e = {.code = mapped,
                             .task_code = kind == MPP_KIND_TASK ? (int)code : mapped,
                             .message = m ? m : "",
                             .task = task,
                             .host = h ? h : "",
                             .pid = (int)pid,
                             .index = base + (size_t)index};
        int rc = mp__items_add_error(items, &e);
        free(m);
        free(h);
        if (rc)
            return rc;
    }
    return 0;
}
