/* Header codec over the protoc-c generated code; see codec.h. */
#include "common/codec.h"

#include "common/dtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ps_header_init(ps_header *h)
{
    sparkps__header__init(h);
    h->has_version = 1;
    h->version = PS_PROTOCOL_VERSION;
}

static int name_ok(const char *s)
{
    return s == NULL || strlen(s) <= PS_MAX_NAME;
}

static int spec_ok(const Sparkps__TableSpec *t)
{
    return t == NULL ||
           (name_ok(t->job) && name_ok(t->name) && t->n_shape <= PS_MAX_SHAPE &&
            (t->meta == NULL || strlen(t->meta) <= PS_MAX_META));
}

/* protobuf-c's unpack allocates whatever the input describes (arrays sized
 * by element counts, copies of strings and unknown fields, a struct per
 * submessage, however empty): a few bytes on the wire can ask for a
 * hundred in memory. This allocator refuses to go past a budget, which
 * makes the unpack fail cleanly. Blocks are freed with plain free(), so
 * freeing needs no budget state. */
typedef struct budget {
    size_t used, max;
    int refused; /* an allocation was refused: the budget ran out */
} budget;

static void *budget_alloc(void *data, size_t size)
{
    budget *b = data;
    if (size > b->max - b->used) {
        b->refused = 1;
        return NULL;
    }
    b->used += size;
    return malloc(size);
}

static void plain_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

size_t ps_header_budget(size_t len)
{
    return PS_HEADER_BUDGET_FACTOR * len + PS_HEADER_BUDGET_BASE;
}

int ps_header_decode(const void *buf, size_t len, ps_header **out, char *err,
                     size_t errlen)
{
    return ps_header_decode_max(buf, len, PS_MAX_HEADER_BYTES, out, err,
                                errlen);
}

int ps_header_decode_max(const void *buf, size_t len, size_t max,
                         ps_header **out, char *err, size_t errlen)
{
    *out = NULL;
    if (len == 0 || len > max) {
        snprintf(err, errlen, "header frame of %zu bytes (must be 1..%zu)", len,
                 max);
        return PS_EPROTO;
    }
    budget b = {0, ps_header_budget(len), 0};
    ProtobufCAllocator alloc = {budget_alloc, plain_free, &b};
    ps_header *h = sparkps__header__unpack(&alloc, len, buf);
    if (h == NULL && b.refused) {
        snprintf(err, errlen,
                 "header frame of %zu bytes needs more than %zu bytes of "
                 "memory to decode",
                 len, b.max);
        return PS_ETOOBIG;
    }
    if (h == NULL) {
        snprintf(err, errlen, "header frame is not a valid protobuf Header");
        return PS_EPROTO;
    }
    int rc = PS_OK;
    if (!h->has_version || h->version != PS_PROTOCOL_VERSION) {
        snprintf(err, errlen,
                 "protocol version %u not spoken (this side speaks %u)",
                 h->has_version ? h->version : 0, PS_PROTOCOL_VERSION);
        rc = PS_EVERSION;
    } else if (h->type <= SPARKPS__MSG_TYPE__MSG_NONE ||
               h->type > PS_MSG_TYPE_MAX) {
        snprintf(err, errlen, "unknown message type %d", (int)h->type);
        rc = PS_EUNKNOWN;
    } else if (ps_dtype_size((int)h->dtype) == 0) {
        snprintf(err, errlen, "unknown dtype %d", (int)h->dtype);
        rc = PS_EPROTO;
    } else if (!name_ok(h->job) || !name_ok(h->name) || !spec_ok(h->table)) {
        snprintf(err, errlen,
                 "name longer than %u bytes, shape over %u dims or meta "
                 "over %u bytes",
                 PS_MAX_NAME, PS_MAX_SHAPE, PS_MAX_META);
        rc = PS_EPROTO;
    }
    *out = h; /* also on error: the caller echoes the request id */
    return rc;
}

void ps_header_free(ps_header *h)
{
    /* Any allocator whose free is free() will do (see budget_alloc). */
    static ProtobufCAllocator freer = {budget_alloc, plain_free, NULL};
    if (h != NULL)
        sparkps__header__free_unpacked(h, &freer);
}

size_t ps_header_packed_size(const ps_header *h)
{
    return sparkps__header__get_packed_size(h);
}

size_t ps_header_pack(const ps_header *h, uint8_t *buf)
{
    return sparkps__header__pack(h, buf);
}

const char *ps_msg_type_name(int type)
{
    static const char *names[] = {
        "NONE",      "HELLO",  "DEFINE_TABLE", "DROP_TABLE", "DROP_JOB",
        "PUSH",      "PULL",   "PUSHPULL",     "CLOCK",      "STATUS",
        "HEARTBEAT", "ASSIGN", "SCAN",         "SHUTDOWN",   "SAVE"};
    if (type < 0 || type > PS_MSG_TYPE_MAX)
        return "?";
    return names[type];
}
