/* Small helpers shared by the cmocka unit tests. Include after <cmocka.h>. */
#ifndef PS_TEST_H
#define PS_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Fails unless |got - want| <= rtol * max(|want|, 1e-30); prints both
 * values, which cmocka's float assertion would round away. */
#define assert_near(got, want, rtol)                                           \
    ps_test_assert_near((double)(got), (double)(want), (rtol), __FILE__,       \
                        __LINE__)

static inline void ps_test_assert_near(double got, double want, double rtol,
                                       const char *file, int line)
{
    double scale = fabs(want) > 1e-30 ? fabs(want) : 1e-30;
    if (!(fabs(got - want) <= rtol * scale)) {
        print_error("got %.9g, want %.9g (rtol %g)\n", got, want, rtol);
        _fail(file, line);
    }
}

/* A fresh directory /tmp/PREFIX.XXXXXX in dir (len >= 32 + strlen(prefix));
 * 0 or -1. */
static inline int ps_test_mkdtemp(char *dir, size_t len, const char *prefix)
{
    snprintf(dir, len, "/tmp/%s.XXXXXX", prefix);
    return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Removes a directory made by ps_test_mkdtemp and all it holds; 0 or -1. */
static inline int ps_test_rmtree(const char *dir)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs `promtool check metrics` on text (an exposition). Returns its exit
 * status (0: valid, lint-clean), -2 when promtool is not installed, -1 on
 * a local failure; out receives what it printed. */
static inline int ps_test_promtool(const char *text, char *out, size_t len)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        return -2;
    char dir[64], path[96], cmd[256];
    if (ps_test_mkdtemp(dir, sizeof(dir), "promtool") != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/metrics.txt", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        ps_test_rmtree(dir);
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, len - 1, p) : 0;
    out[n] = '\0';
    int st = p ? pclose(p) : -1;
    ps_test_rmtree(dir);
    return st < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
