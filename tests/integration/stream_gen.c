/* stream_gen: converts a CSV file on stdin (numbers, the label last, no
 * header) into the connector's dense stream format on stdout, the way the
 * connector would feed ps-worker; for the end-to-end tests.
 * Usage: stream_gen [--batch N] [--break cut|nan]
 *   --break cut: leave out the end marker (a writer that died)
 *   --break nan: the first label is NaN */
#include "unit/stream_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_COLS 4096

/* Parses one CSV line into vals; returns the column count, -1 if bad. */
static int parse_line(char *line, float *vals)
{
    int n = 0;
    for (char *tok = strtok(line, ",\n\r"); tok; tok = strtok(NULL, ",\n\r")) {
        char *end;
        if (n == MAX_COLS)
            return -1;
        vals[n++] = strtof(tok, &end);
        if (end == tok)
            return -1;
    }
    return n;
}

static int flush(sw_buf *b)
{
    int rc = sw_write_all(STDOUT_FILENO, b->p, b->len);
    b->len = 0;
    return rc;
}

int main(int argc, char **argv)
{
    long per = 64;
    const char *brk = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            per = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--break") == 0 && i + 1 < argc)
            brk = argv[++i];
        else {
            fprintf(stderr, "usage: stream_gen [--batch N] [--break "
                            "cut|nan] <csv >stream\n");
            return 2;
        }
    }
    static float vals[MAX_COLS], y[1024], x[1024 * MAX_COLS];
    if (per < 1 || per > 1024) {
        fprintf(stderr, "stream_gen: --batch must be 1..1024\n");
        return 2;
    }
    char line[65536];
    sw_buf b = {0};
    int dim = -1;
    long n = 0, rows = 0;
    while (fgets(line, sizeof(line), stdin)) {
        int cols = parse_line(line, vals);
        if (cols < 2 || (dim >= 0 && cols - 1 != dim)) {
            fprintf(stderr, "stream_gen: line %ld: bad row\n", rows + 1);
            return 1;
        }
        if (dim < 0) {
            dim = cols - 1;
            sw_header(&b, SW_DENSE, (uint64_t)dim);
        }
        y[n] = rows == 0 && strcmp(brk, "nan") == 0 ? NAN : vals[dim];
        memcpy(x + n * dim, vals, (size_t)dim * sizeof(float));
        rows++;
        if (++n == per) {
            sw_dense_batch(&b, (uint32_t)n, (uint32_t)dim, y, x);
            n = 0;
            if (flush(&b) != 0)
                return 1;
        }
    }
    if (dim < 0) {
        fprintf(stderr, "stream_gen: no rows\n");
        return 1;
    }
    if (n > 0)
        sw_dense_batch(&b, (uint32_t)n, (uint32_t)dim, y, x);
    if (strcmp(brk, "cut") != 0)
        sw_end(&b);
    int rc = flush(&b);
    sw_free(&b);
    return rc == 0 ? 0 : 1;
}
