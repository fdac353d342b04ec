/* libmicrohttpd glue for the shard's HTTP endpoint; see http.h.
 *
 * MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD is MHD's external
 * mode on Linux: all its sockets sit in one epoll set whose descriptor the
 * event loop polls, and MHD_run() does the work of one non-blocking pass.
 * Connections MHD could not finish in a pass make MHD_get_timeout() return
 * 0, which is why the loop bounds its poll timeout by it. */
#include "common/http.h"

#include "common/log.h"
#include "common/secret_file.h"
#include "common/sparkps_err.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct ps_http {
    struct MHD_Daemon *d;
    const ps_http_route *routes;
    size_t nroutes;
    void *arg;
    const char *token; /* borrowed; NULL: none */
    char url[300];
    char not_found[256]; /* the 404 text, naming the routes */
    char last_error[256]; /* libmicrohttpd's latest message, for start-up */
};

static const char allowed[] = "GET, HEAD";

/* ---- address ---- */

static int is_wildcard(const char *host)
{
    return strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 ||
           strcmp(host, "::") == 0;
}

int ps_http_parse_addr(const char *spec, ps_http_addr *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *usage = "expected HOST:PORT, e.g. 127.0.0.1:9100 or "
                        "0.0.0.0:0 (port 0 picks a free one)";
    if (spec == NULL || *spec == '\0') {
        snprintf(err, errlen, "empty address: %s", usage);
        return PS_EINVAL;
    }
    const char *host = spec, *port;
    size_t hlen;
    if (strspn(spec, "0123456789") == strlen(spec) ||
        (spec[0] == ':' && spec[1] != '\0' &&
         strspn(spec + 1, "0123456789") == strlen(spec + 1))) {
        host = "127.0.0.1"; /* no host: loopback, never every interface */
        hlen = strlen(host);
        port = spec[0] == ':' ? spec + 1 : spec;
    } else if (*spec == '[') { /* [v6]:port */
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':') {
            snprintf(err, errlen, "'%s': %s ([V6ADDR]:PORT for IPv6)", spec,
                     usage);
            return PS_EINVAL;
        }
        host = spec + 1;
        hlen = (size_t)(close - host);
        port = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL) {
            snprintf(err, errlen, "'%s' has no port: %s", spec, usage);
            return PS_EINVAL;
        }
        hlen = (size_t)(colon - spec);
        port = colon + 1;
        if (memchr(spec, ':', hlen) != NULL) {
            snprintf(err, errlen,
                     "'%s': write an IPv6 address in brackets, "
                     "[V6ADDR]:PORT",
                     spec);
            return PS_EINVAL;
        }
    }
    if (hlen == 0 || hlen >= sizeof(out->host)) {
        snprintf(err, errlen,
                 "'%s': no host or one too long (use 0.0.0.0 or * for every "
                 "interface)",
                 spec);
        return PS_EINVAL;
    }
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen ||
        atol(port) > 65535) {
        snprintf(err, errlen, "'%s': port '%s' is not a number 0..65535", spec,
                 port);
        return PS_EINVAL;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = atoi(port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    const char *name = strcmp(out->host, "*") == 0 ? "0.0.0.0" : out->host;
    int rc = getaddrinfo(name, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "'%s': cannot resolve host '%s': %s", spec,
                 out->host, rc ? gai_strerror(rc) : "no address");
        if (res)
            freeaddrinfo(res);
        return PS_EINVAL;
    }
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->salen = res->ai_addrlen;
    freeaddrinfo(res);
    return PS_OK;
}

int ps_http_addr_is_loopback(const ps_http_addr *a)
{
    if (a->sa.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr) >>
                24) == 127;
    return a->sa.ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(
               &((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
}

int ps_http_read_token(const char *path, char **token, char *err,
                       size_t errlen)
{
    char *text = NULL;
    size_t len;
    int rc = ps_secret_file_read(path, PS_HTTP_TOKEN_MAX, 1, &text, &len, err,
                                 errlen);
    if (rc != PS_OK)
        return rc;
    size_t a = 0, b = len;
    while (a < b && isspace((unsigned char)text[a]))
        a++;
    while (b > a && isspace((unsigned char)text[b - 1]))
        b--;
    int bad = 0;
    for (size_t i = a; i < b; i++)
        bad |= text[i] < 0x21 || text[i] > 0x7e;
    if (bad || b - a < PS_HTTP_TOKEN_MIN) {
        snprintf(err, errlen,
                 "%s: the token must be %d to %d printable characters "
                 "without spaces (e.g. openssl rand -hex 32 > FILE)",
                 path, PS_HTTP_TOKEN_MIN, PS_HTTP_TOKEN_MAX);
        ps_secret_wipe(text, len);
        free(text);
        return PS_EINVAL;
    }
    memmove(text, text + a, b - a);
    ps_secret_wipe(text + (b - a), len - (b - a));
    text[b - a] = '\0';
    *token = text;
    return PS_OK;
}

int ps_http_flags(const char *spec, const char *token_file, int *on,
                  ps_http_addr *addr, char **token, char *err, size_t errlen)
{
    char e[600];
    int has_file = token_file != NULL && token_file[0] != '\0';
    *on = spec != NULL && spec[0] != '\0';
    *token = NULL;
    if (!*on && has_file) {
        snprintf(err, errlen, "--http-token-file needs --http");
        return PS_EINVAL;
    }
    if (!*on)
        return PS_OK;
    if (ps_http_parse_addr(spec, addr, e, sizeof(e)) != PS_OK) {
        snprintf(err, errlen, "--http: %s", e);
        return PS_EINVAL;
    }
    int rc = has_file ? ps_http_read_token(token_file, token, e, sizeof(e))
                      : PS_OK;
    if (rc != PS_OK)
        snprintf(err, errlen, "--http-token-file: %s", e);
    return rc;
}

/* ---- requests ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *type, char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO; /* MHD closes the connection */
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allowed);
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status,
                            const char *msg)
{
    return reply(conn, status, "text/plain; charset=utf-8", (char *)msg,
                 strlen(msg), MHD_RESPMEM_PERSISTENT);
}

