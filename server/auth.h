/* Admission of clients to a shard: the ZAP handler that enforces the
 * CurveZMQ allow-list, the count of refused handshakes, and of the
 * connections accepted and lost (the socket's one monitor).
 *
 * CURVE alone proves the server's identity to a client and encrypts, but
 * lets in any client with any keypair: libzmq asks a ZAP handler bound to
 * inproc://zeromq.zap.01 in the socket's context whether a client key may
 * connect, and that handler is here. Clients without CURVE, or with a
 * wrong server key, fail in the handshake before any ZAP request, so those
 * are counted from the socket's monitor events
 * (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL / _PROTOCOL).
 *
 * Threads: one thread of its own owns the ZAP socket and the monitor's
 * reading end; it reads only the immutable allow-list and increments
 * atomic counters, which any thread may read. It never touches tables. */
#ifndef PS_AUTH_H
#define PS_AUTH_H

#include "common/curve.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ps_auth ps_auth;

typedef struct ps_auth_cfg {
    void *ctx;                   /* the server's ZeroMQ context */
    void *sock;                  /* the server's socket, not bound yet */
    const ps_curve_allow *allow; /* NULL: plaintext (monitor only); else
                                    borrowed until ps_auth_free() */
} ps_auth_cfg;

/* Binds the ZAP handler (with an allow-list), starts monitoring
 * cfg->sock and starts the thread. Call from the thread owning the socket
 * before it binds, so no client can connect before the handler exists.
 * On failure *out is untouched and err says why. */
int ps_auth_new(ps_auth **out, const ps_auth_cfg *cfg, char *err,
                size_t errlen);

/* Refusals so far: clients whose key is not in the allow-list, and
 * handshakes that failed before authentication. Any thread. */
uint64_t ps_auth_refused_unknown_key(const ps_auth *a);
uint64_t ps_auth_refused_handshake(const ps_auth *a);

/* Connections accepted and lost (closed by the peer, cut by the network,
 * or dropped after the ZeroMQ heartbeat timeout: a hung peer). Any
 * thread. */
uint64_t ps_auth_peers_accepted(const ps_auth *a);
uint64_t ps_auth_peers_disconnected(const ps_auth *a);

/* Stops the thread (blocks until it exits) and monitoring; call from the
 * socket's thread before closing the socket. NULL is fine. */
void ps_auth_free(ps_auth *a);

#endif
