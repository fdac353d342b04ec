/* Dense models (softmax regression and ReLU MLPs) on a compute backend.
 *
 * A model is a stack of fully connected layers y = x·W + b with W stored
 * [in, out] row-major; "softmax" is the one-layer case. Everything a step
 * touches lives in device buffers allocated once in ps_model_new for
 * max_batch rows: the flat parameters and gradients (same layout as the
 * tables), the input and labels, every layer's output (kept for backward:
 * ReLU's mask is read from its output) and two ping-pong buffers for the
 * gradients flowing backwards. The host only uploads a batch and
 * downloads the gradient and two floats (loss, correct) per step. One
 * thread per model.
 *
 * Input slots: the batch buffers come twice, so the next batch can go up
 * on the backend's copy stream while a step computes on the other slot
 * (ps_model_stage). Every step and evaluation goes through a slot: the
 * one-call forms stage into slot 0 and start at once. The gradient comes
 * down layer by layer on the copy stream as the backward pass finishes
 * each, beside the layers still computing. */
#include "model.h"
#include "sparkps.h"

#include "common/errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_MAX_WIDTH ((size_t)1 << 24) /* any one layer */
#define MODEL_MAX_BATCH ((size_t)1 << 20)

struct ps_model {
    ps_backend *be; /* borrowed */
    size_t nlayers; /* weight matrices */
    size_t widths[PS_MODEL_MAX_LAYERS + 1];
    size_t ntables;
    ps_model_table tables[2 * PS_MODEL_MAX_LAYERS];
    uint64_t nparams;
    size_t max_batch;
    size_t max_out; /* widest layer output: sizes the delta buffers */
    ps_buf *params, *grads;
    ps_buf *x[2];                     /* per slot: [max_batch, widths[0]] */
    ps_buf *labels[2];                /* per slot: max_batch floats */
    size_t staged[2];                 /* rows staged in a slot, not taken */
    int busy[2];                      /* a step on the slot has not ended */
    ps_buf *act[PS_MODEL_MAX_LAYERS]; /* layer l's output, after ReLU */
    ps_buf *delta[2];                 /* [max_batch, max_out] */
    ps_buf *stats;                    /* loss, correct */
    int have_grads;                   /* a step has run since set_params */
};

/* Parses "A-B-...-K" into widths; returns the count or 0 on error. */
static size_t parse_widths(const char *s, size_t *widths, char *err,
                           size_t errlen)
{
    size_t count = 0;
    const char *p = s;

    for (;;) {
        char *end;
        unsigned long long v;

        if (*p < '0' || *p > '9') {
            ps_errf(err, errlen, PS_OK,
                    "model spec \"mlp:%s\": want widths like "
                    "mlp:784-256-10 (digits separated by '-')",
                    s);
            return 0;
        }
        errno = 0;
        v = strtoull(p, &end, 10);
        if (errno != 0 || v < 1 || v > MODEL_MAX_WIDTH) {
            ps_errf(err, errlen, PS_OK,
                    "model spec \"mlp:%s\": width %.*s outside 1..%zu", s,
                    (int)(end - p), p, MODEL_MAX_WIDTH);
            return 0;
        }
        if (count == PS_MODEL_MAX_LAYERS + 1) {
            ps_errf(err, errlen, PS_OK,
                    "model spec \"mlp:%s\": more than %d layers", s,
                    PS_MODEL_MAX_LAYERS);
            return 0;
        }
        widths[count++] = (size_t)v;
        if (*end == '\0')
            break;
        if (*end != '-') {
            ps_errf(err, errlen, PS_OK,
                    "model spec \"mlp:%s\": unexpected '%c' after a width", s,
                    *end);
            return 0;
        }
        p = end + 1;
    }
    if (count < 2) {
        ps_errf(err, errlen, PS_OK,
                "model spec \"mlp:%s\": need at least two widths "
                "(input and classes)",
                s);
        return 0;
    }
    return count;
}

