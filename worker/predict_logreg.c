/* Predict for logreg; see predict_logreg.h. */
#include "predict_logreg.h"

#include "backend.h"
#include "sparse_lr.h"

#include "common/errmsg.h"
#include "common/sparkps_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The exported weights, sorted by key for binary search. */
typedef struct weight_map {
    uint64_t *keys;
    float *w;
    size_t n;
} weight_map;

typedef struct key_weight {
    uint64_t key;
    float w;
} key_weight;

static int by_key(const void *a, const void *b)
{
    uint64_t x = ((const key_weight *)a)->key, y = ((const key_weight *)b)->key;
    return x < y ? -1 : x > y;
}

/* Checks the two tensors of the table and loads them sorted. A file read
 * from disk may hold them unaligned, hence the memcpy per element. */
static int map_load(weight_map *m, const ps_st_file *f, const char *path,
                    char *err, size_t errlen)
{
    const ps_st_tensor *k = ps_st_find(f, PS_LOGREG_TABLE ".keys");
    const ps_st_tensor *v = ps_st_find(f, PS_LOGREG_TABLE ".values");
    if (k == NULL || v == NULL)
        return ps_errf(err, errlen, PS_EINVAL, "%s: no tensor '%s'", path,
                       k == NULL ? PS_LOGREG_TABLE ".keys"
                                 : PS_LOGREG_TABLE ".values");
    if (k->dtype != PS_ST_U64 || k->ndim != 1 || v->dtype != PS_ST_F32 ||
        v->elems != k->elems || (v->ndim == 2 && v->shape[1] != 1))
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: %s.keys must be U64 [n] and %s.values F32 [n, 1]",
                       path, PS_LOGREG_TABLE, PS_LOGREG_TABLE);
    size_t n = (size_t)k->elems;
    key_weight *kw = malloc((n ? n : 1) * sizeof(*kw));
    m->keys = malloc((n ? n : 1) * sizeof(uint64_t));
    m->w = malloc((n ? n : 1) * sizeof(float));
    if (kw == NULL || m->keys == NULL || m->w == NULL) {
        free(kw);
        return ps_errf(err, errlen, PS_ENOMEM, "out of memory for %zu keys", n);
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(&kw[i].key, (const char *)k->data + i * 8, 8);
        memcpy(&kw[i].w, (const char *)v->data + i * 4, 4);
    }
    qsort(kw, n, sizeof(*kw), by_key);
    for (size_t i = 0; i < n; i++) {
        m->keys[i] = kw[i].key;
        m->w[i] = kw[i].w;
    }
    m->n = n;
    free(kw);
    return PS_OK;
}

static int map_lookup(void *ctx, const uint64_t *keys, size_t n, float *w)
{
    const weight_map *m = ctx;
    for (size_t i = 0; i < n; i++) {
        size_t lo = 0, hi = m->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (m->keys[mid] < keys[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        w[i] = lo < m->n && m->keys[lo] == keys[i] ? m->w[lo] : 0.0f;
    }
    return PS_OK;
}

static int write_probs(FILE *out, const float *p1, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fprintf(out, "%d,%.6g,%.6g\n", p1[i] >= 0.5f,
                    (double)(1.0f - p1[i]), (double)p1[i]) < 0)
            return PS_EIO;
    return PS_OK;
}

int ps_predict_logreg(const ps_predict_cfg *cfg, const ps_st_file *f,
                      const char *spec, FILE *out, ps_predict_result *res,
                      char *err, size_t errlen)
{
    weight_map map = {NULL, NULL, 0};
    ps_dataset *data = NULL;
    ps_backend *be = NULL;
    ps_logreg *m = NULL;
    float *probs = NULL;
    uint64_t correct = 0;
    int rc = map_load(&map, f, cfg->model_file, err, errlen);
    if (rc == PS_OK)
        rc = ps_data_open(&data, &cfg->data, err, errlen);
    if (rc == PS_OK && !ps_data_sparse(data))
        rc = ps_errf(err, errlen, PS_EINVAL,
                     "%s: model '%s' needs sparse rows (libsvm or a sparse "
                     "stream)",
                     cfg->data.path, spec);
    if (rc == PS_OK)
        rc = ps_backend_open(cfg->device, &be, err, errlen);
    if (rc == PS_OK)
        rc = ps_logreg_new(&m, spec, be, cfg->batch, err, errlen);
    /* Downloaded into every batch: pinned on a GPU. */
    if (rc == PS_OK &&
        (probs = ps_backend_host_alloc(be, cfg->batch * sizeof(float))) ==
            NULL)
        rc = ps_errf(err, errlen, PS_ENOMEM, "out of memory");
    while (rc == PS_OK) {
        ps_batch b;
        if ((rc = ps_data_next(data, &b, cfg->batch, err, errlen)) != PS_OK ||
            b.n == 0)
            break;
        if ((rc = ps_logreg_predict(m, &b, map_lookup, &map, probs)) != PS_OK) {
            ps_errf(err, errlen, rc, "compute: %s", ps_strerror(rc));
            break;
        }
        if ((rc = write_probs(out, probs, b.n)) != PS_OK) {
            ps_errf(err, errlen, rc, "writing predictions: %s",
                    strerror(errno));
            break;
        }
        for (size_t i = 0; i < b.n; i++)
            correct += (float)(probs[i] >= 0.5f) == b.y[i];
        res->rows += b.n;
    }
    res->accuracy = res->rows ? (double)correct / (double)res->rows : 0;
    if (be != NULL)
        ps_backend_host_free(be, probs);
    ps_logreg_free(m);
    ps_backend_free(be);
    ps_data_close(data);
    free(map.keys);
    free(map.w);
    return rc;
}
