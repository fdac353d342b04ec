/* The sparse model's training loop; see trainer_sparse.h.
 *
 * Threading: single-threaded (the client's heartbeat thread aside). Two
 * pipeline slots alternate: each holds one built batch, the weights its
 * pull fills and the gradient its push sends. The client borrows those
 * arrays until the request completes, so a slot is rebuilt only after its
 * push has been waited for. Rows are held in a CSR shuffle buffer (the
 * dense loop's shuffler copies fixed-width rows, which sparse rows are
 * not). */
#include "trainer_sparse.h"

#include "auc.h"
#include "backend.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/timeutil.h"
#include "model_file.h"
#include "sparkps.h"
#include "sparse_lr.h"
#include "train_common.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SP_DEFAULT_SHUFFLE_ROWS 65536

/* Rows of this worker's share in CSR, held and shuffled a buffer at a time;
 * batches handed out are copies in `out_*`. */
typedef struct sshuffler {
    ps_dataset *data;
    size_t cap;     /* rows */
    size_t *rowptr; /* cap + 1 */
    uint64_t *idx;  /* nnz_cap */
    float *val, *y; /* nnz_cap, cap */
    size_t nnz_cap;
    uint32_t *perm;
    size_t n, pos;  /* rows held, next to hand out */
    int eof, whole; /* whole: the share fits; later epochs reshuffle
                       in memory instead of reading again */
    uint64_t seed, round;
    ps_batch out;             /* the batch handed out */
    size_t out_rows, out_nnz; /* its capacities */
} sshuffler;

typedef struct slot {
    ps_logreg_batch lb;
    float *w, *grad; /* cap floats: the keys' weights, their gradient */
    size_t cap;
    ps_request *pull, *push; /* in flight, or NULL */
} slot;

/* A step's time by phase (--http pages, the done line): round trips and
 * compute are timed where they happen; the rest of the step's interval is
 * input (reading, parsing, building the batch), so the phases add up to
 * the step's duration. */
typedef struct step_clock {
    int64_t mark; /* when the current step's interval began, us */
    int64_t wait_us, compute_us;
} step_clock;

typedef struct strainer {
    const ps_train_cfg *cfg;
    volatile sig_atomic_t *stop; /* raised by SIGTERM/SIGINT */
    ps_client *client;
    ps_backend *be;
    ps_logreg *model;
    int table;
    slot s[2];
    sshuffler sh;
    ps_consistency cons;
    /* evaluation: one batch, its weights, and every score for AUC */
    slot ev;
    float *scores, *labels;
    size_t nscores, scores_cap;
    FILE *progress;
    char *err;
    size_t errlen;
    ps_worker_stats stats; /* published after every step (--http) */
    step_clock clk;
} strainer;

