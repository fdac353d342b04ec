/* Prometheus text exposition writer and histogram; see prom.h. The format
 * is https://prometheus.io/docs/instrumenting/exposition_formats/ (0.0.4):
 * one line per sample, families introduced by HELP and TYPE, label values
 * in double quotes with \\, \" and \n escaped. */
#include "common/prom.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((unused)) static int name_ok(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    *p == '_' || *p == ':';
        if (!alpha && !(p > s && *p >= '0' && *p <= '9'))
            return 0;
    }
    return 1;
}

static const char *type_name(ps_prom_type t)
{
    return t == PS_PROM_COUNTER ? "counter"
           : t == PS_PROM_GAUGE ? "gauge"
                                : "histogram";
}

void ps_prom_family(ps_strbuf *b, const char *name, ps_prom_type type,
                    const char *help)
{
    assert(name_ok(name));
    ps_strbuf_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            ps_strbuf_add(b, "\\\\", 2);
        else if (*p == '\n')
            ps_strbuf_add(b, "\\n", 2);
        else
            ps_strbuf_add(b, p, 1);
    }
    ps_strbuf_printf(b, "\n# TYPE %s %s\n", name, type_name(type));
}

void ps_prom_escape_label(ps_strbuf *b, const char *s)
{
    const char *run = s;
    for (const char *p = s;; p++) {
        const char *esc = *p == '\\'   ? "\\\\"
                          : *p == '"'  ? "\\\""
                          : *p == '\n' ? "\\n"
                                       : NULL;
        if (esc == NULL && *p != '\0')
            continue;
        ps_strbuf_add(b, run, (size_t)(p - run));
        if (*p == '\0')
            return;
        ps_strbuf_add(b, esc, 2);
        run = p + 1;
    }
}

/* Decimal digits of v at the end of buf[32]; returns where they start.
 * printf costs most of a render, and most values are integers. */
static char *utoa(uint64_t v, char *end)
{
    *--end = '\0';
    do
        *--end = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    return end;
}

/* buf holds at least 32 bytes. */
static const char *format_value(char *buf, size_t len, double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    if (v == floor(v) && fabs(v) < 1e15) { /* exact as an integer */
        char *d = utoa((uint64_t)fabs(v), buf + 32);
        if (v < 0)
            *--d = '-';
        return d;
    }
    /* The shortest of 15..17 significant digits that reads back exactly:
     * 0.1 stays "0.1" instead of 0.10000000000000001. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

void ps_prom_value(ps_strbuf *b, double v)
{
    char buf[40];
    const char *s = format_value(buf, sizeof(buf), v);
    ps_strbuf_add(b, s, strlen(s));
}

/* name{a="x",b="y"} with an optional extra label appended (le). */
static void series(ps_strbuf *b, const char *name, const char *suffix,
                   const ps_prom_label *labels, const char *extra_name,
                   const char *extra_value)
{
    assert(name_ok(name));
    ps_strbuf_add(b, name, strlen(name));
    if (suffix)
        ps_strbuf_add(b, suffix, strlen(suffix));
    int n = 0;
    for (const ps_prom_label *l = labels; l && l->name; l++, n++) {
        assert(name_ok(l->name) && l->value != NULL);
        ps_strbuf_add(b, n ? "," : "{", 1);
        ps_strbuf_add(b, l->name, strlen(l->name));
        ps_strbuf_add(b, "=\"", 2);
        ps_prom_escape_label(b, l->value);
        ps_strbuf_add(b, "\"", 1);
    }
    if (extra_name) {
        ps_strbuf_add(b, n ? "," : "{", 1);
        ps_strbuf_add(b, extra_name, strlen(extra_name));
        ps_strbuf_add(b, "=\"", 2);
        ps_strbuf_add(b, extra_value, strlen(extra_value));
        ps_strbuf_add(b, "\"", 1);
        n++;
    }
    if (n)
        ps_strbuf_add(b, "}", 1);
    ps_strbuf_add(b, " ", 1);
}

void ps_prom_sample(ps_strbuf *b, const char *name, const ps_prom_label *labels,
                    double value)
{
    series(b, name, NULL, labels, NULL, NULL);
    ps_prom_value(b, value);
    ps_strbuf_add(b, "\n", 1);
}

void ps_prom_sample_u64(ps_strbuf *b, const char *name,
                        const ps_prom_label *labels, uint64_t value)
{
    char buf[32];
    series(b, name, NULL, labels, NULL, NULL);
    const char *d = utoa(value, buf + sizeof(buf));
    ps_strbuf_add(b, d, strlen(d));
    ps_strbuf_add(b, "\n", 1);
}

void ps_prom_hist_init(ps_prom_hist *h, const double *bounds, size_t nbounds)
{
    assert(nbounds <= PS_PROM_MAX_BUCKETS);
    for (size_t i = 0; i < nbounds; i++)
        assert(isfinite(bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]));
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->nbounds = nbounds;
}

void ps_prom_hist_observe(ps_prom_hist *h, double v)
{
    if (isnan(v))
        return;
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

void ps_prom_hist_write(ps_strbuf *b, const char *name,
                        const ps_prom_label *labels, const ps_prom_hist *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cum += h->counts[i];
        char buf[40];
        const char *le = i < h->nbounds
                             ? format_value(buf, sizeof(buf), h->bounds[i])
                             : "+Inf";
        series(b, name, "_bucket", labels, "le", le);
        const char *d = utoa(cum, buf + sizeof(buf));
        ps_strbuf_add(b, d, strlen(d));
        ps_strbuf_add(b, "\n", 1);
    }
    series(b, name, "_sum", labels, NULL, NULL);
    ps_prom_value(b, h->sum);
    ps_strbuf_add(b, "\n", 1);
    char buf[32];
    series(b, name, "_count", labels, NULL, NULL);
    const char *d = utoa(h->count, buf + sizeof(buf));
    ps_strbuf_add(b, d, strlen(d));
    ps_strbuf_add(b, "\n", 1);
}