/* Fills widths from the spec and checks them against the data. */
static int parse_spec(ps_model *m, const char *spec, size_t input_dim,
                      size_t classes, char *err, size_t errlen)
{
    size_t nw;

    if (spec == NULL) {
        ps_errf(err, errlen, PS_OK, "model spec is NULL");
        return PS_EINVAL;
    }
    if (strcmp(spec, "softmax") == 0) {
        if (input_dim < 1 || input_dim > MODEL_MAX_WIDTH || classes < 1 ||
            classes > MODEL_MAX_WIDTH) {
            ps_errf(err, errlen, PS_OK,
                    "model softmax: input_dim %zu and classes %zu must be in "
                    "1..%zu",
                    input_dim, classes, MODEL_MAX_WIDTH);
            return PS_EINVAL;
        }
        m->widths[0] = input_dim;
        m->widths[1] = classes;
        m->nlayers = 1;
        return PS_OK;
    }
    if (strncmp(spec, "mlp:", 4) != 0) {
        ps_errf(err, errlen, PS_OK,
                "unknown model spec \"%s\" (want softmax or mlp:A-B-...-K)",
                spec);
        return PS_EINVAL;
    }
    nw = parse_widths(spec + 4, m->widths, err, errlen);
    if (nw == 0)
        return PS_EINVAL;
    if (input_dim != 0 && m->widths[0] != input_dim) {
        ps_errf(err, errlen, PS_OK,
                "model spec \"%s\": first width %zu != the data's input "
                "dimension %zu",
                spec, m->widths[0], input_dim);
        return PS_EINVAL;
    }
    if (classes != 0 && m->widths[nw - 1] != classes) {
        ps_errf(err, errlen, PS_OK,
                "model spec \"%s\": last width %zu != the data's %zu classes",
                spec, m->widths[nw - 1], classes);
        return PS_EINVAL;
    }
    m->nlayers = nw - 1;
    return PS_OK;
}

/* Builds the table list and totals; checks sizes fit a buffer. */
static int layout(ps_model *m, char *err, size_t errlen)
{
    uint64_t off = 0;
    size_t acts = 0;

    m->max_out = 0;
    for (size_t l = 0; l < m->nlayers; l++) {
        size_t in = m->widths[l], out = m->widths[l + 1];
        ps_model_table *w = &m->tables[2 * l], *b = &m->tables[2 * l + 1];

        snprintf(w->name, sizeof(w->name), "fc%zu.weight", l + 1);
        w->offset = off;
        w->rows = in;
        w->cols = out;
        w->len = (uint64_t)in * out; /* both <= 2^24: no overflow */
        w->init_kind =
            l + 1 < m->nlayers ? (int)PS_INIT_HE : (int)PS_INIT_XAVIER;
        off += w->len;

        snprintf(b->name, sizeof(b->name), "fc%zu.bias", l + 1);
        b->offset = off;
        b->rows = 1;
        b->cols = out;
        b->len = out;
        b->init_kind = PS_INIT_ZEROS;
        off += b->len;

        if (out > m->max_out)
            m->max_out = out;
        acts += out;
    }
    m->ntables = 2 * m->nlayers;
    m->nparams = off;
    /* Every buffer must fit the backend's limit; the largest of the batch
     * buffers is bounded by max_batch * sum of widths. */
    if (off > PS_BACKEND_MAX_BYTES / sizeof(float) ||
        (uint64_t)m->max_batch * (acts + m->widths[0]) >
            PS_BACKEND_MAX_BYTES / sizeof(float)) {
        ps_errf(err, errlen, PS_OK,
                "model too large: %llu parameters, batch %zu (limit %zu "
                "bytes per buffer)",
                (unsigned long long)off, m->max_batch,
                (size_t)PS_BACKEND_MAX_BYTES);
        return PS_EINVAL;
    }
    return PS_OK;
}

static int alloc_floats(ps_backend *be, size_t n, ps_buf **out)
{
    return ps_backend_buf_alloc(be, n * sizeof(float), out);
}

