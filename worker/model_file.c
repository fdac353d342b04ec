/* Model <-> safetensors mapping; see model_file.h. */
#include "model_file.h"

#include "common/sparkps_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int mf_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int mf_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return PS_EINVAL;
}

void ps_model_file_meta(const char *spec, size_t classes, size_t input_dim,
                        char *buf, size_t len)
{
    snprintf(buf, len, "model=%s;classes=%zu;input_dim=%zu", spec, classes,
             input_dim);
}

static int parse_size(const char *s, size_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
        x > (1ull << 24))
        return -1;
    *v = (size_t)x;
    return 0;
}

int ps_model_file_spec(const ps_st_file *f, const char *path, const char **spec,
                       size_t *input_dim, size_t *classes, char *err,
                       size_t errlen)
{
    const char *model = ps_st_meta(f, "model");
    if (model == NULL || model[0] == '\0')
        return mf_err(err, errlen,
                      "%s: no \"model\" in the metadata (not written by "
                      "ps-ctl export?)",
                      path);
    *spec = model;
    *classes = *input_dim = 0;
    const char *c = ps_st_meta(f, "classes");
    const char *d = ps_st_meta(f, "input_dim");
    if (c != NULL && parse_size(c, classes) != 0)
        return mf_err(err, errlen, "%s: metadata classes=\"%s\" is not a count",
                      path, c);
    if (d != NULL && parse_size(d, input_dim) != 0)
        return mf_err(err, errlen,
                      "%s: metadata input_dim=\"%s\" is not a count", path, d);
    /* Older or hand-made files: a softmax model's sizes are its one
     * weight's shape. */
    const ps_st_tensor *w = ps_st_find(f, "fc1.weight");
    if (*input_dim == 0 && w != NULL && w->ndim == 2)
        *input_dim = (size_t)w->shape[0];
    if (*classes == 0 && strcmp(model, "softmax") == 0 && w != NULL &&
        w->ndim == 2)
        *classes = (size_t)w->shape[1];
    return PS_OK;
}

int ps_model_file_params(const ps_st_file *f, const char *path,
                         const ps_model *m, float *params, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < ps_model_num_tables(m); i++) {
        const ps_model_table *mt = ps_model_table_at(m, i);
        const ps_st_tensor *t = ps_st_find(f, mt->name);
        if (t == NULL)
            return mf_err(err, errlen,
                          "%s: no tensor '%s', which the model needs", path,
                          mt->name);
        if (t->dtype != PS_ST_F32)
            return mf_err(err, errlen, "%s: tensor '%s' is %s, expected F32",
                          path, mt->name, ps_st_dtype_name(t->dtype));
        int ok = (t->ndim == 2 && t->shape[0] == mt->rows &&
                  t->shape[1] == mt->cols) ||
                 (t->ndim == 1 && t->shape[0] == mt->len);
        if (!ok) {
            char got[96] = "";
            size_t at = 0;
            for (size_t k = 0; k < t->ndim && at < sizeof(got) - 24; k++)
                at += (size_t)snprintf(got + at, sizeof(got) - at, "%s%llu",
                                       k ? "," : "",
                                       (unsigned long long)t->shape[k]);
            return mf_err(err, errlen,
                          "%s: tensor '%s' has shape [%s], the model needs "
                          "[%llu,%llu]",
                          path, mt->name, got, (unsigned long long)mt->rows,
                          (unsigned long long)mt->cols);
        }
        memcpy(params + mt->offset, t->data, (size_t)mt->len * sizeof(float));
    }
    return PS_OK;
}
