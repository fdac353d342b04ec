/* Message encoding of the server target; see fuzz_frames.h. */
#include "fuzz_frames.h"

#include <string.h>

int ps_fuzz_next_message(ps_fuzz_reader *r, ps_fuzz_frame *out)
{
    if (r->n == 0)
        return 0;
    int n = 1 + r->p[0] % PS_FUZZ_MAX_FRAMES;
    r->p++;
    r->n--;
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        if (r->n >= 2) {
            len = (size_t)r->p[0] | (size_t)r->p[1] << 8;
            r->p += 2;
            r->n -= 2;
        } else {
            r->n = 0;
        }
        if (len > r->n)
            len = r->n;
        out[i] = (ps_fuzz_frame){r->p, len};
        r->p += len;
        r->n -= len;
    }
    return n;
}

int ps_fuzz_frames_build(ps_frames *f, const ps_fuzz_frame *fr, int n)
{
    static const char peer[] = "fuzz-peer";
    memset(f, 0, sizeof(*f));
    f->frames = n + 1;
    f->bytes = sizeof(peer) - 1;
    if (zmq_msg_init_size(&f->part[0], sizeof(peer) - 1) != 0)
        return -1;
    memcpy(zmq_msg_data(&f->part[0]), peer, sizeof(peer) - 1);
    f->n = 1;
    for (int i = 0; i < n; i++) {
        f->bytes += fr[i].n;
        if (f->n == PS_MAX_FRAMES) {
            f->overflow = 1;
            continue;
        }
        if (zmq_msg_init_size(&f->part[f->n], fr[i].n) != 0) {
            ps_frames_close(f);
            return -1;
        }
        if (fr[i].n)
            memcpy(zmq_msg_data(&f->part[f->n]), fr[i].p, fr[i].n);
        f->n++;
    }
    return 0;
}

size_t ps_fuzz_put_message(uint8_t *out, size_t cap, const ps_fuzz_frame *fr,
                           int n)
{
    size_t need = 1;
    for (int i = 0; i < n; i++)
        need += 2 + fr[i].n;
    if (n < 1 || n > PS_FUZZ_MAX_FRAMES || need > cap)
        return 0;
    size_t at = 0;
    out[at++] = (uint8_t)(n - 1);
    for (int i = 0; i < n; i++) {
        if (fr[i].n > 0xffff)
            return 0;
        out[at++] = (uint8_t)(fr[i].n & 0xff);
        out[at++] = (uint8_t)(fr[i].n >> 8);
        if (fr[i].n)
            memcpy(out + at, fr[i].p, fr[i].n);
        at += fr[i].n;
    }
    return at;
}
