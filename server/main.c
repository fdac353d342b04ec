/* ps-server: one shard of a sparkps cluster. Parses settings (flags and
 * SPARKPS_* environment variables from one table), binds, prints the bound
 * endpoint as the first line of stdout (and, with --http, the HTTP URL as
 * the second), and serves until SIGTERM/SIGINT. */
#include "common/config.h"
#include "common/log.h"
#include "common/sparkps_err.h"
#include "common/transport.h"
#include "consistency.h"
#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct server_opts {
    const char *listen;
    int64_t shard, shards;
    const char *cluster_id;
    const char *consistency;
    int64_t workers;
    int64_t worker_timeout_ms;
    int64_t heartbeat_ms;
    int64_t max_message_bytes;
    int64_t max_keys;
    int64_t max_rows;
    int64_t memory_limit;
    int insecure;
    const char *http;
    const char *log_level;
} server_opts;

#define OPT(f) offsetof(server_opts, f)
static const ps_setting settings[] = {
    {"listen", PS_SET_STR, "tcp://127.0.0.1:0", 0, 0, OPT(listen), "ENDPOINT",
     "where to accept clients; port 0 picks a free port (printed on stdout)"},
    {"shard", PS_SET_INT, "0", 0, 65535, OPT(shard), "I",
     "this server's shard index, 0-based"},
    {"shards", PS_SET_INT, "1", 1, 65536, OPT(shards), "N",
     "number of shards in the cluster"},
    {"cluster-id", PS_SET_STR, "sparkps", 0, 0, OPT(cluster_id), "NAME",
     "name shared by all shards of one cluster; clients refuse a mix"},
    {"consistency", PS_SET_STR, "asp", 0, 0, OPT(consistency), "MODEL",
     "asp (asynchronous), ssp:S (bounded staleness S) or bsp"},
    {"workers", PS_SET_INT, "0", 0, 65536, OPT(workers), "M",
     "workers to expect for SSP/BSP (0: count the ones that connect)"},
    {"worker-timeout", PS_SET_INT, "10000", 100, 86400000,
     OPT(worker_timeout_ms), "MS",
     "a worker silent this long stops counting for SSP/BSP"},
    {"heartbeat", PS_SET_INT, "1000", 100, 600000, OPT(heartbeat_ms), "MS",
     "ZeroMQ heartbeat interval; a peer silent 3x this is dropped"},
    {"max-message-bytes", PS_SET_INT, "1073741824", 1024, 8589934592.0,
     OPT(max_message_bytes), "BYTES",
     "largest request accepted, all its frames together (bigger ones get "
     "ETOOBIG; frames over twice this make ZeroMQ drop the connection)"},
    {"max-keys", PS_SET_INT, "16777216", 1, 4294967295.0, OPT(max_keys), "N",
     "most keys in one sparse push/pull/assign (more: ETOOBIG)"},
    {"max-rows", PS_SET_INT, "0", 0, 4294967294.0, OPT(max_rows), "N",
     "most rows of one sparse table on this shard; a push or assign that "
     "would create more is refused whole with EFULL (0: no limit but "
     "--memory-limit)"},
    {"memory-limit", PS_SET_INT, "0", 0, 1e18, OPT(memory_limit), "BYTES",
     "table memory this shard may use (0: the machine's RAM)"},
    {"insecure", PS_SET_BOOL, "false", 0, 0, OPT(insecure), NULL,
     "allow a plaintext listen address other than loopback"},
    {"http", PS_SET_STR, "", 0, 0, OPT(http), "HOST:PORT",
     "serve /metrics (Prometheus), /status (JSON) and a dashboard over "
     "HTTP; port 0 picks a free port (the URL is the second stdout line); "
     "off when empty"},
    {"log-level", PS_SET_STR, "info", 0, 0, OPT(log_level), "LEVEL",
     "error, warn, info or debug (logs go to stderr)"},
};
#undef OPT

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ps-server [options]\n\n"
            "Runs one shard of a sparkps parameter-server cluster. Start one\n"
            "process per shard, e.g. for two shards:\n"
            "  ps-server --listen tcp://0.0.0.0:7000 --shard 0 --shards 2\n"
            "  ps-server --listen tcp://0.0.0.0:7001 --shard 1 --shards 2\n"
            "and give workers SPARKPS_SERVERS=tcp://host:7000,tcp://host:7001"
            "\n(in shard order). The first line on stdout is the endpoint to\n"
            "connect to; with --http, the second is the HTTP URL. Each shard\n"
            "is one thread: to use more cores, run more shards per host.\n"
            "SIGTERM or SIGINT stops it cleanly.\n\n"
            "options:\n");
    ps_config_usage(out, settings, sizeof(settings) / sizeof(settings[0]));
}

