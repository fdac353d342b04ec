/* `ps-worker --http`: serves the worker's own figures (worker_stats.h)
 * read-only over HTTP: GET /metrics (Prometheus text 0.0.4) and /status
 * (JSON), with the bearer-token and method rules of common/http.h.
 *
 * Threading: the training loop is one tight thread that blocks in round
 * trips to the servers for as long as they take, so the HTTP side cannot
 * be polled from it without stalling scrapes. libmicrohttpd therefore runs
 * in a thread of its own here, and never touches the loop's state: the
 * loop publishes a copy of its ps_worker_stats (a few hundred bytes, under
 * a mutex, once per step) and each page renders a private copy of the
 * latest one. ps_worker_http_publish() is the only call the training
 * thread makes; new/url/free belong to the thread that created it. */
#ifndef PS_WORKER_HTTP_H
#define PS_WORKER_HTTP_H

#include "common/http.h"
#include "worker_stats.h"

typedef struct ps_worker_http ps_worker_http;

/* Binds addr and starts the serving thread with `initial` as the first
 * snapshot. token: NULL for none, else borrowed for the lifetime (pages
 * need "Authorization: Bearer TOKEN"). On failure *out is untouched and
 * err says why (address in use, out of memory). */
int ps_worker_http_new(ps_worker_http **out, const ps_http_addr *addr,
                       const char *token, const ps_worker_stats *initial,
                       char *err, size_t errlen);

/* "http://HOST:PORT" with the bound port; borrowed. */
const char *ps_worker_http_url(const ps_worker_http *h);

/* Replaces the snapshot pages are rendered from. Any thread; never blocks
 * for longer than another thread's copy of the snapshot. */
void ps_worker_http_publish(ps_worker_http *h, const ps_worker_stats *s);

/* Stops the thread, closes every connection. NULL is fine. */
void ps_worker_http_free(ps_worker_http *h);

/* Shape of ps_worker_http_publish, for ps_train_cfg.publish. */
void ps_worker_http_publish_cb(void *h, const ps_worker_stats *s);

#endif
