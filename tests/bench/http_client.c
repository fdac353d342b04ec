/* Minimal HTTP client; see http_client.h. Replies are read whole (the
 * server closes the connection after each one), then split at the first
 * blank line. */
#include "http_client.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hc_connect(const char *url, char *err, size_t errlen)
{
    char host[256], port[16];
    const char *h = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
    const char *colon = strrchr(h, ':');
    if (colon == NULL || (size_t)(colon - h) >= sizeof(host) ||
        strlen(colon + 1) >= sizeof(port)) {
        snprintf(err, errlen, "bad url '%s'", url);
        return -1;
    }
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    if (host[0] == '[') { /* [v6] */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", url, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        snprintf(err, errlen, "connect %s: %s", url, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Waits for fd to be ready for `events` until the deadline. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    int64_t left = deadline - now_ms();
    if (left <= 0)
        return 0;
    struct pollfd p = {fd, events, 0};
    return poll(&p, 1, (int)left) > 0;
}

static int exchange(int fd, const void *req, size_t len, int eof,
                    int64_t deadline, hc_reply *out, char *err, size_t errlen)
{
    const char *p = req;
    while (len > 0) {
        if (!wait_fd(fd, POLLOUT, deadline)) {
            snprintf(err, errlen, "timed out sending");
            return -1;
        }
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the server may refuse early (e.g. a huge URL) */
        p += n;
        len -= (size_t)n;
    }
    if (eof)
        shutdown(fd, SHUT_WR);
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (;;) {
        if (!wait_fd(fd, POLLIN, deadline)) {
            free(buf);
            snprintf(err, errlen, "timed out reading the reply");
            return -1;
        }
        if (got == cap) {
            if (cap >= HC_MAX_REPLY) {
                free(buf);
                snprintf(err, errlen, "reply over %u bytes", HC_MAX_REPLY);
                return -1;
            }
            char *b = realloc(buf, cap * 2 + 1);
            if (b == NULL) {
                free(buf);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* closed (a reset counts as a close: no reply) */
        got += (size_t)n;
    }
    buf[got] = '\0';
    memset(out, 0, sizeof(*out));
    char *end = strstr(buf, "\r\n\r\n");
    size_t hlen = end ? (size_t)(end - buf) : got;
    out->head = strndup(buf, hlen);
    out->body_len = end ? got - hlen - 4 : 0;
    out->body = malloc(out->body_len + 1);
    if (out->head == NULL || out->body == NULL) {
        free(buf);
        hc_reply_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (end)
        memcpy(out->body, end + 4, out->body_len);
    out->body[out->body_len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1)
        out->status = 0;
    free(buf);
    return 0;
}

static int raw(const char *url, const void *req, size_t len, int eof,
               int timeout_ms, hc_reply *out, char *err, size_t errlen)
{
    int64_t deadline = now_ms() + timeout_ms;
    int fd = hc_connect(url, err, errlen);
    if (fd < 0)
        return -1;
    int rc = exchange(fd, req, len, eof, deadline, out, err, errlen);
    close(fd);
    return rc;
}

int hc_raw(const char *url, const void *req, size_t len, int timeout_ms,
           hc_reply *out, char *err, size_t errlen)
{
    return raw(url, req, len, 0, timeout_ms, out, err, errlen);
}

int hc_raw_eof(const char *url, const void *req, size_t len, int timeout_ms,
               hc_reply *out, char *err, size_t errlen)
{
    return raw(url, req, len, 1, timeout_ms, out, err, errlen);
}

int hc_request(const char *url, const char *method, const char *path,
               int timeout_ms, hc_reply *out, char *err, size_t errlen)
{
    size_t len = strlen(method) + strlen(path) + 128;
    char *req = malloc(len);
    if (req == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int n = snprintf(req, len,
                     "%s %s HTTP/1.1\r\nHost: sparkps\r\nConnection: close"
                     "\r\n\r\n",
                     method, path);
    int rc = hc_raw(url, req, (size_t)n, timeout_ms, out, err, errlen);
    free(req);
    return rc;
}

const char *hc_header(const hc_reply *r, const char *name, char *buf,
                      size_t len)
{
    size_t n = strlen(name);
    for (const char *p = r->head; p && (p = strstr(p, "\r\n")) != NULL;) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            v += strspn(v, " ");
            size_t vl = strcspn(v, "\r\n");
            snprintf(buf, len, "%.*s", (int)vl, v);
            return buf;
        }
    }
    return NULL;
}

void hc_reply_free(hc_reply *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
}
