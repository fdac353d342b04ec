/* Client keys and handshake monitoring; see curve_client.h. */
#include "common/curve_client.h"

#include "common/errmsg.h"
#include "common/sparkps_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ENV_SECRET "SPARKPS_CURVE_SECRET_KEY"
#define ENV_SERVER "SPARKPS_CURVE_SERVER_KEY"
static const char *pick(const char *given, const char *env)
{
    const char *v = given ? given : getenv(env);
    return v && *v ? v : NULL;
}

int ps_curve_client_load(ps_curve_client *k, const char *secret_file,
                         const char *server_file, char *err, size_t errlen)
{
    memset(k, 0, sizeof(*k));
    const char *sec = pick(secret_file, ENV_SECRET);
    const char *srv = pick(server_file, ENV_SERVER);
    if (sec == NULL && srv == NULL)
        return PS_OK;
    if (sec == NULL || srv == NULL)
        return ps_errf(err, errlen, PS_EINVAL,
                       "CurveZMQ needs both this client's secret key "
                       "(curve_secret_key, %s) and the server's public key "
                       "(curve_server_key, %s); only the %s was given",
                       ENV_SECRET, ENV_SERVER,
                       sec ? "secret key" : "server key");
    if (!ps_curve_available())
        return ps_errf(err, errlen, PS_EINVAL, "%s", ps_curve_missing_msg());
    int rc = ps_curve_read_key(sec, 1, &k->secret, err, errlen);
    if (rc == PS_OK)
        rc = ps_curve_read_key(srv, 0, &k->server, err, errlen);
    if (rc == PS_OK && ps_curve_public_of(&k->secret, &k->pub) != PS_OK)
        rc = ps_errf(err, errlen, PS_EINVAL, "%s: not a valid secret key",
                     sec);
    if (rc != PS_OK) {
        ps_curve_client_clear(k);
        return rc == PS_EIO ? PS_EINVAL : rc;
    }
    k->on = 1;
    return PS_OK;
}

int ps_curve_client_apply(const ps_curve_client *k, void *sock)
{
    if (!k->on)
        return PS_OK;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, k->server.z85,
                       PS_CURVE_Z85_LEN) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k->pub.z85,
                       PS_CURVE_Z85_LEN) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k->secret.z85,
                       PS_CURVE_Z85_LEN))
        return PS_EZMQ;
    return PS_OK;
}

void ps_curve_client_clear(ps_curve_client *k)
{
    ps_curve_wipe(k, sizeof(*k));
}

static void protocol_msg(uint32_t value, int curve, char *msg, size_t len)
{
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf(msg, len, "%s",
                 curve ? "this client uses CurveZMQ but the server does not "
                         "(a plaintext server): drop the client's keys or "
                         "start the server with --curve-secret-key"
                       : "the server requires CurveZMQ: give this client "
                         "its key pair and the server's public key "
                         "(--curve-secret-key, --curve-server-key)");
    else
        snprintf(msg, len,
                 "the handshake failed (protocol error 0x%x): is "
                 "--curve-server-key this server's public key?",
                 (unsigned)value);
}

int ps_handshake_event(int event, uint32_t value, int curve,
                       int *no_detail_in_row, char *msg, size_t len)
{
    int rc = PS_OK;
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        *no_detail_in_row = 0;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        if (value == 400)
            snprintf(msg, len,
                     "the server refused this client's CurveZMQ key: "
                     "its public key is not in the server's "
                     "--curve-allow list");
        else
            snprintf(msg, len,
                     "the server's authentication refused this client "
                     "(ZAP status %u)",
                     (unsigned)value);
        rc = PS_EAUTH;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        protocol_msg(value, curve, msg, len);
        rc = PS_EAUTH;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        if (++*no_detail_in_row < PS_HANDSHAKE_NO_DETAIL_LIMIT)
            break;
        /* Which side notices a mismatch first is a race: say both. */
        snprintf(msg, len, "%s",
                 curve ? "the server closed every connection during the "
                         "CurveZMQ handshake: either it does not use "
                         "CurveZMQ or --curve-server-key is not its "
                         "public key"
                       : "the server closed every connection during the "
                         "handshake: does it require CurveZMQ? (give "
                         "--curve-secret-key and --curve-server-key)");
        rc = PS_EAUTH;
        break;
    default:
        break;
    }
    return rc;
}
