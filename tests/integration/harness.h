/* Test harness: real ps-server processes on loopback with free ports.
 *
 * The server binary comes from $PS_SERVER_BIN (ctest sets it). Servers bind
 * tcp://127.0.0.1:0 and report their endpoint on stdout's first line. Every
 * started server is stopped by ps_cluster_stop(), which also checks that a
 * SIGTERM made it exit 0. */
#ifndef PS_HARNESS_H
#define PS_HARNESS_H

#include "sparkps.h"

#include <stddef.h>
#include <sys/types.h>

#define PS_HARNESS_MAX 8

typedef struct ps_test_server {
    pid_t pid;
    char endpoint[128];
    int port;
    char http[128]; /* with --http: "http://127.0.0.1:PORT", else "" */
    int http_port;
} ps_test_server;

typedef struct ps_cluster {
    ps_test_server srv[PS_HARNESS_MAX];
    int n;
    char servers[PS_HARNESS_MAX * 130]; /* "ep0,ep1,..." in shard order */
} ps_cluster;

/* Starts one ps-server with the given extra arguments (NULL-terminated
 * argv tail) and waits for its endpoint line (and, when the arguments hold
 * --http, the URL line after it). Returns 0 or -1. */
int ps_server_start(ps_test_server *s, const char *const *args);

/* The same with the server's stderr appended to the file `log` (NULL: the
 * test's stderr), for tests that read what a server logged. */
int ps_server_start_log(ps_test_server *s, const char *const *args,
                        const char *log);

/* SIGTERM, wait; returns the exit status (0 clean), or -1 if it had to be
 * killed after timeout_ms. */
int ps_server_stop(ps_test_server *s, int timeout_ms);

/* Waits up to timeout_ms for the server to exit on its own (no signal);
 * returns its exit status (128 + signal if killed by one), or -1 if it is
 * still running (it stays tracked for cleanup). */
int ps_server_wait(ps_test_server *s, int timeout_ms);

/* SIGKILL, wait. */
void ps_server_kill(ps_test_server *s);

/* Starts n shards (--shard i --shards n) plus the extra arguments. */
int ps_cluster_start(ps_cluster *c, int n, const char *const *extra);

/* Stops every shard; returns 0 when all exited cleanly with status 0. */
int ps_cluster_stop(ps_cluster *c);

/* Kills (SIGKILL) every server this process started that is still
 * running. Registered with atexit() on first start, and usable as a cmocka
 * teardown so a failed assertion never leaves servers behind. */
void ps_harness_kill_all(void);
int ps_harness_teardown(void **state);

/* Runs a command line of ps-server with args, capturing stderr into buf;
 * returns the exit status (used for CLI error tests). */
int ps_server_run_capture(const char *const *args, char *buf, size_t len,
                          int timeout_ms);

/* ps_client_new() on cfg; on failure prints the reason on stderr and
 * returns NULL (the caller's assertion then fails). */
ps_client *ps_harness_connect(const ps_client_cfg *cfg);

/* Defines (or finds) a dense table of len elements with plain SGD at lr
 * (zeros at first); its handle, or -1 with the reason on stderr. */
int ps_harness_define_sgd(ps_client *c, const char *name, uint64_t len,
                          double lr);

/* The number after "key": in a status JSON, looking from the first
 * occurrence of `after` on (NULL: from the start); UINT64_MAX when either
 * is missing. Kept out of line: inlined next to the status call that
 * filled the buffer, GCC 12 at -O3 took the result for a pointer into the
 * caller's dead stack (-Wdangling-pointer). */
uint64_t ps_harness_json_u64(const char *json, const char *after,
                             const char *key);

#endif
