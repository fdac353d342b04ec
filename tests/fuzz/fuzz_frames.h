/* The server target's input encoding (see fuzz_server.c): messages of
 * length-prefixed frames, read by the target and written by the corpus
 * generator, and ps_frames built from them as ps_frames_recv() hands a
 * received message over. */
#ifndef PS_FUZZ_FRAMES_H
#define PS_FUZZ_FRAMES_H

#include "common/transport.h"

#include <stddef.h>
#include <stdint.h>

#define PS_FUZZ_MAX_FRAMES 8 /* header + up to 7 bulk frames */

typedef struct ps_fuzz_frame {
    const void *p;
    size_t n;
} ps_fuzz_frame;

typedef struct ps_fuzz_reader {
    const uint8_t *p; /* what is left of the input */
    size_t n;
} ps_fuzz_reader;

/* The next message's frames (header first, borrowed from the input) into
 * out[PS_FUZZ_MAX_FRAMES]; returns how many, 0 when the input is used up. */
int ps_fuzz_next_message(ps_fuzz_reader *r, ps_fuzz_frame *out);

/* f as received from a peer: a routing id, then the n frames, of which the
 * first PS_MAX_FRAMES - 1 are kept and the rest only counted (overflow).
 * 0, or -1 when out of memory (nothing to close then). */
int ps_fuzz_frames_build(ps_frames *f, const ps_fuzz_frame *fr, int n);

/* Appends one message of n (1..PS_FUZZ_MAX_FRAMES) frames, each at most
 * 65535 bytes, to out; returns the bytes written, 0 if cap is too small. */
size_t ps_fuzz_put_message(uint8_t *out, size_t cap, const ps_fuzz_frame *fr,
                           int n);

#endif
