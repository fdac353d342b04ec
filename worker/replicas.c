/* A data-parallel device group; see replicas.h.
 *
 * Holds N ps_models (one per backend, each owning its device buffers) and
 * one communicator. Nothing is copied through the host on the NCCL path
 * but the batch slices going up and the one gradient coming down. */
#include "replicas.h"

#include "comm.h"
#include "common/errmsg.h"

#include <stdlib.h>

struct ps_replicas {
    size_t n;
    ps_model *models[PS_COMM_MAX_RANKS];
    ps_comm *comm;
    size_t max_batch; /* of the whole group */
    size_t rows;      /* of the last step */
    size_t staged[2]; /* rows staged in each input slot, not yet taken */
    size_t begun;     /* replicas whose step is issued, not ended */
    int have_grads;   /* a step has run since set_params */
    int reduced;      /* its gradient sits summed in replica 0 */
};

/* Replica i's rows of an n-row batch: [*off, *off + *len). */
static void slice(const ps_replicas *g, size_t n, size_t i, size_t *off,
                  size_t *len)
{
    size_t base = n / g->n, extra = n % g->n;

    *len = base + (i < extra ? 1 : 0);
    *off = i * base + (i < extra ? i : extra);
}

/* Replicas with rows in an n-row batch: the first min(n, N); the rest sit
 * the step out. */
static size_t active(const ps_replicas *g, size_t n)
{
    return n < g->n ? n : g->n;
}

int ps_replicas_new(ps_replicas **out, const char *spec, size_t input_dim,
                    size_t classes, ps_backend *const *bes, size_t n,
                    size_t max_batch, char *err, size_t errlen)
{
    ps_replicas *g;
    int rc = PS_OK;

    if (out == NULL || bes == NULL || n < 1 || n > PS_COMM_MAX_RANKS ||
        max_batch < 1) {
        ps_errf(err, errlen, PS_OK,
                "device group: want 1..%d devices and a batch >= 1",
                PS_COMM_MAX_RANKS);
        return PS_EINVAL;
    }
    if ((g = calloc(1, sizeof(*g))) == NULL) {
        ps_errf(err, errlen, PS_OK, "device group: out of memory");
        return PS_ENOMEM;
    }
    g->n = n;
    g->max_batch = max_batch;
    for (size_t i = 0; rc == PS_OK && i < n; i++)
        rc = ps_model_new(&g->models[i], spec, input_dim, classes, bes[i],
                          (max_batch + n - 1) / n, err, errlen);
    if (rc == PS_OK)
        rc = ps_comm_new(bes, n, ps_model_num_params(g->models[0]), &g->comm,
                         err, errlen);
    if (rc != PS_OK) {
        ps_replicas_free(g);
        return rc;
    }
    *out = g;
    return PS_OK;
}

void ps_replicas_free(ps_replicas *g)
{
    if (g == NULL)
        return;
    ps_comm_free(g->comm);
    for (size_t i = 0; i < g->n; i++)
        ps_model_free(g->models[i]);
    free(g);
}

const ps_model *ps_replicas_model(const ps_replicas *g)
{
    return g->models[0];
}

size_t ps_replicas_count(const ps_replicas *g)
{
    return g->n;
}

const char *ps_replicas_comm_kind(const ps_replicas *g)
{
    return ps_comm_kind(g->comm);
}

ps_model *ps_replicas_at(ps_replicas *g, size_t i)
{
    return i < g->n ? g->models[i] : NULL;
}

/* Uploads to replica 0 (waiting when `wait`) and broadcasts from it. */
static int set_params(ps_replicas *g, const float *params, int wait)
{
    ps_buf *bufs[PS_COMM_MAX_RANKS];
    int rc;

    g->have_grads = 0;
    /* A group of one broadcasts too: the single-rank collective path is
     * what a one-GPU machine can test. */
    rc = wait ? ps_model_set_params(g->models[0], params)
              : ps_model_set_params_async(g->models[0], params);
    if (rc != PS_OK)
        return rc;
    for (size_t i = 0; i < g->n; i++)
        bufs[i] = ps_model_params_buf(g->models[i]);
    return ps_comm_broadcast(g->comm, bufs,
                             ps_model_num_params(g->models[0]));
}

int ps_replicas_set_params(ps_replicas *g, const float *params)
{
    return set_params(g, params, 1);
}

int ps_replicas_set_params_async(ps_replicas *g, const float *params)
{
    return set_params(g, params, 0);
}

int ps_replicas_stage(ps_replicas *g, int slot, const float *x, const float *y,
                      size_t n)
{
    size_t dim = ps_model_input_dim(g->models[0]);

    if (x == NULL || y == NULL || n < 1 || n > g->max_batch || slot < 0 ||
        slot > 1 || g->staged[slot] != 0)
        return PS_EINVAL;
    for (size_t i = 0; i < active(g, n); i++) {
        size_t off, len;
        int rc;

        slice(g, n, i, &off, &len);
        if ((rc = ps_model_stage(g->models[i], slot, x + off * dim, y + off,
                                 len)) != PS_OK) {
            while (i-- > 0) /* all or nothing: the slot stays usable */
                ps_model_unstage(g->models[i], slot);
            return rc;
        }
    }
    g->staged[slot] = n;
    return PS_OK;
}

static int reduce(ps_replicas *g);

