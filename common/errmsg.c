/* Error messages into a caller's buffer; see errmsg.h. */
#include "common/errmsg.h"

#include <stdio.h>

int ps_verrf(char *err, size_t errlen, int rc, const char *fmt, va_list ap)
{
    if (err != NULL && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    return rc;
}

int ps_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ps_verrf(err, errlen, rc, fmt, ap);
    va_end(ap);
    return rc;
}
