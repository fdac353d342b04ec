/* Predict for the sparse logistic-regression model (see predict.h): the
 * exported table "logreg.weight.keys" / ".values" becomes a sorted key ->
 * weight map, and each row's P(y = 1) comes from ps_logreg_predict. Output
 * lines are "CLASS,P0,P1" like the dense models' (P0 = 1 - P1, class 1 when
 * P1 >= 0.5). Keys absent from the file weigh 0, as on the servers. */
#ifndef PS_PREDICT_LOGREG_H
#define PS_PREDICT_LOGREG_H

#include "predict.h"
#include "safetensors.h"

/* Runs predict for spec (a logreg spec) with the weights of f (read from
 * cfg->model_file). Errors as ps_predict_run. */
int ps_predict_logreg(const ps_predict_cfg *cfg, const ps_st_file *f,
                      const char *spec, FILE *out, ps_predict_result *res,
                      char *err, size_t errlen);

#endif
