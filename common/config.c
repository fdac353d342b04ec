/* Settings table parsing; see config.h. */
#include "common/config.h"

#include "common/sparkps_err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void env_name(const char *name, char *out, size_t outlen)
{
    size_t j = (size_t)snprintf(out, outlen, "SPARKPS_");
    for (const char *p = name; *p && j + 1 < outlen; p++)
        out[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[j] = '\0';
}

static int set_value(const ps_setting *s, void *cfg, const char *value,
                     const char *source, char *err, size_t errlen)
{
    char *slot = (char *)cfg + s->offset;
    char *end = NULL;
    switch (s->type) {
    case PS_SET_STR:
        memcpy(slot, &value, sizeof(value));
        return PS_OK;
    case PS_SET_BOOL: {
        int v;
        if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 ||
            strcmp(value, "yes") == 0)
            v = 1;
        else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 ||
                 strcmp(value, "no") == 0)
            v = 0;
        else {
            snprintf(err, errlen, "%s: expected true or false, got '%s'",
                     source, value);
            return PS_EINVAL;
        }
        memcpy(slot, &v, sizeof(v));
        return PS_OK;
    }
    case PS_SET_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0') {
            snprintf(err, errlen, "%s: expected an integer, got '%s'", source,
                     value);
            return PS_EINVAL;
        }
        if ((double)v < s->min || (double)v > s->max) {
            snprintf(err, errlen, "%s: %lld is outside [%.0f, %.0f]", source, v,
                     s->min, s->max);
            return PS_EINVAL;
        }
        int64_t x = v;
        memcpy(slot, &x, sizeof(x));
        return PS_OK;
    }
    case PS_SET_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !isfinite(v)) {
            snprintf(err, errlen, "%s: expected a number, got '%s'", source,
                     value);
            return PS_EINVAL;
        }
        if (v < s->min || v > s->max) {
            snprintf(err, errlen, "%s: %g is outside [%g, %g]", source, v,
                     s->min, s->max);
            return PS_EINVAL;
        }
        memcpy(slot, &v, sizeof(v));
        return PS_OK;
    }
    }
    return PS_EINVAL;
}

static const ps_setting *find(const ps_setting *tab, size_t n, const char *name,
                              size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(tab[i].name) == len && strncmp(tab[i].name, name, len) == 0)
            return &tab[i];
    return NULL;
}

int ps_config_parse(const ps_setting *tab, size_t n, void *cfg, int argc,
                    char **argv, ps_config_result *res, char *err,
                    size_t errlen)
{
    char source[128];
    res->help = 0;
    res->positional = argc;
    for (size_t i = 0; i < n; i++) {
        if (tab[i].def == NULL)
            continue;
        snprintf(source, sizeof(source), "default of --%s", tab[i].name);
        if (set_value(&tab[i], cfg, tab[i].def, source, err, errlen) != PS_OK)
            return PS_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char var[96];
        env_name(tab[i].name, var, sizeof(var));
        const char *v = getenv(var);
        if (v == NULL)
            continue;
        if (set_value(&tab[i], cfg, v, var, err, errlen) != PS_OK)
            return PS_EINVAL;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            res->help = 1;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            res->positional = i + 1;
            return PS_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            res->positional = i;
            return PS_OK;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const ps_setting *s = find(tab, n, name, len);
        if (s == NULL) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", a);
            return PS_EINVAL;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL && s->type == PS_SET_BOOL)
            value = "true";
        if (value == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "option --%s needs a value", s->name);
                return PS_EINVAL;
            }
            value = argv[++i];
        }
        snprintf(source, sizeof(source), "--%s", s->name);
        if (set_value(s, cfg, value, source, err, errlen) != PS_OK)
            return PS_EINVAL;
    }
    return PS_OK;
}

void ps_config_usage(FILE *out, const ps_setting *tab, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char flag[96], var[96];
        env_name(tab[i].name, var, sizeof(var));
        snprintf(flag, sizeof(flag), "--%s%s%s", tab[i].name,
                 tab[i].metavar ? " " : "",
                 tab[i].metavar ? tab[i].metavar : "");
        fprintf(out, "  %-28s %s\n", flag, tab[i].help);
        fprintf(out, "  %-28s [", "");
        if (tab[i].def)
            fprintf(out, "default: %s; ", tab[i].def);
        fprintf(out, "env: %s]\n", var);
    }
}

int ps_config_main(const ps_setting *tab, size_t n, void *cfg, int argc,
                   char **argv, const char *prog, void (*usage)(FILE *out))
{
    ps_config_result res;
    char err[512];
    if (ps_config_parse(tab, n, cfg, argc, argv, &res, err, sizeof(err)) !=
        PS_OK) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    if (res.help) {
        usage(stdout);
        return 0;
    }
    if (res.positional < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog,
                argv[res.positional]);
        return 2;
    }
    return -1;
}

volatile sig_atomic_t ps_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    ps_stop_requested = 1;
}

void ps_config_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
