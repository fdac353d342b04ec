/* Shared by ps-bench and zmq-echo: a latency histogram and the JSON result
 * object both programs print, so that their numbers are computed and named
 * the same way and a script can divide one by the other.
 *
 * Not thread-safe: each thread fills its own histogram and the main thread
 * merges them once the threads have been joined. */
#ifndef PS_BENCH_UTIL_H
#define PS_BENCH_UTIL_H

#include "common/strbuf.h"

#include <stdint.h>

/* Log-linear buckets: exact below 128 us, then 64 buckets per power of two
 * (at most 1.6% relative error), up to 2^40 us. Fixed size, so a long run
 * never allocates and histograms merge by adding counts. */
#define PS_BENCH_HIST_SUB_BITS 6
#define PS_BENCH_HIST_BUCKETS 2304

typedef struct ps_bench_hist {
    uint64_t count;
    uint64_t sum_us;
    uint64_t min_us;
    uint64_t max_us;
    uint64_t bucket[PS_BENCH_HIST_BUCKETS];
} ps_bench_hist;

void ps_bench_hist_init(ps_bench_hist *h);
void ps_bench_hist_add(ps_bench_hist *h, uint64_t us);
void ps_bench_hist_merge(ps_bench_hist *dst, const ps_bench_hist *src);

/* The q-quantile (0 < q <= 1) in microseconds: the middle of the bucket that
 * holds the ceil(q * count)-th smallest value, clamped to [min, max]. 0 when
 * the histogram is empty. */
double ps_bench_hist_quantile(const ps_bench_hist *h, double q);

/* One benchmark run, in the terms both programs report. */
typedef struct ps_bench_result {
    const char *op;        /* "push", "pull", "pushpull", "echo" */
    uint64_t bytes;        /* payload of one request, one direction */
    uint64_t moved_per_op; /* payload bytes moved per op, both directions */
    int shards;
    int clients;
    int inflight; /* outstanding requests per client */
    int sparse;
    uint64_t ops;   /* completed inside the measured window */
    double seconds; /* length of the measured window */
    uint64_t retries;
    const ps_bench_hist *lat; /* issue-to-completion latency */
} ps_bench_result;

/* Appends the common fields as `"key":value` pairs separated by commas,
 * without braces, so a program can add `,"its":fields` after them. */
void ps_bench_json_fields(ps_strbuf *b, const ps_bench_result *r);

double ps_bench_ops_per_s(const ps_bench_result *r);
double ps_bench_gbytes_per_s(const ps_bench_result *r);

/* One human-readable summary line for when --json is not given. */
void ps_bench_print_human(const ps_bench_result *r);

#endif
