/* The dashboard page served at / by a shard's HTTP endpoint. */
#ifndef PS_DASHBOARD_H
#define PS_DASHBOARD_H

#include <stddef.h>

const char *ps_dashboard_html(size_t *len);

#endif
