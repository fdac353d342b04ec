/* A read-only HTTP endpoint served from inside the shard's event loop.
 *
 * libmicrohttpd runs in its external mode without any thread of its own:
 * the loop polls ps_http_poll_fd() (an epoll descriptor) beside its ZeroMQ
 * socket, bounds its poll timeout by ps_http_timeout_ms() and calls
 * ps_http_run(), which answers what is ready without blocking. Page
 * renderers therefore run on the loop's thread and may read the live
 * tables. Only GET and HEAD are served: any other method gets 405 (HTTP
 * changes nothing; state changes go through the wire), an unknown path
 * 404, both with a short text body. With a token, every route not marked
 * `open` answers 401 (WWW-Authenticate: Bearer) unless the request carries
 * "Authorization: Bearer TOKEN"; the comparison takes the same time
 * wherever a wrong token differs.
 *
 * A slow or hostile client cannot stall the loop: sockets are non-blocking,
 * connections are capped (later ones wait in the listen backlog), an idle
 * connection is closed after a timeout, and a request's headers must fit a
 * fixed buffer (a longer URL is refused by libmicrohttpd).
 *
 * Threads: everything here is called from the one thread that owns the
 * ps_http. */
#ifndef PS_HTTP_H
#define PS_HTTP_H

#include "common/strbuf.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PS_HTTP_MAX_CONNECTIONS 32
#define PS_HTTP_TIMEOUT_S 10            /* an idle connection is closed */
#define PS_HTTP_MAX_REQUEST_BYTES 16384 /* request line and headers */

/* Renders a page into out (empty on entry). Returns PS_OK, or an error
 * that becomes a 500 reply. */
typedef int (*ps_http_render_fn)(void *arg, ps_strbuf *out);

typedef struct ps_http_route {
    const char *path;         /* exact match, e.g. "/metrics" */
    const char *content_type; /* sent as Content-Type */
    ps_http_render_fn render; /* called per request; NULL: body below */
    const char *body;         /* static page, borrowed for the lifetime */
    size_t body_len;
    int open; /* served without the bearer token (a page holding no data) */
} ps_http_route;

/* A parsed HOST:PORT. */
typedef struct ps_http_addr {
    struct sockaddr_storage sa; /* resolved, port included */
    socklen_t salen;
    char host[256]; /* as given ("*" means every interface) */
    int port;       /* 0: the system picks one */
} ps_http_addr;

typedef struct ps_http_cfg {
    const ps_http_addr *addr;
    const ps_http_route *routes; /* borrowed for the lifetime */
    size_t nroutes;
    void *arg;         /* passed to every render function */
    const char *token; /* NULL: none; else routes not `open` need
                          "Authorization: Bearer TOKEN" (401 otherwise) */
} ps_http_cfg;

typedef struct ps_http ps_http;

/* Parses HOST:PORT ([V6ADDR]:PORT for IPv6; HOST "*" or 0.0.0.0: every
 * interface; no host, ":PORT" or "PORT": 127.0.0.1) and resolves HOST. PS_EINVAL with err naming the problem: no
 * port, a port that is not 0..65535, a host that does not resolve. May
 * block on name resolution. */
int ps_http_parse_addr(const char *spec, ps_http_addr *out, char *err,
                       size_t errlen);

/* Whether a parsed address is a loopback one (127/8 or ::1): the programs
 * warn before serving anywhere else. */
int ps_http_addr_is_loopback(const ps_http_addr *a);

#define PS_HTTP_TOKEN_MIN 16 /* characters of a bearer token */
#define PS_HTTP_TOKEN_MAX 4096

/* Reads a bearer token from a file (--http-token-file): its content
 * without surrounding white space, as Prometheus reads credentials_file;
 * the file must be private (mode 0600, as secret_file.h checks) and the
 * token PS_HTTP_TOKEN_MIN..MAX printable characters without spaces. On
 * success *token is the caller's (wipe with ps_secret_wipe, then free);
 * else PS_EINVAL or PS_EIO with err saying why, *token untouched. */
int ps_http_read_token(const char *path, char **token, char *err,
                       size_t errlen);

/* The --http and --http-token-file flags of a program: *on = 0 when spec
 * is NULL or empty (then a token file is an error), else *addr parsed and
 * *token read from token_file (NULL without one; the caller's, as
 * ps_http_read_token). PS_EINVAL or PS_EIO with err naming the flag and
 * the problem. */
int ps_http_flags(const char *spec, const char *token_file, int *on,
                  ps_http_addr *addr, char **token, char *err, size_t errlen);

/* Binds and starts serving the routes. On failure (address in use, out of
 * memory) *out is untouched and err says why. */
int ps_http_new(ps_http **out, const ps_http_cfg *cfg, char *err,
                size_t errlen);

/* "http://HOST:PORT" with the bound port (a wildcard host replaced by the
 * machine's name); borrowed. */
const char *ps_http_url(const ps_http *h);

/* The descriptor to poll for input before calling ps_http_run(). */
int ps_http_poll_fd(const ps_http *h);

/* Milliseconds until ps_http_run() is due even without input (0: now), or
 * -1 when nothing is pending. */
long ps_http_timeout_ms(ps_http *h);

/* Accepts, reads, answers and times out connections; never blocks. */
void ps_http_run(ps_http *h);

/* Closes every connection and the listening socket. NULL is fine. */
void ps_http_free(ps_http *h);

#endif
