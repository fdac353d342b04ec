/* Fuzz target: the server's whole request path (decode, validate, apply on
 * a scratch store) through ps__server_handle(), the function the event loop
 * calls for every message.
 *
 * Input: byte 0 configures the shard (bits 0-1: consistency asp, ssp:1,
 * bsp, asp; bit 2: shard 0 of 2 instead of 1 of 1), then messages, each
 * one byte B (1 + B % 8 frames after the routing id: a header and up to 7
 * bulk frames, so more than a request may have) and per frame a 2-byte
 * little-endian length (cut to what is left) and its bytes. At most
 * MAX_MESSAGES messages are taken, each followed by what the event loop
 * does between batches (ps__server_tick: parked pulls SSP/BSP now allow are
 * answered). Before them, four tables are defined
 * through the same path (ids 0-3: dense SGD+momentum, dense Adam, sparse
 * Adagrad, sparse FTRL), so pushes and pulls reach the optimizers.
 *
 * Every input gets a fresh server (bound to an inproc endpoint nobody
 * connects to: replies go to an unknown routing id and ROUTER drops them),
 * so a finding replays alone. PS_FUZZ_DEBUG=1 in the environment logs
 * every refusal (for looking at a finding). */
#include "fuzz.h"
#include "fuzz_frames.h"

#include "common/codec.h"
#include "common/log.h"
#include "consistency.h"
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGES 64

static void define_table(ps_server *s, const char *name, int kind, uint64_t len,
                         uint32_t dim, int optim)
{
    Sparkps__Init init;
    Sparkps__Optim opt;
    Sparkps__TableSpec spec;
    sparkps__init__init(&init);
    sparkps__optim__init(&opt);
    sparkps__table_spec__init(&spec);
    init.has_kind = init.has_a = init.has_b = init.has_seed = 1;
    init.kind = SPARKPS__INIT_KIND__INIT_UNIFORM;
    init.a = -0.5;
    init.b = 0.5;
    init.seed = 7;
    opt.has_kind = opt.has_lr = opt.has_momentum = 1;
    opt.kind = (Sparkps__OptimKind)optim;
    opt.lr = 0.1;
    opt.momentum = optim == SPARKPS__OPTIM_KIND__OPT_SGD ? 0.9 : 0;
    spec.job = "fuzz";
    spec.name = (char *)name;
    spec.has_kind = spec.has_len = spec.has_dim = 1;
    spec.kind = (Sparkps__TableKind)kind;
    spec.len = len;
    spec.dim = dim;
    spec.init = &init;
    spec.optim = &opt;
    ps_header h;
    ps_header_init(&h);
    h.has_type = h.has_request_id = 1;
    h.type = SPARKPS__MSG_TYPE__DEFINE_TABLE;
    h.request_id = 1;
    h.table = &spec;
    uint8_t buf[512];
    size_t n = ps_header_packed_size(&h);
    if (n > sizeof(buf))
        return;
    ps_header_pack(&h, buf);
    const ps_fuzz_frame fr = {buf, n};
    ps_frames f;
    if (ps_fuzz_frames_build(&f, &fr, 1) == 0) {
        ps__server_handle(s, &f);
        ps_frames_close(&f);
    }
}

int ps_fuzz_server(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        /* PS_FUZZ_DEBUG=1 shows every refusal while looking at a finding. */
        const char *dbg = getenv("PS_FUZZ_DEBUG");
        ps_log_set_level(dbg && *dbg == '1' ? PS_LOG_DEBUG : PS_LOG_ERROR);
        quiet = 1;
    }
    if (size < 1)
        return 0;
    static const int modes[4] = {PS_CONS_ASP, PS_CONS_SSP, PS_CONS_BSP,
                                 PS_CONS_ASP};
    ps_server_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.listen = "inproc://ps-fuzz-server";
    cfg.shard = 0;
    cfg.shards = (data[0] & 4) ? 2 : 1;
    cfg.cluster_id = "fuzz";
    cfg.consistency = modes[data[0] & 3];
    cfg.staleness = 1;
    cfg.workers = 2;
    cfg.worker_timeout_ms = 10000;
    cfg.heartbeat_ms = 1000;
    cfg.max_message_bytes = 1u << 20;
    cfg.max_keys = 1024;
    cfg.max_rows = 16; /* small enough that pushes reach EFULL */
    cfg.memory_limit = 4u << 20; /* a DEFINE of a huge table: ENOMEM */
    ps_server *s;
    char err[256];
    if (ps_server_new(&s, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_server: %s\n", err);
        return 0;
    }
    define_table(s, "d", SPARKPS__TABLE_KIND__DENSE, 64, 0,
                 SPARKPS__OPTIM_KIND__OPT_SGD);
    define_table(s, "a", SPARKPS__TABLE_KIND__DENSE, 40, 0,
                 SPARKPS__OPTIM_KIND__OPT_ADAM);
    define_table(s, "s", SPARKPS__TABLE_KIND__SPARSE, 0, 4,
                 SPARKPS__OPTIM_KIND__OPT_ADAGRAD);
    define_table(s, "f", SPARKPS__TABLE_KIND__SPARSE, 0, 1,
                 SPARKPS__OPTIM_KIND__OPT_FTRL);
    ps_fuzz_reader rd = {data + 1, size - 1};
    ps_fuzz_frame fr[PS_FUZZ_MAX_FRAMES];
    int n;
    for (int m = 0; m < MAX_MESSAGES && (n = ps_fuzz_next_message(&rd, fr)) > 0;
         m++) {
        ps_frames f;
        if (ps_fuzz_frames_build(&f, fr, n) != 0)
            break;
        ps__server_handle(s, &f);
        ps_frames_close(&f);
        ps__server_tick(s); /* as the loop would: parked pulls may go */
    }
    ps_server_free(s);
    return 0;
}
