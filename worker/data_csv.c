/* CSV reader: dense numeric rows, comma-separated, one label column, an
 * optional header line. The column count comes from the first data line
 * (read once at open, then the file is rewound); every later row must have
 * as many. Empty lines are skipped and are not records. Only rows of this
 * reader's share are parsed, so a bad row is reported by the reader whose
 * share holds it. */
#include "data_int.h"

#include "common/sparkps_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longest field text quoted back in an error message. */
#define CSV_QUOTE_MAX 40

typedef struct csv_state {
    ps__lines lines;
    size_t ncols;       /* columns per row, from the first data line */
    size_t label_col;   /* 0-based, resolved from cfg.csv_label_col */
    int header_pending; /* the next non-empty line is the header */
} csv_state;

static size_t count_cols(const char *line)
{
    size_t n = 1;
    for (const char *p = line; (p = strchr(p, ',')) != NULL; p++)
        n++;
    return n;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int csv_open(ps_dataset *d, char *err, size_t errlen)
{
    csv_state *st = calloc(1, sizeof(*st));
    if (!st) {
        ps__data_err(err, errlen, "%s: out of memory", d->path);
        return PS_ENOMEM;
    }
    d->fmt = st;
    int rc = ps__lines_open(&st->lines, d->path, err, errlen);
    if (rc != PS_OK)
        return rc;

    /* Find the first data line for the column count. */
    int header = d->cfg.csv_header != 0;
    char *line;
    size_t len;
    for (;;) {
        rc = ps__lines_next(&st->lines, &line, &len, err, errlen);
        if (rc != PS_OK)
            return rc;
        if (!line) {
            ps__data_err(err, errlen, "%s: no data rows", d->path);
            return PS_EINVAL;
        }
        if (len == 0)
            continue;
        if (header) {
            header = 0;
            continue;
        }
        break;
    }
    st->ncols = count_cols(line);
    if (st->ncols < 2) {
        ps__data_err(err, errlen,
                     "%s:%llu: 1 column; need a label and at least one "
                     "feature",
                     d->path, (unsigned long long)st->lines.lineno);
        return PS_EINVAL;
    }
    int lc = d->cfg.csv_label_col;
    if (lc < -1 || (lc >= 0 && (size_t)lc >= st->ncols)) {
        ps__data_err(err, errlen,
                     "%s:%llu: label column %d, but rows have %zu columns "
                     "(0-based; -1: last)",
                     d->path, (unsigned long long)st->lines.lineno, lc,
                     st->ncols);
        return PS_EINVAL;
    }
    st->label_col = lc < 0 ? st->ncols - 1 : (size_t)lc;
    d->dim = st->ncols - 1;
    return d->ops->rewind(d, err, errlen);
}

/* Parses one row into x (dim floats) and *y. */
static int parse_row(ps_dataset *d, csv_state *st, const char *line, float *x,
                     float *y, char *err, size_t errlen)
{
    unsigned long long lineno = (unsigned long long)st->lines.lineno;
    size_t cols = count_cols(line);
    if (cols != st->ncols) {
        ps__data_err(err, errlen, "%s:%llu: %zu columns, expected %zu", d->path,
                     lineno, cols, st->ncols);
        return PS_EINVAL;
    }
    const char *p = line;
    size_t k = 0;
    for (size_t col = 0; col < cols; col++) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *s = p;
        while (s < end && is_blank(*s))
            s++;
        if (s == end) {
            ps__data_err(err, errlen, "%s:%llu: column %zu: empty field",
                         d->path, lineno, col + 1);
            return PS_EINVAL;
        }
        char *e;
        float v = strtof(s, &e);
        const char *t = e;
        while (t < end && is_blank(*t))
            t++;
        if (e == s || t != end) {
            int flen = (int)(end - s < CSV_QUOTE_MAX ? end - s : CSV_QUOTE_MAX);
            ps__data_err(err, errlen, "%s:%llu: column %zu: bad number '%.*s'",
                         d->path, lineno, col + 1, flen, s);
            return PS_EINVAL;
        }
        if (!isfinite(v)) {
            int flen = (int)(end - s < CSV_QUOTE_MAX ? end - s : CSV_QUOTE_MAX);
            ps__data_err(err, errlen,
                         "%s:%llu: column %zu: '%.*s' is not a finite float",
                         d->path, lineno, col + 1, flen, s);
            return PS_EINVAL;
        }
        if (col == st->label_col)
            *y = v;
        else
            x[k++] = v;
        p = *end ? end + 1 : end;
    }
    return PS_OK;
}

static int csv_next(ps_dataset *d, ps_batch *b, size_t max_rows, char *err,
                    size_t errlen)
{
    csv_state *st = d->fmt;
    int rc = ps__data_reserve_rows(d, max_rows, d->dim, err, errlen);
    if (rc != PS_OK)
        return rc;
    size_t n = 0;
    while (n < max_rows) {
        char *line;
        size_t len;
        rc = ps__lines_next(&st->lines, &line, &len, err, errlen);
        if (rc != PS_OK)
            return rc;
        if (!line)
            break;
        if (len == 0)
            continue;
        if (st->header_pending) {
            st->header_pending = 0;
            continue;
        }
        if (!ps__data_mine(d, d->record++))
            continue;
        rc = parse_row(d, st, line, d->x + n * d->dim, &d->y[n], err, errlen);
        if (rc != PS_OK)
            return rc;
        n++;
    }
    b->n = n;
    b->dim = d->dim;
    b->x = d->x;
    b->y = d->y;
    return PS_OK;
}

static int csv_rewind(ps_dataset *d, char *err, size_t errlen)
{
    csv_state *st = d->fmt;
    st->header_pending = d->cfg.csv_header != 0;
    return ps__lines_rewind(&st->lines, err, errlen);
}

static void csv_close(ps_dataset *d)
{
    csv_state *st = d->fmt;
    if (!st)
        return;
    ps__lines_close(&st->lines);
    free(st);
    d->fmt = NULL;
}

const ps__data_ops ps__data_csv_ops = {csv_open, csv_next, csv_rewind,
                                       csv_close};