int ps_model_new(ps_model **out, const char *spec, size_t input_dim,
                 size_t classes, ps_backend *be, size_t max_batch, char *err,
                 size_t errlen)
{
    ps_model *m = NULL;
    int rc;

    if (out == NULL || be == NULL) {
        ps_errf(err, errlen, PS_OK,
                "ps_model_new: out and backend are required");
        return PS_EINVAL;
    }
    if (max_batch < 1 || max_batch > MODEL_MAX_BATCH) {
        ps_errf(err, errlen, PS_OK, "model: max_batch %zu outside 1..%zu",
                max_batch, MODEL_MAX_BATCH);
        return PS_EINVAL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        ps_errf(err, errlen, PS_OK, "model: out of memory");
        return PS_ENOMEM;
    }
    m->be = be;
    m->max_batch = max_batch;
    if ((rc = parse_spec(m, spec, input_dim, classes, err, errlen)) != PS_OK ||
        (rc = layout(m, err, errlen)) != PS_OK)
        goto out;

    if ((rc = alloc_floats(be, m->nparams, &m->params)) != PS_OK ||
        (rc = alloc_floats(be, m->nparams, &m->grads)) != PS_OK ||
        (rc = alloc_floats(be, max_batch * m->widths[0], &m->x[0])) != PS_OK ||
        (rc = alloc_floats(be, max_batch * m->widths[0], &m->x[1])) != PS_OK ||
        (rc = alloc_floats(be, max_batch, &m->labels[0])) != PS_OK ||
        (rc = alloc_floats(be, max_batch, &m->labels[1])) != PS_OK ||
        (rc = alloc_floats(be, max_batch * m->max_out, &m->delta[0])) !=
            PS_OK ||
        (rc = alloc_floats(be, max_batch * m->max_out, &m->delta[1])) !=
            PS_OK ||
        (rc = alloc_floats(be, 2, &m->stats)) != PS_OK)
        goto fail_alloc;
    for (size_t l = 0; l < m->nlayers; l++)
        if ((rc = alloc_floats(be, max_batch * m->widths[l + 1], &m->act[l])) !=
            PS_OK)
            goto fail_alloc;
    *out = m;
    return PS_OK;

fail_alloc:
    ps_errf(err, errlen, PS_OK,
            "model %s: cannot allocate device buffers on %s (%llu "
            "parameters, batch %zu): %s",
            spec, ps_backend_name(be), (unsigned long long)m->nparams,
            max_batch, ps_strerror(rc));
out:
    ps_model_free(m);
    return rc;
}

void ps_model_free(ps_model *m)
{
    if (m == NULL)
        return;
    ps_backend_buf_free(m->be, m->params);
    ps_backend_buf_free(m->be, m->grads);
    for (int i = 0; i < 2; i++) {
        ps_backend_buf_free(m->be, m->x[i]);
        ps_backend_buf_free(m->be, m->labels[i]);
    }
    ps_backend_buf_free(m->be, m->delta[0]);
    ps_backend_buf_free(m->be, m->delta[1]);
    ps_backend_buf_free(m->be, m->stats);
    for (size_t l = 0; l < m->nlayers; l++)
        ps_backend_buf_free(m->be, m->act[l]);
    free(m);
}

size_t ps_model_num_tables(const ps_model *m)
{
    return m->ntables;
}

const ps_model_table *ps_model_table_at(const ps_model *m, size_t i)
{
    return i < m->ntables ? &m->tables[i] : NULL;
}

uint64_t ps_model_num_params(const ps_model *m)
{
    return m->nparams;
}

size_t ps_model_input_dim(const ps_model *m)
{
    return m->widths[0];
}

size_t ps_model_classes(const ps_model *m)
{
    return m->widths[m->nlayers];
}

int ps_model_set_params_async(ps_model *m, const float *params)
{
    if (params == NULL)
        return PS_EINVAL;
    m->have_grads = 0;
    return ps_backend_upload(m->be, m->params, 0, params,
                             m->nparams * sizeof(float));
}

int ps_model_set_params(ps_model *m, const float *params)
{
    int rc = ps_model_set_params_async(m, params);

    /* params may be reused by the caller as soon as we return. */
    return rc == PS_OK ? ps_backend_sync(m->be) : rc;
}

/* Error exit once work may be in flight: the caller's x and y must not be
 * read after we return, so wait for what was issued. */
static int drain(ps_model *m, int rc)
{
    (void)ps_backend_sync(m->be);
    m->busy[0] = m->busy[1] = 0;
    return rc;
}

/* Parameter matrix operand for table t. */
static ps_mat param_mat(const ps_model *m, ps_buf *buf, size_t t)
{
    ps_mat r = {buf, (size_t)m->tables[t].offset, (size_t)m->tables[t].cols};
    return r;
}

static ps_mat act_mat(ps_buf *buf, size_t cols)
{
    ps_mat r = {buf, 0, cols};
    return r;
}

/* Checks a batch and sends it up to `slot` on the copy stream; y may be
 * NULL (predict). */
