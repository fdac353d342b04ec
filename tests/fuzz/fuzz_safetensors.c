/* Fuzz target: safetensors files (what ps-worker predict and --init-from
 * read) through ps_st_parse(), then the model-file reader on the parsed
 * file: the spec from the metadata and, for a small model, its weights
 * copied out of the tensors. */
#include "fuzz.h"

#include "backend.h"
#include "model.h"
#include "model_file.h"
#include "safetensors.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define SMALL 512 /* widest layer a model built here may have */

/* Whether every number in spec (and the given widths) is at most SMALL:
 * the model is then cheap to build, whatever the file says. */
static int small_model(const char *spec, size_t input_dim, size_t classes)
{
    if (strlen(spec) > 64 || input_dim > SMALL || classes > SMALL)
        return 0;
    for (const char *p = spec; *p;) {
        if (!isdigit((unsigned char)*p)) {
            p++;
            continue;
        }
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (v > SMALL)
            return 0;
        p = end;
    }
    return 1;
}

static void load_model(const ps_st_file *f, const char *spec, size_t input_dim,
                       size_t classes)
{
    ps_backend *be = NULL;
    ps_model *m = NULL;
    char err[512];
    if (ps_backend_open("cpu", &be, err, sizeof(err)) != 0)
        return;
    if (ps_model_new(&m, spec, input_dim ? input_dim : 4, classes, be, 1, err,
                     sizeof(err)) == 0) {
        float *params = malloc((size_t)ps_model_num_params(m) * sizeof(float));
        if (params != NULL &&
            ps_model_file_params(f, "fuzz", m, params, err, sizeof(err)) == 0)
            (void)ps_model_set_params(m, params);
        free(params);
        ps_model_free(m);
    }
    ps_backend_free(be);
}

int ps_fuzz_safetensors(const uint8_t *data, size_t size)
{
    ps_st_file *f;
    char err[512];
    if (ps_st_parse(&f, data, size, "fuzz", err, sizeof(err)) != 0)
        return 0;
    for (size_t i = 0; i < ps_st_count(f); i++) {
        const ps_st_tensor *t = ps_st_at(f, i);
        if (ps_st_find(f, t->name) != t)
            abort(); /* a listed tensor must be found by its name */
    }
    const char *spec;
    size_t input_dim, classes;
    if (ps_model_file_spec(f, "fuzz", &spec, &input_dim, &classes, err,
                           sizeof(err)) == 0 &&
        small_model(spec, input_dim, classes))
        load_model(f, spec, input_dim, classes);
    ps_st_close(f);
    return 0;
}
