/* Worker clocks and liveness; see consistency.h. Workers are kept sorted by
 * id in a growable array: a cluster has tens of workers, and the minimum is
 * recomputed only when a clock or liveness changes. */
#include "consistency.h"

#include "common/sparkps_err.h"

#include <stdlib.h>
#include <string.h>

struct ps_consist {
    ps_consist_cfg cfg;
    ps_worker_state *w; /* sorted by id */
    size_t n, cap;
    int64_t min_clock; /* cached; recomputed by update_min() */
};

static void update_min(ps_consist *c)
{
    int64_t m = INT64_MAX;
    for (size_t i = 0; i < c->n; i++)
        if (c->w[i].alive && c->w[i].clock < m)
            m = c->w[i].clock;
    c->min_clock = m;
}

static ps_worker_state *find_or_add(ps_consist *c, uint32_t id, int64_t now)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->w[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->n && c->w[lo].id == id)
        return &c->w[lo];
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        ps_worker_state *w = realloc(c->w, cap * sizeof(*w));
        if (w == NULL)
            return NULL;
        c->w = w;
        c->cap = cap;
    }
    memmove(&c->w[lo + 1], &c->w[lo], (c->n - lo) * sizeof(*c->w));
    c->n++;
    memset(&c->w[lo], 0, sizeof(c->w[lo]));
    c->w[lo].id = id;
    c->w[lo].alive = 1;
    c->w[lo].last_seen_ms = now;
    return &c->w[lo];
}

int ps_consist_new(ps_consist **out, const ps_consist_cfg *cfg, int64_t now_ms)
{
    if (cfg->mode < PS_CONS_ASP || cfg->mode > PS_CONS_BSP ||
        cfg->staleness < 0 || cfg->expected < 0 ||
        cfg->expected > PS_MAX_WORKER_ID + 1 || cfg->timeout_ms <= 0)
        return PS_EINVAL;
    ps_consist *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PS_ENOMEM;
    c->cfg = *cfg;
    if (c->cfg.mode == PS_CONS_BSP)
        c->cfg.staleness = 0;
    for (int i = 0; i < cfg->expected; i++) {
        if (find_or_add(c, (uint32_t)i, now_ms) == NULL) {
            ps_consist_free(c);
            return PS_ENOMEM;
        }
    }
    update_min(c);
    *out = c;
    return PS_OK;
}

void ps_consist_free(ps_consist *c)
{
    if (c == NULL)
        return;
    free(c->w);
    free(c);
}

int ps_consist_parse(const char *s, int *mode, int *staleness)
{
    if (strcmp(s, "asp") == 0) {
        *mode = PS_CONS_ASP;
        *staleness = 0;
        return PS_OK;
    }
    if (strcmp(s, "bsp") == 0) {
        *mode = PS_CONS_BSP;
        *staleness = 0;
        return PS_OK;
    }
    if (strncmp(s, "ssp:", 4) == 0 && s[4] >= '0' && s[4] <= '9') {
        char *end; /* digits only: strtol alone would take " 5" and "+5" */
        long v = strtol(s + 4, &end, 10);
        if (end == s + 4 || *end != '\0' || v < 0 || v > 1000000)
            return PS_EINVAL;
        *mode = PS_CONS_SSP;
        *staleness = (int)v;
        return PS_OK;
    }
    return PS_EINVAL;
}

int ps_consist_touch(ps_consist *c, uint32_t id, int64_t now_ms)
{
    ps_worker_state *w = find_or_add(c, id, now_ms);
    if (w == NULL)
        return PS_ENOMEM;
    w->last_seen_ms = now_ms;
    if (!w->alive || c->n == 1 || w->clock < c->min_clock) {
        w->alive = 1;
        update_min(c);
    }
    return PS_OK;
}

int ps_consist_admit(ps_consist *c, uint32_t id, uint32_t attempt,
                     int64_t now_ms, uint32_t *before)
{
    ps_worker_state *w = find_or_add(c, id, now_ms);
    if (w == NULL)
        return PS_ENOMEM;
    *before = w->attempt;
    if (attempt < w->attempt && w->alive) {
        w->superseded++;
        return PS_ESUPERSEDED;
    }
    if (attempt != w->attempt) {
        /* A fresh join: nothing of the replaced attempt's run carries over
         * but the refusals counted against it. */
        w->attempt = attempt;
        w->clock = 0;
        w->samples = 0;
        w->loss = w->accuracy = 0;
        w->epoch = 0;
        w->has_progress = 0;
        update_min(c);
    }
    return PS_OK;
}

void ps_consist_set_clock(ps_consist *c, uint32_t id, int64_t clock)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->w[i].id == id) {
            if (clock > c->w[i].clock) {
                c->w[i].clock = clock;
                update_min(c);
            }
            return;
        }
    }
}

void ps_consist_set_progress(ps_consist *c, uint32_t id, uint64_t samples,
                             double loss, uint32_t epoch, double accuracy)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->w[i].id == id) {
            c->w[i].samples = samples;
            c->w[i].loss = loss;
            c->w[i].epoch = epoch;
            c->w[i].accuracy = accuracy;
            c->w[i].has_progress = 1;
            return;
        }
    }
}

int ps_consist_expire(ps_consist *c, int64_t now_ms)
{
    int changed = 0;
    for (size_t i = 0; i < c->n; i++) {
        ps_worker_state *w = &c->w[i];
        if (w->alive && now_ms - w->last_seen_ms > c->cfg.timeout_ms) {
            w->alive = 0;
            changed++;
        }
    }
    if (changed)
        update_min(c);
    return changed;
}

int ps_consist_restore(ps_consist *c, const ps_worker_state *w, int64_t now_ms)
{
    ps_worker_state *x = find_or_add(c, w->id, now_ms);
    if (x == NULL)
        return PS_ENOMEM;
    *x = *w;
    x->alive = 1;
    x->last_seen_ms = now_ms;
    update_min(c);
    return PS_OK;
}

int64_t ps_consist_min_clock(const ps_consist *c)
{
    return c->min_clock;
}

int ps_consist_can_serve(const ps_consist *c, int64_t clock)
{
    if (c->cfg.mode == PS_CONS_ASP)
        return 1;
    return c->min_clock >= clock - c->cfg.staleness;
}

int ps_consist_mode(const ps_consist *c)
{
    return c->cfg.mode;
}

int ps_consist_staleness(const ps_consist *c)
{
    return c->cfg.staleness;
}

const ps_worker_state *ps_consist_worker_at(const ps_consist *c, size_t i)
{
    return i < c->n ? &c->w[i] : NULL;
}

size_t ps_consist_live(const ps_consist *c)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        k += c->w[i].alive != 0;
    return k;
}
