/* The one place that includes the protoc-c output: header encode/decode with
 * the size and sanity limits every receiver relies on.
 *
 * Decoding never trusts its input: a frame that is empty, too large, not a
 * valid protobuf, of another protocol version, or of an unknown type is
 * refused with a code and a message. Field-level checks that need state
 * (table ids, ranges) belong to the server. Thread-safe (no shared state). */
#ifndef PS_CODEC_H
#define PS_CODEC_H

#include "common/sparkps_err.h"
#include "sparkps.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define PS_PROTOCOL_VERSION 1u
#define PS_MAX_HEADER_BYTES (64u * 1024u) /* frame 0 never exceeds this */
/* A reply's frame 0 may carry a Status (tables, workers, their evaluation
 * histories): clients accept up to this from their servers. */
#define PS_MAX_REPLY_HEADER_BYTES (16u * 1024u * 1024u)
/* Memory a header may take once decoded: PS_HEADER_BUDGET_FACTOR bytes per
 * byte of frame plus PS_HEADER_BUDGET_BASE. Real headers need at most about
 * 13x (a Status listing many idle workers, measured); a crafted one of empty
 * submessages needs 68x and is refused. */
#define PS_HEADER_BUDGET_FACTOR 24u
#define PS_HEADER_BUDGET_BASE (64u * 1024u)
#define PS_MAX_NAME 256u                  /* job and table names, bytes */
#define PS_MAX_SHAPE 8u                   /* dims in a TableSpec shape */
#define PS_MAX_META 4096u                 /* TableSpec.meta, bytes */
#define PS_MSG_TYPE_MAX SPARKPS__MSG_TYPE__SAVE /* highest known type */

typedef Sparkps__Header ps_header;

/* Initialises a header on the stack: version set, everything else empty. */
void ps_header_init(ps_header *h);

/* Decodes frame 0 and fills err on failure. Errors: PS_EPROTO (empty,
 * oversized, not a protobuf, bad names or dtype), PS_ETOOBIG (decoding
 * would take more than ps_header_budget(len) bytes), PS_EVERSION,
 * PS_EUNKNOWN (type). When the bytes were a protobuf at all, *out is set even
 * on error, so the caller can echo request_id in its error reply; whenever *out
 * is non-NULL it is the caller's to ps_header_free(). */
int ps_header_decode(const void *buf, size_t len, ps_header **out, char *err,
                     size_t errlen);

/* The same with another size limit (replies: PS_MAX_REPLY_HEADER_BYTES). */
int ps_header_decode_max(const void *buf, size_t len, size_t max,
                         ps_header **out, char *err, size_t errlen);

void ps_header_free(ps_header *h);

/* The most memory decoding a header frame of len bytes may allocate. */
size_t ps_header_budget(size_t len);

size_t ps_header_packed_size(const ps_header *h);
size_t ps_header_pack(const ps_header *h, uint8_t *buf);

/* "PUSH", "PULL", ...; "?" for an unknown type. */
const char *ps_msg_type_name(int type);

#endif
