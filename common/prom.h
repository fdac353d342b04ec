/* Prometheus text exposition format 0.0.4: a writer for metric families and
 * their samples, and a histogram with fixed bucket bounds.
 *
 * The writer appends to a ps_strbuf: a family starts with ps_prom_family()
 * (its # HELP and # TYPE lines), followed by its samples. The caller emits
 * all samples of one family together, as the format requires, and gives
 * each family one name. Metric and label names are the caller's constants
 * and must match [a-zA-Z_:][a-zA-Z0-9_:]* (checked by assert); label values
 * are any UTF-8 text and are escaped here (backslash, double quote,
 * newline). Values print as the shortest text that reads back to the same
 * double; NaN as "NaN", infinities as "+Inf" / "-Inf".
 *
 * A histogram counts observations per bucket (non-cumulative inside) and
 * renders cumulative `le` buckets ending in le="+Inf", then _sum and
 * _count. No allocation, no threads: one owner updates and renders it. */
#ifndef PS_PROM_H
#define PS_PROM_H

#include "common/strbuf.h"

#include <stddef.h>
#include <stdint.h>

typedef enum ps_prom_type {
    PS_PROM_COUNTER,
    PS_PROM_GAUGE,
    PS_PROM_HISTOGRAM
} ps_prom_type;

/* One label of a sample; arrays of them end with {NULL, NULL}. */
typedef struct ps_prom_label {
    const char *name;
    const char *value;
} ps_prom_label;

#define PS_PROM_MAX_BUCKETS 32

typedef struct ps_prom_hist {
    const double *bounds; /* upper bounds, increasing; borrowed (static) */
    size_t nbounds;       /* <= PS_PROM_MAX_BUCKETS */
    uint64_t counts[PS_PROM_MAX_BUCKETS + 1]; /* last: above every bound */
    uint64_t count;
    double sum;
} ps_prom_hist;

/* Writes "# HELP name help" and "# TYPE name type". help is escaped. */
void ps_prom_family(ps_strbuf *b, const char *name, ps_prom_type type,
                    const char *help);

/* Writes one sample line: name{labels} value. labels may be NULL. */
void ps_prom_sample(ps_strbuf *b, const char *name, const ps_prom_label *labels,
                    double value);

/* Same, for counters held as integers: printed exactly, never as 1e+20. */
void ps_prom_sample_u64(ps_strbuf *b, const char *name,
                        const ps_prom_label *labels, uint64_t value);

/* Appends v as the format writes values ("NaN", "+Inf", 0.25, 1e-06). */
void ps_prom_value(ps_strbuf *b, double v);

/* Appends s escaped for a label value (without the quotes). */
void ps_prom_escape_label(ps_strbuf *b, const char *s);

/* Starts an empty histogram over bounds (nbounds <= PS_PROM_MAX_BUCKETS,
 * increasing, finite; checked by assert). */
void ps_prom_hist_init(ps_prom_hist *h, const double *bounds, size_t nbounds);

/* Counts v in the first bucket whose bound is >= v (NaN is ignored). */
void ps_prom_hist_observe(ps_prom_hist *h, double v);

/* Writes name_bucket{labels,le="..."} for every bound and +Inf
 * (cumulative), then name_sum and name_count. The family header (type
 * histogram) is the caller's, as for other families. */
void ps_prom_hist_write(ps_strbuf *b, const char *name,
                        const ps_prom_label *labels, const ps_prom_hist *h);

#endif
