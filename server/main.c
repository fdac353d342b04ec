/* ps-server: one shard of a sparkps cluster. Parses settings (flags and
 * SPARKPS_* environment variables from one table), binds, prints the bound
 * endpoint as the first line of stdout (and, with --http, the HTTP URL as
 * the second), and serves until SIGTERM/SIGINT. */
#include "common/config.h"
#include "common/curve.h"
#include "common/log.h"
#include "common/secret_file.h"
#include "common/sparkps_err.h"
#include "common/transport.h"
#include "consistency.h"
#include "server.h"

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
    const char *curve_secret_key;
    const char *curve_allow;
    const char *http;
    const char *http_token_file;
    const char *checkpoint_dir;
    int64_t checkpoint_every_s;
    int64_t checkpoint_keep;
    const char *restore;
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
    {"cluster-id", PS_SET_STR, NULL, 0, 0, OPT(cluster_id), "NAME",
     "name shared by all shards of one cluster; clients refuse a mix "
     "(default: the restored checkpoint's, else " PS_DEFAULT_CLUSTER_ID ")"},
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
    {"curve-secret-key", PS_SET_STR, NULL, 0, 0, OPT(curve_secret_key),
     "FILE",
     "CurveZMQ: this server's secret key (ps-keygen's NAME.key, mode 0600); "
     "needs --curve-allow"},
    {"curve-allow", PS_SET_STR, NULL, 0, 0, OPT(curve_allow), "FILE|DIR",
     "CurveZMQ: the client public keys let in: a file with one Z85 key per "
     "line, or a directory of NAME.pub files"},
    {"insecure", PS_SET_BOOL, "false", 0, 0, OPT(insecure), NULL,
     "allow plaintext (no CurveZMQ) on a listen address other than "
     "loopback; without it such an address is refused"},
    {"http", PS_SET_STR, "", 0, 0, OPT(http), "HOST:PORT",
     "serve /metrics (Prometheus), /status (JSON) and a dashboard over "
     "HTTP; a bare PORT or :PORT binds 127.0.0.1; port 0 picks a free port "
     "(the URL is the second stdout line); off when empty"},
    {"http-token-file", PS_SET_STR, NULL, 0, 0, OPT(http_token_file), "FILE",
     "/status and /metrics need \"Authorization: Bearer TOKEN\", TOKEN "
     "being this file's content (mode 0600; the dashboard page reads it "
     "from its URL's #token=)"},
    {"checkpoint-dir", PS_SET_STR, NULL, 0, 0, OPT(checkpoint_dir), "DIR",
     "write checkpoints of this shard here (created if missing): every "
     "--checkpoint-every seconds, on `ps-ctl save` and when stopping "
     "(SIGTERM, SIGINT, shutdown)"},
    {"checkpoint-every", PS_SET_INT, "0", 0, 31536000, OPT(checkpoint_every_s),
     "SECONDS", "seconds between periodic checkpoints (0: none periodic)"},
    {"checkpoint-keep", PS_SET_INT, "3", 1, 1000000, OPT(checkpoint_keep), "K",
     "checkpoints of this shard kept; older ones are deleted"},
    {"restore", PS_SET_STR, NULL, 0, 0, OPT(restore), "DIR|FILE|latest",
     "at start, load the newest valid checkpoint of this shard in DIR (a "
     "damaged one is refused and the previous one tried), or FILE; latest: "
     "in --checkpoint-dir, starting fresh when it has none of this shard"},
    {"log-level", PS_SET_STR, "info", 0, 0, OPT(log_level), "LEVEL",
     "error, warn, info or debug (logs go to stderr)"},
};
#undef OPT

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ps-server [options]\n\n"
            "Runs one shard of a sparkps parameter-server cluster. Start one\n"
            "process per shard, e.g. for two shards (keys from ps-keygen):\n"
            "  export SPARKPS_CURVE_SECRET_KEY=keys/server.key "
            "SPARKPS_CURVE_ALLOW=keys/clients/\n"
            "  ps-server --listen tcp://0.0.0.0:7000 --shard 0 --shards 2\n"
            "  ps-server --listen tcp://0.0.0.0:7001 --shard 1 --shards 2\n"
            "and give workers SPARKPS_SERVERS=tcp://host:7000,tcp://host:7001"
            "\n(in shard order) and their keys. Without keys a server speaks\n"
            "plaintext, which it does only on a loopback address unless\n"
            "--insecure. The first line on stdout is the endpoint to\n"
            "connect to; with --http, the second is the HTTP URL. Each shard\n"
            "is one thread: to use more cores, run more shards per host.\n"
            "SIGTERM or SIGINT stops it cleanly (after a last checkpoint\n"
            "with --checkpoint-dir). To survive a crash, give it\n"
            "--checkpoint-dir DIR --checkpoint-every S --restore latest:\n"
            "the same command line starts fresh the first time and resumes\n"
            "from the newest valid checkpoint after a restart.\n\n"
            "options:\n");
    ps_config_usage(out, settings, sizeof(settings) / sizeof(settings[0]));
}

