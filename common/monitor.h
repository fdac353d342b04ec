/* Connection events of a ZeroMQ socket, read from libzmq's socket monitor:
 * how the server counts peers that came and went, and how a client sees
 * its server vanish (closed, network gone, or silent past the heartbeat
 * timeout) before a request times out.
 *
 * libzmq allows one monitor per socket, so each socket has one ps_monitor
 * watching every event its users need (connections and handshakes).
 * A monitor is an inproc PAIR socket read by one thread at a time (the
 * watched socket's, or a thread it was handed to); reading it never
 * blocks. */
#ifndef PS_MONITOR_H
#define PS_MONITOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct ps_monitor ps_monitor;

/* Watches `events` (ZMQ_EVENT_* bits) on sock, which belongs to ctx. On
 * failure *out is untouched: PS_ENOMEM or PS_EZMQ. */
int ps_monitor_new(ps_monitor **out, void *ctx, void *sock, int events);

/* The next pending event (a ZMQ_EVENT_* value) without waiting; 0 when
 * none is pending. value (nullable) receives the event's value (an errno,
 * a protocol error or a ZAP status), addr (nullable) the peer's
 * endpoint. */
int ps_monitor_next(ps_monitor *m, uint32_t *value, char *addr,
                    size_t addrlen);

/* The socket to poll for ZMQ_POLLIN before ps_monitor_next(). */
void *ps_monitor_socket(ps_monitor *m);

/* Stops watching and closes the monitor socket. Call before closing the
 * watched socket. NULL is fine. */
void ps_monitor_free(ps_monitor *m);

#endif
