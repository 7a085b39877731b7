/*  jstore.c - the journal's file and its index: durable jobs on disk
    (docs/JOURNAL.md, PROTOCOL.md 7.3).

    One append-only file, DIR/journal, of records [len crc32 type frames],
    each frame [len bytes]: SUBMIT (a durable chunk's header, items, init),
    RESULT (answers for a range of its items: header, values, errors),
    FORGET (a job). In memory only an index: jobs by name, their chunks by
    seq, and where each record lies in the file (results are read back from
    there when fetched, never kept in memory). Opening replays the file: a
    record whose checksum fails (a write the crash cut short) ends it and is
    truncated. The file is rewritten without what was forgotten when that
    is more than half of it (and at open), and emptied when no job is left.

    Invariants: every jchunk in the index has its SUBMIT record in the file
    at off; its pieces' RESULT records are disjoint ranges of its items,
    answered counts them; live_bytes is the size of the records of the jobs
    in the index. Nothing here knows peers or sockets: journal.c does.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "broker_impl.h"
#include "base/log.h"
#include "mp/error.h"

#define MAGIC "MPJOUR01"
#define MAGIC_SIZE 8
#define COMPACT_FLOOR (16u << 20) /* below this, forgotten records stay until the file empties */

enum { REC_SUBMIT = 1, REC_RESULT = 2, REC_FORGET = 3 };

/* ---- CRC-32 (IEEE 802.3, reflected): catches a torn or damaged record ---- */

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_add(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *s = p;
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *s++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- the index --------------------------------------------------------- */

static unsigned name_hash(const char *s, size_t n)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h % BK_JOB_BUCKETS;
}

bk_jjob_t *bk_jstore_job(bk_jstore_t *js, const char *name, size_t len)
{
    for (bk_jjob_t *j = js->buckets[name_hash(name, len)]; j; j = j->next)
        if (strlen(j->name) == len && memcmp(j->name, name, len) == 0)
            return j;
    return NULL;
}

/* A job's incarnation: random, so that a job forgotten and submitted again
   under its name is another job to whoever fetched the first. */
static uint64_t new_incarnation(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (uint64_t)mp__now_ns() * 6364136223846793005ull;
    return v ? v : 1;
}

static bk_jjob_t *job_add(bk_jstore_t *js, const char *name, size_t len, uint32_t total,
                          const char *owner, uint64_t incarnation)
{
    bk_jjob_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    memcpy(j->name, name, len);
    snprintf(j->owner, sizeof j->owner, "%s", owner);
    j->total = total;
    j->incarnation = incarnation;
    unsigned h = name_hash(name, len);
    j->bucket = h;
    j->next = js->buckets[h];
    js->buckets[h] = j;
    js->njobs++;
    return j;
}

static void job_free(bk_jjob_t *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->chunks[i]->pieces);
        free(j->chunks[i]);
    }
    free(j->chunks);
    free(j);
}

/* Unlinks j from the index (its records become dead bytes) and frees it;
   a chunk still live must have been withdrawn by the caller. */
