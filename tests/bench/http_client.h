/* A minimal blocking HTTP/1.1 client for the tests and benchmarks that
 * scrape a ps-server's HTTP endpoint (/metrics, /status) without curl.
 *
 * Every call opens a fresh TCP connection, sends the request with
 * "Connection: close" and reads the reply until the server closes it, up to
 * HC_MAX_REPLY bytes and timeout_ms in all. Thread-safe (no shared state):
 * scraper threads call it concurrently. */
#ifndef PS_HTTP_CLIENT_H
#define PS_HTTP_CLIENT_H

#include <stddef.h>

#define HC_MAX_REPLY (64u << 20)

typedef struct hc_reply {
    int status; /* from the status line; 0: no reply (closed early) */
    char *head; /* status line and headers, NUL-terminated */
    char *body; /* NUL-terminated (binary bodies: use body_len) */
    size_t body_len;
} hc_reply;

/* METHOD path to url ("http://HOST:PORT"). Returns 0 when a reply (or a
 * close without one: status 0) came back, -1 on a connect error or timeout
 * (errno-style text in err). The reply's buffers are the caller's:
 * hc_reply_free(). */
int hc_request(const char *url, const char *method, const char *path,
               int timeout_ms, hc_reply *out, char *err, size_t errlen);

/* Sends `len` raw bytes instead of a formed request (malformed input). */
int hc_raw(const char *url, const void *req, size_t len, int timeout_ms,
           hc_reply *out, char *err, size_t errlen);

/* The same, then closes the sending side: a request the server would wait
 * to complete ends at once (it answers or closes). */
int hc_raw_eof(const char *url, const void *req, size_t len, int timeout_ms,
               hc_reply *out, char *err, size_t errlen);

/* A connected socket to url, or -1; for tests that hold connections open. */
int hc_connect(const char *url, char *err, size_t errlen);

/* The value of header `name` (case-insensitive) in r->head, copied into
 * buf; NULL when absent. */
const char *hc_header(const hc_reply *r, const char *name, char *buf,
                      size_t len);

void hc_reply_free(hc_reply *r);

#endif
