/* Evaluation history per worker; see history.h. Workers sit in an array
 * sorted by id (tens of them, looked up by binary search); each owns a ring
 * of entries that grows by doubling until it is full (per-worker bound) or
 * the total bound is reached, and from then on overwrites its oldest. */
#include "history.h"

#include "common/sparkps_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ring {
    uint32_t worker;
    ps_epoch_eval *e;
    size_t cap;   /* allocated entries */
    size_t n;     /* entries held */
    size_t start; /* index of the oldest once the ring wraps */
} ring;

struct ps_history {
    size_t per_worker, total, held;
    ring *r; /* sorted by worker */
    size_t n, cap;
};

int ps_history_new(ps_history **out, size_t per_worker, size_t total)
{
    if (per_worker == 0 || total == 0)
        return PS_EINVAL;
    ps_history *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return PS_ENOMEM;
    h->per_worker = per_worker;
    h->total = total;
    *out = h;
    return PS_OK;
}

void ps_history_free(ps_history *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->r[i].e);
    free(h->r);
    free(h);
}

/* Index of worker's ring, or where it would go (*found = 0). */
static size_t find(const ps_history *h, uint32_t worker, int *found)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->r[mid].worker < worker)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < h->n && h->r[lo].worker == worker;
    return lo;
}

static ring *ring_get(ps_history *h, uint32_t worker)
{
    int found;
    size_t i = find(h, worker, &found);
    if (found)
        return &h->r[i];
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        ring *r = realloc(h->r, cap * sizeof(*r));
        if (r == NULL)
            return NULL;
        h->r = r;
        h->cap = cap;
    }
    memmove(&h->r[i + 1], &h->r[i], (h->n - i) * sizeof(*h->r));
    h->n++;
    memset(&h->r[i], 0, sizeof(h->r[i]));
    h->r[i].worker = worker;
    return &h->r[i];
}

static int same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

static int repeats(const ps_epoch_eval *a, const ps_epoch_eval *b)
{
    return a->epoch == b->epoch && a->samples == b->samples &&
           same(a->loss, b->loss) && same(a->accuracy, b->accuracy) &&
           same(a->train_loss, b->train_loss) &&
           same(a->train_accuracy, b->train_accuracy) && same(a->auc, b->auc);
}

static const ps_epoch_eval *ring_at(const ring *r, size_t i)
{
    return i < r->n ? &r->e[(r->start + i) % r->n] : NULL;
}

int ps_history_add(ps_history *h, uint32_t worker, const ps_epoch_eval *e)
{
    int found;
    size_t at = find(h, worker, &found);
    if (found) {
        const ring *r = &h->r[at];
        if (r->n > 0 && repeats(ring_at(r, r->n - 1), e))
            return PS_HISTORY_REPEAT;
    } else if (h->held >= h->total) {
        return PS_HISTORY_DROPPED; /* nothing of its own to replace */
    }
    ring *r = ring_get(h, worker);
    if (r == NULL)
        return PS_HISTORY_DROPPED;
    if (r->n > 0 && (r->n == h->per_worker || h->held >= h->total)) {
        /* Full: the newest takes the oldest's slot. The ring's length is
         * frozen from here on (neither bound ever loosens). */
        r->e[r->start] = *e;
        r->start = (r->start + 1) % r->n;
        return PS_HISTORY_ADDED;
    }
    if (r->n == 0 && h->held >= h->total)
        return PS_HISTORY_DROPPED;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        if (cap > h->per_worker)
            cap = h->per_worker;
        ps_epoch_eval *p = realloc(r->e, cap * sizeof(*p));
        if (p == NULL)
            return PS_HISTORY_DROPPED;
        r->e = p;
        r->cap = cap;
    }
    /* Not wrapped yet: start is 0 and entries are in order. */
    r->e[r->n++] = *e;
    h->held++;
    return PS_HISTORY_ADDED;
}

size_t ps_history_len(const ps_history *h, uint32_t worker)
{
    int found;
    size_t i = find(h, worker, &found);
    return found ? h->r[i].n : 0;
}

const ps_epoch_eval *ps_history_at(const ps_history *h, uint32_t worker,
                                   size_t i)
{
    int found;
    size_t at = find(h, worker, &found);
    return found ? ring_at(&h->r[at], i) : NULL;
}

size_t ps_history_total(const ps_history *h)
{
    return h->held;
}
