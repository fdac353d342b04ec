/* Per-client sequence windows; see dedup.h. Clients live in a small array
 * scanned linearly: a shard serves tens of clients, not thousands, and the
 * last client found is checked first (requests come in bursts). */
#include "dedup.h"

#include "common/sparkps_err.h"

#include <stdlib.h>

typedef struct seen {
    uint64_t seq; /* 0: empty */
    int status;
} seen;

typedef struct client_window {
    uint64_t client;
    uint64_t max_seq;
    uint64_t last_use; /* d->tick at last check/record, for LRU eviction */
    seen ring[PS_DEDUP_WINDOW];
} client_window;

struct ps_dedup {
    client_window **clients;
    size_t n, max;
    size_t last; /* index of the most recently used client */
    uint64_t tick;
};

int ps_dedup_new(ps_dedup **out, size_t max_clients)
{
    ps_dedup *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return PS_ENOMEM;
    d->max = max_clients ? max_clients : 1024;
    d->clients = calloc(d->max, sizeof(*d->clients));
    if (d->clients == NULL) {
        free(d);
        return PS_ENOMEM;
    }
    *out = d;
    return PS_OK;
}

void ps_dedup_free(ps_dedup *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->clients[i]);
    free(d->clients);
    free(d);
}

static client_window *find(ps_dedup *d, uint64_t client)
{
    if (d->last < d->n && d->clients[d->last]->client == client)
        return d->clients[d->last];
    for (size_t i = 0; i < d->n; i++) {
        if (d->clients[i]->client == client) {
            d->last = i;
            return d->clients[i];
        }
    }
    return NULL;
}

int ps_dedup_check(ps_dedup *d, uint64_t client, uint64_t seq, int *status)
{
    client_window *w = find(d, client);
    if (w == NULL)
        return PS_DEDUP_NEW;
    w->last_use = ++d->tick;
    if (seq + PS_DEDUP_WINDOW <= w->max_seq)
        return PS_DEDUP_STALE;
    const seen *s = &w->ring[seq % PS_DEDUP_WINDOW];
    if (s->seq == seq) {
        *status = s->status;
        return PS_DEDUP_DUP;
    }
    return PS_DEDUP_NEW;
}

static client_window *add(ps_dedup *d, uint64_t client)
{
    size_t at = d->n;
    if (d->n == d->max) { /* evict the least recently used */
        at = 0;
        for (size_t i = 1; i < d->n; i++)
            if (d->clients[i]->last_use < d->clients[at]->last_use)
                at = i;
        free(d->clients[at]);
        d->clients[at] = NULL;
    }
    client_window *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->client = client;
    d->clients[at] = w;
    if (at == d->n)
        d->n++;
    d->last = at;
    return w;
}

int ps_dedup_record(ps_dedup *d, uint64_t client, uint64_t seq, int status)
{
    client_window *w = find(d, client);
    if (w == NULL && (w = add(d, client)) == NULL) {
        /* The evicted slot (if any) is now a hole: compact. */
        for (size_t i = 0; i < d->n; i++) {
            if (d->clients[i] == NULL) {
                d->clients[i] = d->clients[--d->n];
                break;
            }
        }
        return PS_ENOMEM;
    }
    w->last_use = ++d->tick;
    w->ring[seq % PS_DEDUP_WINDOW] = (seen){seq, status};
    if (seq > w->max_seq)
        w->max_seq = seq;
    return PS_OK;
}

size_t ps_dedup_clients(const ps_dedup *d)
{
    return d->n;
}

uint64_t ps_dedup_client_at(const ps_dedup *d, size_t i)
{
    return d->clients[i]->client;
}

int ps_dedup_entry_at(const ps_dedup *d, size_t i, size_t k, uint64_t *seq,
                      int *status)
{
    const seen *s = &d->clients[i]->ring[k];
    if (s->seq == 0)
        return 0;
    *seq = s->seq;
    *status = s->status;
    return 1;
}