/* The CurveZMQ flags, and the rule that plaintext stays on loopback unless
 * --insecure. Returns -1 to go on, else the exit status. */
static int security_setup(const server_opts *o, int loopback,
                          ps_curve_key *secret, ps_curve_allow **allow)
{
    char err[512];
    int has_key = o->curve_secret_key && o->curve_secret_key[0];
    int has_allow = o->curve_allow && o->curve_allow[0];
    memset(secret, 0, sizeof(*secret));
    if (has_key != has_allow) {
        fprintf(stderr,
                "ps-server: --curve-secret-key and --curve-allow go together: "
                "CurveZMQ without an allow-list would let in any client with "
                "any key\n");
        return 2;
    }
    if (!has_key) {
        if (!loopback && !o->insecure) {
            fprintf(stderr,
                    "ps-server: --listen %s is not a loopback address: "
                    "refusing plaintext there (anyone who can reach it could "
                    "read and change the model). Give --curve-secret-key and "
                    "--curve-allow (keys from ps-keygen), or --insecure to "
                    "serve plaintext on a trusted network\n",
                    o->listen);
            return 2;
        }
        return -1;
    }
    if (!ps_curve_available()) {
        fprintf(stderr, "ps-server: %s\n", ps_curve_missing_msg());
        return 1;
    }
    if (ps_curve_read_key(o->curve_secret_key, 1, secret, err, sizeof(err)) !=
            PS_OK ||
        ps_curve_allow_load(allow, o->curve_allow, err, sizeof(err)) !=
            PS_OK) {
        fprintf(stderr, "ps-server: %s\n", err);
        return 2;
    }
    return -1;
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
    int loopback = ps_endpoint_is_loopback(o.listen);
    ps_curve_key secret;
    ps_curve_allow *allow = NULL;
    char *token = NULL;
    int rc = security_setup(&o, loopback, &secret, &allow);
    if (rc >= 0)
        goto out;
    if (allow != NULL) {
        cfg.curve_secret = &secret;
        cfg.curve_allow = allow;
    }
    cfg.insecure = allow == NULL && !loopback;
    ps_http_addr http;
    int http_on;
    if (ps_http_flags(o.http, o.http_token_file, &http_on, &http, &token, err,
                      sizeof(err)) != PS_OK) {
        fprintf(stderr, "ps-server: %s\n", err);
        goto usage_error;
    }
    if (http_on) {
        if (!o.insecure && !ps_http_addr_is_loopback(&http))
            ps_log(PS_LOG_WARN,
                   "serving HTTP on a non-loopback address http=%s: anyone "
                   "who can reach it can read the cluster's status%s",
                   o.http,
                   token ? " if they have the token (HTTP is not encrypted)"
                         : "");
        cfg.http = &http;
        cfg.http_token = token;
    }
    cfg.listen = o.listen;
    cfg.shard = (uint32_t)o.shard;
    cfg.shards = (uint32_t)o.shards;
    cfg.cluster_id = o.cluster_id;
    cfg.workers = (int)o.workers;
    cfg.worker_timeout_ms = (int)o.worker_timeout_ms;
    cfg.heartbeat_ms = (int)o.heartbeat_ms;
    cfg.max_message_bytes = (uint64_t)o.max_message_bytes;
    cfg.checkpoint_dir = o.checkpoint_dir;
    cfg.checkpoint_every_s = (int)o.checkpoint_every_s;
    cfg.checkpoint_keep = (int)o.checkpoint_keep;
    cfg.restore = o.restore;
    cfg.max_keys = (uint64_t)o.max_keys;
    cfg.max_rows = (uint64_t)o.max_rows;
    cfg.memory_limit =
        o.memory_limit ? (uint64_t)o.memory_limit : physical_memory();

    ps_server *s;
    rc = ps_server_new(&s, &cfg, err, sizeof(err));
    if (rc != PS_OK) {
        fprintf(stderr, "ps-server: %s\n", err);
        rc = rc == PS_EINVAL ? 2 : 1;
        goto out;
    }
    ps_config_stop_signals();

    printf("%s\n", ps_server_endpoint(s));
    if (ps_server_http_url(s) != NULL)
        printf("%s\n", ps_server_http_url(s));
    fflush(stdout);
    rc = ps_server_run(s, &ps_stop_requested) == PS_OK ? 0 : 1;
    ps_server_free(s);
    ps_log(PS_LOG_INFO, "stopped");
    goto out;
usage_error:
    rc = 2;
out:
    ps_curve_wipe(&secret, sizeof(secret));
    ps_curve_allow_free(allow);
    if (token != NULL)
        ps_secret_wipe(token, strlen(token));
    free(token);
    return rc;
}
