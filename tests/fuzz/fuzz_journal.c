/*  fuzz_journal.c - the journal's replay (broker/jstore.c, journal.c): a
    file of records read back at start, the chunks queued again from it.
    The journal is the one decoder whose input comes from a disk, not a
    peer: a crash, a bad disk or a hand edit may leave anything there.

    The first input byte picks how the rest becomes DIR/journal:
      even  the records are built here with their lengths and checksums
            right, so that the fuzzer reaches the decoding of what is in
            them: each record is type u8, nframes u8, then per frame a
            u16 big-endian length and the bytes; whatever is left at the
            end is appended raw (a torn tail);
      odd   the bytes after the header are written as they are.
    Then one idle broker (mp__broker_new_idle, made once) opens the journal
    (replay, a rewrite, the requeue of what is unanswered), each record the
    index points at is read back, one job is forgotten, and the broker drops
    everything again (mp__broker_reset, bk_journal_close). Any input must be
    handled without a crash, a leak or an out-of-bounds access. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker_impl.h"
#include "broker/broker_shm.h"
#include "mp.h"

static mp_broker_t *broker;
static char dir[64], jpath[96];

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void setup(void)
{
    mp_log_set_level(MP_LOG_ERROR);
    snprintf(dir, sizeof dir, "/dev/shm/fuzz-journal-%d", (int)getpid());
    snprintf(jpath, sizeof jpath, "%s/journal", dir);
    static void *ctx;
    ctx = zmq_ctx_new();
    const char *binds[] = {"inproc://fuzz-journal"};
    mp_broker_options_t o = {
        .binds = binds, .nbinds = 1, .heartbeat_ms = 60000, .zmq_context = ctx};
    if (mp__broker_new_idle(&o, &broker))
        abort();
}

/* The structured form: records with right lengths and checksums. */
static void write_records(FILE *f, const uint8_t *d, size_t n)
{
    uint8_t *body = malloc(2 * n + 16); /* a frame: 2 octets of length in, 4 out */
    while (n >= 2) {
        uint8_t type = d[0], nf = d[1] % 4;
        size_t at = 2, blen = 1;
        body[0] = type;
        int ok = 1;
        for (int i = 0; i < nf; i++) {
            if (n - at < 2) {
                ok = 0;
                break;
            }
            size_t fl = (size_t)d[at] << 8 | d[at + 1];
            at += 2;
            if (fl > n - at)
                fl = n - at;
            uint8_t len[4];
            put32(len, (uint32_t)fl);
            memcpy(body + blen, len, 4);
            memcpy(body + blen + 4, d + at, fl);
            blen += 4 + fl;
            at += fl;
        }
        if (!ok)
            break;
        uint8_t head[8];
        put32(head, (uint32_t)blen);
        put32(head + 4, crc32_ieee(body, blen));
        fwrite(head, 1, 8, f);
        fwrite(body, 1, blen, f);
        d += at;
        n -= at;
    }
    fwrite(d, 1, n, f); /* a torn tail */
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!broker)
        setup();
    if (size < 1 || size > (1u << 20))
        return 0;
    mkdir(dir, 0700);
    FILE *f = fopen(jpath, "wb");
    if (!f)
        abort();
    fwrite("MPJOUR01", 1, 8, f);
    if (data[0] & 1)
        fwrite(data + 1, 1, size - 1, f);
    else
        write_records(f, data + 1, size - 1);
    fclose(f);
    if (bk_journal_open(broker, dir, 1u << 30) == 0) {
        bk_jstore_t *js = broker->jstore;
        bk_jjob_t *first = NULL;
        for (unsigned b = 0; b < BK_JOB_BUCKETS; b++)
            for (bk_jjob_t *j = js->buckets[b]; j; j = j->next) {
                first = first ? first : j;
                for (size_t i = 0; i < j->n; i++) {
                    const bk_jchunk_t *c = j->chunks[i];
                    uint8_t *buf;
                    bk_jframe_t fr[3];
                    if (bk_jstore_read(js, c->off, c->len, &buf, fr) == 0)
                        free(buf);
                    for (uint32_t p = 0; p < c->npieces; p++)
                        if (bk_jstore_read(js, c->pieces[p].off, c->pieces[p].len, &buf, fr) == 0)
                            free(buf);
                }
            }
        if (first) { /* as FORGET does: its live chunks withdrawn first */
            mp__broker_reset(broker);
            bk_jstore_forget(js, first);
        }
        mp__broker_reset(broker); /* drops the queued chunks (before their index goes) */
        bk_journal_close(broker);
    }
    unlink(jpath);
    char lock[96], tmp[112];
    snprintf(lock, sizeof lock, "%s/lock", dir);
    snprintf(tmp, sizeof tmp, "%s.new", jpath);
    unlink(lock);
    unlink(tmp);
    rmdir(dir);
    return 0;
}

#include "replay.h"
