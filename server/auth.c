/* ZAP handler and handshake-failure counter; see auth.h.
 *
 * The thread polls three sockets: the stop pipe, the ZAP REP socket (with
 * CURVE) and the reading end of the server socket's monitor (the only one
 * libzmq allows on it: it also counts connections accepted and lost). A ZAP request
 * is answered 200 when its CURVE client key is in the allow-list, else 400
 * (libzmq then sends the client an ERROR and closes). Refusals are logged
 * at counts 1, 2, 4, 8, ... so a client retrying every second cannot flood
 * the log; the counters keep every one. */
#include "auth.h"

#include "common/errmsg.h"
#include "common/log.h"
#include "common/monitor.h"
#include "common/sparkps_err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define STOP_ENDPOINT "inproc://sparkps-auth-stop"
#define ZAP_MAX_FRAMES 8 /* version .. mechanism, one credential */
#define ZAP_MAX_FRAME 256

#define HANDSHAKE_EVENTS                                                      \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                                   \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
#define PEER_EVENTS (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED)

struct ps_auth {
    const ps_curve_allow *allow;
    void *zap;     /* REP on ZAP_ENDPOINT; NULL without CURVE */
    ps_monitor *monitor; /* the server socket's events */
    void *stop_rx; /* PAIR, the thread's end of the stop pipe */
    void *stop_tx; /* PAIR, ps_auth_free()'s end */
    pthread_t thread;
    int running;
    atomic_uint_least64_t unknown_key;
    atomic_uint_least64_t handshake;
    atomic_uint_least64_t accepted;
    atomic_uint_least64_t disconnected;
};

static int power_of_two(uint64_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

/* ---- ZAP ---- */

typedef struct zap_req {
    zmq_msg_t part[ZAP_MAX_FRAMES];
    int n;
    int overflow;
} zap_req;

static void zap_req_close(zap_req *q)
{
    for (int i = 0; i < q->n; i++)
        zmq_msg_close(&q->part[i]);
    q->n = 0;
}

static int zap_recv(void *sock, zap_req *q)
{
    q->n = 0;
    q->overflow = 0;
    for (;;) {
        zmq_msg_t scratch, *m;
        m = q->n < ZAP_MAX_FRAMES ? &q->part[q->n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, q->n == 0 && !q->overflow ? ZMQ_DONTWAIT
                                                              : 0) < 0) {
            zmq_msg_close(m);
            zap_req_close(q);
            return -1;
        }
        int more = zmq_msg_more(m);
        if (m == &scratch) {
            q->overflow = 1;
            zmq_msg_close(m);
        } else {
            q->n++;
        }
        if (!more)
            return 0;
    }
}

static int frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

static void zap_reply(void *sock, zmq_msg_t *request_id, const char *code,
                      const char *text)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, zmq_msg_data(request_id), zmq_msg_size(request_id),
             ZMQ_SNDMORE);
    zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, ZMQ_SNDMORE); /* user id */
    zmq_send(sock, "", 0, 0);           /* metadata */
}

/* Frames: version, request id, domain, address, identity, mechanism, and
 * for CURVE the client's 32-byte public key. */
static void zap_handle(ps_auth *a)
{
    zap_req q;
    if (zap_recv(a->zap, &q) != 0)
        return;
    if (q.n < 2) { /* no request id to answer: REP needs some reply */
        zmq_send(a->zap, "", 0, 0);
        zap_req_close(&q);
        return;
    }
    int curve = !q.overflow && q.n == 7 && frame_is(&q.part[0], "1.0") &&
                frame_is(&q.part[5], "CURVE") &&
                zmq_msg_size(&q.part[6]) == PS_CURVE_KEY_BYTES;
    if (curve && ps_curve_allow_has(a->allow, zmq_msg_data(&q.part[6]),
                                    PS_CURVE_KEY_BYTES)) {
        zap_reply(a->zap, &q.part[1], "200", "OK");
        zap_req_close(&q);
        return;
    }
    zap_reply(a->zap, &q.part[1], "400", "client key not allowed");
    uint64_t n = atomic_fetch_add(&a->unknown_key, 1) + 1;
    if (power_of_two(n)) {
        char key[PS_CURVE_Z85_LEN + 1] = "?", addr[64] = "?";
        if (curve)
            zmq_z85_encode(key, zmq_msg_data(&q.part[6]),
                           PS_CURVE_KEY_BYTES);
        if (q.n > 3 && zmq_msg_size(&q.part[3]) < sizeof(addr)) {
            memcpy(addr, zmq_msg_data(&q.part[3]), zmq_msg_size(&q.part[3]));
            addr[zmq_msg_size(&q.part[3])] = '\0';
        }
        ps_log(PS_LOG_WARN,
               "refused a client: public key not in --curve-allow "
               "client_key=%s address=%s refused_unknown_key=%llu",
               key, addr, (unsigned long long)n);
    }
    zap_req_close(&q);
}

/* ---- monitor ---- */

static const char *protocol_error_name(uint32_t v)
{
    switch (v) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "mechanism-mismatch (CURVE on one side only)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "cryptographic (a client with another server key?)";
    default:
        return "protocol";
    }
}

/* One event of the server socket: a connection counted, or a handshake
 * that failed before authentication (AUTH failures are the ZAP handler's
 * count). A peer stopped or cut off shows as DISCONNECTED once it misses
 * the ZeroMQ heartbeat timeout. */
