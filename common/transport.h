/* ZeroMQ plumbing shared by server and client: multipart receive with a frame
 * cap, header send, socket options and endpoint helpers.
 *
 * A socket belongs to one thread; these helpers keep no state of their own. */
#ifndef PS_TRANSPORT_H
#define PS_TRANSPORT_H

#include "common/codec.h"

#include <stddef.h>
#include <zmq.h>

#define PS_MAX_FRAMES 4 /* routing id + header + keys + values */

typedef struct ps_frames {
    zmq_msg_t part[PS_MAX_FRAMES];
    int n;        /* frames held in part[] */
    int overflow; /* more frames arrived than PS_MAX_FRAMES (dropped) */
    int frames;   /* frames the message had, kept or dropped */
    size_t bytes; /* total size of every frame received */
} ps_frames;

/* Receives one whole multipart message: at most PS_MAX_FRAMES frames are
 * kept, the rest is read and dropped as it comes (counted in frames and
 * bytes), so memory held here never grows with the message. (libzmq itself
 * holds a whole multipart message before handing out its first frame; its
 * frames are capped by ZMQ_MAXMSGSIZE, their number is not.)
 * flags: 0 or ZMQ_DONTWAIT. Returns
 * PS_OK, PS_ETIMEDOUT when nothing was waiting (ZMQ_DONTWAIT / EAGAIN),
 * PS_ESHUTDOWN when the context is terminating, PS_EZMQ otherwise. On
 * PS_OK the frames are the caller's to ps_frames_close(). */
int ps_frames_recv(void *sock, ps_frames *f, int flags);
void ps_frames_close(ps_frames *f);

static inline const void *ps_frame_data(ps_frames *f, int i)
{
    return zmq_msg_data(&f->part[i]);
}

static inline size_t ps_frame_size(ps_frames *f, int i)
{
    return zmq_msg_size(&f->part[i]);
}

/* Packs and sends a header frame (ZMQ_SNDMORE when `more`). */
int ps_send_header(void *sock, const ps_header *h, int more);

/* Sends a bulk frame without copying: `data` must stay valid until ZeroMQ
 * calls `ffn(data, hint)` (NULL ffn: the caller guarantees the lifetime by
 * other means, e.g. until the request completes). */
int ps_send_zerocopy(void *sock, const void *data, size_t len, zmq_free_fn *ffn,
                     void *hint, int more);

/* Sends a copy of len bytes. */
int ps_send_copy(void *sock, const void *data, size_t len, int more);

/* Heartbeats at the ZMTP level, so a hung peer is detected even when no
 * request is outstanding: PINGs every ivl_ms, connection dropped when no
 * traffic for timeout_ms. */
void ps_socket_heartbeat(void *sock, int ivl_ms, int timeout_ms);

/* Writes the endpoint a socket is bound to into out, with a wildcard host
 * (0.0.0.0, *, ::) replaced by this machine's name so the line names a
 * connectable address. */
int ps_bound_endpoint(void *sock, char *out, size_t outlen);

/* True for tcp endpoints whose host is a loopback address or "localhost". */
int ps_endpoint_is_loopback(const char *endpoint);

/* Maps the current zmq errno to a ps_err. */
int ps_zmq_err(void);

#endif