int ps_replicas_step_begin(ps_replicas *g, int slot, float *grads)
{
    int rc = PS_OK;

    g->have_grads = 0;
    g->reduced = 0;
    if (slot < 0 || slot > 1 || g->staged[slot] == 0)
        return PS_EINVAL;
    g->rows = g->staged[slot];
    g->staged[slot] = 0;
    /* Issue every replica's step before waiting for any: the devices
     * compute at once. */
    for (g->begun = 0; g->begun < active(g, g->rows); g->begun++)
        if ((rc = ps_model_step_staged_begin(g->models[g->begun], slot,
                                             NULL)) != PS_OK)
            break;
    if (rc != PS_OK) { /* the failed one has waited already */
        for (size_t i = g->begun + 1; i < active(g, g->rows); i++)
            ps_model_unstage(g->models[i], slot);
        (void)ps_replicas_step_end(g, NULL, NULL);
        return rc;
    }
    if (grads == NULL)
        return PS_OK;
    /* The sum queues behind the steps, and its download behind the sum,
     * so step_end's wait is the step's only one (the host fallback's
     * reduction waits for the steps here). */
    rc = reduce(g);
    if (rc == PS_OK) {
        ps_model *m = g->models[0];
        rc = ps_backend_download_ahead(
            ps_model_backend(m), ps_model_grads_buf(m), 0, grads,
            ps_model_num_params(m) * sizeof(float));
    }
    g->reduced = rc == PS_OK; /* counts once step_end sets have_grads */
    if (rc != PS_OK) {
        (void)ps_replicas_step_end(g, NULL, NULL);
        g->have_grads = 0; /* partly weighed or summed: spoilt */
    }
    return rc;
}

int ps_replicas_step_end(ps_replicas *g, double *loss, size_t *correct)
{
    size_t right = 0;
    double sum = 0;
    int rc = PS_OK;

    if (g->begun == 0)
        return PS_EINVAL; /* no step begun: the last one's gradient stays */
    for (size_t i = 0; i < g->begun; i++) {
        size_t off, len, c = 0;
        double l = 0;
        int r = ps_model_step_end(g->models[i], &l, &c);

        slice(g, g->rows, i, &off, &len);
        if (rc == PS_OK)
            rc = r;
        sum += l * (double)len;
        right += c;
    }
    g->begun = 0;
    if (rc != PS_OK)
        return rc;
    if (loss != NULL)
        *loss = sum / (double)g->rows;
    if (correct != NULL)
        *correct = right;
    g->have_grads = 1;
    return PS_OK;
}

int ps_replicas_step(ps_replicas *g, const float *x, const float *y, size_t n,
                     double *loss, size_t *correct)
{
    int rc = ps_replicas_stage(g, 0, x, y, n);

    if (rc == PS_OK)
        rc = ps_replicas_step_begin(g, 0, NULL);
    return rc == PS_OK ? ps_replicas_step_end(g, loss, correct) : rc;
}

/* Replica i's gradient weighted by its share of the rows (0 for a replica
 * that sat the step out: its buffer holds an older step). */
static int weigh(ps_replicas *g, size_t i, size_t count)
{
    ps_model *m = g->models[i];
    ps_backend *be = ps_model_backend(m);
    size_t off, len;

    slice(g, g->rows, i, &off, &len);
    if (len == 0)
        return ps_backend_fill(be, ps_model_grads_buf(m), 0, count, 0.0f);
    if (len == g->rows)
        return PS_OK;
    return ps_backend_scale(be, ps_model_grads_buf(m), 0, count,
                            (float)((double)len / (double)g->rows));
}

/* Sums the weighted gradients of the last step into replica 0. */
static int reduce(ps_replicas *g)
{
    ps_buf *bufs[PS_COMM_MAX_RANKS];
    size_t count = ps_model_num_params(g->models[0]);
    int rc = PS_OK;

    for (size_t i = 0; rc == PS_OK && i < g->n; i++) {
        rc = weigh(g, i, count);
        bufs[i] = ps_model_grads_buf(g->models[i]);
    }
    return rc == PS_OK ? ps_comm_reduce_sum(g->comm, bufs, count) : rc;
}

int ps_replicas_get_grads(ps_replicas *g, float *grads)
{
    if (grads == NULL || !g->have_grads)
        return PS_EINVAL;
    if (!g->reduced) {
        int rc = reduce(g);
        if (rc != PS_OK) {
            g->have_grads = 0; /* the replicas' gradients are spoilt */
            return rc;
        }
        g->reduced = 1;
    }
    return ps_model_get_grads(g->models[0], grads);
}

int ps_replicas_eval(ps_replicas *g, const float *x, const float *y, size_t n,
                     double *loss, size_t *correct)
{
    size_t dim = ps_model_input_dim(g->models[0]), right = 0;
    double sum = 0;

    if (x == NULL || y == NULL || n < 1 || n > g->max_batch)
        return PS_EINVAL;
    for (size_t i = 0; i < active(g, n); i++) {
        size_t off, len, c = 0;
        double l = 0;
        int rc;

        slice(g, n, i, &off, &len);
        if ((rc = ps_model_eval(g->models[i], x + off * dim, y + off, len, &l,
                                &c)) != PS_OK)
            return rc;
        sum += l * (double)len;
        right += c;
    }
    if (loss != NULL)
        *loss = sum / (double)n;
    if (correct != NULL)
        *correct = right;
    return PS_OK;
}

int ps_replicas_predict(ps_replicas *g, const float *x, size_t n, float *probs)
{
    size_t dim = ps_model_input_dim(g->models[0]);
    size_t classes = ps_model_classes(g->models[0]);

    if (x == NULL || probs == NULL || n < 1 || n > g->max_batch)
        return PS_EINVAL;
    for (size_t i = 0; i < active(g, n); i++) {
        size_t off, len;
        int rc;

        slice(g, n, i, &off, &len);
        if ((rc = ps_model_predict(g->models[i], x + off * dim, len,
                                   probs + off * classes)) != PS_OK)
            return rc;
    }
    return PS_OK;
}
