/* Socket monitor reader; see monitor.h. libzmq publishes each event as two
 * frames on an inproc PAIR: 6 bytes (u16 event, u32 value), then the
 * endpoint. */
#include "common/monitor.h"

#include "common/sparkps_err.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct ps_monitor {
    void *watched; /* the monitored socket (borrowed) */
    void *pair;    /* where its events arrive */
};

int ps_monitor_new(ps_monitor **out, void *ctx, void *sock, int events)
{
    ps_monitor *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return PS_ENOMEM;
    /* A counter, not the address: a freed monitor's endpoint may still be
     * bound for a moment, and a reused address would then clash. */
    static atomic_uint_fast64_t next_id;
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://ps-monitor-%llu",
             (unsigned long long)atomic_fetch_add(&next_id, 1));
    m->watched = sock;
    if (zmq_socket_monitor(sock, ep, events) != 0) {
        free(m);
        return PS_EZMQ;
    }
    m->pair = zmq_socket(ctx, ZMQ_PAIR);
    int linger = 0;
    if (m->pair == NULL ||
        zmq_setsockopt(m->pair, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_connect(m->pair, ep) != 0) {
        ps_monitor_free(m);
        return PS_EZMQ;
    }
    *out = m;
    return PS_OK;
}

int ps_monitor_next(ps_monitor *m, uint32_t *value, char *addr,
                    size_t addrlen)
{
    zmq_msg_t ev, where;
    zmq_msg_init(&ev);
    if (zmq_msg_recv(&ev, m->pair, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&ev);
        return 0;
    }
    int event = 0;
    if (value != NULL)
        *value = 0;
    if (zmq_msg_size(&ev) >= 6) {
        uint16_t e;
        memcpy(&e, zmq_msg_data(&ev), sizeof(e));
        event = e;
        if (value != NULL)
            memcpy(value, (const char *)zmq_msg_data(&ev) + 2,
                   sizeof(*value));
    }
    int more = zmq_msg_more(&ev);
    zmq_msg_close(&ev);
    if (addr != NULL && addrlen > 0)
        addr[0] = '\0';
    if (!more)
        return event;
    zmq_msg_init(&where);
    if (zmq_msg_recv(&where, m->pair, 0) >= 0 && addr != NULL && addrlen > 0) {
        size_t n = zmq_msg_size(&where);
        if (n >= addrlen)
            n = addrlen - 1;
        memcpy(addr, zmq_msg_data(&where), n);
        addr[n] = '\0';
    }
    zmq_msg_close(&where);
    return event;
}

void *ps_monitor_socket(ps_monitor *m)
{
    return m->pair;
}

void ps_monitor_free(ps_monitor *m)
{
    if (m == NULL)
        return;
    zmq_socket_monitor(m->watched, NULL, 0);
    if (m->pair != NULL)
        zmq_close(m->pair);
    free(m);
}
