/* Latency histogram and result formatting for the benchmarks; see
 * bench_util.h. Pure computation, no I/O except ps_bench_print_human. */
#include "bench_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SUB_COUNT (1u << PS_BENCH_HIST_SUB_BITS)
#define MAX_US ((UINT64_C(1) << 40) - 1)

static unsigned floor_log2(uint64_t v)
{
    unsigned e = 0;
    while (v >>= 1)
        e++;
    return e;
}

static size_t bucket_of(uint64_t us)
{
    if (us > MAX_US)
        us = MAX_US;
    if (us < 2 * SUB_COUNT)
        return (size_t)us;
    unsigned shift = floor_log2(us) - PS_BENCH_HIST_SUB_BITS;
    return (size_t)shift * SUB_COUNT + (size_t)(us >> shift);
}

/* Middle of bucket i, in microseconds. */
static double bucket_mid(size_t i)
{
    if (i < 2 * SUB_COUNT)
        return (double)i;
    unsigned shift = (unsigned)(i / SUB_COUNT) - 1;
    uint64_t low = (uint64_t)(i - (size_t)shift * SUB_COUNT) << shift;
    uint64_t width = UINT64_C(1) << shift;
    return (double)low + (double)(width - 1) / 2.0;
}

void ps_bench_hist_init(ps_bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min_us = UINT64_MAX;
}

void ps_bench_hist_add(ps_bench_hist *h, uint64_t us)
{
    h->bucket[bucket_of(us)]++;
    h->count++;
    h->sum_us += us;
    if (us < h->min_us)
        h->min_us = us;
    if (us > h->max_us)
        h->max_us = us;
}

void ps_bench_hist_merge(ps_bench_hist *dst, const ps_bench_hist *src)
{
    for (size_t i = 0; i < PS_BENCH_HIST_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->min_us < dst->min_us)
        dst->min_us = src->min_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

double ps_bench_hist_quantile(const ps_bench_hist *h, double q)
{
    if (h->count == 0)
        return 0.0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < PS_BENCH_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            double v = bucket_mid(i);
            if (v < (double)h->min_us)
                v = (double)h->min_us;
            if (v > (double)h->max_us)
                v = (double)h->max_us;
            return v;
        }
    }
    return (double)h->max_us;
}

double ps_bench_ops_per_s(const ps_bench_result *r)
{
    return r->seconds > 0 ? (double)r->ops / r->seconds : 0.0;
}

double ps_bench_gbytes_per_s(const ps_bench_result *r)
{
    return ps_bench_ops_per_s(r) * (double)r->moved_per_op / 1e9;
}

void ps_bench_json_fields(ps_strbuf *b, const ps_bench_result *r)
{
    const ps_bench_hist *h = r->lat;
    double mean = h->count ? (double)h->sum_us / (double)h->count : 0.0;
    ps_strbuf_add(b, "\"op\":", 5);
    ps_strbuf_json_str(b, r->op);
    ps_strbuf_printf(b,
                     ",\"bytes\":%llu,\"shards\":%d,\"clients\":%d,"
                     "\"inflight\":%d,\"sparse\":%s,\"ops\":%llu,"
                     "\"seconds\":%.3f,\"ops_per_s\":%.1f,"
                     "\"gbytes_per_s\":%.4f,",
                     (unsigned long long)r->bytes, r->shards, r->clients,
                     r->inflight, r->sparse ? "true" : "false",
                     (unsigned long long)r->ops, r->seconds,
                     ps_bench_ops_per_s(r), ps_bench_gbytes_per_s(r));
    ps_strbuf_printf(
        b,
        "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
        "\"mean_us\":%.1f,\"min_us\":%llu,\"max_us\":%llu,"
        "\"retries\":%llu",
        ps_bench_hist_quantile(h, 0.50), ps_bench_hist_quantile(h, 0.99),
        ps_bench_hist_quantile(h, 0.999), mean,
        (unsigned long long)(h->count ? h->min_us : 0),
        (unsigned long long)h->max_us, (unsigned long long)r->retries);
}

void ps_bench_print_human(const ps_bench_result *r)
{
    printf("%s bytes=%llu shards=%d clients=%d inflight=%d%s: "
           "%.1f ops/s %.4f GB/s p50=%.1fus p99=%.1fus retries=%llu\n",
           r->op, (unsigned long long)r->bytes, r->shards, r->clients,
           r->inflight, r->sparse ? " sparse" : "", ps_bench_ops_per_s(r),
           ps_bench_gbytes_per_s(r), ps_bench_hist_quantile(r->lat, 0.50),
           ps_bench_hist_quantile(r->lat, 0.99),
           (unsigned long long)r->retries);
}
