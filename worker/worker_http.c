/* The worker's HTTP thread; see worker_http.h for why it is a thread.
 *
 * The thread polls libmicrohttpd's epoll descriptor (common/http.c runs
 * MHD in its external mode) and an eventfd that ps_worker_http_free()
 * raises, bounding the wait by MHD's own timeout. Only this thread calls
 * ps_http_run(); the snapshot is the one piece of state shared with the
 * training thread, behind `lock`. */
#include "worker_http.h"

#include "common/log.h"
#include "common/sparkps_err.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define IDLE_POLL_MS 1000 /* MHD has nothing pending: wait this long */

struct ps_worker_http {
    ps_http *http;
    int stop_fd; /* eventfd: readable once the thread must end */
    pthread_t thread;
    pthread_mutex_t lock; /* guards snap */
    ps_worker_stats snap; /* the latest published figures */
};

static void copy_snapshot(ps_worker_http *h, ps_worker_stats *out)
{
    pthread_mutex_lock(&h->lock);
    *out = h->snap;
    pthread_mutex_unlock(&h->lock);
}

static int render_metrics(void *arg, ps_strbuf *out)
{
    ps_worker_stats s;
    copy_snapshot(arg, &s);
    ps_worker_stats_prom(&s, out);
    return ps_strbuf_failed(out) ? PS_ENOMEM : PS_OK;
}

static int render_status(void *arg, ps_strbuf *out)
{
    ps_worker_stats s;
    copy_snapshot(arg, &s);
    ps_worker_stats_json(&s, out);
    return ps_strbuf_failed(out) ? PS_ENOMEM : PS_OK;
}

static const ps_http_route routes[] = {
    {"/metrics", "text/plain; version=0.0.4; charset=utf-8", render_metrics,
     NULL, 0, 0},
    {"/status", "application/json", render_status, NULL, 0, 0},
};

static void *serve(void *arg)
{
    ps_worker_http *h = arg;
    struct pollfd fds[2] = {{ps_http_poll_fd(h->http), POLLIN, 0},
                            {h->stop_fd, POLLIN, 0}};
    for (;;) {
        long t = ps_http_timeout_ms(h->http);
        int timeout = t < 0 || t > IDLE_POLL_MS ? IDLE_POLL_MS : (int)t;
        if (poll(fds, 2, timeout) < 0)
            continue; /* EINTR: a signal for the main thread */
        if (fds[1].revents)
            break;
        ps_http_run(h->http);
    }
    return NULL;
}

int ps_worker_http_new(ps_worker_http **out, const ps_http_addr *addr,
                       const char *token, const ps_worker_stats *initial,
                       char *err, size_t errlen)
{
    ps_worker_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return PS_ENOMEM;
    }
    h->snap = *initial;
    h->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (h->stop_fd < 0 || pthread_mutex_init(&h->lock, NULL) != 0) {
        snprintf(err, errlen, "cannot set up the HTTP thread");
        if (h->stop_fd >= 0)
            close(h->stop_fd);
        free(h);
        return PS_ENOMEM;
    }
    ps_http_cfg cfg = {addr, routes, sizeof(routes) / sizeof(routes[0]), h,
                       token};
    int rc = ps_http_new(&h->http, &cfg, err, errlen);
    if (rc == PS_OK && pthread_create(&h->thread, NULL, serve, h) != 0) {
        snprintf(err, errlen, "cannot start the HTTP thread");
        ps_http_free(h->http);
        rc = PS_ENOMEM;
    }
    if (rc != PS_OK) {
        pthread_mutex_destroy(&h->lock);
        close(h->stop_fd);
        free(h);
        return rc;
    }
    *out = h;
    return PS_OK;
}

const char *ps_worker_http_url(const ps_worker_http *h)
{
    return ps_http_url(h->http);
}

void ps_worker_http_publish(ps_worker_http *h, const ps_worker_stats *s)
{
    pthread_mutex_lock(&h->lock);
    h->snap = *s;
    pthread_mutex_unlock(&h->lock);
}

void ps_worker_http_publish_cb(void *h, const ps_worker_stats *s)
{
    ps_worker_http_publish(h, s);
}

void ps_worker_http_free(ps_worker_http *h)
{
    if (h == NULL)
        return;
    uint64_t one = 1;
    if (write(h->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        ps_log(PS_LOG_WARN, "http: cannot wake the HTTP thread to stop it");
    pthread_join(h->thread, NULL);
    ps_http_free(h->http);
    pthread_mutex_destroy(&h->lock);
    close(h->stop_fd);
    free(h);
}
