/* Small helpers shared by the cmocka unit tests. Include after <cmocka.h>. */
#ifndef PS_TEST_H
#define PS_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