static void monitor_event(ps_auth *a, int event, uint32_t value,
                          const char *addr)
{
    if (event == ZMQ_EVENT_ACCEPTED) {
        atomic_fetch_add(&a->accepted, 1);
        ps_log(PS_LOG_DEBUG, "peer connected addr=%s", addr);
        return;
    }
    if (event == ZMQ_EVENT_DISCONNECTED) {
        atomic_fetch_add(&a->disconnected, 1);
        ps_log(PS_LOG_DEBUG, "peer disconnected addr=%s", addr);
        return;
    }
    if ((event & HANDSHAKE_EVENTS) == 0)
        return;
    uint64_t n = atomic_fetch_add(&a->handshake, 1) + 1;
    if (power_of_two(n))
        ps_log(PS_LOG_WARN,
               "refused a connection: handshake failed reason=%s "
               "refused_handshake=%llu",
               event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                   ? protocol_error_name(value)
                   : "no-detail (no CURVE, or the peer closed)",
               (unsigned long long)n);
}

static void monitor_handle(ps_auth *a)
{
    char addr[256];
    uint32_t value;
    int event;
    while ((event = ps_monitor_next(a->monitor, &value, addr,
                                    sizeof(addr))) != 0)
        monitor_event(a, event, value, addr);
}

static void *auth_main(void *arg)
{
    ps_auth *a = arg;
    zmq_pollitem_t items[3] = {{a->stop_rx, 0, ZMQ_POLLIN, 0},
                               {ps_monitor_socket(a->monitor), 0,
                                ZMQ_POLLIN, 0},
                               {a->zap, 0, ZMQ_POLLIN, 0}};
    int nitems = a->zap ? 3 : 2;
    for (;;) {
        if (zmq_poll(items, nitems, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            monitor_handle(a);
        if (nitems == 3 && (items[2].revents & ZMQ_POLLIN))
            zap_handle(a);
    }
    return NULL;
}

/* ---- lifecycle ---- */

static void close_sockets(ps_auth *a)
{
    void *socks[] = {a->zap, a->stop_rx, a->stop_tx};
    for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++)
        if (socks[i] != NULL)
            zmq_close(socks[i]);
}

static void *pair_socket(void *ctx)
{
    void *s = zmq_socket(ctx, ZMQ_PAIR);
    int linger = 0;
    if (s != NULL)
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    return s;
}

int ps_auth_new(ps_auth **out, const ps_auth_cfg *cfg, char *err,
                size_t errlen)
{
    ps_auth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return ps_errf(err, errlen, PS_ENOMEM, "out of memory");
    a->allow = cfg->allow;
    atomic_init(&a->unknown_key, 0);
    atomic_init(&a->handshake, 0);
    atomic_init(&a->accepted, 0);
    atomic_init(&a->disconnected, 0);
    int rc = PS_OK;
    const char *step = "";
    if (cfg->allow != NULL) {
        int linger = 0;
        step = "binding the ZAP handler";
        a->zap = zmq_socket(cfg->ctx, ZMQ_REP);
        if (a->zap == NULL ||
            zmq_setsockopt(a->zap, ZMQ_LINGER, &linger, sizeof(linger)) ||
            zmq_bind(a->zap, ZAP_ENDPOINT) != 0)
            goto fail;
    }
    step = "monitoring the socket";
    if (ps_monitor_new(&a->monitor, cfg->ctx, cfg->sock,
                       HANDSHAKE_EVENTS | PEER_EVENTS) != PS_OK)
        goto fail;
    a->stop_rx = pair_socket(cfg->ctx);
    a->stop_tx = pair_socket(cfg->ctx);
    step = "connecting the stop pipe";
    if (a->stop_rx == NULL || a->stop_tx == NULL ||
        zmq_bind(a->stop_rx, STOP_ENDPOINT) != 0 ||
        zmq_connect(a->stop_tx, STOP_ENDPOINT) != 0)
        goto fail;
    step = "starting the thread";
    if (pthread_create(&a->thread, NULL, auth_main, a) != 0)
        goto fail;
    a->running = 1;
    *out = a;
    return PS_OK;
fail:
    rc = ps_errf(err, errlen, PS_EZMQ, "authentication: %s failed: %s", step,
                 zmq_strerror(zmq_errno()));
    ps_monitor_free(a->monitor);
    close_sockets(a);
    free(a);
    return rc;
}

uint64_t ps_auth_refused_unknown_key(const ps_auth *a)
{
    return a ? atomic_load(&a->unknown_key) : 0;
}

uint64_t ps_auth_refused_handshake(const ps_auth *a)
{
    return a ? atomic_load(&a->handshake) : 0;
}

uint64_t ps_auth_peers_accepted(const ps_auth *a)
{
    return a ? atomic_load(&a->accepted) : 0;
}

uint64_t ps_auth_peers_disconnected(const ps_auth *a)
{
    return a ? atomic_load(&a->disconnected) : 0;
}

void ps_auth_free(ps_auth *a)
{
    if (a == NULL)
        return;
    if (a->running) {
        zmq_send(a->stop_tx, "", 0, 0);
        pthread_join(a->thread, NULL);
    }
    ps_monitor_free(a->monitor); /* stops monitoring the socket too */
    close_sockets(a);
    free(a);
}
