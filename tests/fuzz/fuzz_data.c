/* Fuzz targets: the training-data readers (worker/data*.c), through their
 * public functions on the input written to an in-memory file (memfd; the
 * readers open it by its /proc/self/fd path, plain or gzip like any file).
 *
 * Byte 0 chooses options: bits 0-1 the batch size (1, 3, 16, 64), bit 2
 * reads share 1 of 2 instead of all rows, and per format: libsvm bit 3
 * 0-based indices; CSV bit 3 a header line, bits 4-5 the label column
 * (last, 0, 1, 2). IDX takes two files: bytes 1-2 (little-endian) are the
 * images file's length, the rest after it the labels file. Each input is
 * read to its end (or its first error), rewound, and its first batch read
 * again. */
#include "fuzz.h"

#include "data.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_BATCHES 100000 /* a reader that never ends is a finding */

typedef struct memfile {
    int fd;
    char path[64];
} memfile;

static int memfile_open(memfile *m, const uint8_t *data, size_t size)
{
    m->fd = memfd_create("ps-fuzz", 0);
    if (m->fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(m->fd, data + done, size - done);
        if (w <= 0) {
            close(m->fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(m->path, sizeof(m->path), "/proc/self/fd/%d", m->fd);
    return 0;
}

static void read_all(const ps_data_cfg *cfg, size_t batch)
{
    ps_dataset *d;
    char err[512];
    if (ps_data_open(&d, cfg, err, sizeof(err)) != 0)
        return;
    (void)ps_data_dim(d);
    (void)ps_data_sparse(d);
    (void)ps_data_rows_hint(d);
    ps_batch b;
    int rc = 0;
    for (int i = 0; i < MAX_BATCHES; i++) {
        rc = ps_data_next(d, &b, batch, err, sizeof(err));
        if (rc != 0 || b.n == 0)
            break;
    }
    if (ps_data_rewind(d, err, sizeof(err)) == 0)
        (void)ps_data_next(d, &b, batch, err, sizeof(err));
    ps_data_close(d);
}

static void cfg_init(ps_data_cfg *cfg, uint8_t opt, ps_data_format format,
                     const char *path)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->path = path;
    cfg->format = format;
    cfg->parts = (opt & 4) ? 2 : 1;
    cfg->part = (opt & 4) ? 1 : 0;
    cfg->csv_label_col = -1;
    cfg->libsvm_one_based = 1;
}

static size_t batch_of(uint8_t opt)
{
    static const size_t sizes[4] = {1, 3, 16, 64};
    return sizes[opt & 3];
}

/* One file: options byte, then the file's bytes. */
static int one_file(const uint8_t *data, size_t size, ps_data_format format)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    memfile m;
    if (memfile_open(&m, data + 1, size - 1) != 0)
        return 0;
    ps_data_cfg cfg;
    cfg_init(&cfg, opt, format, m.path);
    if (format == PS_DATA_LIBSVM)
        cfg.libsvm_one_based = !(opt & 8);
    if (format == PS_DATA_CSV) {
        static const int cols[4] = {-1, 0, 1, 2};
        cfg.csv_header = (opt & 8) != 0;
        cfg.csv_label_col = cols[(opt >> 4) & 3];
    }
    read_all(&cfg, batch_of(opt));
    close(m.fd);
    return 0;
}

int ps_fuzz_libsvm(const uint8_t *data, size_t size)
{
    return one_file(data, size, PS_DATA_LIBSVM);
}

int ps_fuzz_csv(const uint8_t *data, size_t size)
{
    return one_file(data, size, PS_DATA_CSV);
}

int ps_fuzz_stream(const uint8_t *data, size_t size)
{
    return one_file(data, size, PS_DATA_STREAM);
}

int ps_fuzz_idx(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t opt = data[0];
    size_t ilen = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (ilen > size)
        ilen = size;
    memfile images, labels;
    if (memfile_open(&images, data, ilen) != 0)
        return 0;
    if (memfile_open(&labels, data + ilen, size - ilen) != 0) {
        close(images.fd);
        return 0;
    }
    ps_data_cfg cfg;
    cfg_init(&cfg, opt, PS_DATA_IDX, images.path);
    cfg.labels_path = labels.path;
    read_all(&cfg, batch_of(opt));
    close(images.fd);
    close(labels.fd);
    return 0;
}
