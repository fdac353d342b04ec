/* libsvm / svmlight reader: "label idx:val idx:val ... # comment" per line,
 * into CSR batches. File indices are 1-based unless cfg.libsvm_one_based is
 * 0; feature ids handed out are always 0-based (file index - 1 for 1-based
 * files), strictly increasing within a row. Labels -1 become 0 (so +1/-1
 * files train logistic regression like 0/1 files); other labels pass
 * through as class ids. svmlight "qid:N" tokens are skipped. Lines that are
 * empty, blank or only a comment are not records. */
#include "data_int.h"

#include "common/sparkps_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longest token text quoted back in an error message. */
#define SVM_QUOTE_MAX 40

typedef struct svm_state {
    ps__lines lines;
} svm_state;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* Parses [s, end) as a whole finite float. */
static int parse_float(const char *s, const char *end, float *out)
{
    if (s == end || is_space(*s))
        return -1;
    char *e;
    float v = strtof(s, &e);
    if (e != end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Parses [s, end) as a decimal index: digits only. */
static int parse_index(const char *s, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    if (s == end)
        return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned dgt = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return -1;
        v = v * 10 + dgt;
    }
    *out = v;
    return 0;
}

static int qlen(const char *s, const char *end)
{
    return (int)(end - s < SVM_QUOTE_MAX ? end - s : SVM_QUOTE_MAX);
}

/* Parses one record into row n of the batch (rowptr[n] already set). */
static int parse_row(ps_dataset *d, svm_state *st, char *line, size_t n,
                     char *err, size_t errlen)
{
    unsigned long long lineno = (unsigned long long)st->lines.lineno;
    const char *p = line;
    while (is_space(*p))
        p++;
    const char *end = p;
    while (*end && !is_space(*end))
        end++;
    float label;
    if (parse_float(p, end, &label) != 0) {
        ps__data_err(err, errlen, "%s:%llu: bad label '%.*s'", d->path, lineno,
                     qlen(p, end), p);
        return PS_EINVAL;
    }
    d->y[n] = label == -1.0f ? 0.0f : label;

    size_t nnz = d->rowptr[n];
    uint64_t prev = 0, max_id = 0;
    int have_prev = 0;
    for (p = end;;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        const char *tok = p;
        end = p;
        while (*end && !is_space(*end))
            end++;
        p = end;
        const char *colon = memchr(tok, ':', (size_t)(end - tok));
        if (!colon) {
            ps__data_err(err, errlen, "%s:%llu: missing ':' in '%.*s'", d->path,
                         lineno, qlen(tok, end), tok);
            return PS_EINVAL;
        }
        if (colon - tok == 3 && memcmp(tok, "qid", 3) == 0)
            continue;
        uint64_t index;
        if (parse_index(tok, colon, &index) != 0) {
            ps__data_err(err, errlen, "%s:%llu: bad feature index in '%.*s'",
                         d->path, lineno, qlen(tok, end), tok);
            return PS_EINVAL;
        }
        if (d->cfg.libsvm_one_based && index == 0) {
            ps__data_err(err, errlen,
                         "%s:%llu: feature index 0 in a 1-based file", d->path,
                         lineno);
            return PS_EINVAL;
        }
        uint64_t id = d->cfg.libsvm_one_based ? index - 1 : index;
        if (id >= PS_DATA_MAX_FEATURE) {
            ps__data_err(err, errlen,
                         "%s:%llu: feature index %llu too large (max %llu)",
                         d->path, lineno, (unsigned long long)index,
                         (unsigned long long)(PS_DATA_MAX_FEATURE - 1 +
                                              !!d->cfg.libsvm_one_based));
            return PS_EINVAL;
        }
        if (have_prev && id <= prev) {
            ps__data_err(err, errlen,
                         "%s:%llu: feature index %llu not above the "
                         "previous one",
                         d->path, lineno, (unsigned long long)index);
            return PS_EINVAL;
        }
        float v;
        if (parse_float(colon + 1, end, &v) != 0) {
            ps__data_err(err, errlen, "%s:%llu: bad value in '%.*s'", d->path,
                         lineno, qlen(tok, end), tok);
            return PS_EINVAL;
        }
        if (nnz == d->nnz_cap) {
            int rc = ps__data_reserve_nnz(d, nnz + 1, err, errlen);
            if (rc != PS_OK)
                return rc;
        }
        d->idx[nnz] = id;
        d->val[nnz] = v;
        nnz++;
        prev = id;
        have_prev = 1;
        max_id = id;
    }
    d->rowptr[n + 1] = nnz;
    if (have_prev && max_id + 1 > d->dim)
        d->dim = (size_t)(max_id + 1);
    return PS_OK;
}

static int svm_open(ps_dataset *d, char *err, size_t errlen)
{
    svm_state *st = calloc(1, sizeof(*st));
    if (!st) {
        ps__data_err(err, errlen, "%s: out of memory", d->path);
        return PS_ENOMEM;
    }
    d->fmt = st;
    return ps__lines_open(&st->lines, d->path, err, errlen);
}

static int svm_next(ps_dataset *d, ps_batch *b, size_t max_rows, char *err,
                    size_t errlen)
{
    svm_state *st = d->fmt;
    int rc = ps__data_reserve_rows(d, max_rows, 0, err, errlen);
    if (rc == PS_OK) /* idx/val non-NULL even for a batch of empty rows */
        rc = ps__data_reserve_nnz(d, 1, err, errlen);
    if (rc != PS_OK)
        return rc;
    size_t n = 0;
    d->rowptr[0] = 0;
    while (n < max_rows) {
        char *line;
        size_t len;
        rc = ps__lines_next(&st->lines, &line, &len, err, errlen);
        if (rc != PS_OK)
            return rc;
        if (!line)
            break;
        char *hash = memchr(line, '#', len);
        if (hash)
            *hash = '\0';
        const char *s = line;
        while (is_space(*s))
            s++;
        if (!*s)
            continue; /* empty, blank or comment-only: not a record */
        if (!ps__data_mine(d, d->record++))
            continue;
        rc = parse_row(d, st, line, n, err, errlen);
        if (rc != PS_OK)
            return rc;
        n++;
    }
    b->n = n;
    b->dim = 0;
    b->y = d->y;
    b->rowptr = d->rowptr;
    b->idx = d->idx;
    b->val = d->val;
    return PS_OK;
}

static int svm_rewind(ps_dataset *d, char *err, size_t errlen)
{
    svm_state *st = d->fmt;
    return ps__lines_rewind(&st->lines, err, errlen);
}

static void svm_close(ps_dataset *d)
{
    svm_state *st = d->fmt;
    if (!st)
        return;
    ps__lines_close(&st->lines);
    free(st);
    d->fmt = NULL;
}

const ps__data_ops ps__data_libsvm_ops = {svm_open, svm_next, svm_rewind,
                                          svm_close};
