/* Growable capped text buffer; see strbuf.h. */
#include "common/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRBUF_DEFAULT_LIMIT ((size_t)64 << 20)

void ps_strbuf_init(ps_strbuf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit ? limit : STRBUF_DEFAULT_LIMIT;
}

void ps_strbuf_free(ps_strbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static int strbuf_reserve(ps_strbuf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (extra > b->limit - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void ps_strbuf_add(ps_strbuf *b, const char *s, size_t n)
{
    if (strbuf_reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ps_strbuf_printf(ps_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || strbuf_reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ps_strbuf_json_str(ps_strbuf *b, const char *s)
{
    ps_strbuf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;
         p++) {
        switch (*p) {
        case '"':
            ps_strbuf_add(b, "\\\"", 2);
            break;
        case '\\':
            ps_strbuf_add(b, "\\\\", 2);
            break;
        case '\n':
            ps_strbuf_add(b, "\\n", 2);
            break;
        case '\t':
            ps_strbuf_add(b, "\\t", 2);
            break;
        default:
            if (*p < 0x20)
                ps_strbuf_printf(b, "\\u%04x", *p);
            else
                ps_strbuf_add(b, (const char *)p, 1);
        }
    }
    ps_strbuf_add(b, "\"", 1);
}

int ps_strbuf_failed(const ps_strbuf *b)
{
    return b->failed;
}

char *ps_strbuf_take(ps_strbuf *b)
{
    char *out = NULL;
    if (!b->failed) {
        /* calloc, not strdup: strdup is POSIX, not C11. */
        out = b->data ? b->data : calloc(1, 1);
        b->data = NULL;
    }
    size_t limit = b->limit;
    ps_strbuf_free(b);
    ps_strbuf_init(b, limit);
    return out;
}
