/* zmq-echo: the physical reference for ps-bench. It measures what raw
 * ZeroMQ can do on this machine with no protocol, no optimizer and no
 * copies: a DEALER sends an N-byte payload to a ROUTER that sends the very
 * same message back, with `inflight` round trips outstanding.
 *
 * Process model: the echo server runs in a child process (fork, before any
 * ZeroMQ context exists), because the real ps-server is a separate process
 * too: two processes, two I/O threads, a real TCP loopback connection. The
 * child reports its bound endpoint through a pipe and exits when the parent
 * closes a second pipe (or dies), so it can never outlive the benchmark.
 *
 * Zero-copy on both sides: the client sends every request from one
 * preallocated buffer with zmq_msg_init_data; the server resends the
 * zmq_msg_t it received. */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"
#include "common/config.h"
#include "common/sparkps_err.h"
#include "common/strbuf.h"
#include "common/timeutil.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define ECHO_MAX_INFLIGHT 1024
#define ECHO_ENDPOINT_MAX 256
#define ECHO_RECV_TIMEOUT_MS 10000 /* a silent echo server is a failure */

typedef struct echo_cfg {
    int64_t bytes;
    double seconds;
    double warmup;
    int64_t inflight;
    const char *listen; /* where the echo server binds */
    int json;
} echo_cfg;

static const ps_setting echo_settings[] = {
    {"bytes", PS_SET_INT, "1024", 1, 1073741824.0, offsetof(echo_cfg, bytes),
     "N", "payload bytes per message (each round trip moves 2*N)"},
    {"seconds", PS_SET_DOUBLE, "3", 0.01, 86400, offsetof(echo_cfg, seconds),
     "S", "length of the measured window"},
    {"warmup", PS_SET_DOUBLE, "0.5", 0, 3600, offsetof(echo_cfg, warmup), "S",
     "unmeasured run before the window (connection set-up, page faults)"},
    {"inflight", PS_SET_INT, "1", 1, ECHO_MAX_INFLIGHT,
     offsetof(echo_cfg, inflight), "D", "round trips kept outstanding"},
    {"echo-listen", PS_SET_STR, "tcp://127.0.0.1:0", 0, 0,
     offsetof(echo_cfg, listen), "ENDPOINT",
     "endpoint the echo server binds (port 0: any free port)"},
    {"json", PS_SET_BOOL, "false", 0, 1, offsetof(echo_cfg, json), NULL,
     "print one JSON object (field names as ps-bench) instead of a line"},
};
#define N_SETTINGS (sizeof(echo_settings) / sizeof(echo_settings[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: zmq-echo [options]\n"
            "Raw ZeroMQ DEALER/ROUTER echo over TCP loopback, the reference\n"
            "for ps-bench: the server (a forked child) sends each received\n"
            "message straight back. Reports round trips/s, GB/s (2*bytes\n"
            "per round trip) and p50/p99 latency.\n\noptions:\n");
    ps_config_usage(out, echo_settings, N_SETTINGS);
}

/* Child side: bind, report the endpoint on ep_fd, echo until ctl_fd reads
 * EOF. Returns the process exit status. */
static int echo_serve(const char *listen, int ep_fd, int ctl_fd)
{
    int status = 1;
    void *ctx = zmq_ctx_new();
    void *router = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    char ep[ECHO_ENDPOINT_MAX];
    size_t eplen = sizeof(ep);
    int zero = 0;
    if (router == NULL) {
        fprintf(stderr, "zmq-echo: server socket: %s\n", zmq_strerror(errno));
        goto out;
    }
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
    if (zmq_bind(router, listen) != 0) {
        fprintf(stderr, "zmq-echo: cannot bind %s: %s\n", listen,
                zmq_strerror(errno));
        goto out;
    }
    if (zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &eplen) != 0) {
        fprintf(stderr, "zmq-echo: ZMQ_LAST_ENDPOINT: %s\n",
                zmq_strerror(errno));
        goto out;
    }
    size_t n = strlen(ep);
    ep[n++] = '\n';
    if (write(ep_fd, ep, n) != (ssize_t)n) {
        fprintf(stderr, "zmq-echo: endpoint pipe: %s\n", strerror(errno));
        goto out;
    }
    close(ep_fd);
    ep_fd = -1;

    zmq_pollitem_t items[2] = {{router, 0, ZMQ_POLLIN, 0},
                               {NULL, ctl_fd, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "zmq-echo: poll: %s\n", zmq_strerror(errno));
            goto out;
        }
        if (items[1].revents)
            break; /* the parent closed its end: done */
        /* Drain whatever has arrived before polling again. */
        for (;;) {
            zmq_msg_t id, body;
            zmq_msg_init(&id);
            if (zmq_msg_recv(&id, router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&id);
                if (errno == EAGAIN || errno == EINTR)
                    break;
                fprintf(stderr, "zmq-echo: recv: %s\n", zmq_strerror(errno));
                goto out;
            }
            zmq_msg_init(&body);
            if (!zmq_msg_more(&id) || zmq_msg_recv(&body, router, 0) < 0) {
                zmq_msg_close(&id);
                zmq_msg_close(&body);
                continue; /* a bare routing id: nothing to echo */
            }
            /* The same zmq_msg_t goes back out: no copy of the payload. */
            if (zmq_msg_send(&id, router, ZMQ_SNDMORE) < 0 ||
                zmq_msg_send(&body, router, 0) < 0) {
                zmq_msg_close(&id);
                zmq_msg_close(&body);
                fprintf(stderr, "zmq-echo: send: %s\n", zmq_strerror(errno));
                goto out;
            }
        }
    }
    status = 0;
