/* One table per program describes every setting: it drives the command-line
 * flags, the SPARKPS_* environment variables and --help, so they can never
 * disagree (the idea of Redis's config.c).
 *
 * Precedence: built-in default < environment < command line. Values are
 * written into the program's own config struct at each setting's offset.
 * Strings are borrowed from argv, the environment or the default. */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum ps_setting_type {
    PS_SET_STR,    /* const char * */
    PS_SET_INT,    /* int64_t, checked against [min, max] */
    PS_SET_DOUBLE, /* double, checked against [min, max] */
    PS_SET_BOOL    /* int 0/1; a bare --flag sets 1, --flag=false 0 */
} ps_setting_type;

typedef struct ps_setting {
    const char *name; /* "worker-timeout": --worker-timeout, and
                         SPARKPS_WORKER_TIMEOUT */
    ps_setting_type type;
    const char *def;     /* default as text; NULL: unset (strings only) */
    double min, max;     /* numeric range, inclusive */
    size_t offset;       /* where the value goes in the config struct */
    const char *metavar; /* shown in --help: --listen ENDPOINT */
    const char *help;
} ps_setting;

typedef struct ps_config_result {
    int help;       /* --help or -h was given */
    int positional; /* argv index of the first non-flag argument (argc if
                       none); "--" ends the flags */
} ps_config_result;

/* Applies defaults, then SPARKPS_* variables, then argv[1..] flags (both
 * `--name value` and `--name=value`). Unknown flags, missing values, bad
 * numbers and out-of-range values fail with PS_EINVAL and a message naming
 * the flag or variable in err. Parsing stops at the first positional
 * argument. */
int ps_config_parse(const ps_setting *tab, size_t n, void *cfg, int argc,
                    char **argv, ps_config_result *res, char *err,
                    size_t errlen);

/* The start of every program's main(): parses argv into cfg; on --help calls
 * usage(stdout); reports a bad setting or a stray argument on stderr as
 * "prog: reason". Returns -1 when the program should go on, else the exit
 * status to return (0 after --help, 2 for bad input). */
int ps_config_main(const ps_setting *tab, size_t n, void *cfg, int argc,
                   char **argv, const char *prog, void (*usage)(FILE *out));

/* The process's shutdown flag (one of the few globals STYLE allows): set by
 * SIGTERM/SIGINT once ps_config_stop_signals() is installed. */
extern volatile sig_atomic_t ps_stop_requested;

/* Makes SIGTERM and SIGINT set ps_stop_requested and ignores SIGPIPE (a
 * peer that went away is an error return, not a signal). */
void ps_config_stop_signals(void);

/* Prints one line per setting: flag, metavar, help, default and env name. */
void ps_config_usage(FILE *out, const ps_setting *tab, size_t n);

#endif
