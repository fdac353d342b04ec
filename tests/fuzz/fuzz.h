/* Fuzz targets: each takes one input (bytes chosen by libFuzzer, or a file
 * of the committed corpus) and drives one entry point that reads untrusted
 * data. They never fail on bad input (refusing it is the point); a crash,
 * a leak or undefined behaviour is the finding.
 *
 * The same functions run under libFuzzer (fuzz_main.c, clang,
 * -DSPARKPS_FUZZ=ON) and in the normal build's fuzz_replay test
 * (replay.c), which feeds every corpus and regression file through them. */
#ifndef PS_FUZZ_H
#define PS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct ps_fuzz_target {
    const char *name; /* also the folder under corpus/ and regressions/ */
    int (*run)(const uint8_t *data, size_t size);
} ps_fuzz_target;

/* The server's request path: a ps_server on an inproc endpoint with a few
 * tables (dense and sparse, several optimizers) handles a sequence of
 * multipart messages decoded from the input (see fuzz_server.c). */
int ps_fuzz_server(const uint8_t *data, size_t size);

/* Data readers through ps_data_open/next/rewind on the input as a file
 * (byte 0 chooses reader options; see fuzz_data.c). */
int ps_fuzz_libsvm(const uint8_t *data, size_t size);
int ps_fuzz_csv(const uint8_t *data, size_t size);
int ps_fuzz_idx(const uint8_t *data, size_t size);
int ps_fuzz_stream(const uint8_t *data, size_t size);

/* safetensors parsing and the model-file reader on top of it. */
int ps_fuzz_safetensors(const uint8_t *data, size_t size);

/* Every target, NULL-terminated. */
extern const ps_fuzz_target ps_fuzz_targets[];

#endif