static int fail(strainer *t, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(strainer *t, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ps_verrf(t->err, t->errlen, rc, fmt, ap);
    va_end(ap);
    return rc;
}

static int grow(void **p, size_t n, size_t size)
{
    void *q = realloc(*p, n * size);
    if (q == NULL)
        return PS_ENOMEM;
    *p = q;
    return PS_OK;
}

/* ---- sparse shuffle buffer ---- */

static void sh_shuffle(sshuffler *s)
{
    ps_shuffle_order(s->perm, s->n, s->seed, s->round++);
}

static int sh_fill(sshuffler *s, char *err, size_t errlen)
{
    s->n = s->pos = 0;
    s->rowptr[0] = 0;
    while (s->n < s->cap && !s->eof) {
        ps_batch b;
        int rc = ps_data_next(s->data, &b, s->cap - s->n, err, errlen);
        if (rc != PS_OK)
            return rc;
        if (b.n == 0) {
            s->eof = 1;
            break;
        }
        if (b.rowptr == NULL) {
            snprintf(err, errlen, "logreg needs sparse (libsvm) rows");
            return PS_EINVAL;
        }
        size_t have = s->rowptr[s->n], add = b.rowptr[b.n] - b.rowptr[0];
        if (have + add > s->nnz_cap) {
            size_t cap = s->nnz_cap ? s->nnz_cap : 4096;
            while (cap < have + add)
                cap *= 2;
            if (grow((void **)&s->idx, cap, sizeof(uint64_t)) ||
                grow((void **)&s->val, cap, sizeof(float))) {
                snprintf(err, errlen, "out of memory for the shuffle buffer");
                return PS_ENOMEM;
            }
            s->nnz_cap = cap;
        }
        memcpy(s->idx + have, b.idx + b.rowptr[0], add * sizeof(uint64_t));
        memcpy(s->val + have, b.val + b.rowptr[0], add * sizeof(float));
        memcpy(s->y + s->n, b.y, b.n * sizeof(float));
        for (size_t i = 0; i < b.n; i++)
            s->rowptr[s->n + i + 1] = have + b.rowptr[i + 1] - b.rowptr[0];
        s->n += b.n;
    }
    s->whole = s->eof && s->round == 0;
    sh_shuffle(s);
    return PS_OK;
}

/* Points *b at the next up to `want` rows (copied into out_*); b->n = 0 at
 * the end of the epoch. */
static int sh_next(sshuffler *s, size_t want, ps_batch *b, char *err,
                   size_t errlen)
{
    if (s->pos == s->n) {
        int rc = s->eof ? PS_OK : sh_fill(s, err, errlen);
        if (rc != PS_OK)
            return rc;
    }
    size_t k = want < s->n - s->pos ? want : s->n - s->pos, nnz = 0;
    for (size_t i = 0; i < k; i++) {
        uint32_t r = s->perm[s->pos + i];
        nnz += s->rowptr[r + 1] - s->rowptr[r];
    }
    if (k > s->out_rows || nnz > s->out_nnz) {
        size_t rows = k > s->out_rows ? k : s->out_rows;
        size_t cap = nnz > s->out_nnz ? 2 * nnz : s->out_nnz;
        if (grow((void **)&s->out.rowptr, rows + 1, sizeof(size_t)) ||
            grow((void **)&s->out.y, rows, sizeof(float)) ||
            grow((void **)&s->out.idx, cap ? cap : 1, sizeof(uint64_t)) ||
            grow((void **)&s->out.val, cap ? cap : 1, sizeof(float))) {
            snprintf(err, errlen, "out of memory for a batch");
            return PS_ENOMEM;
        }
        s->out_rows = rows;
        s->out_nnz = cap;
    }
    size_t e = 0;
    s->out.rowptr[0] = 0;
    for (size_t i = 0; i < k; i++) {
        uint32_t r = s->perm[s->pos++];
        size_t len = s->rowptr[r + 1] - s->rowptr[r];
        memcpy(s->out.idx + e, s->idx + s->rowptr[r], len * sizeof(uint64_t));
        memcpy(s->out.val + e, s->val + s->rowptr[r], len * sizeof(float));
        e += len;
        s->out.rowptr[i + 1] = e;
        s->out.y[i] = s->y[r];
    }
    s->out.n = k;
    s->out.dim = 0;
    s->out.x = NULL;
    *b = s->out;
    return PS_OK;
}

static int sh_rewind(sshuffler *s, char *err, size_t errlen)
{
    if (s->whole) {
        s->pos = 0;
        sh_shuffle(s);
        return PS_OK;
    }
    s->n = s->pos = 0;
    s->eof = 0;
    return ps_data_rewind(s->data, err, errlen);
}

static void sh_free(sshuffler *s)
{
    free(s->rowptr);
    free(s->idx);
    free(s->val);
    free(s->y);
    free(s->perm);
    free(s->out.rowptr);
    free(s->out.idx);
    free(s->out.val);
    free(s->out.y);
}

/* ---- exchange ---- */

static int define_table(strainer *t)
{
    const ps_train_cfg *cfg = t->cfg;
    ps_table_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.name = PS_LOGREG_TABLE;
    spec.kind = PS_SPARSE;
    spec.dim = 1;
    spec.init.kind = PS_INIT_ZEROS; /* the usual start for LR and FTRL */
    spec.init.seed = cfg->seed;
    spec.optim.lr = cfg->lr;
    spec.optim.weight_decay = cfg->weight_decay;
    if (strcmp(cfg->optimizer, "ftrl") == 0) {
        spec.optim.kind = PS_OPT_FTRL;
        spec.optim.l1 = cfg->l1;
        spec.optim.l2 = cfg->l2;
        spec.optim.ftrl_beta = cfg->ftrl_beta;
    } else if (strcmp(cfg->optimizer, "adagrad") == 0) {
        spec.optim.kind = PS_OPT_ADAGRAD;
    } else if (strcmp(cfg->optimizer, "sgd") == 0) {
        spec.optim.kind = PS_OPT_SGD;
        spec.optim.momentum = cfg->momentum;
    } else if (strcmp(cfg->optimizer, "adam") == 0) {
        spec.optim.kind = PS_OPT_ADAM;
    } else {
        return fail(t, PS_EINVAL,
                    "--optimizer: logreg trains with ftrl, adagrad, sgd or "
                    "adam, got '%s'",
                    cfg->optimizer);
    }
    /* The spec travels to ps-ctl export's file, which predict reads. */
    char meta[256];
    ps_model_file_meta(cfg->model, 2, 0, meta, sizeof(meta));
    spec.meta = meta;
    int rc = ps_client_define(t->client, &spec, &t->table);
    if (rc != PS_OK)
        return fail(t, rc, "defining table %s: %s", PS_LOGREG_TABLE,
                    ps_client_errmsg(t->client));
    return PS_OK;
}

/* Room for the weights and gradient of every key of s->lb, in the
 * backend's host memory (pinned on a GPU: they are uploaded and
 * downloaded every step). Their old contents go: a pull refills them. */
static int slot_reserve(strainer *t, slot *s)
{
    size_t need = s->lb.nuniq;
    if (need <= s->cap)
        return PS_OK;
    size_t cap = s->lb.cap_nnz > need ? s->lb.cap_nnz : need;
    float *w = ps_backend_host_alloc(t->be, cap * sizeof(float));
    float *g = ps_backend_host_alloc(t->be, cap * sizeof(float));
    if (w == NULL || g == NULL) {
        ps_backend_host_free(t->be, w);
        ps_backend_host_free(t->be, g);
        return fail(t, PS_ENOMEM, "out of memory for %zu keys", cap);
    }
    ps_backend_host_free(t->be, s->w);
    ps_backend_host_free(t->be, s->grad);
    s->w = w;
    s->grad = g;
    s->cap = cap;
    return PS_OK;
}

static int wait_req(strainer *t, ps_request **req, const char *what)
{
    if (*req == NULL)
        return PS_OK;
    int64_t t0 = ps_now_us();
    int rc = ps_client_wait(t->client, *req, -1);
    t->clk.wait_us += ps_now_us() - t0;
    *req = NULL;
    if (rc != PS_OK)
        return fail(t, rc, "%s: %s", what, ps_client_errmsg(t->client));
    return PS_OK;
}

/* Starts the pull of s's weights; compute-only fills small seeded values
 * per key instead (the baseline measures speed, not learning). */
static int start_pull(strainer *t, slot *s)
{
    if (t->client == NULL) {
        for (size_t i = 0; i < s->lb.nuniq; i++)
            s->w[i] =
                (float)(ps_rng_unit(t->cfg->seed, 0, s->lb.keys[i]) - 0.5) *
                0.1f;
        return PS_OK;
    }
    int rc = ps_client_pull_sparse(t->client, t->table, s->lb.keys, s->lb.nuniq,
                                   s->w, &s->pull);
    if (rc != PS_OK)
        return fail(t, rc, "pull: %s", ps_client_errmsg(t->client));
    return PS_OK;
}

/* Reads the next training batch into s and starts its pull; *got = 0 at the
 * end of the epoch. s's push must be complete. */
static int prefetch(strainer *t, slot *s, int *got)
{
    ps_batch b;
    *got = 0;
    int rc = sh_next(&t->sh, t->cfg->batch, &b, t->err, t->errlen);
    if (rc != PS_OK || b.n == 0)
        return rc;
    char msg[384];
    rc = ps_logreg_batch_build(t->model, &s->lb, &b, 1, msg, sizeof(msg));
    if (rc != PS_OK)
        return fail(t, rc, "%s: %s", t->cfg->data.path, msg);
    if ((rc = slot_reserve(t, s)) != PS_OK || (rc = start_pull(t, s)) != PS_OK)
        return rc;
    *got = 1;
    return PS_OK;
}

/* ---- evaluation and progress ---- */

static int evaluate(strainer *t, ps_dataset *eval, double *loss, double *acc,
                    double *auc)
{
    int rc = ps_data_rewind(eval, t->err, t->errlen);
    double sum = 0;
    size_t correct = 0, n = 0;
    t->nscores = 0;
    while (rc == PS_OK) {
        ps_batch b;
        char msg[384];
        rc = ps_data_next(eval, &b, t->cfg->batch, t->err, t->errlen);
        if (rc != PS_OK || b.n == 0)
            break;
        rc =
            ps_logreg_batch_build(t->model, &t->ev.lb, &b, 1, msg, sizeof(msg));
        if (rc != PS_OK) {
            fail(t, rc, "%s: %s", t->cfg->eval.path, msg);
            break;
        }
        if ((rc = slot_reserve(t, &t->ev)) != PS_OK ||
            (rc = start_pull(t, &t->ev)) != PS_OK ||
            (rc = wait_req(t, &t->ev.pull, "pull")) != PS_OK)
            break;
        if (t->nscores + b.n > t->scores_cap) {
            size_t cap = t->scores_cap ? t->scores_cap : 4096;
            while (cap < t->nscores + b.n)
                cap *= 2;
            if (grow((void **)&t->scores, cap, sizeof(float)) ||
                grow((void **)&t->labels, cap, sizeof(float))) {
                rc = fail(t, PS_ENOMEM, "out of memory for eval scores");
                break;
            }
            t->scores_cap = cap;
        }
        double l;
        size_t c;
        rc = ps_logreg_eval(t->model, &t->ev.lb, t->ev.w, &l, &c,
                            t->scores + t->nscores);
        if (rc != PS_OK) {
            fail(t, rc, "compute: %s", ps_strerror(rc));
            break;
        }
        memcpy(t->labels + t->nscores, b.y, b.n * sizeof(float));
        t->nscores += b.n;
        sum += l * (double)b.n;
        correct += c;
        n += b.n;
    }
    *loss = n ? sum / (double)n : NAN;
    *acc = n ? (double)correct / (double)n : NAN;
    *auc = NAN;
    if (rc == PS_OK && n &&
        (rc = ps_auc(t->scores, t->labels, t->nscores, auc)) != PS_OK)
        fail(t, rc, "auc: %s", ps_strerror(rc));
    return rc;
}

static void emit(strainer *t, const char *event, int epoch, uint64_t samples,
                 double loss, double acc, double rate, double test_loss,
                 double test_acc, double test_auc)
{
    ps_progress_line l = {event,
                          t->cfg->worker_id,
                          epoch,
                          samples,
                          loss,
                          acc,
                          rate,
                          NAN,
                          test_loss,
                          test_acc,
                          test_auc,
                          &t->stats};
    ps_train_emit(t->progress, &l);
}

/* ---- setup ---- */

static int check_format(strainer *t, const ps_data_cfg *d)
{
    static const char *names[] = {"libsvm", "csv", "idx", "stream"};
    if (d->format == PS_DATA_LIBSVM || d->format == PS_DATA_STREAM)
        return PS_OK; /* a stream's row kind is checked once it is open */
    return fail(t, PS_EINVAL,
                "model %s needs sparse data (--format libsvm or a sparse "
                "stream); %s is %s",
                t->cfg->model, d->path,
                (unsigned)d->format < 4 ? names[d->format] : "?");
}

static int setup(strainer *t)
{
    const ps_train_cfg *cfg = t->cfg;
    int rc;
    if ((rc = check_format(t, &cfg->data)) != PS_OK ||
        (cfg->eval.path && (rc = check_format(t, &cfg->eval)) != PS_OK))
        return rc;
    if (cfg->device != NULL && strchr(cfg->device, ',') != NULL)
        return fail(t, PS_EINVAL,
                    "--device %s: several devices train the dense models "
                    "(softmax, mlp) only; logreg runs on one",
                    cfg->device);
    if ((rc = ps_backend_open(cfg->device, &t->be, t->err, t->errlen)) !=
            PS_OK ||
        (rc = ps_logreg_new(&t->model, cfg->model, t->be, cfg->batch, t->err,
                            t->errlen)) != PS_OK)
        return rc;
    if (cfg->pull_every > 1)
        ps_log(PS_LOG_WARN,
               "pull_every=%d ignored: logreg pulls its batch's keys every "
               "step",
               cfg->pull_every);
    sshuffler *s = &t->sh;
    s->cap = cfg->shuffle_rows ? cfg->shuffle_rows : SP_DEFAULT_SHUFFLE_ROWS;
    s->seed = cfg->seed ^ ((uint64_t)cfg->worker_id << 32);
    s->rowptr = malloc((s->cap + 1) * sizeof(size_t));
    s->y = malloc(s->cap * sizeof(float));
    s->perm = malloc(s->cap * sizeof(uint32_t));
    if (!s->rowptr || !s->y || !s->perm)
        return fail(t, PS_ENOMEM, "out of memory for the shuffle buffer");
    for (int i = 0; i < 2; i++)
        ps_logreg_batch_init(&t->s[i].lb);
    ps_logreg_batch_init(&t->ev.lb);
    if (cfg->compute_only)
        return PS_OK;
    rc = ps_train_connect(cfg, t->stop, &t->client, t->err, t->errlen);
    if (rc != PS_OK)
        return rc;
    t->cons = ps_client_consistency(t->client, NULL);
    return define_table(t);
}

static void slot_free(strainer *t, slot *s)
{
    ps_logreg_batch_free(&s->lb);
    if (t->be != NULL) { /* else nothing was allocated */
        ps_backend_host_free(t->be, s->w);
        ps_backend_host_free(t->be, s->grad);
    }
}

/* Every request in flight completes before its arrays are freed. */
static int drain_all(strainer *t)
{
    int first = PS_OK;
    slot *all[3] = {&t->s[0], &t->s[1], &t->ev};
    for (int i = 0; i < 3; i++) {
        int rc = wait_req(t, &all[i]->pull, "pull");
        int rc2 = wait_req(t, &all[i]->push, "push");
        if (first == PS_OK)
            first = rc != PS_OK ? rc : rc2;
    }
    return first;
}

static void teardown(strainer *t)
{
    if (t->client != NULL) {
        char keep[8];
        /* Errors here were reported already or do not matter any more;
         * keep the message of the failure that stopped us. */
        char *saved = t->err;
        size_t savedlen = t->errlen;
        t->err = keep;
        t->errlen = sizeof(keep);
        drain_all(t);
        t->err = saved;
        t->errlen = savedlen;
    }
    ps_client_free(t->client);
    ps_logreg_free(t->model);
    /* The slots' host memory is the backend's: freed before it. */
    slot_free(t, &t->s[0]);
    slot_free(t, &t->s[1]);
    slot_free(t, &t->ev);
    ps_backend_free(t->be);
    sh_free(&t->sh);
    free(t->scores);
    free(t->labels);
}

/* ---- the loop ---- */

typedef struct tally {
    uint64_t samples, line_samples, ep_samples;
    double line_loss, line_correct, ep_loss, ep_correct;
    int64_t last_line;
} tally;

/* Computes slot s (its pull done) and starts its push, then clocks. */
static int step(strainer *t, slot *s, int epoch, tally *k)
{
    int rc = wait_req(t, &s->pull, "pull");
    if (rc != PS_OK)
        return rc;
    double loss;
    size_t correct;
    int64_t t0 = ps_now_us();
    rc = ps_logreg_step(t->model, &s->lb, s->w, s->grad, &loss, &correct);
    t->clk.compute_us += ps_now_us() - t0;
    if (rc != PS_OK)
        return fail(t, rc, "compute: %s", ps_strerror(rc));
    size_t n = s->lb.n;
    /* Push the batch's SUM of per-row gradients: FTRL and Adagrad set each
     * key's rate from its own accumulated gradients, as if rows came one by
     * one, so a key seen in one row of the batch must not be diluted by the
     * batch size (alpha keeps its usual per-example meaning). */
    for (size_t i = 0; i < s->lb.nuniq; i++)
        s->grad[i] *= (float)n;
    k->samples += n;
    k->ep_samples += n;
    k->line_samples += n;
    k->line_loss += loss * (double)n;
    k->line_correct += (double)correct;
    k->ep_loss += loss * (double)n;
    k->ep_correct += (double)correct;
    if (t->client == NULL)
        return PS_OK;
    /* The epoch's running means: a steadier figure for dashboards than
     * one batch's. */
    ps_client_set_progress(t->client, k->samples,
                           k->ep_loss / (double)k->ep_samples, (uint32_t)epoch,
                           k->ep_correct / (double)k->ep_samples);
    rc = ps_client_push_sparse(t->client, t->table, s->lb.keys, s->lb.nuniq,
                               s->grad, &s->push);
    if (rc != PS_OK)
        return fail(t, rc, "push: %s", ps_client_errmsg(t->client));
    if (!t->cfg->overlap && (rc = wait_req(t, &s->push, "push")) != PS_OK)
        return rc;
    if (t->cons != PS_ASP) {
        int64_t c0 = ps_now_us();
        rc = ps_client_clock(t->client);
        t->clk.wait_us += ps_now_us() - c0;
        if (rc != PS_OK)
            return fail(t, rc, "clock: %s", ps_client_errmsg(t->client));
    }
    return PS_OK;
}

/* Starts a step interval (each epoch's first: evaluation and draining
 * between epochs belong to no step). */
static void clock_reset(strainer *t)
{
    t->clk = (step_clock){ps_now_us(), 0, 0};
}

/* Counts the step that just ended and publishes the figures. */
static void count_step(strainer *t, int epoch, const tally *k)
{
    int64_t dur = ps_now_us() - t->clk.mark;
    int64_t timed = t->clk.wait_us + t->clk.compute_us;
    int64_t us[PS_PHASE_COUNT] = {0};
    us[PS_PHASE_WAIT] = t->clk.wait_us;
    us[PS_PHASE_COMPUTE] = t->clk.compute_us;
    us[PS_PHASE_INPUT] = dur > timed ? dur - timed : 0;
    ps_worker_stats_step(&t->stats, us, epoch, k->samples,
                         k->ep_loss / (double)k->ep_samples,
                         k->ep_correct / (double)k->ep_samples);
    ps_train_publish(t->cfg, t->client, &t->stats);
    clock_reset(t);
}

static void maybe_line(strainer *t, int epoch, tally *k)
{
    int64_t now = ps_now_us();
    if ((double)(now - k->last_line) < t->cfg->progress_every_s * 1e6)
        return;
    double dt = (double)(now - k->last_line) / 1e6;
    emit(t, "progress", epoch, k->samples,
         k->line_loss / (double)k->line_samples,
         k->line_correct / (double)k->line_samples,
         (double)k->line_samples / dt, NAN, NAN, NAN);
    k->last_line = now;
    k->line_samples = 0;
    k->line_loss = k->line_correct = 0;
}

/* One pass over the share. With overlap, batch t+1 is read and its pull
 * started before batch t computes; without, only after t's push is done
 * and the clock advanced, so every pull sees every earlier update. */
static int epoch_run(strainer *t, int epoch, volatile sig_atomic_t *stop,
                     tally *k)
{
    int overlap = t->cfg->overlap, cur = 0, have, got;
    int rc = prefetch(t, &t->s[cur], &have);
    while (rc == PS_OK && have) {
        if (stop && *stop)
            return fail(t, PS_ESHUTDOWN, "stopped by a signal");
        slot *next = &t->s[cur ^ 1];
        got = 0;
        if (overlap && ((rc = wait_req(t, &next->push, "push")) != PS_OK ||
                        (rc = prefetch(t, next, &got)) != PS_OK))
            break;
        if ((rc = step(t, &t->s[cur], epoch, k)) != PS_OK)
            break;
        count_step(t, epoch, k);
        if (!overlap && (rc = prefetch(t, next, &got)) != PS_OK)
            break;
        maybe_line(t, epoch, k);
        cur ^= 1;
        have = got;
    }
    return rc == PS_OK ? drain_all(t) : rc;
}

int ps_train_sparse_run(const ps_train_cfg *cfg, FILE *progress,
                        volatile sig_atomic_t *stop, ps_train_result *res,
                        char *err, size_t errlen)
{
    strainer t;
    memset(&t, 0, sizeof(t));
    t.cfg = cfg;
    t.stop = stop;
    t.progress = progress;
    t.err = err;
    t.errlen = errlen;
    memset(res, 0, sizeof(*res));
    res->test_accuracy = res->test_loss = res->test_auc = NAN;
    ps_worker_stats_init(&t.stats, cfg->worker_id, cfg->attempt, cfg->device,
                         cfg->model);
    if (cfg->batch == 0 || cfg->epochs < 1 || cfg->pull_every < 1)
        return fail(&t, PS_EINVAL,
                    "--batch, --epochs and --pull-every must be positive");
    /* FTRL and Adagrad adapt each key's rate themselves, and FTRL's weights
     * scale with alpha, so a schedule's factor would distort them. */
    if ((cfg->lr_schedule && *cfg->lr_schedule &&
         strcmp(cfg->lr_schedule, "constant") != 0) ||
        cfg->warmup_steps > 0)
        return fail(&t, PS_EINVAL,
                    "model %s: --lr-schedule and --warmup-steps are not "
                    "supported (FTRL/Adagrad adapt per-key rates)",
                    cfg->model);
    if (cfg->push_every > 1 || cfg->init_from)
        return fail(&t, PS_EINVAL,
                    "model %s: --push-every and --init-from are not supported "
                    "yet",
                    cfg->model);
    ps_dataset *data = NULL, *eval = NULL;
    ps_data_cfg dcfg = cfg->data, ecfg = cfg->eval;
    dcfg.multi_pass = cfg->epochs > 1; /* a piped stream is then cached */
    ecfg.multi_pass = 1;               /* rewound before every evaluation */
    int rc = setup(&t);
    if (rc == PS_OK)
        rc = ps_data_open(&data, &dcfg, err, errlen);
    if (rc == PS_OK && cfg->eval.path)
        rc = ps_data_open(&eval, &ecfg, err, errlen);
    if (rc == PS_OK &&
        (!ps_data_sparse(data) || (eval && !ps_data_sparse(eval))))
        rc = fail(&t, PS_EINVAL, "model %s needs sparse rows; %s is dense",
                  cfg->model,
                  ps_data_sparse(data) ? cfg->eval.path : cfg->data.path);
    t.sh.data = data;
    tally k;
    memset(&k, 0, sizeof(k));
    int64_t start = ps_now_us();
    k.last_line = start;
    t.stats.state = rc == PS_OK ? "training" : "failed";
    ps_train_publish(cfg, t.client, &t.stats);
    for (int epoch = 1; rc == PS_OK && epoch <= cfg->epochs; epoch++) {
        clock_reset(&t);
        k.ep_samples = 0;
        k.ep_loss = k.ep_correct = 0;
        if (epoch > 1 && (rc = sh_rewind(&t.sh, err, errlen)) != PS_OK)
            break;
        if ((rc = epoch_run(&t, epoch, stop, &k)) != PS_OK)
            break;
        double tl = NAN, ta = NAN, tauc = NAN;
        if (eval && (rc = evaluate(&t, eval, &tl, &ta, &tauc)) != PS_OK)
            break;
        double secs = (double)(ps_now_us() - start) / 1e6;
        double el = k.ep_samples ? k.ep_loss / (double)k.ep_samples : NAN;
        double ea = k.ep_samples ? k.ep_correct / (double)k.ep_samples : NAN;
        emit(&t, "epoch", epoch, k.samples, el, ea, (double)k.samples / secs,
             tl, ta, tauc);
        if (t.client != NULL) {
            ps_eval ev = {(uint32_t)epoch, k.samples, tl, ta, el, ea, tauc};
            ps_client_set_progress(t.client, k.samples, el, (uint32_t)epoch,
                                   ea);
            ps_client_set_eval(t.client, &ev);
        }
        if (eval) {
            t.stats.eval_epoch = epoch;
            t.stats.eval_loss = tl;
            t.stats.eval_accuracy = ta;
        }
        ps_train_publish(cfg, t.client, &t.stats);
        res->train_loss = el;
        res->train_accuracy = ea;
        res->test_loss = tl;
        res->test_accuracy = ta;
        res->test_auc = tauc;
    }
    res->samples = k.samples;
    res->seconds = (double)(ps_now_us() - start) / 1e6;
    if (rc == PS_OK && t.client != NULL)
        ps_train_send_final(t.client);
    t.stats.state = rc == PS_OK ? "done" : "failed";
    ps_train_publish(cfg, t.client, &t.stats);
    if (rc == PS_OK)
        emit(&t, "done", cfg->epochs, k.samples, res->train_loss,
             res->train_accuracy, (double)k.samples / res->seconds,
             res->test_loss, res->test_accuracy, res->test_auc);
    teardown(&t);
    ps_data_close(data);
    ps_data_close(eval);
    return rc;
}
