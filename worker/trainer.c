/* One worker's training loop; see trainer.h.
 *
 * Threading: single-threaded (the client's heartbeat thread aside). Host
 * buffers: `params` holds the weights the model computes with, `next`
 * receives the weights a pushpull brings back, and two gradient buffers
 * alternate so the one being sent (borrowed by the client until its
 * request completes) is never overwritten by the next step. These and the
 * batch buffers come from the backend's host memory (pinned on a GPU); the
 * model and the replicas sync before handing them back, so each may be
 * reused as soon as the call that used it returns.
 *
 * Pipelining: the batch buffers come twice, matching the model's two
 * input slots. While the device computes a step on one slot, the host
 * reads the next batch into the other and stages it (its upload runs on
 * the device's copy stream), and the gradient comes down layer by layer;
 * the step's end is its one wait. */
#include "trainer.h"

#include "backend.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/timeutil.h"
#include "device_list.h"
#include "lr_schedule.h"
#include "model.h"
#include "model_file.h"
#include "replicas.h"
#include "sparkps.h"
#include "sparse_lr.h"
#include "train_common.h"
#include "trainer_sparse.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Rows of this worker's share, held and shuffled a buffer at a time. */
typedef struct shuffler {
    ps_dataset *data;
    size_t dim, cap;
    size_t classes;     /* labels must be integers in [0, classes) */
    uint64_t rows_read; /* this pass, for error messages */
    float *x, *y;       /* cap rows */
    uint32_t *perm;
    size_t n, pos; /* rows held, next row to hand out */
    int eof;
    int whole; /* the whole share fits: later epochs reshuffle it in
                  memory instead of reading the file again */
    uint64_t seed;
    uint64_t round; /* buffers filled so far, varies the permutation */
} shuffler;

/* In-flight pushes (or pushpulls) of one step, one request per table. */
typedef struct exchange {
    ps_request **req;
    int active;
    int pulls;
} exchange;

typedef struct trainer {
    const ps_train_cfg *cfg;
    volatile sig_atomic_t *stop; /* raised by SIGTERM/SIGINT */
    ps_client *client;
    ps_backend *bes[PS_COMM_MAX_RANKS]; /* one per --device entry */
    size_t nbes;
    ps_replicas *group; /* several devices: the replicas; else NULL */
    ps_model *model;    /* the one model, or the group's replica 0 */
    int *tables; /* client handles, one per model table */
    size_t ntables;
    uint64_t nparams;
    float *params, *next, *grads[2];
    float *stage;       /* push_every > 1: one mini-batch's gradient */
    float *bx[2], *by[2]; /* a batch per input slot, contiguous */
    float *init_params; /* --init-from: the file's weights, checked */
    ps_lr_schedule sched;
    double lr_factor; /* of the latest push */
    exchange ex;
    ps_worker_stats stats; /* published after every step (--http) */
    FILE *progress;
    char *err;
    size_t errlen;
} trainer;

