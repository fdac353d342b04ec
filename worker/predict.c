/* Predict mode; see predict.h. Reads the model file once, then streams the
 * data a batch at a time through ps_model_predict. */
#include "predict.h"

#include "backend.h"
#include "model.h"
#include "model_file.h"
#include "predict_logreg.h"
#include "safetensors.h"
#include "sparse_lr.h"

#include "common/errmsg.h"
#include "common/sparkps_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Dense models run through ps_model; logreg has its own scorer. */
static int supported(const char *spec)
{
    return strcmp(spec, "softmax") == 0 || strncmp(spec, "mlp:", 4) == 0;
}

static int write_rows(FILE *out, const float *probs, size_t n, size_t classes)
{
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * classes;
        size_t best = 0;
        for (size_t c = 1; c < classes; c++)
            if (p[c] > p[best])
                best = c;
        if (fprintf(out, "%zu", best) < 0)
            return PS_EIO;
        for (size_t c = 0; c < classes; c++)
            if (fprintf(out, ",%.6g", (double)p[c]) < 0)
                return PS_EIO;
        if (fputc('\n', out) == EOF)
            return PS_EIO;
    }
    return PS_OK;
}

int ps_predict_run(const ps_predict_cfg *cfg, FILE *out, ps_predict_result *res,
                   char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    ps_st_file *f = NULL;
    ps_dataset *data = NULL;
    ps_backend *be = NULL;
    ps_model *m = NULL;
    float *params = NULL, *probs = NULL;
    const char *path = cfg->model_file;
    const char *spec;
    size_t input_dim, classes;
    uint64_t correct = 0;
    if (cfg->batch == 0)
        return ps_errf(err, errlen, PS_EINVAL, "--batch must be positive");
    int rc = ps_st_open(&f, path, err, errlen);
    if (rc == PS_OK)
        rc = ps_model_file_spec(f, path, &spec, &input_dim, &classes, err,
                                errlen);
    if (rc != PS_OK)
        goto out;
    if (ps_logreg_is_spec(spec)) {
        rc = ps_predict_logreg(cfg, f, spec, out, res, err, errlen);
        if (rc == PS_OK && fflush(out) != 0)
            rc = ps_errf(err, errlen, PS_EIO, "writing predictions: %s",
                         strerror(errno));
        goto out;
    }
    if (!supported(spec)) {
        rc = ps_errf(err, errlen, PS_EINVAL,
                     "%s: model '%s' not supported by predict (softmax, "
                     "mlp:... and logreg[:BITS] are)",
                     path, spec);
        goto out;
    }
    if ((rc = ps_data_open(&data, &cfg->data, err, errlen)) != PS_OK)
        goto out;
    size_t dim = ps_data_dim(data);
    if (dim == 0) {
        rc = ps_errf(err, errlen, PS_EINVAL,
                     "%s: only dense data (idx, csv) fits model '%s'",
                     cfg->data.path, spec);
        goto out;
    }
    if (input_dim != 0 && dim != input_dim) {
        rc = ps_errf(err, errlen, PS_EINVAL,
                     "%s has %zu features per row, but the model in %s takes "
                     "%zu",
                     cfg->data.path, dim, path, input_dim);
        goto out;
    }
    if (cfg->device != NULL && strchr(cfg->device, ',') != NULL) {
        rc = ps_errf(err, errlen, PS_EINVAL,
                     "--device %s: predict runs on one device", cfg->device);
        goto out;
    }
    if ((rc = ps_backend_open(cfg->device, &be, err, errlen)) != PS_OK ||
        (rc = ps_model_new(&m, spec, dim, classes, be, cfg->batch, err,
                           errlen)) != PS_OK)
        goto out;
    classes = ps_model_classes(m);
    params = malloc((size_t)ps_model_num_params(m) * sizeof(float));
    probs = malloc(cfg->batch * classes * sizeof(float));
    if (params == NULL || probs == NULL) {
        rc = ps_errf(err, errlen, PS_ENOMEM, "out of memory for the model");
        goto out;
    }
    if ((rc = ps_model_file_params(f, path, m, params, err, errlen)) != PS_OK)
        goto out;
    if ((rc = ps_model_set_params(m, params)) != PS_OK) {
        ps_errf(err, errlen, rc, "loading the weights: %s", ps_strerror(rc));
        goto out;
    }
    for (;;) {
        ps_batch b;
        if ((rc = ps_data_next(data, &b, cfg->batch, err, errlen)) != PS_OK ||
            b.n == 0)
            break;
        if ((rc = ps_model_predict(m, b.x, b.n, probs)) != PS_OK) {
            ps_errf(err, errlen, rc, "compute: %s", ps_strerror(rc));
            break;
        }
        if ((rc = write_rows(out, probs, b.n, classes)) != PS_OK) {
            ps_errf(err, errlen, rc, "writing predictions: %s",
                    strerror(errno));
            break;
        }
        for (size_t i = 0; i < b.n; i++) {
            const float *p = probs + i * classes;
            size_t best = 0;
            for (size_t c = 1; c < classes; c++)
                if (p[c] > p[best])
                    best = c;
            correct += (float)best == b.y[i];
        }
        res->rows += b.n;
    }
    if (rc == PS_OK && fflush(out) != 0)
        rc = ps_errf(err, errlen, PS_EIO, "writing predictions: %s",
                     strerror(errno));
    res->accuracy = res->rows ? (double)correct / (double)res->rows : 0;
out:
    free(params);
    free(probs);
    ps_model_free(m);
    ps_backend_free(be);
    ps_data_close(data);
    ps_st_close(f);
    return rc;
}
