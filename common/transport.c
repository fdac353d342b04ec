/* ZeroMQ helpers; see transport.h. */
#include "common/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ps_zmq_err(void)
{
    switch (zmq_errno()) {
    case EAGAIN:
        return PS_ETIMEDOUT;
    case ETERM:
        return PS_ESHUTDOWN;
    case ENOMEM:
        return PS_ENOMEM;
    case EINVAL:
        return PS_EINVAL;
    default:
        return PS_EZMQ;
    }
}

int ps_frames_recv(void *sock, ps_frames *f, int flags)
{
    f->n = 0;
    f->overflow = 0;
    f->frames = 0;
    f->bytes = 0;
    for (;;) {
        zmq_msg_t scratch;
        zmq_msg_t *m = f->n < PS_MAX_FRAMES ? &f->part[f->n] : &scratch;
        zmq_msg_init(m);
        /* Only the first frame may be absent; the rest of a multipart
         * message is delivered atomically. */
        if (zmq_msg_recv(m, sock, f->n == 0 && !f->overflow ? flags : 0) < 0) {
            int rc = ps_zmq_err();
            zmq_msg_close(m);
            ps_frames_close(f);
            return rc;
        }
        f->bytes += zmq_msg_size(m);
        f->frames++;
        int more = zmq_msg_more(m);
        if (m == &scratch) {
            f->overflow = 1;
            zmq_msg_close(m);
        } else {
            f->n++;
        }
        if (!more)
            return PS_OK;
    }
}

void ps_frames_close(ps_frames *f)
{
    for (int i = 0; i < f->n; i++)
        zmq_msg_close(&f->part[i]);
    f->n = 0;
}

int ps_send_header(void *sock, const ps_header *h, int more)
{
    zmq_msg_t m;
    size_t n = ps_header_packed_size(h);
    if (zmq_msg_init_size(&m, n) != 0)
        return PS_ENOMEM;
    ps_header_pack(h, zmq_msg_data(&m));
    if (zmq_msg_send(&m, sock, more ? ZMQ_SNDMORE : 0) < 0) {
        zmq_msg_close(&m);
        return ps_zmq_err();
    }
    return PS_OK;
}

int ps_send_zerocopy(void *sock, const void *data, size_t len, zmq_free_fn *ffn,
                     void *hint, int more)
{
    zmq_msg_t m;
    /* libzmq copies messages under 33 bytes anyway (VSM) and never writes to
     * the buffer; the cast drops const only for the API. */
    if (zmq_msg_init_data(&m, (void *)data, len, ffn, hint) != 0)
        return PS_ENOMEM;
    if (zmq_msg_send(&m, sock, more ? ZMQ_SNDMORE : 0) < 0) {
        zmq_msg_close(&m);
        return ps_zmq_err();
    }
    return PS_OK;
}

int ps_send_copy(void *sock, const void *data, size_t len, int more)
{
    if (zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0)
        return ps_zmq_err();
    return PS_OK;
}

void ps_socket_heartbeat(void *sock, int ivl_ms, int timeout_ms)
{
    zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &ivl_ms, sizeof(ivl_ms));
    zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout_ms,
                   sizeof(timeout_ms));
    zmq_setsockopt(sock, ZMQ_HEARTBEAT_TTL, &timeout_ms, sizeof(timeout_ms));
}

int ps_bound_endpoint(void *sock, char *out, size_t outlen)
{
    char ep[256];
    size_t len = sizeof(ep);
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, ep, &len) != 0)
        return ps_zmq_err();
    const char *host = strstr(ep, "://");
    const char *port = strrchr(ep, ':');
    if (host == NULL || port == NULL || port < host + 3) {
        snprintf(out, outlen, "%s", ep);
        return PS_OK;
    }
    host += 3;
    size_t hlen = (size_t)(port - host);
    if ((hlen == 7 && strncmp(host, "0.0.0.0", 7) == 0) ||
        (hlen == 1 && *host == '*') ||
        (hlen == 4 && strncmp(host, "[::]", 4) == 0)) {
        char name[256];
        if (gethostname(name, sizeof(name)) != 0)
            snprintf(name, sizeof(name), "localhost");
        name[sizeof(name) - 1] = '\0';
        snprintf(out, outlen, "%.*s%s%s", (int)(host - ep), ep, name, port);
    } else {
        snprintf(out, outlen, "%s", ep);
    }
    return PS_OK;
}

int ps_endpoint_is_loopback(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 ||
        strncmp(endpoint, "inproc://", 9) == 0)
        return 1;
    const char *host = strstr(endpoint, "://");
    if (host == NULL)
        return 0;
    host += 3;
    return strncmp(host, "127.", 4) == 0 ||
           strncmp(host, "localhost:", 10) == 0 ||
           strncmp(host, "[::1]:", 6) == 0;
}