static int is_loopback(const ps_http_addr *a)
{
    if (a->sa.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr) >>
                24) == 127;
    return a->sa.ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(
               &((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
}

static uint64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

int main(int argc, char **argv)
{
    ps_log_set_name("ps-server");
    server_opts o;
    memset(&o, 0, sizeof(o));
    int done = ps_config_main(settings, sizeof(settings) / sizeof(settings[0]),
                              &o, argc, argv, "ps-server", usage);
    if (done >= 0)
        return done;
    char err[512];
    int level = ps_log_parse_level(o.log_level);
    if (level < 0) {
        fprintf(stderr, "ps-server: --log-level: unknown level '%s'\n",
                o.log_level);
        return 2;
    }
    ps_log_set_level((ps_log_level)level);

    ps_server_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (ps_consist_parse(o.consistency, &cfg.consistency, &cfg.staleness) !=
        PS_OK) {
        fprintf(stderr,
                "ps-server: --consistency: expected asp, bsp or ssp:S with S "
                "a non-negative integer, got '%s'\n",
                o.consistency);
        return 2;
    }
    const char *port = strrchr(o.listen, ':');
    if (strncmp(o.listen, "tcp://", 6) == 0 && port != NULL &&
        strcmp(port + 1, "*") != 0 &&
        (strspn(port + 1, "0123456789") != strlen(port + 1) ||
         strlen(port + 1) > 5 || atoi(port + 1) > 65535)) {
        fprintf(stderr, "ps-server: --listen: port '%s' is not 0..65535\n",
                port + 1);
        return 2;
    }
    if (!o.insecure && !ps_endpoint_is_loopback(o.listen)) {
        ps_log(PS_LOG_WARN,
               "listening in plaintext on a non-loopback address "
               "endpoint=%s: anyone who can reach it can read and change the "
               "model",
               o.listen);
    }
    ps_http_addr http;
    if (o.http != NULL && o.http[0] != '\0') {
        if (ps_http_parse_addr(o.http, &http, err, sizeof(err)) != PS_OK) {
            fprintf(stderr, "ps-server: --http: %s\n", err);
            return 2;
        }
        if (!o.insecure && !is_loopback(&http))
            ps_log(PS_LOG_WARN,
                   "serving HTTP on a non-loopback address http=%s: anyone "
                   "who can reach it can read the cluster's status",
                   o.http);
        cfg.http = &http;
    }
    cfg.listen = o.listen;
    cfg.shard = (uint32_t)o.shard;
    cfg.shards = (uint32_t)o.shards;
    cfg.cluster_id = o.cluster_id;
    cfg.workers = (int)o.workers;
    cfg.worker_timeout_ms = (int)o.worker_timeout_ms;
    cfg.heartbeat_ms = (int)o.heartbeat_ms;
    cfg.max_message_bytes = (uint64_t)o.max_message_bytes;
    cfg.max_keys = (uint64_t)o.max_keys;
    cfg.max_rows = (uint64_t)o.max_rows;
    cfg.memory_limit =
        o.memory_limit ? (uint64_t)o.memory_limit : physical_memory();

    ps_server *s;
    if (ps_server_new(&s, &cfg, err, sizeof(err)) != PS_OK) {
        fprintf(stderr, "ps-server: %s\n", err);
        return 1;
    }
    ps_config_stop_signals();

    printf("%s\n", ps_server_endpoint(s));
    if (ps_server_http_url(s) != NULL)
        printf("%s\n", ps_server_http_url(s));
    fflush(stdout);
    int rc = ps_server_run(s, &ps_stop_requested);
    ps_server_free(s);
    ps_log(PS_LOG_INFO, "stopped");
    return rc == PS_OK ? 0 : 1;
}
