/* Predict mode: scores rows with a model exported by ps-ctl export, no
 * servers involved (the Spark connector's Transformer runs it).
 *
 * Output, one line per input row in input order:
 *   CLASS,P0,P1,...,P(C-1)
 * the argmax class then the C class probabilities (%.6g), comma-separated,
 * no header. Data is read with the training readers and flags (a label
 * column is still expected in CSV; its values only feed the accuracy
 * reported in the result). Dense models (softmax, mlp) and logreg (two
 * classes: "CLASS,P0,P1"; see predict_logreg.h).
 * Single-threaded. */
#ifndef PS_PREDICT_H
#define PS_PREDICT_H

#include "data.h"

#include <stdio.h>

typedef struct ps_predict_cfg {
    const char *model_file; /* safetensors from ps-ctl export */
    ps_data_cfg data;
    const char *device; /* "cpu", "cpu:T", "cuda:N" */
    size_t batch;       /* rows per forward pass */
} ps_predict_cfg;

typedef struct ps_predict_result {
    uint64_t rows;
    double accuracy; /* against the data's labels */
} ps_predict_result;

/* Writes one line per row to out. Errors (message in err): PS_EIO (files,
 * writing out), PS_EINVAL (bad model file, data not matching the model's
 * width, unsupported model), PS_ENOMEM. */
int ps_predict_run(const ps_predict_cfg *cfg, FILE *out, ps_predict_result *res,
                   char *err, size_t errlen);

#endif