static int load(ps_model *m, int slot, const float *x, const float *y, size_t n)
{
    ps_backend *be = m->be;
    int rc;

    if (slot < 0 || slot > 1 || x == NULL || n < 1 || n > m->max_batch ||
        m->staged[slot] != 0 || m->busy[slot])
        return PS_EINVAL;
    if (y != NULL) {
        float classes = (float)ps_model_classes(m);
        for (size_t i = 0; i < n; i++)
            if (!(y[i] >= 0.0f && y[i] < classes && y[i] == (float)(long)y[i]))
                return PS_EINVAL;
        if ((rc = ps_backend_upload_ahead(be, m->labels[slot], 0, y,
                                          n * sizeof(float))) != PS_OK)
            return drain(m, rc);
    }
    if ((rc = ps_backend_upload_ahead(
             be, m->x[slot], 0, x, n * m->widths[0] * sizeof(float))) != PS_OK)
        return drain(m, rc); /* the caller may free y once we return */
    m->staged[slot] = n;
    return PS_OK;
}

int ps_model_stage(ps_model *m, int slot, const float *x, const float *y,
                   size_t n)
{
    return y == NULL ? PS_EINVAL : load(m, slot, x, y, n);
}

void ps_model_unstage(ps_model *m, int slot)
{
    if ((slot == 0 || slot == 1) && m->staged[slot] != 0) {
        m->staged[slot] = 0;
        (void)drain(m, PS_OK); /* its upload may still read the host rows */
    }
}

/* Takes the batch staged in `slot`: *n its rows, 0 when none; operations
 * issued from here on see it. */
static int take(ps_model *m, int slot, size_t *n)
{
    *n = slot == 0 || slot == 1 ? m->staged[slot] : 0;
    if (*n == 0)
        return PS_EINVAL;
    m->staged[slot] = 0;
    return ps_backend_copy_fence(m->be);
}

/* Runs the layers on the n rows in `slot`; act[nlayers-1] holds the
 * logits. */
static int forward(ps_model *m, int slot, size_t n)
{
    ps_backend *be = m->be;
    int rc;

    for (size_t l = 0; l < m->nlayers; l++) {
        size_t in = m->widths[l], outw = m->widths[l + 1];
        ps_mat a = act_mat(l == 0 ? m->x[slot] : m->act[l - 1], in);
        ps_mat z = act_mat(m->act[l], outw);

        if ((rc = ps_backend_sgemm(be, 0, 0, n, outw, in, 1.0f, a,
                                   param_mat(m, m->params, 2 * l), 0.0f, z)) !=
                PS_OK ||
            (rc = ps_backend_add_bias(be, z, n, outw, m->params,
                                      m->tables[2 * l + 1].offset)) != PS_OK)
            return rc;
        if (l + 1 < m->nlayers &&
            (rc = ps_backend_relu_fwd(be, m->act[l], 0, m->act[l], 0,
                                      n * outw)) != PS_OK)
            return rc;
    }
    return PS_OK;
}

/* Layer l's weight and bias gradient (adjacent in the flat layout) down
 * to grads on the copy stream, while the layers below still compute. */
static int download_layer(ps_model *m, size_t l, float *grads)
{
    const ps_model_table *w = &m->tables[2 * l];
    size_t floats = (size_t)(w->len + m->tables[2 * l + 1].len);

    return ps_backend_download_ahead(m->be, m->grads, w->offset * sizeof(float),
                                     grads + w->offset, floats * sizeof(float));
}

int ps_model_step_staged_begin(ps_model *m, int slot, float *grads)
{
    ps_backend *be = m->be;
    size_t classes = ps_model_classes(m), cur = 0, n;
    int rc;

    if ((rc = take(m, slot, &n)) != PS_OK)
        return rc;
    m->have_grads = 0;
    m->busy[slot] = 1;
    if ((rc = forward(m, slot, n)) != PS_OK ||
        (rc = ps_backend_softmax_xent(be, m->act[m->nlayers - 1], 0,
                                      m->labels[slot], 0, n, classes,
                                      m->delta[0], 0, m->stats, 0)) != PS_OK)
        return drain(m, rc);
    /* delta[cur] holds dLoss/dz of layer l, [n, widths[l+1]]. */
    for (size_t l = m->nlayers; l-- > 0;) {
        size_t in = m->widths[l], outw = m->widths[l + 1];
        ps_mat a = act_mat(l == 0 ? m->x[slot] : m->act[l - 1], in);
        ps_mat d = act_mat(m->delta[cur], outw);

        if ((rc = ps_backend_sgemm(be, 1, 0, in, outw, n, 1.0f, a, d, 0.0f,
                                   param_mat(m, m->grads, 2 * l))) != PS_OK ||
            (rc = ps_backend_col_sum(be, d, n, outw, 0.0f, m->grads,
                                     m->tables[2 * l + 1].offset)) != PS_OK ||
            (grads != NULL && (rc = download_layer(m, l, grads)) != PS_OK))
            return drain(m, rc);
        if (l == 0)
            break;
        /* dLoss/da of the layer below, then through its ReLU. */
        if ((rc = ps_backend_sgemm(be, 0, 1, n, in, outw, 1.0f, d,
                                   param_mat(m, m->params, 2 * l), 0.0f,
                                   act_mat(m->delta[1 - cur], in))) != PS_OK ||
            (rc = ps_backend_relu_bwd(be, m->delta[1 - cur], 0, m->act[l - 1],
                                      0, m->delta[1 - cur], 0, n * in)) !=
                PS_OK)
            return drain(m, rc);
        cur = 1 - cur;
    }
    return PS_OK;
}

