/*  fuzz_wire.c - the decoders that read peer bytes on the task path:
    the wire cursor (skip/obj), a result frame into an mp_items_t, an errors
    frame, and the executor's chunk runner (the items frame a client sent,
    forwarded by the broker, run through a task in map and star mode), and
    the MPP/1 stream framing of an embedded pool's socket pair (mpps.h):
    every message taken is put again and must come back frame for frame.
    Any input must be rejected or handled without a crash, a leak or a read
    out of bounds (run under ASan in CI). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/items_impl.h"
#include "codec/mpps.h"
#include "mp.h"
#include "pool/task_impl.h"
#include "codec/wire.h"

int mp__pool_decode_errors(mp_items_t *items, const char *task, const void *data, size_t size,
                           size_t base);

MP_TASK(fuzz_sum)
{
    uint64_t s = 0; /* wraps: the sum only has to exercise the readers */
    for (size_t i = 0; i < mp_task_argc(task); i++) {
        switch (mp_task_type(task, i)) {
        case MP_OBJ_INT:
            s += (uint64_t)mp_task_int(task, i);
            break;
        case MP_OBJ_STR:
            s += strlen(mp_task_str(task, i, NULL));
            break;
        case MP_OBJ_ARRAY: {
            const double *v;
            s += (uint64_t)mp_task_floats(task, i, &v);
            break;
        }
        default:
            s += mp_task_arg(task, i) != NULL;
        }
    }
    return mp_task_return_int(task, (int64_t)s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes as a stream of framed messages (codec/mpps.h). */
static void stream_messages(const uint8_t *data, size_t size)
{
    mpps_buf_t in = {.buf = malloc(size + 1), .len = size, .cap = size + 1};
    if (!in.buf)
        return;
    memcpy(in.buf, data, size);
    mpp_msg_t m;
    while (mpps_take(&in, &m, 0) == 1) {
        if (!m.too_many && m.n >= 3 && mpp_size(&m, 0) == MPP_SIG_SIZE && mpp_size(&m, 1) == 1) {
            zmq_msg_t pay[MPP_MAX_FRAMES];
            int np = m.n - 3;
            for (int i = 0; i < np; i++) {
                zmq_msg_init(&pay[i]);
                zmq_msg_copy(&pay[i], &m.f[3 + i]);
            }
            mpps_buf_t out = {0};
            mpp_msg_t back;
            if (mpps_put(&out, (const char *)mpp_data(&m, 0), mpp_data(&m, 1)[0], mpp_data(&m, 2),
                         mpp_size(&m, 2), pay, np) ||
                mpps_take(&out, &back, 0) != 1 || back.n != m.n)
                abort();
            for (int i = 0; i < m.n; i++)
                if (mpp_size(&back, i) != mpp_size(&m, i) ||
                    memcmp(mpp_data(&back, i), mpp_data(&m, i), mpp_size(&m, i)))
                    abort();
            mpp_close(&back);
            mpps_free(&out);
        }
        mpp_close(&m);
    }
    mpps_free(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stream_messages(data, size);
    mp__rd_t r;
    mp__rd_init(&r, data, size);
    size_t values = 0;
    while (mp__rd_left(&r) && mp__rd_skip(&r) == 0)
        values++;
    mp_items_t *l = mp_items_new();
    if (mp__items_append_packed(l, data, size, values) == 0 && mp_items_len(l) != values)
        abort();
    mp__pool_decode_errors(l, "t", data, size, 0);
    mp_items_destroy(&l);

    mp__rd_init(&r, data, size);
    mp_obj_t *o = NULL;
    if (mp__rd_obj(&r, &o) == 0)
        mp_obj_destroy(&o);

    for (int mode = 0; mode < 2; mode++) {
        mp__buf_t vals, errs;
        mp__buf_init(&vals, NULL, 0);
        mp__buf_init(&errs, NULL, 0);
        mp__chunk_t c = {.name = "fuzz_sum",
                         .mode = mode,
                         .attempt = 1,
                         .items = data,
                         .items_size = size,
                         .init = mode ? data : NULL,
                         .init_size = size,
                         .host = "h",
                         .values = &vals,
                         .errors = &errs};
        if (mp__task_run_chunk(&c) == 0) {
            /* the reply must itself be well-formed */
            mp__rd_init(&r, vals.data, vals.size);
            size_t n;
            if (mp__rd_array(&r, &n) || n != c.count)
                abort();
            for (size_t i = 0; i < n; i++)
                if (mp__rd_skip(&r))
                    abort();
            mp__rd_init(&r, errs.data, errs.size);
            if (mp__rd_array(&r, &n) || n != c.nerrors)
                abort();
        }
        mp__buf_release(&vals);
        mp__buf_release(&errs);
        mp__task_reset_inits();
    }
    return 0;
}

#include "replay.h"
