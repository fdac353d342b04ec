/* ps-scrape: fetches one URL (a ps-server's /metrics or /status) at a fixed
 * rate for a while and reports how the scrapes went, as a Prometheus
 * server or a dashboard would load a shard. scrape_bench.sh runs it beside
 * ps-bench to measure what scraping costs the push/pull throughput.
 *
 * Scrapes start on a fixed schedule (every 1/hz s); one that is late
 * starts at once, so a slow server lowers the rate instead of piling up
 * requests. One thread, one connection per scrape (as Prometheus does
 * with a server that closes after each reply). */
#include "bench_util.h"
#include "common/config.h"
#include "common/strbuf.h"
#include "common/timeutil.h"
#include "http_client.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct scrape_cfg {
    const char *url;
    double hz;
    double seconds;
    int64_t timeout_ms;
    int json;
} scrape_cfg;

static const ps_setting settings[] = {
    {"url", PS_SET_STR, NULL, 0, 0, offsetof(scrape_cfg, url), "URL",
     "what to fetch, e.g. http://127.0.0.1:9100/metrics (required)"},
    {"hz", PS_SET_DOUBLE, "10", 0.01, 10000, offsetof(scrape_cfg, hz), "HZ",
     "scrapes per second"},
    {"seconds", PS_SET_DOUBLE, "5", 0.01, 86400, offsetof(scrape_cfg, seconds),
     "S", "how long to scrape"},
    {"timeout-ms", PS_SET_INT, "10000", 1, 3600000,
     offsetof(scrape_cfg, timeout_ms), "MS", "limit of one scrape"},
    {"json", PS_SET_BOOL, "false", 0, 1, offsetof(scrape_cfg, json), NULL,
     "print one JSON object instead of a summary line"},
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: ps-scrape --url URL [--hz HZ] [--seconds S] [--json]\n"
                 "Fetches URL HZ times a second for S seconds and prints the\n"
                 "scrapes done, failures, reply size and latency.\n\n"
                 "options:\n");
    ps_config_usage(out, settings, N_SETTINGS);
}

static void sleep_until_us(int64_t t)
{
    int64_t left = t - ps_now_us();
    if (left <= 0)
        return;
    struct timespec ts = {(time_t)(left / 1000000),
                          (long)(left % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    scrape_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    int done = ps_config_main(settings, N_SETTINGS, &cfg, argc, argv,
                              "ps-scrape", usage);
    if (done >= 0)
        return done;
    if (cfg.url == NULL || strncmp(cfg.url, "http://", 7) != 0 ||
        strchr(cfg.url + 7, '/') == NULL) {
        fprintf(stderr, "ps-scrape: --url http://HOST:PORT/PATH is required\n");
        return 2;
    }
    char base[256];
    const char *path = strchr(cfg.url + 7, '/');
    snprintf(base, sizeof(base), "%.*s", (int)(path - cfg.url), cfg.url);
    ps_bench_hist *lat = malloc(sizeof(*lat));
    if (lat == NULL)
        return 1;
    ps_bench_hist_init(lat);
    uint64_t ok = 0, failed = 0, bytes = 0;
    char last_err[256] = "";
    int64_t start = ps_now_us(), end = start + (int64_t)(cfg.seconds * 1e6);
    int64_t period = (int64_t)(1e6 / cfg.hz), next = start;
    while (next < end) {
        sleep_until_us(next);
        int64_t t0 = ps_now_us();
        hc_reply r;
        memset(&r, 0, sizeof(r));
        if (hc_request(base, "GET", path, (int)cfg.timeout_ms, &r, last_err,
                       sizeof(last_err)) == 0 &&
            r.status == 200) {
            ok++;
            bytes += r.body_len;
            ps_bench_hist_add(lat, (uint64_t)(ps_now_us() - t0));
        } else {
            failed++;
            if (r.head)
                snprintf(last_err, sizeof(last_err), "status %d", r.status);
        }
        hc_reply_free(&r);
        next += period;
        if (next < ps_now_us())
            next = ps_now_us(); /* late: no burst to catch up */
    }
    double secs = (double)(ps_now_us() - start) / 1e6;
    double mean = ok ? (double)lat->sum_us / (double)ok : 0;
    if (cfg.json)
        printf("{\"url\":\"%s\",\"hz\":%g,\"seconds\":%.3f,\"scrapes\":%llu,"
               "\"failures\":%llu,\"bytes_per_scrape\":%.0f,"
               "\"latency_us_mean\":%.1f,\"latency_us_p99\":%.1f}\n",
               cfg.url, cfg.hz, secs, (unsigned long long)ok,
               (unsigned long long)failed, ok ? (double)bytes / (double)ok : 0,
               mean, ps_bench_hist_quantile(lat, 0.99));
    else
        printf("%s: %llu scrapes in %.1f s (%llu failed%s%s), %.0f bytes, "
               "mean %.0f us, p99 %.0f us\n",
               cfg.url, (unsigned long long)ok, secs,
               (unsigned long long)failed, failed ? ": " : "",
               failed ? last_err : "", ok ? (double)bytes / (double)ok : 0,
               mean, ps_bench_hist_quantile(lat, 0.99));
    free(lat);
    return failed ? 1 : 0;
}
