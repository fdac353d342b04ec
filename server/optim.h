/* Server-side optimizers: the update rules that turn a pushed gradient into
 * new weights, with their per-parameter state kept beside the weights.
 *
 * State layout: an optimizer keeps ps_optim_state_width() floats of state per
 * parameter, slot-major: slot k of parameter i is state[k * stride + i]. A
 * dense shard passes its whole state block with stride = shard length (and
 * pointers offset to the first parameter touched); a sparse row passes its
 * row's state with stride = dim.
 *
 * Rules (g is the gradient after clipping, w the weight):
 *   clip > 0:         g = min(max(g, -clip), clip)
 *   weight_decay wd:  g += wd * w      (SGD, Adagrad, FTRL: coupled L2)
 *                     w -= lr * wd * w (Adam: decoupled, as AdamW, applied
 *                                       before the Adam step)
 *   SGD:      momentum == 0: w -= lr * g
 *             else v = momentum * v + g; w -= lr * v           (slot 0: v)
 *   Adagrad:  a += g^2; w -= lr * g / (sqrt(a) + eps)          (slot 0: a,
 *             starts at initial_accumulator; eps default 1e-10)
 *   Adam:     t += 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *             w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 *             (slots m, v, t: a per-parameter step count, so partial pushes
 *             of a dense table stay correct)
 *   FTRL:     (McMahan et al. 2013, per coordinate; lr is alpha)
 *             sigma = (sqrt(n + g^2) - sqrt(n)) / alpha
 *             z += g - sigma * w; n += g^2
 *             w = |z| <= l1 ? 0
 *                 : -(z - sign(z) l1) / ((ftrl_beta + sqrt(n)) / alpha + l2)
 *             (slots z, n)
 * Pure computation, no allocation, thread-safe on disjoint data. */
#ifndef PS_OPTIM_H
#define PS_OPTIM_H

#include <stddef.h>

enum {
    PS_OPTIM_SGD = 0,
    PS_OPTIM_ADAGRAD = 1,
    PS_OPTIM_ADAM = 2,
    PS_OPTIM_FTRL = 3
};

typedef struct ps_optim_cfg {
    int kind;
    float lr;
    float momentum;
    float beta1, beta2, eps;
    float l1, l2, ftrl_beta;
    float weight_decay;
    float clip;
    float initial_accumulator;
} ps_optim_cfg;

/* Replaces zero defaults (Adam betas/eps, Adagrad eps/accumulator, FTRL
 * beta) by the documented values. Call once when a table is defined. */
void ps_optim_fill_defaults(ps_optim_cfg *c);

/* Checks kind and ranges (lr > 0 and finite, 0 <= momentum < 1,
 * 0 <= beta < 1, eps > 0, l1/l2/wd/clip >= 0). Returns 0 or PS_EINVAL
 * with a message naming the field in err. */
int ps_optim_check(const ps_optim_cfg *c, char *err, size_t errlen);

/* Floats of state per parameter: SGD 0 (1 with momentum), Adagrad 1,
 * Adam 3, FTRL 2. */
int ps_optim_state_width(const ps_optim_cfg *c);

/* Sets the state of n parameters whose initial weights are w: zero, except
 * Adagrad's accumulator (initial_accumulator) and FTRL's z, chosen so the
 * FTRL weight formula gives back w. */
void ps_optim_init_state(const ps_optim_cfg *c, const float *w, float *state,
                         size_t stride, size_t n);

/* Applies gradient g to n parameters w (state as above). When out is not
 * NULL the updated weights are also written there (a fused copy for
 * pushpull replies); out may be g itself (each chunk of g is consumed
 * before the same chunk of out is written), but neither may overlap w or
 * state. The caller has checked g is finite. */
void ps_optim_apply(const ps_optim_cfg *c, float *w, float *state,
                    size_t stride, const float *g, size_t n, float *out);

/* True when every one of n values is finite. */
int ps_all_finite(const float *v, size_t n);

#endif
