/* A model as a safetensors file: what ps-ctl export writes and ps-worker
 * predict / --init-from read. One tensor per table of the model (dense:
 * "fc1.weight" [in, out], "fc1.bias" [1, out]; a sparse table NAME would be
 * "NAME.keys" U64 [n] and "NAME.values" F32 [n, dim]) and the model spec in
 * the metadata: "model" (e.g. mlp:784-256-128-10), "classes", "input_dim".
 *
 * The table metadata the worker attaches when defining (TableSpec.meta,
 * "model=SPEC;classes=C;input_dim=D") is how the spec travels from the
 * training job to the exported file. Pure functions, any thread. */
#ifndef PS_MODEL_FILE_H
#define PS_MODEL_FILE_H

#include "model.h"
#include "safetensors.h"

#include <stddef.h>

/* "model=SPEC;classes=C;input_dim=D" for a model being trained. */
void ps_model_file_meta(const char *spec, size_t classes, size_t input_dim,
                        char *buf, size_t len);

/* The model's spec, input width and classes from a file's metadata (from
 * fc1.weight's shape when absent; 0 when unknown). Errors
 * (PS_EINVAL with the reason): no "model" entry, bad numbers. spec is
 * borrowed from f. */
int ps_model_file_spec(const ps_st_file *f, const char *path, const char **spec,
                       size_t *input_dim, size_t *classes, char *err,
                       size_t errlen);

/* Copies every table of m out of f into the flat parameter vector (see
 * model.h). Checks each tensor: present, F32, shape [rows, cols] or
 * [rows * cols]; PS_EINVAL naming the tensor otherwise. */
int ps_model_file_params(const ps_st_file *f, const char *path,
                         const ps_model *m, float *params, char *err,
                         size_t errlen);

#endif
