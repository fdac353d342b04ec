/* Area under the ROC curve of binary scores, computed exactly.
 *
 * AUC is the probability that a random positive scores above a random
 * negative, ties counting one half (the Mann-Whitney U statistic divided by
 * positives * negatives). Scores only matter through their order, so logits
 * and probabilities give the same AUC. Pure functions; any thread. */
#ifndef PS_AUC_H
#define PS_AUC_H

#include <stddef.h>

/* Sorts the n (score, label) pairs and writes the AUC to *auc. Labels are 0
 * or 1 (PS_EINVAL otherwise, and for NaN scores or NULL arrays). When every
 * label is the same (or n is 0) the AUC is undefined: *auc = NAN and the
 * call still returns PS_OK. Allocates n indices (PS_ENOMEM). */
int ps_auc(const float *scores, const float *labels, size_t n, double *auc);

#endif
