/* The client side of CurveZMQ: a client's keys on its sockets, and the
 * handshake failures read from a socket monitor, turned into PS_EAUTH with
 * a message that says what is wrong instead of a bare timeout.
 *
 * What a client sees when it is refused (libzmq 4.3):
 * - its key is not in the server's allow-list: HANDSHAKE_FAILED_AUTH
 *   with ZAP status 400 (the server sends an ERROR);
 * - CURVE on one side only: HANDSHAKE_FAILED_PROTOCOL, mechanism mismatch;
 * - a wrong server public key: the server drops the connection, which the
 *   client sees as HANDSHAKE_FAILED_NO_DETAIL. A server going away during
 *   a handshake looks the same once, so that only counts after
 *   PS_HANDSHAKE_NO_DETAIL_LIMIT failures in a row without a success.
 *
 * Threads: the functions on a socket follow that socket's owner. */
#ifndef PS_CURVE_CLIENT_H
#define PS_CURVE_CLIENT_H

#include "common/config.h"
#include "common/curve.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define PS_HANDSHAKE_NO_DETAIL_LIMIT 3

/* The two settings every client program has (ps-worker, ps-ctl), for its
 * settings table: --curve-secret-key / SPARKPS_CURVE_SECRET_KEY and
 * --curve-server-key / SPARKPS_CURVE_SERVER_KEY, file names both. */
#define PS_CURVE_CLIENT_SETTINGS(secret_offset, server_offset)                \
    {"curve-secret-key", PS_SET_STR, NULL, 0, 0, (secret_offset), "FILE",      \
     "CurveZMQ: this client's secret key (ps-keygen's NAME.key, mode 0600; "  \
     "the servers' --curve-allow lists its NAME.pub); needs "                \
     "--curve-server-key"},                                                   \
    {"curve-server-key", PS_SET_STR, NULL, 0, 0, (server_offset), "FILE",      \
     "CurveZMQ: the servers' public key (their NAME.pub)"}

typedef struct ps_curve_client {
    int on; /* 0: plaintext */
    ps_curve_key secret, pub, server;
} ps_curve_client;

/* Loads a client's keys from files: its secret key (its public key is
 * derived) and the server's public key. NULL names fall back to the
 * environment variables SPARKPS_CURVE_SECRET_KEY / SPARKPS_CURVE_SERVER_KEY
 * (file names too); both unset or empty: plaintext (k->on = 0). One
 * without the other, unreadable files or bad keys: PS_EINVAL with err. */
int ps_curve_client_load(ps_curve_client *k, const char *secret_file,
                         const char *server_file, char *err, size_t errlen);

/* Sets the CURVE options on a socket before it connects (nothing when
 * k->on is 0). PS_EZMQ on failure. */
int ps_curve_client_apply(const ps_curve_client *k, void *sock);

/* Wipes the keys. */
void ps_curve_client_clear(ps_curve_client *k);

/* The monitor events a client watches for its handshakes (common/monitor.h:
 * one monitor per socket, shared with connection events). */
#define PS_HANDSHAKE_EVENTS                                                   \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                                   \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |  \
     ZMQ_EVENT_HANDSHAKE_SUCCEEDED)

/* Classifies one monitor event of a client socket (event, value as
 * ps_monitor_next() gives them). Returns PS_EAUTH with msg set once the
 * handshake is known to be refused (see above; *no_detail_in_row carries
 * the count across calls), else PS_OK. `curve`: whether this client uses
 * CURVE, for the message. */
int ps_handshake_event(int event, uint32_t value, int curve,
                       int *no_detail_in_row, char *msg, size_t len);

#endif
