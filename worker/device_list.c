/* Parsing and opening a --device list; see device_list.h. */
#include "device_list.h"

#include "common/errmsg.h"

#include <stdio.h>
#include <string.h>

int ps_device_list_parse(const char *spec, ps_device_list *out, char *err,
                         size_t errlen)
{
    ps_device_list l;
    int cuda_seen[PS_COMM_MAX_RANKS];
    const char *p = spec != NULL && spec[0] != '\0' ? spec : "cpu";

    memset(&l, 0, sizeof(l));
    for (;;) {
        size_t len = strcspn(p, ",");
        ps_device_kind kind;
        int num;
        char why[160] = "";

        if (l.n == PS_COMM_MAX_RANKS) {
            ps_errf(err, errlen, PS_OK,
                    "--device %s: more than %d devices", spec,
                    PS_COMM_MAX_RANKS);
            return PS_EINVAL;
        }
        if (len == 0 || len >= sizeof(l.names[0])) {
            ps_errf(err, errlen, PS_OK,
                    "--device %s: entry %zu is %s (want a comma-separated "
                    "list like cuda:0,cuda:1)",
                    spec, l.n + 1, len == 0 ? "empty" : "too long");
            return PS_EINVAL;
        }
        memcpy(l.names[l.n], p, len);
        if (ps_backend_parse_device(l.names[l.n], &kind, &num, why,
                                    sizeof(why)) != PS_OK) {
            ps_errf(err, errlen, PS_OK, "--device %s: entry %zu: %s", spec,
                    l.n + 1, why);
            return PS_EINVAL;
        }
        cuda_seen[l.n] = kind == PS_DEVICE_CUDA ? num : -1;
        for (size_t i = 0; kind == PS_DEVICE_CUDA && i < l.n; i++)
            if (cuda_seen[i] == num) {
                ps_errf(err, errlen, PS_OK,
                        "--device %s: cuda:%d is listed twice (entries %zu "
                        "and %zu); each GPU computes one slice of the batch",
                        spec, num, i + 1, l.n + 1);
                return PS_EINVAL;
            }
        l.n++;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    *out = l;
    return PS_OK;
}

int ps_device_list_open(const ps_device_list *l, ps_backend **bes, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < l->n; i++) {
        int rc;

        bes[i] = NULL;
        if ((rc = ps_backend_open(l->names[i], &bes[i], err, errlen)) !=
            PS_OK) {
            ps_device_list_close(bes, i);
            return rc;
        }
    }
    return PS_OK;
}

void ps_device_list_close(ps_backend **bes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ps_backend_free(bes[i]);
        bes[i] = NULL;
    }
}
