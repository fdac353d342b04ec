/* Sparse logistic regression on hashed feature ids ("logreg[:BITS]").
 *
 * Feature id f (0-based, as the libsvm reader hands them out) maps to the
 * key ps_mix64(f) >> (64 - BITS): the SplitMix64 finaliser, top BITS bits,
 * so keys fill [0, 2^BITS) and the map is stable across runs, machines and
 * versions. The bias is the reserved key 2^BITS, just outside the hashed
 * range, so it never collides with a feature. All weights live in one
 * sparse table (PS_LOGREG_TABLE, dim 1) on the servers; the worker holds
 * none: per mini-batch it builds a ps_logreg_batch (the batch's distinct
 * keys and a CSR matrix over them, the bias as one more entry of value 1
 * per row), pulls the weights of those keys, runs ps_logreg_step and pushes
 * the gradient for the same keys.
 *
 * Compute goes through the backend (csr_mm, sigmoid_xent, csr_mm_t) on
 * device buffers allocated in ps_logreg_new for max_batch rows and grown by
 * reallocation only when a batch has more rows or entries than any before.
 * The loss is the mean log-loss of the batch; l1/l2 belong to the servers'
 * optimizer (FTRL). A model and its batches are used by one thread. */
#ifndef PS_SPARSE_LR_H
#define PS_SPARSE_LR_H

#include "backend.h"
#include "data.h"

#include <stddef.h>
#include <stdint.h>

#define PS_LOGREG_TABLE "logreg.weight"
#define PS_LOGREG_DEFAULT_BITS 24
#define PS_LOGREG_MAX_BITS 48

typedef struct ps_logreg ps_logreg;

/* One mini-batch in the model's terms. Fields are read-only for callers;
 * the buffers belong to the batch and are reused by the next build. */
typedef struct ps_logreg_batch {
    size_t n;         /* rows */
    size_t nnz;       /* CSR entries, bias entries included */
    size_t nuniq;     /* distinct keys; keys[0] is the bias key */
    uint64_t *keys;   /* nuniq keys, in first-seen order */
    uint32_t *rowptr; /* n + 1 offsets into col/val */
    uint32_t *col;    /* nnz positions in keys */
    float *val;       /* nnz feature values (1 for the bias) */
    float *y;         /* n labels, 0 or 1 */
    /* private: capacities and the key -> position hash of the build */
    ps_backend *be; /* rowptr, col, val and y are its host memory (pinned
                       on a GPU), for the uploads; NULL before a build */
    size_t cap_rows, cap_nnz, nslots;
    uint64_t *slot_key;
    uint32_t *slot_pos; /* position + 1; 0: empty */
    uint32_t *used;     /* slots filled by this build, to clear them */
} ps_logreg_batch;

/* True when spec names this model ("logreg" or "logreg:..."), even if the
 * rest is bad (ps_logreg_new then says what is wrong). */
int ps_logreg_is_spec(const char *spec);

/* Parses "logreg" (BITS = PS_LOGREG_DEFAULT_BITS) or "logreg:BITS" with
 * BITS in 1..PS_LOGREG_MAX_BITS. PS_EINVAL with a message otherwise. */
int ps_logreg_parse_spec(const char *spec, unsigned *bits, char *err,
                         size_t errlen);

/* The key of feature id f, and the bias key, for a hash space of 2^bits. */
uint64_t ps_logreg_key(unsigned bits, uint64_t feature);
uint64_t ps_logreg_bias_key(unsigned bits);

/* Creates the model for spec on be (borrowed) with device buffers for
 * max_batch rows. On failure *out is untouched, err says why (PS_EINVAL,
 * PS_ENOMEM, or the backend's error). */
int ps_logreg_new(ps_logreg **out, const char *spec, ps_backend *be,
                  size_t max_batch, char *err, size_t errlen);
void ps_logreg_free(ps_logreg *m);
unsigned ps_logreg_bits(const ps_logreg *m);

/* An empty batch (no allocation until the first build); free accepts an
 * initialised batch and leaves it empty. */
void ps_logreg_batch_init(ps_logreg_batch *lb);
void ps_logreg_batch_free(ps_logreg_batch *lb);

/* Fills lb from a sparse data batch (b->rowptr/idx/val; dense batches are
 * PS_EINVAL). With check_labels every label must be 0 or 1 (PS_EINVAL,
 * message naming the label), else labels are copied unchecked (predict).
 * PS_ENOMEM when buffers cannot grow; PS_EINVAL for more than 2^32 - 1
 * entries. */
int ps_logreg_batch_build(const ps_logreg *m, ps_logreg_batch *lb,
                          const ps_batch *b, int check_labels, char *err,
                          size_t errlen);

/* Forward and backward on lb with w[i] the weight of lb->keys[i]: writes
 * grad[i] = d(mean loss)/d(w[i]) (nuniq floats), *loss the mean log-loss
 * and *correct the rows predicted right (p >= 0.5 means 1). Blocks until
 * the backend is done; w and grad are the caller's. */
int ps_logreg_step(ps_logreg *m, const ps_logreg_batch *lb, const float *w,
                   float *grad, double *loss, size_t *correct);

/* Forward only: mean loss, correct count and, when logits is not NULL, the
 * n logits w·x + b (scores for AUC). */
int ps_logreg_eval(ps_logreg *m, const ps_logreg_batch *lb, const float *w,
                   double *loss, size_t *correct, float *logits);

/* Where predict finds weights: fills w[i] for keys[i], i < n, with 0 for a
 * key it does not hold (the table's init), and returns PS_OK or an error
 * that predict passes on. A safetensors reader backs it with the
 * NAME.keys / NAME.values arrays of the exported table. */
typedef int (*ps_logreg_lookup)(void *ctx, const uint64_t *keys, size_t n,
                                float *w);

/* P(y = 1) for each of the b->n rows of a sparse batch into probs, with
 * the weights from lookup. Labels are ignored. */
int ps_logreg_predict(ps_logreg *m, const ps_batch *b, ps_logreg_lookup lookup,
                      void *ctx, float *probs);

#endif