static void job_remove(bk_jstore_t *js, bk_jjob_t *j)
{
    for (bk_jjob_t **pp = &js->buckets[j->bucket]; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    js->live_bytes -= j->bytes;
    js->njobs--;
    job_free(j);
}

/* Index of seq in j's chunks (sorted), or where it would go. */
static size_t chunk_pos(const bk_jjob_t *j, uint64_t seq)
{
    size_t lo = 0, hi = j->n;
    if (hi && j->chunks[hi - 1]->seq < seq) /* the usual case: seqs come in order */
        return hi;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (j->chunks[mid]->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bk_jchunk_t *bk_jstore_chunk(const bk_jjob_t *j, uint64_t seq)
{
    size_t at = chunk_pos(j, seq);
    return at < j->n && j->chunks[at]->seq == seq ? j->chunks[at] : NULL;
}

static bk_jchunk_t *chunk_add(bk_jjob_t *j, uint32_t seq, uint32_t count)
{
    size_t at = chunk_pos(j, seq);
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 16;
        bk_jchunk_t **v = realloc(j->chunks, cap * sizeof *v);
        if (!v)
            return NULL;
        j->chunks = v;
        j->cap = cap;
    }
    bk_jchunk_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->seq = seq;
    c->count = count;
    c->job = j;
    memmove(&j->chunks[at + 1], &j->chunks[at], (j->n - at) * sizeof *j->chunks);
    j->chunks[at] = c;
    j->n++;
    return c;
}

/* Whether items [base, base+count) of c may be answered: in range, and
   none of them answered before (the pieces answer each item once). */
static bool piece_fits(const bk_jchunk_t *c, uint64_t base, uint64_t count)
{
    if (count == 0 || base > c->count || count > c->count - base || count > c->count - c->answered)
        return false;
    for (uint32_t i = 0; i < c->npieces; i++)
        if (base < c->pieces[i].base + c->pieces[i].count && c->pieces[i].base < base + count)
            return false;
    return true;
}

static int piece_add(bk_jchunk_t *c, uint64_t off, uint32_t len, uint32_t base, uint32_t count)
{
    if (!piece_fits(c, base, count))
        return MP_EBADMSG;
    if (c->npieces == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 2;
        bk_jpiece_t *v = realloc(c->pieces, cap * sizeof *v);
        if (!v)
            return MP_ENOMEM;
        c->pieces = v;
        c->cap = cap;
    }
    c->pieces[c->npieces++] = (bk_jpiece_t){off, len, base, count};
    c->answered += count;
    if (c->answered == c->count)
        c->job->answered++;
    return 0;
}

/* ---- writing ----------------------------------------------------------- */

/* Appends one record of type with n frames; *off_p, *len_p where it lies. */
static int append(bk_jstore_t *js, uint8_t type, const void *const *p, const size_t *len, int n,
                  uint64_t *off_p, uint32_t *len_p)
{
    uint8_t head[9], lens[3][4];
    struct iovec iov[1 + 2 * 3];
    size_t body = 1;
    for (int i = 0; i < n; i++)
        body += 4 + len[i];
    if (body > js->max_record)
        return MP_E2BIG;
    uint32_t crc = crc_add(0, &type, 1);
    int k = 0;
    iov[k++] = (struct iovec){head, sizeof head};
    for (int i = 0; i < n; i++) {
        put32(lens[i], (uint32_t)len[i]);
        crc = crc_add(crc, lens[i], 4);
        crc = crc_add(crc, p[i], len[i]);
        iov[k++] = (struct iovec){lens[i], 4};
        iov[k++] = (struct iovec){(void *)p[i], len[i]};
    }
    put32(head, (uint32_t)body);
    put32(head + 4, crc);
    head[8] = type;
    size_t total = 8 + body, done = 0;
    while (done < total) { /* a short write (a signal, a full disk) goes on where it stopped */
        ssize_t w = pwritev(js->fd, iov, k, (off_t)(js->size + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = w < 0 ? errno : ENOSPC;
            if (ftruncate(js->fd, (off_t)js->size) != 0) /* no torn tail left behind */
                js->broken = true;
            return -err;
        }
        done += (size_t)w;
        for (size_t skip = (size_t)w; skip;) { /* advance the vector past what went */
            size_t step = skip < iov[0].iov_len ? skip : iov[0].iov_len;
            iov[0].iov_base = (uint8_t *)iov[0].iov_base + step;
            iov[0].iov_len -= step;
            skip -= step;
            if (iov[0].iov_len == 0 && k > 1) {
                memmove(iov, iov + 1, (size_t)--k * sizeof *iov);
            }
        }
    }
    *off_p = js->size;
    *len_p = (uint32_t)total;
    js->size += total;
    js->dirty = true;
    return 0;
}

int bk_jstore_submit(bk_jstore_t *js, const bk_jsubmit_t *s, bk_jchunk_t **c_p)
{
    bk_jjob_t *j = bk_jstore_job(js, s->job, strlen(s->job));
    bool made = !j;
    if (made &&
        !(j = job_add(js, s->job, strlen(s->job), (uint32_t)s->total, s->owner, new_incarnation())))
        return MP_ENOMEM;
    char hs[MPP_MAX_NAME + 256];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 10);
    mp__w_str(&h, s->job);
    mp__w_uint(&h, s->seq);
    mp__w_uint(&h, s->total);
    mp__w_str(&h, s->task);
    mp__w_uint(&h, s->mode);
    mp__w_uint(&h, s->count);
    mp__w_uint(&h, s->time_limit_ms);
    mp__w_str(&h, s->owner);
    mp__w_bool(&h, s->init != NULL);
    mp__w_uint(&h, j->incarnation);
    const void *p[3] = {h.data, s->items, s->init ? s->init : ""};
    size_t len[3] = {h.size, s->items_size, s->init ? s->init_size : 0};
    uint64_t off;
    uint32_t rlen;
    bk_jchunk_t *c = NULL;
    int rc = MP_EOVERLOADED;
    if (js->size + 8 + 13 + len[0] + len[1] + len[2] <= js->max_bytes) {
        c = chunk_add(j, s->seq, s->count);
        rc = c ? append(js, REC_SUBMIT, p, len, 3, &off, &rlen) : MP_ENOMEM;
    }
    mp__buf_release(&h);
    if (rc) {
        if (c) { /* out of the index again */
            size_t at = chunk_pos(j, s->seq);
            memmove(&j->chunks[at], &j->chunks[at + 1], (j->n - at - 1) * sizeof *j->chunks);
            j->n--;
            free(c);
        }
        if (made)
            job_remove(js, j);
        return rc;
    }
    c->off = off;
    c->len = rlen;
    j->bytes += rlen;
    js->live_bytes += rlen;
    *c_p = c;
    return 0;
}

int bk_jstore_result(bk_jstore_t *js, bk_jchunk_t *c, size_t base, size_t count, size_t nerrors,
                     const void *values, size_t vsize, const void *errors, size_t esize)
{
    if (!piece_fits(c, base, count)) /* checked first: nothing is written for nothing */
        return MP_EINVAL;
    char hs[128];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 5);
    mp__w_str(&h, c->job->name);
    mp__w_uint(&h, c->seq);
    mp__w_uint(&h, base);
    mp__w_uint(&h, count);
    mp__w_uint(&h, nerrors);
    const void *p[3] = {h.data, values, nerrors ? errors : ""};
    size_t len[3] = {h.size, vsize, nerrors ? esize : 0};
    uint64_t off;
    uint32_t rlen;
    int rc = append(js, REC_RESULT, p, len, 3, &off, &rlen);
    if (rc)
        return rc;
    c->job->bytes += rlen;
    js->live_bytes += rlen;
    return piece_add(c, off, rlen, (uint32_t)base, (uint32_t)count);
}

/* ---- reading back ------------------------------------------------------- */

/* The frames of a record read into buf (the caller frees it): at most
   nmax, their count in *n. MP_EBADMSG when the bytes are not a record. */
static int parse(uint8_t *buf, size_t size, uint8_t *type, bk_jframe_t *f, int nmax, int *n)
{
    if (size < 9 || get32(buf) != size - 8 || crc_add(0, buf + 8, size - 8) != get32(buf + 4))
        return MP_EBADMSG;
    *type = buf[8];
    size_t at = 9;
    *n = 0;
    while (at < size) {
        if (*n == nmax || size - at < 4 || get32(buf + at) > size - at - 4)
            return MP_EBADMSG;
        f[*n].p = buf + at + 4;
        f[*n].len = get32(buf + at);
        at += 4 + f[*n].len;
        (*n)++;
    }
    return 0;
}

/* Reads len bytes at off whole: 0, or -errno (a read error is not a torn
   record: the open fails instead of cutting the file there). */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    for (size_t done = 0; done < len;) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO; /* the file shrank under us */
        done += (size_t)r;
    }
    return 0;
}

