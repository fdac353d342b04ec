/* A worker's figures as Prometheus text and JSON; see worker_stats.h.
 * Pure functions over plain data: no threads, no allocation beyond the
 * output buffer. */
#include "worker_stats.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* 1 ms .. 60 s: a small CPU step takes a few milliseconds, a step waiting
 * out a BSP barrier or a server's timeout many seconds. */
static const double step_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,  0.1,    0.25,  0.5,  1,
                                     2.5,   5,      10,    30,   60};
#define NBOUNDS (sizeof(step_bounds) / sizeof(step_bounds[0]))

static const char *const phase_names[PS_PHASE_COUNT] = {"compute", "wait",
                                                        "input"};

void ps_worker_stats_init(ps_worker_stats *s, int worker_id, int attempt,
                          const char *device, const char *model)
{
    memset(s, 0, sizeof(*s));
    s->worker_id = worker_id;
    s->attempt = attempt;
    snprintf(s->device, sizeof(s->device), "%s", device ? device : "");
    snprintf(s->model, sizeof(s->model), "%s", model ? model : "");
    s->state = "starting";
    s->loss = s->accuracy = s->eval_loss = s->eval_accuracy = NAN;
    ps_prom_hist_init(&s->step_s, step_bounds, NBOUNDS);
}

void ps_worker_stats_step(ps_worker_stats *s,
                          const int64_t us[PS_PHASE_COUNT], int epoch,
                          uint64_t samples, double loss, double accuracy)
{
    int64_t total = 0;
    for (int i = 0; i < PS_PHASE_COUNT; i++) {
        s->phase_s[i] += (double)us[i] / 1e6;
        total += us[i];
    }
    ps_prom_hist_observe(&s->step_s, (double)total / 1e6);
    s->steps++;
    s->samples = samples;
    s->epoch = epoch;
    s->loss = loss;
    s->accuracy = accuracy;
}

double ps_worker_stats_wait_share(const ps_worker_stats *s)
{
    double total = 0;
    for (int i = 0; i < PS_PHASE_COUNT; i++)
        total += s->phase_s[i];
    return total > 0 ? s->phase_s[PS_PHASE_WAIT] / total : NAN;
}

/* ---- Prometheus ---- */

static void counter(ps_strbuf *b, const char *name, const char *help,
                    const ps_prom_label *labels, uint64_t v)
{
    ps_prom_family(b, name, PS_PROM_COUNTER, help);
    ps_prom_sample_u64(b, name, labels, v);
}

/* A gauge whose sample is left out while there is no figure (NAN). */
static void gauge(ps_strbuf *b, const char *name, const char *help,
                  const ps_prom_label *labels, double v)
{
    ps_prom_family(b, name, PS_PROM_GAUGE, help);
    if (!isnan(v))
        ps_prom_sample(b, name, labels, v);
}