int ps_model_step_begin(ps_model *m, const float *x, const float *y, size_t n)
{
    int rc = y == NULL ? PS_EINVAL : load(m, 0, x, y, n);

    return rc == PS_OK ? ps_model_step_staged_begin(m, 0, NULL) : rc;
}

int ps_model_step_end(ps_model *m, double *loss, size_t *correct)
{
    int rc = ps_backend_fetch_stats(m->be, m->stats, 0, loss, correct);

    if (rc != PS_OK)
        return drain(m, rc);
    m->busy[0] = m->busy[1] = 0;
    m->have_grads = 1;
    return PS_OK;
}

int ps_model_step(ps_model *m, const float *x, const float *y, size_t n,
                  double *loss, size_t *correct)
{
    int rc = ps_model_step_begin(m, x, y, n);

    return rc == PS_OK ? ps_model_step_end(m, loss, correct) : rc;
}

int ps_model_step_grads(ps_model *m, const float *x, const float *y, size_t n,
                        float *grads, double *loss, size_t *correct)
{
    int rc;

    if (grads == NULL || y == NULL)
        return PS_EINVAL;
    /* The gradient comes down during the step: step_end's wait covers it. */
    if ((rc = load(m, 0, x, y, n)) != PS_OK ||
        (rc = ps_model_step_staged_begin(m, 0, grads)) != PS_OK)
        return rc;
    return ps_model_step_end(m, loss, correct);
}

ps_buf *ps_model_params_buf(ps_model *m)
{
    return m->params;
}

ps_buf *ps_model_grads_buf(ps_model *m)
{
    return m->grads;
}

ps_backend *ps_model_backend(ps_model *m)
{
    return m->be;
}

int ps_model_get_grads(ps_model *m, float *grads)
{
    int rc;

    if (grads == NULL || !m->have_grads)
        return PS_EINVAL;
    if ((rc = ps_backend_download(m->be, m->grads, 0, grads,
                                  m->nparams * sizeof(float))) != PS_OK)
        return rc;
    return ps_backend_sync(m->be);
}

int ps_model_eval(ps_model *m, const float *x, const float *y, size_t n,
                  double *loss, size_t *correct)
{
    int rc;

    if (y == NULL)
        return PS_EINVAL;
    if ((rc = load(m, 0, x, y, n)) != PS_OK)
        return rc;
    if ((rc = take(m, 0, &n)) != PS_OK || (rc = forward(m, 0, n)) != PS_OK ||
        (rc = ps_backend_softmax_xent(m->be, m->act[m->nlayers - 1], 0,
                                      m->labels[0], 0, n, ps_model_classes(m),
                                      NULL, 0, m->stats, 0)) != PS_OK ||
        (rc = ps_backend_fetch_stats(m->be, m->stats, 0, loss, correct)) !=
            PS_OK)
        return drain(m, rc);
    return PS_OK;
}

int ps_model_predict(ps_model *m, const float *x, size_t n, float *probs)
{
    size_t classes = ps_model_classes(m);
    int rc;

    if (probs == NULL)
        return PS_EINVAL;
    if ((rc = load(m, 0, x, NULL, n)) != PS_OK)
        return rc;
    if ((rc = take(m, 0, &n)) != PS_OK || (rc = forward(m, 0, n)) != PS_OK ||
        (rc = ps_backend_softmax(m->be, m->act[m->nlayers - 1], 0, m->delta[0],
                                 0, n, classes)) != PS_OK ||
        (rc = ps_backend_download(m->be, m->delta[0], 0, probs,
                                  n * classes * sizeof(float))) != PS_OK)
        return drain(m, rc);
    return ps_backend_sync(m->be);
}