int bk_jstore_read(bk_jstore_t *js, uint64_t off, uint32_t len, uint8_t **buf_p, bk_jframe_t f[3])
{
    uint8_t *buf = malloc(len ? len : 1), type;
    int n;
    if (!buf)
        return MP_ENOMEM;
    int rc = pread_all(js->fd, buf, len, off);
    if (!rc && (parse(buf, len, &type, f, 3, &n) || n != 3))
        rc = MP_EBADMSG;
    if (rc) {
        free(buf);
        return rc;
    }
    *buf_p = buf;
    return 0;
}

int bk_jstore_sync(bk_jstore_t *js)
{
    if (!js->dirty)
        return 0;
    js->syncs++;
    if (fdatasync(js->fd) != 0) { /* what was written may never reach the disk (Linux
                                     marks the failed pages clean): no more promises */
        int rc = -errno;
        js->broken = true;
        return rc;
    }
    js->dirty = false;
    return 0;
}

/* ---- opening: the lock, the replay, the rewrite ------------------------- */

/* One record of the replay (type, frames) into the index. */
static void replay_record(bk_jstore_t *js, uint8_t type, bk_jframe_t *f, int n, uint64_t off,
                          uint32_t len)
{
    mp__rd_t r;
    size_t k, jl, tl, ol;
    const char *job, *task, *owner;
    uint64_t seq, total, base, count, mode, limit, incarnation;
    bool has_init;
    mp__rd_init(&r, f[0].p, f[0].len);
    if (mp__rd_array(&r, &k) || mp__rd_str(&r, &job, &jl) || jl == 0 || jl > BK_MAX_JOB ||
        memchr(job, 0, jl))
        return;
    bk_jjob_t *j = bk_jstore_job(js, job, jl);
    if (type == REC_FORGET) {
        if (j)
            job_remove(js, j);
        return;
    }
    if (n != 3 || mp__rd_uint(&r, &seq))
        return;
    if (type == REC_SUBMIT) {
        if (k < 10 || mp__rd_uint(&r, &total) || mp__rd_str(&r, &task, &tl) ||
            mp__rd_uint(&r, &mode) || mp__rd_uint(&r, &count) || mp__rd_uint(&r, &limit) ||
            mp__rd_str(&r, &owner, &ol) || mp__rd_bool(&r, &has_init) ||
            mp__rd_uint(&r, &incarnation) || ol >= sizeof j->owner || total == 0 ||
            total > BK_MAX_JOB_CHUNKS || seq >= total || count == 0 || count > MPP_MAX_COUNT)
            return;
        char own[sizeof j->owner];
        memcpy(own, owner, ol);
        own[ol] = '\0';
        if (!j && !(j = job_add(js, job, jl, (uint32_t)total, own, incarnation)))
            return;
        if (j->total != total || j->incarnation != incarnation || bk_jstore_chunk(j, seq))
            return; /* not ours to keep: the first record stands */
        bk_jchunk_t *c = chunk_add(j, (uint32_t)seq, (uint32_t)count);
        if (c) {
            c->off = off;
            c->len = len;
            j->bytes += len;
            js->live_bytes += len;
        }
    } else if (type == REC_RESULT && j) {
        bk_jchunk_t *c = bk_jstore_chunk(j, seq);
        if (k >= 4 && c && mp__rd_uint(&r, &base) == 0 && mp__rd_uint(&r, &count) == 0 &&
            base <= UINT32_MAX && count <= UINT32_MAX &&
            piece_add(c, off, len, (uint32_t)base, (uint32_t)count) == 0) {
            j->bytes += len;
            js->live_bytes += len;
        }
    }
}

