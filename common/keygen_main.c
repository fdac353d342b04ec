/* ps-keygen: writes a CurveZMQ keypair for sparkps servers and clients
 * (NAME.key secret, mode 0600; NAME.pub public), or prints the public key
 * of a secret key file. */
#include "common/config.h"
#include "common/curve.h"
#include "common/errmsg.h"
#include "common/sparkps_err.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct keygen_opts {
    const char *out;
    int force;
    const char *public_of;
} keygen_opts;

#define OPT(f) offsetof(keygen_opts, f)
static const ps_setting settings[] = {
    {"out", PS_SET_STR, NULL, 0, 0, OPT(out), "DIR/NAME",
     "write the secret key to NAME.key (mode 0600) and the public key to "
     "NAME.pub"},
    {"force", PS_SET_BOOL, "false", 0, 1, OPT(force), NULL,
     "overwrite existing NAME.key / NAME.pub"},
    {"public-of", PS_SET_STR, NULL, 0, 0, OPT(public_of), "FILE",
     "print the public key of the secret key in FILE (nothing written)"},
};
#undef OPT
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ps-keygen --out DIR/NAME [--force]\n"
            "       ps-keygen --public-of FILE\n\n"
            "Generates a CurveZMQ keypair (Z85 text, as ZeroMQ writes keys).\n"
            "A cluster needs one pair for the servers and one per client "
            "(or\none shared by every client):\n"
            "  ps-keygen --out keys/server      # keys/server.key, "
            "keys/server.pub\n"
            "  ps-keygen --out keys/worker      # keys/worker.key, "
            "keys/worker.pub\n"
            "  ps-server --curve-secret-key keys/server.key --curve-allow "
            "keys/worker.pub ...\n"
            "  ps-worker --curve-secret-key keys/worker.key "
            "--curve-server-key keys/server.pub ...\n"
            "Keys are read from files only, never from the command line.\n\n"
            "Exit status: 0 ok, 1 error (file exists, cannot write, no "
            "CURVE in libzmq), 2 bad usage.\n\n"
            "options:\n");
    ps_config_usage(out, settings, NSETTINGS);
}

int main(int argc, char **argv)
{
    keygen_opts o;
    memset(&o, 0, sizeof(o));
    int done = ps_config_main(settings, NSETTINGS, &o, argc, argv,
                              "ps-keygen", usage);
    if (done >= 0)
        return done;
    if ((o.out == NULL) == (o.public_of == NULL)) {
        fprintf(stderr, "ps-keygen: give exactly one of --out DIR/NAME and "
                        "--public-of FILE (see --help)\n");
        return 2;
    }
    if (!ps_curve_available()) {
        fprintf(stderr, "ps-keygen: %s\n", ps_curve_missing_msg());
        return 1;
    }
    char err[512];
    ps_curve_key pub;
    if (o.public_of != NULL) {
        ps_curve_key sec;
        int rc = ps_curve_read_key(o.public_of, 1, &sec, err, sizeof(err));
        if (rc == PS_OK && ps_curve_public_of(&sec, &pub) != PS_OK)
            rc = ps_errf(err, sizeof(err), PS_EINVAL,
                         "%s: not a valid secret key", o.public_of);
        ps_curve_wipe(&sec, sizeof(sec));
        if (rc != PS_OK) {
            fprintf(stderr, "ps-keygen: %s\n", err);
            return 1;
        }
        printf("%s\n", pub.z85);
        return 0;
    }
    if (o.out[0] == '\0') {
        fprintf(stderr, "ps-keygen: --out: empty name\n");
        return 2;
    }
    if (ps_curve_keygen(o.out, o.force, &pub, err, sizeof(err)) != PS_OK) {
        fprintf(stderr, "ps-keygen: %s\n", err);
        return 1;
    }
    printf("%s.key (secret, mode 0600) and %s.pub written; public key %s\n",
           o.out, o.out, pub.z85);
    return 0;
}
