/* The list of fuzz targets; see fuzz.h. */
#include "fuzz.h"

const ps_fuzz_target ps_fuzz_targets[] = {
    {"server", ps_fuzz_server},
    {"libsvm", ps_fuzz_libsvm},
    {"csv", ps_fuzz_csv},
    {"idx", ps_fuzz_idx},
    {"stream", ps_fuzz_stream},
    {"safetensors", ps_fuzz_safetensors},
    {NULL, NULL},
};
