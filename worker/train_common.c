/* Shared pieces of the training loops; see train_common.h. */
#include "train_common.h"

#include "common/errmsg.h"
#include "common/log.h"
#include "common/rng.h"

#include <math.h>
#include <string.h>

static void field(FILE *out, const char *name, double v)
{
    if (!isnan(v))
        fprintf(out, ",\"%s\":%.6g", name, v);
}

void ps_train_emit(FILE *out, const ps_progress_line *l)
{
    fprintf(out,
            "{\"event\":\"%s\",\"worker\":%d,\"epoch\":%d,\"samples\":%llu,"
            "\"loss\":%.6g,\"accuracy\":%.6g,\"samples_per_s\":%.1f",
            l->event, l->worker, l->epoch, (unsigned long long)l->samples,
            l->loss, l->accuracy, l->samples_per_s);
    field(out, "lr", l->lr);
    field(out, "test_loss", l->test_loss);
    field(out, "test_accuracy", l->test_accuracy);
    field(out, "test_auc", l->test_auc);
    if (l->phases != NULL && strcmp(l->event, "done") == 0) {
        field(out, "compute_s", l->phases->phase_s[PS_PHASE_COMPUTE]);
        field(out, "wait_s", l->phases->phase_s[PS_PHASE_WAIT]);
        field(out, "input_s", l->phases->phase_s[PS_PHASE_INPUT]);
        field(out, "wait_share", ps_worker_stats_wait_share(l->phases));
    }
    fprintf(out, "}\n");
    fflush(out);
}

void ps_train_send_final(ps_client *c)
{
    if (ps_client_send_progress(c) != PS_OK)
        ps_log(PS_LOG_WARN, "final progress not delivered: %s",
               ps_client_errmsg(c));
}

void ps_train_publish(const ps_train_cfg *cfg, ps_client *c,
                      ps_worker_stats *s)
{
    if (c != NULL) {
        s->requests = ps_client_requests(c);
        s->retries = ps_client_retries(c);
        s->timeouts = ps_client_timeouts(c);
        s->disconnects = ps_client_disconnects(c);
    }
    if (cfg->publish != NULL)
        cfg->publish(cfg->publish_arg, s);
}

int ps_train_connect(const ps_train_cfg *cfg, volatile sig_atomic_t *stop,
                     ps_client **out, char *err, size_t errlen)
{
    ps_client_cfg cc;
    ps_client_cfg_init(&cc);
    cc.servers = cfg->servers;
    cc.job = cfg->job;
    cc.worker_id = cfg->worker_id;
    cc.attempt = cfg->attempt;
    cc.timeout_ms = cfg->timeout_ms;
    cc.cancel = stop;
    cc.curve_secret_key = cfg->curve_secret_key;
    cc.curve_server_key = cfg->curve_server_key;
    char cerr[512];
    int rc = ps_client_new(out, &cc, cerr, sizeof(cerr));
    if (rc != PS_OK)
        return ps_errf(err, errlen, rc, "connecting to the servers: %s", cerr);
    return PS_OK;
}

void ps_shuffle_order(uint32_t *perm, size_t n, uint64_t seed, uint64_t round)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(ps_rng_unit(seed, round, i) * (double)i);
        j = j < i ? j : i - 1;
        uint32_t tmp = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
}
