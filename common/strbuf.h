/* A growable text buffer with a cap, for JSON and messages built piecewise.
 *
 * Appends never fail loudly: on allocation failure or when the cap is hit the
 * buffer is marked failed and further appends are ignored; check
 * ps_strbuf_failed() once at the end. Not thread-safe (one owner). */
#ifndef PS_STRBUF_H
#define PS_STRBUF_H

#include <stddef.h>

typedef struct ps_strbuf {
    char *data; /* NUL-terminated while !failed */
    size_t len;
    size_t cap;   /* allocated bytes */
    size_t limit; /* maximum len; 0 means 64 MiB */
    int failed;
} ps_strbuf;

void ps_strbuf_init(ps_strbuf *b, size_t limit);
void ps_strbuf_free(ps_strbuf *b);
void ps_strbuf_add(ps_strbuf *b, const char *s, size_t n);
void ps_strbuf_printf(ps_strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quotes and escapes included). */
void ps_strbuf_json_str(ps_strbuf *b, const char *s);
int ps_strbuf_failed(const ps_strbuf *b);
/* Hands the text to the caller (to free) and resets b; NULL if failed. */
char *ps_strbuf_take(ps_strbuf *b);

#endif