/* Reads every record from the header on; stops at the first that is cut
   short or damaged (its length past the end, its checksum wrong), and
   cuts the file there. */
static int replay(bk_jstore_t *js)
{
    struct stat st;
    if (fstat(js->fd, &st) != 0)
        return -errno;
    uint64_t end = (uint64_t)st.st_size, at = MAGIC_SIZE;
    uint8_t head[8];
    while (at + 8 <= end) {
        int rc = pread_all(js->fd, head, 8, at);
        if (rc)
            return rc;
        uint64_t len = 8 + (uint64_t)get32(head);
        if (get32(head) > js->max_record || at + len > end)
            break;
        uint8_t *buf = malloc(len);
        if (!buf)
            return MP_ENOMEM;
        uint8_t type;
        bk_jframe_t f[3];
        int n;
        if ((rc = pread_all(js->fd, buf, len, at))) {
            free(buf);
            return rc;
        }
        bool ok = parse(buf, len, &type, f, 3, &n) == 0 && n >= 1;
        if (ok)
            replay_record(js, type, f, n, at, (uint32_t)len);
        free(buf);
        if (!ok)
            break;
        at += len;
    }
    if (at < end) {
        mp__log(MP_LOG_WARN, WHO,
                "journal %s: %llu bytes after offset %llu are not a whole record (a write cut "
                "short): cut off",
                js->path, (unsigned long long)(end - at), (unsigned long long)at);
        if (ftruncate(js->fd, (off_t)at) != 0)
            return -errno;
    }
    js->size = at;
    return 0;
}

