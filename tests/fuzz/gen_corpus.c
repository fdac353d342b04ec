/* fuzz_gen_corpus DIR: writes the seed corpus of every fuzz target into
 * DIR/NAME/ (tests/fuzz/gen_corpus.sh runs it into tests/fuzz/corpus):
 * a few small valid inputs each, so the fuzzer starts from messages and
 * files that pass the first checks. Deterministic: the same files every
 * run. */
#include "fuzz_frames.h"

#include "common/codec.h"
#include "safetensors.h"
#include "unit/stream_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char *out_dir;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_gen_corpus: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_seed(const char *target, const char *name, const void *p,
                       size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", out_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die(path);
}

/* An options byte, then the bytes of a file. */
static void write_file_seed(const char *target, const char *name, uint8_t opt,
                            const void *p, size_t n)
{
    unsigned char *b = malloc(n + 1);
    if (b == NULL)
        die("malloc");
    b[0] = opt;
    memcpy(b + 1, p, n);
    write_seed(target, name, b, n + 1);
    free(b);
}

/* gzip of p (the readers take .gz content whatever the name). */
static size_t gzip_of(const void *p, size_t n, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate");
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

/* ---- server: messages ---- */

typedef struct msgbuf {
    uint8_t b[16384];
    size_t n;
} msgbuf;

static void put(msgbuf *m, const ps_header *h, const void *k, size_t kn,
                const void *v, size_t vn, int extra_frames)
{
    uint8_t hb[2048];
    size_t hn = ps_header_packed_size(h);
    if (hn > sizeof(hb))
        die("header too large");
    ps_header_pack(h, hb);
    ps_fuzz_frame fr[PS_FUZZ_MAX_FRAMES];
    int n = 0;
    fr[n++] = (ps_fuzz_frame){hb, hn};
    if (k != NULL)
        fr[n++] = (ps_fuzz_frame){k, kn};
    if (v != NULL)
        fr[n++] = (ps_fuzz_frame){v, vn};
    for (int i = 0; i < extra_frames && n < PS_FUZZ_MAX_FRAMES; i++)
        fr[n++] = (ps_fuzz_frame){v, vn};
    size_t w = ps_fuzz_put_message(m->b + m->n, sizeof(m->b) - m->n, fr, n);
    if (w == 0)
        die("seed too large");
    m->n += w;
}

static void hdr(ps_header *h, int type, uint32_t table, uint64_t offset,
                uint64_t count)
{
    static uint64_t rid;
    ps_header_init(h);
    h->has_type = h->has_request_id = 1;
    h->type = (Sparkps__MsgType)type;
    h->request_id = ++rid;
    if (count > 0) {
        h->has_table_id = h->has_offset = h->has_count = 1;
        h->table_id = table;
        h->offset = offset;
        h->count = count;
    }
}

static void server_seeds(void)
{
    enum { D = 0, A = 1, S = 2, F = 3 }; /* fuzz_server.c's tables */
    float v[64];
    for (int i = 0; i < 64; i++)
        v[i] = 0.01f * (float)(i - 20);
    uint64_t keys[6] = {1, 2, 3, 1000, 77777, 1ull << 40};
    uint16_t half[8] = {0x3c00, 0xbc00, 0x3800, 0, 0x3c00, 0x4000, 0, 0};
    ps_header h;
    msgbuf m;

    /* Dense: hello, push, pull, pushpull (Adam), f16 push, bf16 pull. */
    m.n = 0;
    m.b[m.n++] = 0; /* ASP, one shard */
    hdr(&h, SPARKPS__MSG_TYPE__HELLO, 0, 0, 0);
    put(&m, &h, NULL, 0, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PUSH, D, 0, 16);
    put(&m, &h, NULL, 0, v, 16 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PULL, D, 8, 8);
    put(&m, &h, NULL, 0, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PUSHPULL, A, 4, 8);
    h.has_lr_scale = 1;
    h.lr_scale = 0.5;
    put(&m, &h, NULL, 0, v, 8 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PUSH, D, 60, 4);
    h.has_dtype = 1;
    h.dtype = SPARKPS__DTYPE__F16;
    put(&m, &h, NULL, 0, half, 4 * 2, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PULL, A, 0, 8);
    h.has_dtype = 1;
    h.dtype = SPARKPS__DTYPE__BF16;
    put(&m, &h, NULL, 0, NULL, 0, 0);
    write_seed("server", "dense.bin", m.b, m.n);

    /* Sparse: push, pull, pushpull (FTRL), assign, scan. */
    m.n = 0;
    m.b[m.n++] = 0;
    hdr(&h, SPARKPS__MSG_TYPE__PUSH, S, 0, 3);
    put(&m, &h, keys, 3 * 8, v, 3 * 4 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PULL, S, 0, 4);
    put(&m, &h, keys, 4 * 8, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PUSHPULL, F, 0, 6);
    put(&m, &h, keys, 6 * 8, v, 6 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__ASSIGN, S, 0, 2);
    put(&m, &h, keys + 3, 2 * 8, v, 2 * 4 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__ASSIGN, D, 0, 8);
    h.has_if_untouched = 1;
    h.if_untouched = 1;
    put(&m, &h, NULL, 0, v, 8 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__SCAN, S, 0, 10);
    put(&m, &h, NULL, 0, NULL, 0, 0);
    write_seed("server", "sparse.bin", m.b, m.n);

    /* SSP: a worker's clock, a pull that has to wait, progress, status. */
    m.n = 0;
    m.b[m.n++] = 1; /* ssp:1 */
    hdr(&h, SPARKPS__MSG_TYPE__CLOCK, 0, 0, 0);
    h.has_worker_id = h.has_clock = 1;
    h.worker_id = 0;
    h.clock = 1;
    put(&m, &h, NULL, 0, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PULL, D, 0, 8);
    h.has_worker_id = h.has_clock = 1;
    h.worker_id = 1;
    h.clock = 5;
    put(&m, &h, NULL, 0, NULL, 0, 0);
    Sparkps__EpochEval ev;
    sparkps__epoch_eval__init(&ev);
    ev.has_epoch = ev.has_samples = ev.has_loss = ev.has_accuracy = 1;
    ev.epoch = 1;
    ev.samples = 100;
    ev.loss = 0.5;
    ev.accuracy = 0.8;
    Sparkps__Progress pr;
    sparkps__progress__init(&pr);
    pr.has_samples = pr.has_loss = pr.has_epoch = 1;
    pr.samples = 100;
    pr.loss = 0.4;
    pr.epoch = 1;
    pr.eval = &ev;
    hdr(&h, SPARKPS__MSG_TYPE__PUSH, S, 0, 2);
    h.has_worker_id = h.has_client_id = h.has_seq = 1;
    h.worker_id = 1;
    h.client_id = 42;
    h.seq = 1;
    h.progress = &pr;
    put(&m, &h, keys, 2 * 8, v, 2 * 4 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__HEARTBEAT, 0, 0, 0);
    h.has_worker_id = 1;
    h.worker_id = 1;
    put(&m, &h, NULL, 0, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__STATUS, 0, 0, 0);
    put(&m, &h, NULL, 0, NULL, 0, 0);
    write_seed("server", "ssp.bin", m.b, m.n);

    /* Tables: define, a conflicting define, drop, drop job, shutdown. */
    m.n = 0;
    m.b[m.n++] = 4; /* shard 0 of 2 */
    Sparkps__Init init;
    Sparkps__Optim opt;
    Sparkps__TableSpec spec;
    sparkps__init__init(&init);
    sparkps__optim__init(&opt);
    sparkps__table_spec__init(&spec);
    init.has_kind = init.has_seed = 1;
    init.kind = SPARKPS__INIT_KIND__INIT_XAVIER;
    init.seed = 3;
    opt.has_kind = opt.has_lr = opt.has_clip = opt.has_weight_decay = 1;
    opt.kind = SPARKPS__OPTIM_KIND__OPT_ADAM;
    opt.lr = 0.01;
    opt.clip = 1;
    opt.weight_decay = 0.001;
    uint64_t shape[2] = {4, 8};
    spec.job = "fuzz";
    spec.name = "new";
    spec.has_kind = spec.has_len = 1;
    spec.kind = SPARKPS__TABLE_KIND__DENSE;
    spec.len = 32;
    spec.shape = shape;
    spec.n_shape = 2;
    spec.meta = "model=mlp:4-8;classes=8;input_dim=4";
    spec.init = &init;
    spec.optim = &opt;
    hdr(&h, SPARKPS__MSG_TYPE__DEFINE_TABLE, 0, 0, 0);
    h.table = &spec;
    put(&m, &h, NULL, 0, NULL, 0, 0);
    spec.len = 33;
    hdr(&h, SPARKPS__MSG_TYPE__DEFINE_TABLE, 0, 0, 0);
    h.table = &spec;
    put(&m, &h, NULL, 0, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PUSH, 4, 0, 16);
    put(&m, &h, NULL, 0, v, 16 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PULL, S, 0, 6);
    put(&m, &h, keys, 6 * 8, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__DROP_TABLE, 0, 0, 0);
    h.job = "fuzz";
    h.name = "d";
    put(&m, &h, NULL, 0, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__DROP_JOB, 0, 0, 0);
    h.job = "fuzz";
    put(&m, &h, NULL, 0, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__SHUTDOWN, 0, 0, 0);
    put(&m, &h, NULL, 0, NULL, 0, 0);
    write_seed("server", "tables.bin", m.b, m.n);

    /* SSP: a pull parked for worker 1, released once both clocks move. */
    m.n = 0;
    m.b[m.n++] = 1; /* ssp:1, two workers expected */
    hdr(&h, SPARKPS__MSG_TYPE__PULL, S, 0, 2);
    h.has_worker_id = h.has_clock = 1;
    h.worker_id = 1;
    h.clock = 2;
    put(&m, &h, keys, 2 * 8, NULL, 0, 0);
    for (int w = 0; w < 2; w++) {
        hdr(&h, SPARKPS__MSG_TYPE__CLOCK, 0, 0, 0);
        h.has_worker_id = h.has_clock = 1;
        h.worker_id = w;
        h.clock = 1;
        put(&m, &h, NULL, 0, NULL, 0, 0);
    }
    write_seed("server", "ssp_release.bin", m.b, m.n);

    /* --max-rows (16 in the target): 12 rows, then 8 more with a repeat
     * and an old key (EFULL), then 4 (fits exactly). */
    uint64_t many[12];
    for (int i = 0; i < 12; i++)
        many[i] = 500 + (uint64_t)i;
    m.n = 0;
    m.b[m.n++] = 0;
    hdr(&h, SPARKPS__MSG_TYPE__PUSH, F, 0, 12);
    put(&m, &h, many, 12 * 8, v, 12 * 4, 0);
    uint64_t more[8] = {600, 601, 602, 603, 604, 604, 500, 605};
    hdr(&h, SPARKPS__MSG_TYPE__PUSHPULL, F, 0, 8);
    put(&m, &h, more, 8 * 8, v, 8 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__ASSIGN, F, 0, 8);
    put(&m, &h, more, 8 * 8, v, 8 * 4, 0);
    hdr(&h, SPARKPS__MSG_TYPE__PUSH, F, 0, 4);
    put(&m, &h, more, 4 * 8, v, 4 * 4, 0);
    write_seed("server", "rows_full.bin", m.b, m.n);

    /* Malformed: too many frames, a NaN, a range past the end. */
    m.n = 0;
    m.b[m.n++] = 2; /* bsp */
    hdr(&h, SPARKPS__MSG_TYPE__PUSH, D, 0, 4);
    put(&m, &h, NULL, 0, v, 4 * 4, 4);
    float bad[4] = {1, 0, 0, 0};
    memcpy(&bad[1], &(uint32_t){0x7fc00000u}, 4);
    hdr(&h, SPARKPS__MSG_TYPE__PUSH, D, 0, 4);
    put(&m, &h, NULL, 0, bad, sizeof(bad), 0);
    hdr(&h, SPARKPS__MSG_TYPE__PULL, D, 60, 10);
    put(&m, &h, NULL, 0, NULL, 0, 0);
    hdr(&h, SPARKPS__MSG_TYPE__SCAN, S, 5000, 3);
    put(&m, &h, NULL, 0, NULL, 0, 0);
    write_seed("server", "malformed.bin", m.b, m.n);
}

/* ---- data files ---- */

static void text_seeds(const char *target, const char *text, uint8_t opt,
                       uint8_t opt_gz)
{
    size_t n = strlen(text);
    write_file_seed(target, "plain.txt", opt, text, n);
    unsigned char gz[4096];
    size_t gn = gzip_of(text, n, gz, sizeof(gz));
    write_file_seed(target, "gzip.bin", opt_gz, gz, gn);
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void idx_seeds(void)
{
    /* 3 images of 2x2 pixels, and their 3 labels. */
    unsigned char b[64];
    size_t n = 0;
    unsigned char *img = b + 3;
    be32(img, 0x00000803u);
    be32(img + 4, 3);
    be32(img + 8, 2);
    be32(img + 12, 2);
    for (int i = 0; i < 12; i++)
        img[16 + i] = (unsigned char)(i * 20);
    size_t ilen = 28;
    unsigned char *lab = img + ilen;
    be32(lab, 0x00000801u);
    be32(lab + 4, 3);
    lab[8] = 0;
    lab[9] = 7;
    lab[10] = 2;
    n = 3 + ilen + 11;
    b[0] = 1; /* batches of 3 */
    b[1] = (unsigned char)ilen;
    b[2] = 0;
    write_seed("idx", "three.bin", b, n);
    b[0] = 4; /* one row per batch, share 1 of 2 */
    write_seed("idx", "share.bin", b, n);
}

static void stream_seeds(void)
{
    sw_buf b = {0};
    float y[3] = {0, 1, 2}, x[6] = {0.5f, 1, 2, -1, 0, 3};
    sw_header(&b, SW_DENSE, 2);
    sw_dense_batch(&b, 3, 2, y, x);
    sw_dense_batch(&b, 1, 2, y, x);
    sw_end(&b);
    write_file_seed("stream", "dense.bin", 2, b.p, b.len);
    sw_free(&b);
    memset(&b, 0, sizeof(b));
    uint32_t counts[2] = {2, 1};
    uint64_t ids[3] = {0, 5, 9};
    float vals[3] = {1, 0.5f, 2};
    sw_header(&b, SW_SPARSE, 0);
    sw_sparse_batch(&b, 2, y, counts, ids, vals);
    sw_end(&b);
    write_file_seed("stream", "sparse.bin", 0, b.p, b.len);
    sw_free(&b);
}

static void safetensors_seeds(void)
{
    char tmpl[] = "/tmp/ps-fuzz-gen-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        die("mkstemp");
    close(fd);
    float w[4 * 3], bias[3];
    for (int i = 0; i < 12; i++)
        w[i] = 0.1f * (float)i;
    for (int i = 0; i < 3; i++)
        bias[i] = -0.1f * (float)i;
    uint64_t ws[2] = {4, 3}, bs[2] = {1, 3}, ks[1] = {2};
    uint64_t keys[2] = {5, 9};
    ps_st_writer *wr;
    char err[256];
    if (ps_st_writer_new(&wr) != 0 ||
        ps_st_add(wr, "fc1.weight", PS_ST_F32, ws, 2, w) != 0 ||
        ps_st_add(wr, "fc1.bias", PS_ST_F32, bs, 2, bias) != 0 ||
        ps_st_add(wr, "extra.keys", PS_ST_U64, ks, 1, keys) != 0 ||
        ps_st_set_meta(wr, "model", "softmax") != 0 ||
        ps_st_set_meta(wr, "classes", "3") != 0 ||
        ps_st_set_meta(wr, "input_dim", "4") != 0 ||
        ps_st_write(wr, tmpl, err, sizeof(err)) != 0)
        die("safetensors writer");
    ps_st_writer_free(wr);
    FILE *f = fopen(tmpl, "rb");
    unsigned char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f == NULL || n == 0)
        die(tmpl);
    fclose(f);
    unlink(tmpl);
    write_seed("safetensors", "softmax.safetensors", buf, n);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_gen_corpus DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        die(out_dir);
    server_seeds();
    text_seeds("libsvm",
               "1 1:0.5 3:1.25 10:-2\n-1 2:1\n# comment\n\n0 5:3e-2 7:1\n"
               "+1 1:1 2:2 3:3 4:4\n",
               1, 8 | 4);
    text_seeds("csv", "a,b,c,label\n1,2,3,0\n4.5,-1,0,1\n\n7,8,9e-1,2\n", 8 | 1,
               8 | 16 | 2);
    idx_seeds();
    stream_seeds();
    safetensors_seeds();
    return 0;
}
