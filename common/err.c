/* Texts for the ps_err codes. */
#include "common/sparkps_err.h"

#include <stddef.h>

static const struct {
    const char *name;
    const char *text;
} err_table[PS_ERR_COUNT_] = {
    [PS_OK] = {"OK", "success"},
    [PS_ENOMEM] = {"ENOMEM", "out of memory"},
    [PS_EINVAL] = {"EINVAL", "invalid argument"},
    [PS_EPROTO] = {"EPROTO", "malformed message"},
    [PS_ETIMEDOUT] = {"ETIMEDOUT", "timed out"},
    [PS_ENOTABLE] = {"ENOTABLE", "unknown table"},
    [PS_ERANGE] = {"ERANGE", "offset, count or key out of range"},
    [PS_ECONFLICT] = {"ECONFLICT", "table exists with a different spec"},
    [PS_EBADGRAD] = {"EBADGRAD", "gradient contains NaN or Inf"},
    [PS_ETOOBIG] = {"ETOOBIG", "message too large"},
    [PS_EVERSION] = {"EVERSION", "protocol version mismatch"},
    [PS_EMISMATCH] = {"EMISMATCH", "server does not match the cluster"},
    [PS_ECONSIST] = {"ECONSIST", "consistency model mismatch"},
    [PS_EIO] = {"EIO", "I/O error"},
    [PS_EZMQ] = {"EZMQ", "ZeroMQ error"},
    [PS_ESHUTDOWN] = {"ESHUTDOWN", "server shutting down"},
    [PS_EDTYPE] = {"EDTYPE", "unsupported dtype"},
    [PS_ESTALE] = {"ESTALE", "request older than the dedup window"},
    [PS_EUNKNOWN] = {"EUNKNOWN", "unknown message type"},
    [PS_ECUDA] = {"ECUDA", "CUDA error"},
    [PS_ENOTCONN] = {"ENOTCONN", "not connected"},
    [PS_EDEFERRED] = {"EDEFERRED", "deferred"},
    [PS_ECANCELED] = {"ECANCELED", "cancelled"},
    [PS_ESUPERSEDED] = {"ESUPERSEDED", "a newer attempt of this worker joined"},
    [PS_EFULL] = {"EFULL", "limit reached"},
    [PS_EAUTH] = {"EAUTH", "authentication refused"},
};

const char *ps_strerror(int err)
{
    if (err < 0 || err >= PS_ERR_COUNT_ || err_table[err].text == NULL)
        return "unknown error";
    return err_table[err].text;
}

const char *ps_errname(int err)
{
    if (err < 0 || err >= PS_ERR_COUNT_ || err_table[err].name == NULL)
        return "EUNKNOWNCODE";
    return err_table[err].name;
}
