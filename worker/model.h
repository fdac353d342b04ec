/* Models a worker trains: their tables (defined on the servers) and one
 * forward/backward pass on a mini-batch, computed by a compute backend.
 *
 * Parameters live on the servers; the worker only holds a working copy.
 * All of a model's tables are laid out back to back in one flat float
 * vector (table i at ps_model_table_at(m, i)->offset), so the trainer pulls
 * every table into one host buffer, hands it over with ps_model_set_params,
 * runs ps_model_step, and pushes what ps_model_get_grads returns, table by
 * table. Host buffers are the caller's; the model copies to and from its
 * backend's device buffers explicitly (no hidden host pointers), so a CUDA
 * backend plugs in unchanged.
 *
 * Specs: "softmax" (softmax regression, input_dim -> classes),
 * "mlp:784-256-128-10" (ReLU hidden layers, softmax cross-entropy; the
 * first width must equal the data's input_dim). A model is used by one
 * thread. */
#ifndef PS_MODEL_H
#define PS_MODEL_H

#include "backend.h"

#include <stddef.h>
#include <stdint.h>

#define PS_MODEL_MAX_LAYERS 16

typedef struct ps_model_table {
    char name[64];       /* "fc1.weight", "fc1.bias", ... */
    uint64_t offset;     /* first float in the flat parameter vector */
    uint64_t len;        /* floats */
    uint64_t rows, cols; /* weight: [in, out]; bias: [1, out] */
    int init_kind;       /* PS_INIT_HE for ReLU layers' weights, PS_INIT_XAVIER
                            for the output layer, PS_INIT_ZEROS for biases */
} ps_model_table;

typedef struct ps_model ps_model;

/* Parses a spec for data with input_dim features and `classes` labels
 * (0..classes-1); classes 0 means "from the spec". Errors (PS_EINVAL with a
 * message): unknown spec, widths < 1, first width != input_dim, last width
 * != classes. */
int ps_model_new(ps_model **out, const char *spec, size_t input_dim,
                 size_t classes, ps_backend *be, size_t max_batch, char *err,
                 size_t errlen);
void ps_model_free(ps_model *m);

size_t ps_model_num_tables(const ps_model *m);
const ps_model_table *ps_model_table_at(const ps_model *m, size_t i);
uint64_t ps_model_num_params(const ps_model *m);
size_t ps_model_input_dim(const ps_model *m);
size_t ps_model_classes(const ps_model *m);

/* Copies the flat parameter vector (ps_model_num_params floats) in. */
int ps_model_set_params(ps_model *m, const float *params);
/* The same without waiting: params must stay unchanged until the next
 * call that waits on this model's backend returns (a step, eval, predict,
 * get_grads, or ps_backend_sync). Saves a synchronisation per step. */
int ps_model_set_params_async(ps_model *m, const float *params);

/* Forward and backward on n <= max_batch rows: x is n*input_dim floats
 * row-major, y n labels (integers as floats). Gradients of the MEAN loss
 * over the batch are kept on the device; *loss receives the mean
 * cross-entropy, *correct the rows whose argmax equals the label. */
int ps_model_step(ps_model *m, const float *x, const float *y, size_t n,
                  double *loss, size_t *correct);

/* ps_model_step followed by ps_model_get_grads(m, grads), with a single
 * wait for both. */
int ps_model_step_grads(ps_model *m, const float *x, const float *y, size_t n,
                        float *grads, double *loss, size_t *correct);

/* ps_model_step in two halves, so several models on several devices can
 * compute at once (worker/replicas.c): begin issues the step and returns
 * without waiting (x and y must stay unchanged until end returns; on an
 * error it has waited already and end must not be called); end waits and
 * fetches the loss and correct count. */
int ps_model_step_begin(ps_model *m, const float *x, const float *y, size_t n);
int ps_model_step_end(ps_model *m, double *loss, size_t *correct);

/* Pipelined steps: the next batch goes up on the backend's copy stream
 * while this one computes (see "The copy stream" in backend.h).
 *
 * ps_model_stage checks a batch (as ps_model_step does) and issues its
 * upload into input slot `slot` (0 or 1) without waiting; x and y must stay
 * unchanged until the next call that waits on this model's backend
 * returns. PS_EINVAL when the slot already holds a staged batch or a step
 * begun on it has not ended.
 *
 * ps_model_step_staged_begin issues a step on the batch staged in `slot`
 * (PS_EINVAL when none) and returns without waiting; when grads is not
 * NULL the gradient comes down into it layer by layer as the backward pass
 * produces each (do not read it before ps_model_step_end returns). Finish
 * with ps_model_step_end. The usual loop: stage slot 0; then per step
 * begin(s), prepare the next batch and stage it into 1 - s, end.
 *
 * The one-call forms (step, step_grads, step_begin, eval, predict) use
 * slot 0: not while a batch is staged there. */
int ps_model_stage(ps_model *m, int slot, const float *x, const float *y,
                   size_t n);
int ps_model_step_staged_begin(ps_model *m, int slot, float *grads);
/* Drops the batch staged in `slot` (none: nothing happens), waiting for its
 * upload, so the slot is free and the host rows may be reused. */
void ps_model_unstage(ps_model *m, int slot);

/* The device buffers of the flat parameters and of the last step's
 * gradient (ps_model_num_params floats each), and the backend they live
 * on, for collective operations across models (worker/replicas.c). A
 * write to the parameter buffer takes effect at the next step. */
ps_buf *ps_model_params_buf(ps_model *m);
ps_buf *ps_model_grads_buf(ps_model *m);
ps_backend *ps_model_backend(ps_model *m);

/* Copies the gradient of the last step out (ps_model_num_params floats). */
int ps_model_get_grads(ps_model *m, float *grads);

/* Forward only: mean loss and correct count, for evaluation. */
int ps_model_eval(ps_model *m, const float *x, const float *y, size_t n,
                  double *loss, size_t *correct);

/* Forward only: class probabilities, n*classes floats (for predict). */
int ps_model_predict(ps_model *m, const float *x, size_t n, float *probs);

#endif