void ps_worker_stats_prom(const ps_worker_stats *s, ps_strbuf *out)
{
    char id[16], att[16];
    snprintf(id, sizeof(id), "%d", s->worker_id);
    snprintf(att, sizeof(att), "%d", s->attempt);
    const ps_prom_label base[] = {{"worker", id}, {"attempt", att}, {0, 0}};
    const ps_prom_label info[] = {{"worker", id},
                                  {"attempt", att},
                                  {"device", s->device},
                                  {"model", s->model},
                                  {"state", s->state},
                                  {0, 0}};
    gauge(out, "sparkps_trainer_info",
          "this worker: its device, model and state (value 1)", info, 1);
    counter(out, "sparkps_trainer_samples_total", "training rows processed",
            base, s->samples);
    counter(out, "sparkps_trainer_steps_total", "mini-batch steps taken", base,
            s->steps);
    ps_prom_family(out, "sparkps_trainer_step_phase_seconds_total",
                   PS_PROM_COUNTER,
                   "step time by phase: compute (forward, backward), wait "
                   "(push/pull round trips to the servers) and input "
                   "(reading and parsing data)");
    for (int i = 0; i < PS_PHASE_COUNT; i++) {
        const ps_prom_label l[] = {
            {"worker", id}, {"attempt", att}, {"phase", phase_names[i]}, {0, 0}};
        ps_prom_sample(out, "sparkps_trainer_step_phase_seconds_total", l,
                       s->phase_s[i]);
    }
    ps_prom_family(out, "sparkps_trainer_step_duration_seconds",
                   PS_PROM_HISTOGRAM, "duration of one training step");
    ps_prom_hist_write(out, "sparkps_trainer_step_duration_seconds", base,
                       &s->step_s);
    gauge(out, "sparkps_trainer_epoch", "the epoch being trained (from 1)",
          base, s->epoch);
    gauge(out, "sparkps_trainer_train_loss",
          "the current epoch's mean training loss so far", base, s->loss);
    gauge(out, "sparkps_trainer_train_accuracy",
          "the current epoch's training accuracy so far", base, s->accuracy);
    gauge(out, "sparkps_trainer_eval_epoch", "epoch of the latest evaluation",
          base, s->eval_epoch ? (double)s->eval_epoch : NAN);
    gauge(out, "sparkps_trainer_eval_loss",
          "loss on the held-out set at the latest evaluation", base,
          s->eval_loss);
    gauge(out, "sparkps_trainer_eval_accuracy",
          "accuracy on the held-out set at the latest evaluation", base,
          s->eval_accuracy);
    counter(out, "sparkps_trainer_requests_total",
            "requests sent to server shards (one per shard a call reaches)",
            base, s->requests);
    counter(out, "sparkps_trainer_retries_total",
            "requests re-sent after a timeout", base, s->retries);
    counter(out, "sparkps_trainer_timeouts_total",
            "times a shard stayed silent past the timeout", base, s->timeouts);
    counter(out, "sparkps_trainer_disconnects_total",
            "connections to servers lost", base, s->disconnects);
}

/* ---- JSON ---- */

static void num(ps_strbuf *b, const char *key, double v)
{
    ps_strbuf_printf(b, "\"%s\":", key);
    if (isfinite(v))
        ps_strbuf_printf(b, "%.9g", v);
    else
        ps_strbuf_add(b, "null", 4);
}

void ps_worker_stats_json(const ps_worker_stats *s, ps_strbuf *out)
{
    ps_strbuf_printf(out, "{\"worker\":%d,\"attempt\":%d,\"device\":",
                     s->worker_id, s->attempt);
    ps_strbuf_json_str(out, s->device);
    ps_strbuf_add(out, ",\"model\":", 9);
    ps_strbuf_json_str(out, s->model);
    ps_strbuf_add(out, ",\"state\":", 9);
    ps_strbuf_json_str(out, s->state);
    ps_strbuf_printf(out, ",\"epoch\":%d,\"samples\":%llu,\"steps\":%llu",
                     s->epoch, (unsigned long long)s->samples,
                     (unsigned long long)s->steps);
    ps_strbuf_add(out, ",\"seconds\":{", 12);
    for (int i = 0; i < PS_PHASE_COUNT; i++) {
        if (i > 0)
            ps_strbuf_add(out, ",", 1);
        num(out, phase_names[i], s->phase_s[i]);
    }
    ps_strbuf_add(out, "},", 2);
    num(out, "wait_share", ps_worker_stats_wait_share(s));
    ps_strbuf_printf(out, ",\"step_seconds\":{\"count\":%llu,",
                     (unsigned long long)s->step_s.count);
    num(out, "sum", s->step_s.sum);
    ps_strbuf_add(out, "},\"train\":{", 11);
    num(out, "loss", s->loss);
    ps_strbuf_add(out, ",", 1);
    num(out, "accuracy", s->accuracy);
    ps_strbuf_add(out, "},\"eval\":", 9);
    if (s->eval_epoch == 0) {
        ps_strbuf_add(out, "null", 4);
    } else {
        ps_strbuf_printf(out, "{\"epoch\":%d,", s->eval_epoch);
        num(out, "loss", s->eval_loss);
        ps_strbuf_add(out, ",", 1);
        num(out, "accuracy", s->eval_accuracy);
        ps_strbuf_add(out, "}", 1);
    }
    ps_strbuf_printf(out,
                     ",\"client\":{\"requests\":%llu,\"retries\":%llu,"
                     "\"timeouts\":%llu,\"disconnects\":%llu}}\n",
                     (unsigned long long)s->requests,
                     (unsigned long long)s->retries,
                     (unsigned long long)s->timeouts,
                     (unsigned long long)s->disconnects);
}