/* Copies the record at off (len bytes) from fd to the end of out; *at is
   where it now lies. */
static int copy_record(int fd, int out, uint64_t off, uint32_t len, uint64_t *out_size,
                       uint64_t *at)
{
    uint8_t *buf = malloc(len);
    int rc = buf ? 0 : MP_ENOMEM;
    if (!rc)
        rc = pread_all(fd, buf, len, off);
    for (size_t done = 0; !rc && done < len;) { /* a short write goes on, a full disk fails */
        ssize_t w = pwrite(out, buf + done, len - done, (off_t)(*out_size + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = w < 0 ? -errno : -ENOSPC;
        else
            done += (size_t)w;
    }
    free(buf);
    if (!rc) {
        *at = *out_size;
        *out_size += len;
    }
    return rc;
}

/* Calls fn on the offset of every record of the jobs in the index, in
   file order of the rewrite: each chunk's SUBMIT, then its RESULTs. */
static int each_record(bk_jstore_t *js, int (*fn)(bk_jstore_t *, uint64_t *, uint32_t, void *),
                       void *arg)
{
    int rc = 0;
    for (unsigned b = 0; b < BK_JOB_BUCKETS && !rc; b++)
        for (bk_jjob_t *j = js->buckets[b]; j && !rc; j = j->next)
            for (size_t i = 0; i < j->n && !rc; i++) {
                bk_jchunk_t *c = j->chunks[i];
                rc = fn(js, &c->off, c->len, arg);
                for (uint32_t p = 0; p < c->npieces && !rc; p++)
                    rc = fn(js, &c->pieces[p].off, c->pieces[p].len, arg);
            }
    return rc;
}

typedef struct {
    int out;
    uint64_t size;
    uint64_t *at; /* the new offsets, in each_record's order */
    size_t n;
} rewrite_t;

static int copy_one(bk_jstore_t *js, uint64_t *off, uint32_t len, void *arg)
{
    rewrite_t *w = arg;
    return copy_record(js->fd, w->out, *off, len, &w->size, &w->at[w->n++]);
}

static int count_one(bk_jstore_t *js, uint64_t *off, uint32_t len, void *arg)
{
    (void)js, (void)off, (void)len;
    (*(size_t *)arg)++;
    return 0;
}

static int move_one(bk_jstore_t *js, uint64_t *off, uint32_t len, void *arg)
{
    (void)js, (void)len;
    rewrite_t *w = arg;
    *off = w->at[w->n++];
    return 0;
}

/* Rewrites the file with the records of the jobs in the index only. The
   index takes the new offsets once the new file has replaced the old one:
   a failure leaves both as they were. */
static int compact(bk_jstore_t *js)
{
    char tmp[sizeof js->path + 8];
    size_t nrec = 0;
    each_record(js, count_one, &nrec);
    rewrite_t w = {.size = MAGIC_SIZE, .at = malloc((nrec ? nrec : 1) * sizeof *w.at)};
    snprintf(tmp, sizeof tmp, "%s.new", js->path);
    w.out = w.at ? open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    int rc = w.out < 0 ? (w.at ? -errno : MP_ENOMEM) : 0;
    if (!rc && pwrite(w.out, MAGIC, MAGIC_SIZE, 0) != MAGIC_SIZE)
        rc = -errno;
    if (!rc)
        rc = each_record(js, copy_one, &w);
    if (!rc && (fdatasync(w.out) != 0 || rename(tmp, js->path) != 0))
        rc = -errno;
    if (rc) {
        if (w.out >= 0)
            close(w.out);
        unlink(tmp);
        free(w.at);
        mp__log(MP_LOG_WARN, WHO, "journal %s: cannot rewrite it: %s", js->path, mp_strerror(rc));
        return rc;
    }
    w.n = 0;
    each_record(js, move_one, &w);
    free(w.at);
    if (js->dirfd >= 0)
        fsync(js->dirfd);
    close(js->fd);
    js->fd = w.out;
    js->size = w.size;
    js->dirty = false;
    js->compactions++;
    return 0;
}

void bk_jstore_forget(bk_jstore_t *js, bk_jjob_t *j)
{
    const char *name = j->name;
    char hs[BK_MAX_JOB + 16];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 1);
    mp__w_str(&h, name);
    const void *p[1] = {h.data};
    size_t len[1] = {h.size};
    uint64_t off;
    uint32_t rlen;
    int rc = append(js, REC_FORGET, p, len, 1, &off, &rlen);
    job_remove(js, j);
    if (rc)
        mp__log(MP_LOG_ERROR, WHO, "journal %s: cannot record a FORGET: %s", js->path,
                mp_strerror(rc));
    if (js->njobs == 0 && !js->broken) { /* nothing left: the file starts again */
        if (ftruncate(js->fd, MAGIC_SIZE) == 0) {
            js->size = MAGIC_SIZE;
            js->dirty = true;
        }
    } else if (js->size > COMPACT_FLOOR && js->live_bytes < js->size / 2 && !js->broken) {
        bk_jstore_sync(js);
        compact(js);
    }
}

int bk_jstore_open(const char *dir, uint64_t max_bytes, size_t max_message, bk_jstore_t **js_p)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    bk_jstore_t *js = calloc(1, sizeof *js);
    if (!js)
        return MP_ENOMEM;
    js->fd = js->lockfd = js->dirfd = -1;
    js->max_bytes = max_bytes;
    js->max_record = max_message + (1u << 20); /* a SUBMIT or a RESULT is at most a message */
    char lock[sizeof js->path];
    snprintf(js->path, sizeof js->path, "%s/journal", dir);
    snprintf(lock, sizeof lock, "%s/lock", dir);
    int rc = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        rc = -errno;
    if (!rc && (js->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = -errno;
    if (!rc && (js->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        rc = -errno;
    if (!rc && flock(js->lockfd, LOCK_EX | LOCK_NB) != 0) {
        mp__log(MP_LOG_ERROR, WHO, "journal %s: another broker holds it", dir);
        rc = MP_EBUSY;
    }
    if (!rc && (js->fd = open(js->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        rc = -errno;
    char magic[MAGIC_SIZE];
    ssize_t got = rc ? 0 : pread(js->fd, magic, MAGIC_SIZE, 0);
    if (!rc && got == 0)
        rc = pwrite(js->fd, MAGIC, MAGIC_SIZE, 0) == MAGIC_SIZE ? 0 : -errno;
    else if (!rc && (got != MAGIC_SIZE || memcmp(magic, MAGIC, MAGIC_SIZE) != 0)) {
        mp__log(MP_LOG_ERROR, WHO, "%s is not a libmp journal (no %s header)", js->path, MAGIC);
        rc = MP_EBADMSG;
    }
    if (!rc)
        rc = replay(js);
    if (!rc && js->size > MAGIC_SIZE + js->live_bytes) /* forgotten records: dropped now */
        compact(js);                                   /* (or at the next chance) */
    if (rc) {
        if (rc != MP_EBUSY && rc != MP_EBADMSG)
            mp__log(MP_LOG_ERROR, WHO, "journal %s: %s", js->path, mp_strerror(rc));
        bk_jstore_close(&js);
        return rc;
    }
    *js_p = js;
    return 0;
}

void bk_jstore_close(bk_jstore_t **js_p)
{
    bk_jstore_t *js = *js_p;
    if (!js)
        return;
    if (js->fd >= 0) {
        bk_jstore_sync(js);
        close(js->fd);
    }
    for (unsigned b = 0; b < BK_JOB_BUCKETS; b++)
        while (js->buckets[b]) {
            bk_jjob_t *j = js->buckets[b];
            js->buckets[b] = j->next;
            job_free(j);
        }
    if (js->lockfd >= 0)
        close(js->lockfd); /* releases the lock */
    if (js->dirfd >= 0)
        close(js->dirfd);
    free(js);
    *js_p = NULL;
}
