/* CurveZMQ key material: key files, key generation and the servers'
 * allow-list of client public keys.
 *
 * A key file holds one key as 40 Z85 characters on a line (ZeroMQ's text
 * form of a 32-byte Curve25519 key); blank lines and lines starting with
 * '#' are ignored. ps-keygen writes NAME.key (the secret key, mode 0600)
 * and NAME.pub (the public key), each with a comment line naming its kind,
 * so a secret key given where a public one belongs (or the reverse) is a
 * clear error rather than a failed handshake.
 *
 * Secret keys are read only from files (never from the command line), and
 * a secret key file that other users may access (mode & 007) is refused.
 * No error message ever holds key material: they name the file and the
 * problem.
 *
 * Threads: no state besides what the caller passes; an allow-list is
 * immutable once loaded, so any thread may query it. */
#ifndef PS_CURVE_H
#define PS_CURVE_H

#include <stddef.h>
#include <stdint.h>

#define PS_CURVE_Z85_LEN 40   /* characters of a key in Z85 */
#define PS_CURVE_KEY_BYTES 32 /* a Curve25519 key */
#define PS_CURVE_MAX_FILE 4096
#define PS_CURVE_MAX_ALLOW 65536 /* keys in one allow-list */

/* A key in text form, NUL-terminated. */
typedef struct ps_curve_key {
    char z85[PS_CURVE_Z85_LEN + 1];
} ps_curve_key;

/* 1 when this libzmq supports CURVE (zmq_has("curve")). */
int ps_curve_available(void);

/* The sentence every CURVE error ends with when libzmq lacks it. */
const char *ps_curve_missing_msg(void);

/* Reads the key in `path`. `secret`: the file must hold a secret key and
 * must not be accessible by other users; else a public key. PS_EINVAL
 * (bad content, wrong kind, permissions) or PS_EIO (cannot open) with err
 * naming the file. */
int ps_curve_read_key(const char *path, int secret, ps_curve_key *out,
                      char *err, size_t errlen);

/* The public key of a secret key. PS_EINVAL when it is not one. */
int ps_curve_public_of(const ps_curve_key *secret, ps_curve_key *pub);

/* A fresh keypair written to BASE.key (secret, 0600) and BASE.pub (0644),
 * each first written to a temporary file and then linked into place, so a
 * reader never sees half a key. Without `force` an existing BASE.key or
 * BASE.pub is an error (PS_EINVAL) and nothing is written. *pub receives
 * the public key. PS_EIO on a file error, with err naming it. */
int ps_curve_keygen(const char *base, int force, ps_curve_key *pub, char *err,
                    size_t errlen);

/* The allow-list: client public keys a CURVE server lets in. */
typedef struct ps_curve_allow ps_curve_allow;

/* Loads `path`: a file with one Z85 public key per line, or a directory
 * whose *.pub files each hold keys in that form (other files are
 * ignored). An empty list, a bad line (named as file:line) or more than
 * PS_CURVE_MAX_ALLOW keys is PS_EINVAL. */
int ps_curve_allow_load(ps_curve_allow **out, const char *path, char *err,
                        size_t errlen);

/* Keys in the list (duplicates counted once). */
size_t ps_curve_allow_count(const ps_curve_allow *a);

/* 1 when the 32-byte key is in the list. */
int ps_curve_allow_has(const ps_curve_allow *a, const uint8_t *key,
                       size_t len);

void ps_curve_allow_free(ps_curve_allow *a);

/* Overwrites key material before its memory is released. */
void ps_curve_wipe(void *p, size_t n);

#endif
