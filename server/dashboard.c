/* The dashboard page as bytes in the binary; see dashboard.h.
 *
 * dashboard_html.inc is generated from dashboard.html by cmake/embed.cmake
 * (the page's bytes and a NUL, as an initialiser), so editing the page
 * rebuilds this file. The array is constant and needs no start-up work,
 * hence safe from any thread. */
#include "dashboard.h"

static const unsigned char page[] = {
#include "dashboard_html.inc"
};

const char *ps_dashboard_html(size_t *len)
{
    if (len != NULL)
        *len = sizeof(page) - 1; /* the NUL is not part of the page */
    return (const char *)page;
}
