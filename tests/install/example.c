/* A user's program against the installed libsparkps: connects to the
 * servers in SPARKPS_SERVERS, defines a dense table with Adam on the
 * servers, pushes a gradient and reads the update back in one round trip.
 * Built by test.sh from an installed prefix (pkg-config sparkps). */
#include <sparkps.h>

#include <stdio.h>

int main(void)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.job = "example";
    char err[512];
    ps_client *c;
    if (ps_client_new(&c, &cfg, err, sizeof(err)) != PS_OK) {
        fprintf(stderr, "connect: %s\n", err);
        return 1;
    }
    ps_table_spec spec = {.name = "w", .kind = PS_DENSE, .len = 4};
    spec.optim.kind = PS_OPT_ADAM;
    spec.optim.lr = 0.1;
    int table;
    float grad[4] = {1, -1, 2, -2}, w[4];
    ps_request *req;
    int rc = ps_client_define(c, &spec, &table);
    if (rc == PS_OK)
        rc = ps_client_pushpull(c, table, 0, 4, grad, w, &req);
    if (rc == PS_OK)
        rc = ps_client_wait(c, req, -1);
    if (rc != PS_OK) {
        fprintf(stderr, "%s: %s\n", ps_strerror(rc), ps_client_errmsg(c));
        ps_client_free(c);
        return 1;
    }
    /* Adam's first step moves every weight by lr against its gradient. */
    printf("%.3f %.3f %.3f %.3f\n", w[0], w[1], w[2], w[3]);
    ps_client_free(c);
    return 0;
}
