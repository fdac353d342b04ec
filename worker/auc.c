/* Exact AUC by sorting: the rank-sum (Mann-Whitney) form, where a run of
 * equal scores gets the average of the ranks it spans, so ties count half a
 * pair whatever the input order. O(n log n) time, n indices of memory. */
#include "auc.h"

#include "common/sparkps_err.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct scored {
    float score;
    float label;
} scored;

static int by_score(const void *a, const void *b)
{
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}

int ps_auc(const float *scores, const float *labels, size_t n, double *auc)
{
    scored *s;
    double pos = 0, rank_sum = 0;

    if (auc == NULL || (n > 0 && (scores == NULL || labels == NULL)))
        return PS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((labels[i] != 0.0f && labels[i] != 1.0f) || isnan(scores[i]))
            return PS_EINVAL;
    if (n > SIZE_MAX / sizeof(*s))
        return PS_ENOMEM;
    s = malloc((n ? n : 1) * sizeof(*s));
    if (s == NULL)
        return PS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        s[i].score = scores[i];
        s[i].label = labels[i];
        pos += labels[i];
    }
    qsort(s, n, sizeof(*s), by_score);
    /* Ranks from 1; a tie run [i, j) shares rank (i + 1 + j) / 2. */
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        double run_pos = s[i].label;
        while (j < n && s[j].score == s[i].score)
            run_pos += s[j++].label;
        rank_sum += run_pos * ((double)(i + 1) + (double)j) / 2.0;
        i = j;
    }
    free(s);
    double neg = (double)n - pos;
    if (pos == 0 || neg == 0) {
        *auc = NAN;
        return PS_OK;
    }
    *auc = (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
    return PS_OK;
}