static int fail(trainer *t, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(trainer *t, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ps_verrf(t->err, t->errlen, rc, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- the model: one device's, or the device group's ---- */

static int net_set_params(trainer *t, const float *params)
{
    return t->group ? ps_replicas_set_params(t->group, params)
                    : ps_model_set_params(t->model, params);
}

/* The weights a pull brought: uploaded without waiting, the next step's
 * wait covers it (t->params is not written before, see net_wait). */
static int net_set_params_async(trainer *t, const float *params)
{
    return t->group ? ps_replicas_set_params_async(t->group, params)
                    : ps_model_set_params_async(t->model, params);
}

/* Waits for every device, so host buffers given to copies are free. */
static int net_wait(trainer *t)
{
    int first = PS_OK;
    for (size_t i = 0; i < t->nbes; i++) {
        int rc = ps_backend_sync(t->bes[i]);
        if (first == PS_OK)
            first = rc;
    }
    return first;
}

/* Issues the upload of the n rows in host slot `slot` to that input
 * slot, without waiting. */
static int net_stage(trainer *t, int slot, size_t n)
{
    const float *x = t->bx[slot], *y = t->by[slot];
    return t->group ? ps_replicas_stage(t->group, slot, x, y, n)
                    : ps_model_stage(t->model, slot, x, y, n);
}

/* Issues a step on the batch staged in `slot`, and the download of its
 * gradient into `grads` behind it (a group's: summed over its replicas). */
static int net_begin(trainer *t, int slot, float *grads)
{
    return t->group ? ps_replicas_step_begin(t->group, slot, grads)
                    : ps_model_step_staged_begin(t->model, slot, grads);
}

/* Waits for the step: its gradient is then in the `grads` given to
 * net_begin. The step's one wait. */
static int net_end(trainer *t, double *loss, size_t *correct)
{
    return t->group ? ps_replicas_step_end(t->group, loss, correct)
                    : ps_model_step_end(t->model, loss, correct);
}

/* Evaluates a batch the data reader handed out, through host slot 0 (the
 * backend's host memory: pinned on a GPU, where an upload from ordinary
 * memory would stage through a bounce buffer anyway). Waits, so the slot
 * is free again when it returns. */
static int net_eval(trainer *t, const ps_batch *b, double *loss,
                    size_t *correct)
{
    float *x = t->bx[0], *y = t->by[0];
    memcpy(x, b->x, b->n * ps_model_input_dim(t->model) * sizeof(float));
    memcpy(y, b->y, b->n * sizeof(float));
    return t->group ? ps_replicas_eval(t->group, x, y, b->n, loss, correct)
                    : ps_model_eval(t->model, x, y, b->n, loss, correct);
}

/* Opens --device: one backend and its model, or a group of replicas. */
static int open_model(trainer *t, size_t dim)
{
    const ps_train_cfg *cfg = t->cfg;
    ps_device_list l;
    int rc = ps_device_list_parse(cfg->device, &l, t->err, t->errlen);

    if (rc == PS_OK)
        rc = ps_device_list_open(&l, t->bes, t->err, t->errlen);
    if (rc != PS_OK)
        return rc;
    t->nbes = l.n;
    if (l.n == 1)
        return ps_model_new(&t->model, cfg->model, dim, cfg->classes,
                            t->bes[0], cfg->batch, t->err, t->errlen);
    rc = ps_replicas_new(&t->group, cfg->model, dim, cfg->classes, t->bes,
                         l.n, cfg->batch, t->err, t->errlen);
    if (rc != PS_OK)
        return rc;
    t->model = ps_replicas_at(t->group, 0);
    ps_log(PS_LOG_INFO, "device group devices=%s replicas=%zu comm=%s",
           cfg->device, l.n, ps_replicas_comm_kind(t->group));
    return PS_OK;
}

/* ---- data ---- */

static void shuffle(shuffler *s);

/* Rows are checked in file order, so the message can say which one. */
static int check_rows(shuffler *s, const float *y, size_t n, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!(y[i] >= 0) || y[i] >= (float)s->classes || y[i] != floorf(y[i])) {
            snprintf(err, errlen,
                     "data: row %llu of this worker's share: label %g is not "
                     "a class of the model (0..%zu)",
                     (unsigned long long)(s->rows_read + i), (double)y[i],
                     s->classes - 1);
            return PS_EINVAL;
        }
    }
    s->rows_read += n;
    return PS_OK;
}

static int shuffler_fill(shuffler *s, char *err, size_t errlen)
{
    s->n = s->pos = 0;
    while (s->n < s->cap && !s->eof) {
        ps_batch b;
        int rc = ps_data_next(s->data, &b, s->cap - s->n, err, errlen);
        if (rc != PS_OK)
            return rc;
        if (b.n == 0) {
            s->eof = 1;
            break;
        }
        if ((rc = check_rows(s, b.y, b.n, err, errlen)) != PS_OK)
            return rc;
        memcpy(s->x + s->n * s->dim, b.x, b.n * s->dim * sizeof(float));
        memcpy(s->y + s->n, b.y, b.n * sizeof(float));
        s->n += b.n;
    }
    s->whole = s->eof && s->round == 0;
    shuffle(s);
    return PS_OK;
}

/* Fisher-Yates with a counter-based generator: the order depends only on
 * (seed, round), so a run is reproducible. */
static void shuffle(shuffler *s)
{
    ps_shuffle_order(s->perm, s->n, s->seed, s->round++);
}

/* Copies the next up to `want` rows into x/y; *n = 0 at the end of the
 * epoch. */
static int shuffler_next(shuffler *s, float *x, float *y, size_t want,
                         size_t *n, char *err, size_t errlen)
{
    if (s->pos == s->n) {
        int rc = s->eof ? PS_OK : shuffler_fill(s, err, errlen);
        if (rc != PS_OK)
            return rc;
    }
    size_t k = 0;
    while (k < want && s->pos < s->n) {
        uint32_t r = s->perm[s->pos++];
        memcpy(x + k * s->dim, s->x + (size_t)r * s->dim,
               s->dim * sizeof(float));
        y[k++] = s->y[r];
    }
    *n = k;
    return PS_OK;
}

static int shuffler_rewind(shuffler *s, char *err, size_t errlen)
{
    if (s->whole) {
        s->pos = 0;
        shuffle(s);
        return PS_OK;
    }
    s->n = s->pos = 0;
    s->eof = 0;
    s->rows_read = 0;
    return ps_data_rewind(s->data, err, errlen);
}

static int check_labels(trainer *t, const float *y, size_t n)
{
    size_t classes = ps_model_classes(t->model);
    for (size_t i = 0; i < n; i++) {
        if (!(y[i] >= 0) || y[i] >= (float)classes || y[i] != floorf(y[i]))
            return fail(t, PS_EINVAL,
                        "data: label %g is not a class of the model (0..%zu)",
                        (double)y[i], classes - 1);
    }
    return PS_OK;
}

/* ---- exchange with the servers ---- */

static int define_tables(trainer *t)
{
    const ps_train_cfg *cfg = t->cfg;
    ps_optim o;
    memset(&o, 0, sizeof(o));
    o.lr = cfg->lr;
    o.weight_decay = cfg->weight_decay;
    if (strcmp(cfg->optimizer, "sgd") == 0) {
        o.kind = PS_OPT_SGD;
        o.momentum = cfg->momentum;
    } else if (strcmp(cfg->optimizer, "momentum") == 0) {
        o.kind = PS_OPT_SGD;
        o.momentum = cfg->momentum > 0 ? cfg->momentum : 0.9;
    } else if (strcmp(cfg->optimizer, "adagrad") == 0) {
        o.kind = PS_OPT_ADAGRAD;
    } else if (strcmp(cfg->optimizer, "adam") == 0) {
        o.kind = PS_OPT_ADAM;
    } else {
        return fail(t, PS_EINVAL,
                    "--optimizer: expected sgd, momentum, adagrad or adam, "
                    "got '%s'",
                    cfg->optimizer);
    }
    /* The model spec travels with the tables, so an export from the
     * servers knows what it holds. */
    char meta[256];
    ps_model_file_meta(cfg->model, ps_model_classes(t->model),
                       ps_model_input_dim(t->model), meta, sizeof(meta));
    for (size_t i = 0; i < t->ntables; i++) {
        const ps_model_table *mt = ps_model_table_at(t->model, i);
        ps_table_spec spec;
        memset(&spec, 0, sizeof(spec));
        spec.meta = meta;
        spec.name = mt->name;
        spec.kind = PS_DENSE;
        spec.len = mt->len;
        spec.shape[0] = mt->rows;
        spec.shape[1] = mt->cols;
        spec.init.kind = (ps_init_kind)mt->init_kind;
        spec.init.seed = cfg->seed + i;
        spec.optim = o;
        int rc = ps_client_define(t->client, &spec, &t->tables[i]);
        if (rc != PS_OK)
            return fail(t, rc, "defining table %s: %s", mt->name,
                        ps_client_errmsg(t->client));
    }
    return PS_OK;
}

/* Reads and checks the --init-from file before anything is defined on the
 * servers, so a bad file fails the worker without side effects. */
static int load_init(trainer *t)
{
    const char *path = t->cfg->init_from;
    ps_st_file *f = NULL;
    int rc = ps_st_open(&f, path, t->err, t->errlen);
    if (rc != PS_OK)
        return rc;
    t->init_params =
        malloc((size_t)ps_model_num_params(t->model) * sizeof(float));
    if (t->init_params == NULL)
        rc = fail(t, PS_ENOMEM, "--init-from: out of memory");
    else
        rc = ps_model_file_params(f, path, t->model, t->init_params, t->err,
                                  t->errlen);
    ps_st_close(f);
    return rc;
}

/* Warm start: every worker sends the file's weights before its first pull,
 * as ASSIGN if_untouched, so whichever comes first initialises the tables
 * and none overwrites what training already pushed. */
static int warm_start(trainer *t)
{
    size_t skipped = 0;
    int rc = PS_OK;
    for (size_t i = 0; rc == PS_OK && i < t->ntables; i++) {
        const ps_model_table *mt = ps_model_table_at(t->model, i);
        size_t sk = 0;
        rc = ps_client_assign(t->client, t->tables[i], 0, mt->len,
                              t->init_params + mt->offset,
                              PS_ASSIGN_IF_UNTOUCHED, &sk);
        if (rc != PS_OK)
            fail(t, rc, "--init-from: assigning %s: %s", mt->name,
                 ps_client_errmsg(t->client));
        skipped += sk;
    }
    if (rc == PS_OK)
        ps_log(PS_LOG_INFO,
               "warm start file=%s tables=%zu skipped_pieces=%zu "
               "(skipped: training had already reached them)",
               t->cfg->init_from, t->ntables, skipped);
    return rc;
}

static int exchange_start(trainer *t, const float *grads, int pull)
{
    for (size_t i = 0; i < t->ntables; i++) {
        const ps_model_table *mt = ps_model_table_at(t->model, i);
        int rc = pull ? ps_client_pushpull(t->client, t->tables[i], 0, mt->len,
                                           grads + mt->offset,
                                           t->next + mt->offset, &t->ex.req[i])
                      : ps_client_push(t->client, t->tables[i], 0, mt->len,
                                       grads + mt->offset, &t->ex.req[i]);
        if (rc != PS_OK) {
            /* Requests already started complete before returning. */
            for (size_t j = 0; j < i; j++)
                ps_client_wait(t->client, t->ex.req[j], -1);
            return fail(t, rc, "push: %s", ps_client_errmsg(t->client));
        }
    }
    t->ex.active = 1;
    t->ex.pulls = pull;
    return PS_OK;
}

/* Waits for the step in flight; a pushpull's weights become current. */
static int exchange_finish(trainer *t)
{
    if (!t->ex.active)
        return PS_OK;
    int first = PS_OK;
    for (size_t i = 0; i < t->ntables; i++) {
        int rc = ps_client_wait(t->client, t->ex.req[i], -1);
        if (rc != PS_OK && first == PS_OK) {
            first = rc;
            fail(t, rc, "push: %s", ps_client_errmsg(t->client));
        }
    }
    t->ex.active = 0;
    if (first != PS_OK || !t->ex.pulls)
        return first;
    float *tmp = t->params;
    t->params = t->next;
    t->next = tmp;
    return net_set_params_async(t, t->params);
}

static int pull_all(trainer *t)
{
    if (t->client == NULL) /* compute-only: the local weights are current */
        return PS_OK;
    int rc = exchange_finish(t);
    if (rc == PS_OK) /* its upload may still read t->params */
        rc = net_wait(t);
    for (size_t i = 0; rc == PS_OK && i < t->ntables; i++) {
        const ps_model_table *mt = ps_model_table_at(t->model, i);
        rc = ps_client_pull(t->client, t->tables[i], 0, mt->len,
                            t->params + mt->offset, &t->ex.req[i]);
        if (rc == PS_OK)
            rc = ps_client_wait(t->client, t->ex.req[i], -1);
        if (rc != PS_OK)
            return fail(t, rc, "pull: %s", ps_client_errmsg(t->client));
    }
    return rc == PS_OK ? net_set_params_async(t, t->params) : rc;
}

/* ---- evaluation and progress ---- */

static int evaluate(trainer *t, ps_dataset *eval, double *loss, double *acc)
{
    int rc = pull_all(t);
    if (rc == PS_OK)
        rc = ps_data_rewind(eval, t->err, t->errlen);
    double sum = 0;
    size_t correct = 0, n = 0;
    while (rc == PS_OK) {
        ps_batch b;
        rc = ps_data_next(eval, &b, t->cfg->batch, t->err, t->errlen);
        if (rc != PS_OK || b.n == 0)
            break;
        if ((rc = check_labels(t, b.y, b.n)) != PS_OK)
            break;
        double l;
        size_t c;
        rc = net_eval(t, &b, &l, &c);
        sum += l * (double)b.n;
        correct += c;
        n += b.n;
    }
    *loss = n ? sum / (double)n : NAN;
    *acc = n ? (double)correct / (double)n : NAN;
    return rc;
}

/* A pass over the eval set before training, so a bad label there fails the
 * run at once instead of after the first epoch. */
static int check_eval(trainer *t, ps_dataset *eval)
{
    int rc = PS_OK;
    for (;;) {
        ps_batch b;
        rc = ps_data_next(eval, &b, t->cfg->batch, t->err, t->errlen);
        if (rc != PS_OK || b.n == 0)
            break;
        if ((rc = check_labels(t, b.y, b.n)) != PS_OK) {
            size_t len = strlen(t->err);
            snprintf(t->err + len, t->errlen - len, " in %s",
                     t->cfg->eval.path);
            break;
        }
    }
    return rc;
}

static void emit(trainer *t, const char *event, int epoch, uint64_t samples,
                 double loss, double acc, double rate, double test_loss,
                 double test_acc)
{
    ps_progress_line l = {event,
                          t->cfg->worker_id,
                          epoch,
                          samples,
                          loss,
                          acc,
                          rate,
                          t->cfg->lr * t->lr_factor,
                          test_loss,
                          test_acc,
                          NAN,
                          &t->stats};
    ps_train_emit(t->progress, &l);
}

/* Counts one step, given the microseconds of its phases (input: reading
 * batches; compute: the rest until the gradient was in; wait: the
 * exchange), then publishes. */
static void count_step(trainer *t, const int64_t us[PS_PHASE_COUNT], int epoch,
                       uint64_t samples, double loss, double acc)
{
    ps_worker_stats_step(&t->stats, us, epoch, samples, loss, acc);
    ps_train_publish(t->cfg, t->client, &t->stats);
}

/* ---- setup ---- */

static int setup_buffers(trainer *t, size_t dim);

static int setup(trainer *t, ps_dataset *data)
{
    const ps_train_cfg *cfg = t->cfg;
    int rc;
    size_t dim = ps_data_dim(data);
    if (dim == 0 || ps_data_sparse(data))
        return fail(t, PS_EINVAL,
                    "%s: only dense data (idx, csv, stream) trains these "
                    "models",
                    cfg->data.path);
    if ((rc = open_model(t, dim)) != PS_OK)
        return rc;
    if (cfg->init_from != NULL && (rc = load_init(t)) != PS_OK)
        return rc;
    if (cfg->compute_only)
        return setup_buffers(t, dim);
    rc = ps_train_connect(cfg, t->stop, &t->client, t->err, t->errlen);
    if (rc != PS_OK)
        return rc;
    rc = setup_buffers(t, dim);
    if (rc == PS_OK)
        rc = define_tables(t);
    if (rc == PS_OK && cfg->init_from != NULL)
        rc = warm_start(t);
    return rc == PS_OK ? pull_all(t) : rc;
}

/* Host memory the device copies from and into: pinned on a GPU (device
 * 0's backend for a group: the batch, pulled weights and the gradient
 * travel through it), so copies do not make the host wait. */
static float *host_alloc(trainer *t, size_t floats)
{
    return ps_backend_host_alloc(t->bes[0], floats * sizeof(float));
}

static void host_free(trainer *t, float *p)
{
    if (t->nbes > 0)
        ps_backend_host_free(t->bes[0], p);
}

/* Host buffers; without servers the weights start as small seeded values
 * (the compute-only baseline measures speed, not learning). */
static int setup_buffers(trainer *t, size_t dim)
{
    const ps_train_cfg *cfg = t->cfg;
    t->ntables = ps_model_num_tables(t->model);
    t->nparams = ps_model_num_params(t->model);
    size_t p = (size_t)t->nparams;
    t->tables = calloc(t->ntables, sizeof(*t->tables));
    t->ex.req = calloc(t->ntables, sizeof(*t->ex.req));
    t->params = host_alloc(t, p);
    t->next = host_alloc(t, p);
    t->grads[0] = host_alloc(t, p);
    t->grads[1] = host_alloc(t, p);
    t->stage = cfg->push_every > 1 ? host_alloc(t, p) : NULL;
    int batches = 1;
    for (int i = 0; i < 2; i++) {
        t->bx[i] = host_alloc(t, cfg->batch * dim);
        t->by[i] = host_alloc(t, cfg->batch);
        batches = batches && t->bx[i] && t->by[i];
    }
    if (!t->tables || !t->ex.req || !t->params || !t->next || !t->grads[0] ||
        !t->grads[1] || (cfg->push_every > 1 && !t->stage) || !batches)
        return fail(t, PS_ENOMEM, "out of memory for %zu parameters", p);
    if (t->client != NULL)
        return PS_OK;
    if (t->init_params != NULL)
        memcpy(t->params, t->init_params, p * sizeof(float));
    else
        for (size_t i = 0; i < p; i++)
            t->params[i] = (float)(ps_rng_unit(cfg->seed, 0, i) - 0.5) * 0.1f;
    return net_set_params(t, t->params);
}

static void teardown(trainer *t)
{
    if (t->ex.active)
        exchange_finish(t);
    (void)net_wait(t); /* no copy may use the host buffers freed below */
    ps_client_free(t->client);
    if (t->group != NULL)
        ps_replicas_free(t->group);
    else
        ps_model_free(t->model);
    host_free(t, t->params);
    host_free(t, t->next);
    host_free(t, t->grads[0]);
    host_free(t, t->grads[1]);
    host_free(t, t->stage);
    for (int i = 0; i < 2; i++) {
        host_free(t, t->bx[i]);
        host_free(t, t->by[i]);
    }
    ps_device_list_close(t->bes, t->nbes);
    free(t->tables);
    free(t->ex.req);
    free(t->init_params);
}

/* ---- the loop ---- */

/* The communication of one step: progress rides on the push; with overlap
 * the previous step's exchange completes only now, after this step's
 * compute; without it each exchange completes before the next step. */
static int exchange_step(trainer *t, int cur, uint64_t push, int epoch,
                         uint64_t samples, double loss, double accuracy,
                         ps_consistency cons)
{
    ps_client_set_progress(t->client, samples, loss, (uint32_t)epoch, accuracy);
    int rc = exchange_finish(t);
    if (rc == PS_OK &&
        (rc = ps_client_set_lr_scale(t->client, t->lr_factor)) != PS_OK)
        return fail(t, rc, "lr schedule: %s", ps_client_errmsg(t->client));
    int pull = (push + 1) % (uint64_t)t->cfg->pull_every == 0;
    if (rc == PS_OK)
        rc = exchange_start(t, t->grads[cur], pull);
    if (rc == PS_OK && !t->cfg->overlap)
        rc = exchange_finish(t);
    if (rc == PS_OK && cons != PS_ASP &&
        (rc = ps_client_clock(t->client)) != PS_OK)
        fail(t, rc, "clock: %s", ps_client_errmsg(t->client));
    return rc;
}

/* Reads the next batch into host slot `slot` and stages it on the
 * device; *n is 0 at the end of the epoch. *us: the time it took. */
static int fetch(trainer *t, shuffler *sh, int slot, size_t *n, int64_t *us)
{
    int64_t t0 = ps_now_us();
    int rc = shuffler_next(sh, t->bx[slot], t->by[slot], t->cfg->batch, n,
                           t->err, t->errlen);
    if (rc == PS_OK && *n > 0 && (rc = net_stage(t, slot, *n)) != PS_OK)
        fail(t, rc, "compute: %s", ps_strerror(rc));
    *us = ps_now_us() - t0;
    return rc;
}

/* One step on the batch staged in `slot`, whose gradient goes into
 * grads[cur]: as is, or added to the group being accumulated (member `k`
 * of it, from 0). While the device computes, the next batch is fetched
 * into the other slot: *next gets its rows, *input_us the time that took. */
static int run_step(trainer *t, shuffler *sh, int slot, int cur, int k,
                    size_t *next, int64_t *input_us, double *loss,
                    size_t *correct)
{
    float *target = k == 0 ? t->grads[cur] : t->stage;
    int rc = net_begin(t, slot, target);
    if (rc != PS_OK)
        return fail(t, rc, "compute: %s", ps_strerror(rc));
    rc = fetch(t, sh, 1 - slot, next, input_us);
    int end = net_end(t, loss, correct); /* waits even after a failed
                                            fetch */
    if (rc != PS_OK)
        return rc;
    if (end != PS_OK)
        return fail(t, end, "compute: %s", ps_strerror(end));
    if (k > 0) {
        float *g = t->grads[cur];
        for (uint64_t i = 0; i < t->nparams; i++)
            g[i] += t->stage[i];
    }
    return PS_OK;
}

/* Pushes the mean gradient of a group of `k` mini-batches. */
static int push_group(trainer *t, int cur, int k, uint64_t push, int epoch,
                      uint64_t samples, double loss, double accuracy,
                      ps_consistency cons)
{
    if (t->client == NULL)
        return PS_OK;
    if (k > 1) {
        float inv = 1.0f / (float)k, *g = t->grads[cur];
        for (uint64_t i = 0; i < t->nparams; i++)
            g[i] *= inv;
    }
    return exchange_step(t, cur, push, epoch, samples, loss, accuracy, cons);
}

/* Epochs done so far, with the fraction of the current one estimated from
 * the rows an epoch holds (0 while that is unknown). */
static double epochs_done(int epoch, uint64_t ep_samples, uint64_t epoch_rows)
{
    double f = epoch_rows ? (double)ep_samples / (double)epoch_rows : 0;
    return (double)(epoch - 1) + (f < 1 ? f : 1);
}

int ps_train_run(const ps_train_cfg *cfg, FILE *progress,
                 volatile sig_atomic_t *stop, ps_train_result *res, char *err,
                 size_t errlen)
{
    if (ps_logreg_is_spec(cfg->model)) /* sparse model: its own loop */
        return ps_train_sparse_run(cfg, progress, stop, res, err, errlen);
    trainer t;
    memset(&t, 0, sizeof(t));
    t.cfg = cfg;
    t.stop = stop;
    t.progress = progress;
    t.err = err;
    t.errlen = errlen;
    memset(res, 0, sizeof(*res));
    res->test_accuracy = res->test_loss = res->test_auc = NAN;
    t.lr_factor = 1.0;
    ps_worker_stats_init(&t.stats, cfg->worker_id, cfg->attempt, cfg->device,
                         cfg->model);
    if (cfg->batch == 0 || cfg->epochs < 1 || cfg->pull_every < 1 ||
        cfg->push_every < 1)
        return fail(&t, PS_EINVAL,
                    "--batch, --epochs, --push-every and --pull-every must "
                    "be positive");
    int rc = ps_lr_schedule_parse(&t.sched, cfg->lr_schedule, cfg->epochs,
                                  cfg->warmup_steps, err, errlen);
    if (rc != PS_OK)
        return rc;
    ps_dataset *data = NULL, *eval = NULL;
    shuffler sh;
    memset(&sh, 0, sizeof(sh));
    ps_data_cfg dcfg = cfg->data, ecfg = cfg->eval;
    dcfg.multi_pass = cfg->epochs > 1; /* a piped stream is then cached */
    ecfg.multi_pass = 1;               /* rewound before every evaluation */
    rc = ps_data_open(&data, &dcfg, err, errlen);
    if (rc == PS_OK && cfg->eval.path)
        rc = ps_data_open(&eval, &ecfg, err, errlen);
    if (rc == PS_OK)
        rc = setup(&t, data);
    if (rc == PS_OK && eval && ps_data_dim(eval) != ps_data_dim(data))
        rc = fail(&t, PS_EINVAL, "%s has %zu features, %s has %zu",
                  cfg->eval.path, ps_data_dim(eval), cfg->data.path,
                  ps_data_dim(data));
    if (rc == PS_OK && eval)
        rc = check_eval(&t, eval);
    if (rc == PS_OK) {
        sh.data = data;
        sh.classes = ps_model_classes(t.model);
        sh.dim = ps_data_dim(data);
        sh.cap = cfg->shuffle_rows ? cfg->shuffle_rows : 65536;
        sh.seed = cfg->seed ^ ((uint64_t)cfg->worker_id << 32);
        sh.x = malloc(sh.cap * sh.dim * sizeof(float));
        sh.y = malloc(sh.cap * sizeof(float));
        sh.perm = malloc(sh.cap * sizeof(uint32_t));
        if (!sh.x || !sh.y || !sh.perm)
            rc = fail(&t, PS_ENOMEM, "out of memory for the shuffle buffer");
    }
    ps_consistency cons = rc == PS_OK && t.client
                              ? ps_client_consistency(t.client, NULL)
                              : PS_ASP;
    int64_t start = ps_now_us(), last_line = start;
    uint64_t samples = 0, line_samples = 0, step = 0, pushes = 0;
    uint64_t epoch_rows = data ? ps_data_rows_hint(data) : 0;
    double line_loss = 0, line_correct = 0, ep_loss = 0, ep_correct = 0;
    int cur = 0, group = 0; /* mini-batches accumulated for the next push */
    double loss = NAN;
    t.stats.state = rc == PS_OK ? "training" : "failed";
    ps_train_publish(cfg, t.client, &t.stats);
    for (int epoch = 1; rc == PS_OK && epoch <= cfg->epochs; epoch++) {
        uint64_t ep_samples = 0;
        ep_loss = ep_correct = 0;
        if (epoch > 1)
            rc = shuffler_rewind(&sh, err, errlen);
        size_t n = 0;
        int slot = 0;
        int64_t us[PS_PHASE_COUNT] = {0}; /* of the step ahead */
        if (rc == PS_OK)
            rc = fetch(&t, &sh, slot, &n, &us[PS_PHASE_INPUT]);
        while (rc == PS_OK && n > 0) {
            if (stop && *stop) {
                rc = fail(&t, PS_ESHUTDOWN, "stopped by a signal");
                break;
            }
            size_t correct, next;
            int64_t t0 = ps_now_us(), input;
            rc = run_step(&t, &sh, slot, cur, group++, &next, &input, &loss,
                          &correct);
            if (rc != PS_OK)
                break;
            int64_t t1 = ps_now_us(), t2 = t1;
            us[PS_PHASE_INPUT] += input;
            us[PS_PHASE_COMPUTE] = t1 - t0 - input;
            samples += n;
            ep_samples += n;
            line_samples += n;
            line_loss += loss * (double)n;
            line_correct += (double)correct;
            ep_loss += loss * (double)n;
            ep_correct += (double)correct;
            step++;
            /* The factor at the start of this step's batch. */
            t.lr_factor = ps_lr_schedule_factor(
                &t.sched, epochs_done(epoch, ep_samples - n, epoch_rows), step);
            if (group == cfg->push_every) {
                /* Progress carries the epoch's running means: a steadier
                 * figure for dashboards than one batch's. */
                rc = push_group(&t, cur, group, pushes++, epoch, samples,
                                ep_loss / (double)ep_samples,
                                ep_correct / (double)ep_samples, cons);
                if (rc != PS_OK)
                    break;
                cur ^= 1;
                group = 0;
                t2 = ps_now_us();
            }
            us[PS_PHASE_WAIT] = t2 - t1;
            count_step(&t, us, epoch, samples, ep_loss / (double)ep_samples,
                       ep_correct / (double)ep_samples);
            us[PS_PHASE_INPUT] = 0;
            n = next;
            slot ^= 1;
            int64_t now = t2;
            if ((double)(now - last_line) >= cfg->progress_every_s * 1e6) {
                double dt = (double)(now - last_line) / 1e6;
                emit(&t, "progress", epoch, samples,
                     line_loss / (double)line_samples,
                     line_correct / (double)line_samples,
                     (double)line_samples / dt, NAN, NAN);
                last_line = now;
                line_samples = 0;
                line_loss = line_correct = 0;
            }
        }
        if (rc == PS_OK && group > 0) { /* the epoch's last partial group */
            rc = push_group(&t, cur, group, pushes++, epoch, samples,
                            ep_loss / (double)ep_samples,
                            ep_correct / (double)ep_samples, cons);
            cur ^= 1;
            group = 0;
        }
        if (rc != PS_OK)
            break;
        epoch_rows = ep_samples;
        double tl = NAN, ta = NAN;
        if (eval && (rc = evaluate(&t, eval, &tl, &ta)) != PS_OK)
            break;
        double secs = (double)(ps_now_us() - start) / 1e6;
        double el = ep_samples ? ep_loss / (double)ep_samples : NAN;
        double ea = ep_samples ? ep_correct / (double)ep_samples : NAN;
        emit(&t, "epoch", epoch, samples, el, ea, (double)samples / secs, tl,
             ta);
        if (t.client != NULL) {
            ps_eval ev = {(uint32_t)epoch, samples, tl, ta, el, ea, NAN};
            ps_client_set_progress(t.client, samples, el, (uint32_t)epoch, ea);
            ps_client_set_eval(t.client, &ev);
        }
        res->train_loss = el;
        res->train_accuracy = ea;
        res->test_loss = tl;
        res->test_accuracy = ta;
        if (eval) {
            t.stats.eval_epoch = epoch;
            t.stats.eval_loss = tl;
            t.stats.eval_accuracy = ta;
        }
        ps_train_publish(cfg, t.client, &t.stats);
    }
    if (rc == PS_OK)
        rc = exchange_finish(&t);
    if (rc == PS_OK && t.client != NULL)
        ps_train_send_final(t.client);
    res->samples = samples;
    res->seconds = (double)(ps_now_us() - start) / 1e6;
    if (rc == PS_OK)
        emit(&t, "done", cfg->epochs, samples, res->train_loss,
             res->train_accuracy, (double)samples / res->seconds,
             res->test_loss, res->test_accuracy);
    t.stats.state = rc == PS_OK ? "done" : "failed";
    ps_train_publish(cfg, t.client, &t.stats);
    teardown(&t);
    free(sh.x);
    free(sh.y);
    free(sh.perm);
    ps_data_close(data);
    ps_data_close(eval);
    return rc;
}
