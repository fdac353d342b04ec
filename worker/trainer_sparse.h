/* The training loop for the sparse model (logreg[:BITS]); ps_train_run
 * hands over to it when the model spec is logreg. Same configuration,
 * progress lines and result as trainer.h, plus "test_auc" in the epoch and
 * done lines (and res->test_auc) when there is an eval set.
 *
 * Per step: read a mini-batch (libsvm rows through a seeded shuffle
 * buffer), collect its distinct keys, pull their weights from the sparse
 * table, compute the gradient for those keys only and push it. With
 * overlap on, the pull of batch t+1's keys is in flight while batch t
 * computes and the push of batch t travels while batch t+1 is read, so
 * batch t+1's weights miss batch t's update (one exchange stale, as in the
 * dense loop). pull_every does not apply: every batch needs the weights of
 * its own keys, so every step pulls. Under SSP/BSP the worker advances its
 * clock after every push. */
#ifndef PS_TRAINER_SPARSE_H
#define PS_TRAINER_SPARSE_H

#include "trainer.h"

int ps_train_sparse_run(const ps_train_cfg *cfg, FILE *progress,
                        volatile sig_atomic_t *stop, ps_train_result *res,
                        char *err, size_t errlen);

#endif
