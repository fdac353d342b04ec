/* A placeholder dashboard page: a link to /metrics and /status. The real
 * page (server/dashboard.html, embedded at build time) replaces this file
 * when that work is merged; only the function in dashboard.h stays. */
#include "dashboard.h"

static const char page[] =
    "<!doctype html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>sparkps shard</title></head>\n"
    "<body><h1>sparkps shard</h1>\n"
    "<p><a href=\"/metrics\">/metrics</a> (Prometheus) and "
    "<a href=\"/status\">/status</a> (JSON).</p>\n"
    "</body></html>\n";

const char *ps_dashboard_html(size_t *len)
{
    *len = sizeof(page) - 1;
    return page;
}
