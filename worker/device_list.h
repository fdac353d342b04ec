/* The worker's --device value: one device ("cuda:0") or a comma-separated
 * group of them ("cuda:0,cuda:1", "cpu,cpu") that trains as one worker
 * (worker/replicas.h). Parsing checks every entry's syntax and refuses the
 * same GPU twice; opening turns the entries into backends. */
#ifndef PS_DEVICE_LIST_H
#define PS_DEVICE_LIST_H

#include "backend.h"
#include "comm.h"

#include <stddef.h>

typedef struct ps_device_list {
    size_t n;                               /* 1..PS_COMM_MAX_RANKS */
    char names[PS_COMM_MAX_RANKS][32];      /* "cpu", "cpu:4", "cuda:1" */
} ps_device_list;

/* Splits and checks `spec` (NULL or "" is "cpu"). PS_EINVAL with err naming
 * the bad entry: an empty entry, unknown syntax, more than
 * PS_COMM_MAX_RANKS entries, or a CUDA device listed twice ("cuda" is
 * cuda:0). *out is written only on success. */
int ps_device_list_parse(const char *spec, ps_device_list *out, char *err,
                         size_t errlen);

/* Opens every entry into bes[0..l->n-1]; on failure none stays open and
 * err names the entry. */
int ps_device_list_open(const ps_device_list *l, ps_backend **bes, char *err,
                        size_t errlen);

/* Frees bes[0..n-1] (NULL entries allowed). */
void ps_device_list_close(ps_backend **bes, size_t n);

#endif
