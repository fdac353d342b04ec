/* Small helpers shared by the cmocka unit tests. Include after <cmocka.h>. */
#ifndef PS_TEST_H
#define PS_TEST_H

#include <math.h>
#include <stdio.h>

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

#endif
