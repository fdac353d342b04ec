/* The dashboard page that ps-server serves at "/" over HTTP: one
 * self-contained HTML file (server/dashboard.html: inline CSS, JavaScript
 * and SVG charts, nothing fetched from elsewhere but the server's own
 * "status") compiled into the binary at build time. */
#ifndef PS_DASHBOARD_H
#define PS_DASHBOARD_H

#include <stddef.h>

/* Returns the page (UTF-8 HTML; serve as "text/html; charset=utf-8") and,
 * when len is not NULL, stores its length in bytes in *len, not counting
 * the terminating NUL. The bytes are in static storage, NUL-terminated,
 * never changed or freed: valid for the life of the process. Never fails,
 * never blocks, allocates nothing; any thread may call it at any time. */
const char *ps_dashboard_html(size_t *len);

#endif
