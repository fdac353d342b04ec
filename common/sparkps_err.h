/* Error codes shared by every sparkps component and sent on the wire.
 *
 * The numeric values are part of the wire protocol (Header.error_code): never
 * renumber, only append. Foreign codes (errno, zmq, CUDA) are translated into
 * these once, where they occur. Installed beside sparkps.h. */
#ifndef SPARKPS_ERR_H
#define SPARKPS_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the library's public functions; everything else in libsparkps.so
 * stays hidden. */
#ifndef PS_API
#define PS_API __attribute__((visibility("default")))
#endif

typedef enum ps_err {
    PS_OK = 0,
    PS_ENOMEM = 1,     /* out of memory */
    PS_EINVAL = 2,     /* invalid argument or configuration */
    PS_EPROTO = 3,     /* malformed message */
    PS_ETIMEDOUT = 4,  /* no answer in time (after retries) */
    PS_ENOTABLE = 5,   /* unknown table */
    PS_ERANGE = 6,     /* offset/count/key outside what the table holds */
    PS_ECONFLICT = 7,  /* table exists with a different spec */
    PS_EBADGRAD = 8,   /* gradient holds NaN or Inf */
    PS_ETOOBIG = 9,    /* message larger than the configured maximum */
    PS_EVERSION = 10,  /* protocol version not spoken */
    PS_EMISMATCH = 11, /* server list does not match the cluster */
    PS_ECONSIST = 12,  /* client and servers disagree on consistency */
    PS_EIO = 13,       /* file or socket error */
    PS_EZMQ = 14,      /* ZeroMQ call failed */
    PS_ESHUTDOWN = 15, /* server is stopping */
    PS_EDTYPE = 16,    /* unsupported dtype for this request */
    PS_ESTALE = 17,    /* sequence number older than the dedup window */
    PS_EUNKNOWN = 18,  /* unknown message type */
    PS_ECUDA = 19,     /* CUDA or cuBLAS failed */
    PS_ENOTCONN = 20,  /* not connected / handshake not done */
    PS_EDEFERRED = 21, /* internal: pull queued behind slower workers */
    PS_ECANCELED = 22, /* the caller's cancel flag was raised (a signal) */
    PS_ESUPERSEDED = 23, /* a newer attempt of this worker id has joined */
    PS_EFULL = 24,     /* a configured limit (sparse-table rows) was reached */
    PS_EAUTH = 25,     /* authentication failed or refused */
    PS_ERR_COUNT_ = 26
} ps_err;

/* Short human-readable text for a code; never NULL. */
PS_API const char *ps_strerror(int err);

/* Stable identifier ("EINVAL", ...) for metrics and JSON; never NULL. */
PS_API const char *ps_errname(int err);

#ifdef __cplusplus
}
#endif
#endif