out:
    if (ep_fd >= 0)
        close(ep_fd);
    if (router)
        zmq_close(router);
    if (ctx)
        zmq_ctx_term(ctx);
    return status;
}

/* Reads the endpoint line the child writes; fails on EOF (the child could
 * not bind and said why on stderr). */
static int read_endpoint(int fd, char *ep, size_t eplen)
{
    size_t n = 0;
    while (n + 1 < eplen) {
        ssize_t r = read(fd, ep + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return PS_EIO;
        if (ep[n] == '\n') {
            ep[n] = '\0';
            return PS_OK;
        }
        n++;
    }
    return PS_EIO;
}

static int send_payload(void *sock, void *buf, size_t len)
{
    zmq_msg_t m;
    /* NULL free function: buf outlives every message (freed after the
     * socket is closed), and nobody writes to it. */
    if (zmq_msg_init_data(&m, buf, len, NULL, NULL) != 0)
        return PS_EZMQ;
    if (zmq_msg_send(&m, sock, 0) < 0) {
        zmq_msg_close(&m);
        return PS_EZMQ;
    }
    return PS_OK;
}

/* Sends one request and records its issue time (taken before the send, so
 * a descheduling between send and clock read cannot shorten a latency) in
 * the ring slot after the `*outstanding` ones starting at head. */
static int issue(void *sock, void *buf, size_t len, int64_t *issued_at,
                 int head, int *outstanding, int inflight)
{
    int64_t now = ps_now_us();
    if (send_payload(sock, buf, len) != PS_OK) {
        fprintf(stderr, "zmq-echo: send: %s\n", zmq_strerror(errno));
        return PS_EZMQ;
    }
    issued_at[(head + *outstanding) % inflight] = now;
    (*outstanding)++;
    return PS_OK;
}

/* Parent side: the measurement. */
static int echo_client(const echo_cfg *cfg, const char *ep, ps_bench_hist *lat,
                       uint64_t *ops)
{
    int rc = PS_EZMQ;
    size_t len = (size_t)cfg->bytes;
    int inflight = (int)cfg->inflight;
    int64_t issued_at[ECHO_MAX_INFLIGHT];
    int head = 0, outstanding = 0;
    void *ctx = NULL, *dealer = NULL;
    int zero = 0, tmo = ECHO_RECV_TIMEOUT_MS;
    char *buf = malloc(len);
    if (buf == NULL) {
        fprintf(stderr, "zmq-echo: cannot allocate %zu bytes\n", len);
        return PS_ENOMEM;
    }
    memset(buf, 0xa5, len);
    ctx = zmq_ctx_new();
    dealer = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    if (dealer == NULL) {
        fprintf(stderr, "zmq-echo: client socket: %s\n", zmq_strerror(errno));
        goto out;
    }
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
    if (zmq_connect(dealer, ep) != 0) {
        fprintf(stderr, "zmq-echo: cannot connect %s: %s\n", ep,
                zmq_strerror(errno));
        goto out;
    }

    int64_t start = ps_now_us();
    int64_t measure_from = start + (int64_t)(cfg->warmup * 1e6);
    int64_t measure_to = measure_from + (int64_t)(cfg->seconds * 1e6);
    for (int i = 0; i < inflight; i++) {
        if (issue(dealer, buf, len, issued_at, head, &outstanding, inflight) !=
            PS_OK)
            goto out;
    }
    /* One connection and a single-threaded echo keep replies in order, so
     * the reply that arrives belongs to the oldest request. */
    while (outstanding > 0) {
        zmq_msg_t reply;
        zmq_msg_init(&reply);
        if (zmq_msg_recv(&reply, dealer, 0) < 0) {
            fprintf(stderr, "zmq-echo: no reply from %s: %s\n", ep,
                    errno == EAGAIN ? "timed out" : zmq_strerror(errno));
            zmq_msg_close(&reply);
            goto out;
        }
        int64_t now = ps_now_us();
        size_t got = zmq_msg_size(&reply);
        zmq_msg_close(&reply);
        if (got != len) {
            fprintf(stderr, "zmq-echo: reply of %zu bytes, sent %zu\n", got,
                    len);
            rc = PS_EPROTO;
            goto out;
        }
        int64_t sent = issued_at[head];
        head = (head + 1) % inflight;
        outstanding--;
        if (now >= measure_from && now < measure_to) {
            ps_bench_hist_add(lat, (uint64_t)(now - sent));
            (*ops)++;
        }
        if (now < measure_to) {
            if (issue(dealer, buf, len, issued_at, head, &outstanding,
                      inflight) != PS_OK)
                goto out;
        }
    }
    rc = PS_OK;
out:
    if (dealer)
        zmq_close(dealer);
    if (ctx)
        zmq_ctx_term(ctx);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    echo_cfg cfg;
    ps_config_result res;
    char err[256];
    int ep_pipe[2] = {-1, -1}, ctl_pipe[2] = {-1, -1};
    pid_t child = -1;
    int exit_code = 1;
    ps_bench_hist *lat = NULL;
    uint64_t ops = 0;

    memset(&cfg, 0, sizeof(cfg));
    if (ps_config_parse(echo_settings, N_SETTINGS, &cfg, argc, argv, &res, err,
                        sizeof(err)) != PS_OK) {
        fprintf(stderr, "zmq-echo: %s\n", err);
        return 2;
    }
    if (res.help) {
        usage(stdout);
        return 0;
    }
    if (res.positional < argc) {
        fprintf(stderr, "zmq-echo: unexpected argument '%s' (see --help)\n",
                argv[res.positional]);
        return 2;
    }
    lat = malloc(sizeof(*lat));
    if (lat == NULL) {
        fprintf(stderr, "zmq-echo: out of memory\n");
        return 1;
    }
    ps_bench_hist_init(lat);

    if (pipe(ep_pipe) != 0 || pipe(ctl_pipe) != 0) {
        fprintf(stderr, "zmq-echo: pipe: %s\n", strerror(errno));
        goto out;
    }
    fflush(NULL);
    child = fork();
    if (child < 0) {
        fprintf(stderr, "zmq-echo: fork: %s\n", strerror(errno));
        goto out;
    }
    if (child == 0) {
        close(ep_pipe[0]);
        close(ctl_pipe[1]);
        _exit(echo_serve(cfg.listen, ep_pipe[1], ctl_pipe[0]));
    }
    close(ep_pipe[1]);
    close(ctl_pipe[0]);
    ep_pipe[1] = ctl_pipe[0] = -1;

    char ep[ECHO_ENDPOINT_MAX];
    if (read_endpoint(ep_pipe[0], ep, sizeof(ep)) != PS_OK) {
        fprintf(stderr, "zmq-echo: the echo server did not start\n");
        goto out;
    }
    if (echo_client(&cfg, ep, lat, &ops) != PS_OK)
        goto out;

    ps_bench_result r = {
        .op = "echo",
        .bytes = (uint64_t)cfg.bytes,
        .moved_per_op = 2 * (uint64_t)cfg.bytes,
        .shards = 1,
        .clients = 1,
        .inflight = (int)cfg.inflight,
        .sparse = 0,
        .ops = ops,
        .seconds = cfg.seconds,
        .retries = 0,
        .lat = lat,
    };
    if (cfg.json) {
        ps_strbuf b;
        ps_strbuf_init(&b, 0);
        ps_strbuf_add(&b, "{", 1);
        ps_bench_json_fields(&b, &r);
        ps_strbuf_add(&b, ",\"endpoint\":", 12);
        ps_strbuf_json_str(&b, ep);
        ps_strbuf_add(&b, "}\n", 2);
        if (ps_strbuf_failed(&b)) {
            fprintf(stderr, "zmq-echo: out of memory\n");
            ps_strbuf_free(&b);
            goto out;
        }
        fputs(b.data, stdout);
        ps_strbuf_free(&b);
    } else {
        ps_bench_print_human(&r);
    }
    if (ops == 0) {
        fprintf(stderr, "zmq-echo: no round trip completed in the window\n");
        goto out;
    }
    exit_code = 0;
out:
    if (ctl_pipe[1] >= 0) {
        close(ctl_pipe[1]); /* tells the child to exit */
        ctl_pipe[1] = -1;
    }
    if (child > 0) {
        int st = 0;
        while (waitpid(child, &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "zmq-echo: the echo server failed\n");
            exit_code = 1;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (ep_pipe[i] >= 0)
            close(ep_pipe[i]);
        if (ctl_pipe[i] >= 0)
            close(ctl_pipe[i]);
    }
    free(lat);
    if (fflush(stdout) != 0)
        exit_code = 1;
    return exit_code;
}