/* "Authorization: Bearer TOKEN" with our token. */
static int authorized(const ps_http *h, struct MHD_Connection *conn)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
        return 0;
    v += 7;
    while (*v == ' ')
        v++;
    return ps_secret_equal(v, strlen(v), h->token, strlen(h->token));
}

static enum MHD_Result unauthorized(struct MHD_Connection *conn)
{
    static const char msg[] = "401 unauthorized: this page needs the "
                              "server's token (Authorization: Bearer "
                              "TOKEN)\n";
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            "Bearer realm=\"sparkps\"");
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    ps_http *h = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                    "405 method not allowed: this endpoint is read-only "
                    "(GET, HEAD)\n");
    const ps_http_route *rt = NULL;
    for (size_t i = 0; i < h->nroutes && rt == NULL; i++)
        if (strcmp(url, h->routes[i].path) == 0)
            rt = &h->routes[i];
    if (rt == NULL)
        return text(conn, MHD_HTTP_NOT_FOUND, h->not_found);
    if (h->token != NULL && !rt->open && !authorized(h, conn))
        return unauthorized(conn);
    if (rt->render == NULL)
        return reply(conn, MHD_HTTP_OK, rt->content_type, (char *)rt->body,
                     rt->body_len, MHD_RESPMEM_PERSISTENT);
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    int rc = rt->render(h->arg, &b);
    size_t len = b.len;
    char *body = rc == PS_OK ? ps_strbuf_take(&b) : NULL;
    ps_strbuf_free(&b);
    if (body == NULL) {
        ps_log(PS_LOG_WARN, "http page failed path=%s error=%s", rt->path,
               ps_errname(rc == PS_OK ? PS_ENOMEM : rc));
        return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                    "500 the page could not be rendered (see the server's "
                    "log)\n");
    }
    return reply(conn, MHD_HTTP_OK, rt->content_type, body, len,
                 MHD_RESPMEM_MUST_FREE);
}

/* libmicrohttpd's error log: its own format and arguments. */
__attribute__((format(printf, 2, 0))) static void
on_log(void *cls, const char *fmt, va_list ap)
{
    ps_http *h = cls;
    vsnprintf(h->last_error, sizeof(h->last_error), fmt, ap);
    size_t n = strlen(h->last_error);
    while (n > 0 &&
           (h->last_error[n - 1] == '\n' || h->last_error[n - 1] == '.'))
        h->last_error[--n] = '\0';
    ps_log(PS_LOG_DEBUG, "http: %s", h->last_error);
}

/* ---- lifecycle ---- */

int ps_http_new(ps_http **out, const ps_http_cfg *cfg, char *err, size_t errlen)
{
    ps_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return PS_ENOMEM;
    }
    h->routes = cfg->routes;
    h->nroutes = cfg->nroutes;
    h->arg = cfg->arg;
    h->token = cfg->token;
    size_t n = (size_t)snprintf(h->not_found, sizeof(h->not_found),
                                "404 not found: the pages are");
    for (size_t i = 0; i < h->nroutes && n < sizeof(h->not_found); i++)
        n += (size_t)snprintf(h->not_found + n, sizeof(h->not_found) - n,
                              "%s %s", i ? "," : "", h->routes[i].path);
    if (n < sizeof(h->not_found) - 1)
        snprintf(h->not_found + n, sizeof(h->not_found) - n, "\n");
    const ps_http_addr *a = cfg->addr;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (a->sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    h->d = MHD_start_daemon(
        flags, (uint16_t)a->port, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, on_log, h, /* first: catches all */
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&a->sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)PS_HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PS_HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)PS_HTTP_MAX_REQUEST_BYTES,
        MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(err, errlen, "cannot serve HTTP on %s:%d: %s", a->host,
                 a->port,
                 h->last_error[0] ? h->last_error
                 : errno          ? strerror(errno)
                                  : "libmicrohttpd refused to start");
        free(h);
        return PS_EIO;
    }
    const union MHD_DaemonInfo *pi =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    int port = pi ? (int)pi->port : a->port;
    char name[256];
    const char *host = a->host;
    if (is_wildcard(host)) {
        if (gethostname(name, sizeof(name)) != 0)
            snprintf(name, sizeof(name), "localhost");
        name[sizeof(name) - 1] = '\0';
        host = name;
    }
    int v6 = strchr(host, ':') != NULL;
    snprintf(h->url, sizeof(h->url), "http://%s%s%s:%d", v6 ? "[" : "", host,
             v6 ? "]" : "", port);
    *out = h;
    return PS_OK;
}

const char *ps_http_url(const ps_http *h)
{
    return h->url;
}

int ps_http_poll_fd(const ps_http *h)
{
    const union MHD_DaemonInfo *i =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    return i ? i->epoll_fd : -1;
}

long ps_http_timeout_ms(ps_http *h)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->d, &ms) != MHD_YES)
        return -1;
    return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

void ps_http_run(ps_http *h)
{
    MHD_run(h->d);
}

void ps_http_free(ps_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
