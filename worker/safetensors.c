/* safetensors writer and reader; see safetensors.h.
 *
 * The header JSON is written with ps_strbuf (deterministic, no float
 * formatting involved) and read with cJSON. A read file lives in one
 * buffer; tensors point into it. No state is shared between objects. */
#include "safetensors.h"

#include "common/errmsg.h"
#include "common/sparkps_err.h"
#include "common/strbuf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TENSORS 65536
#define MAX_FILE_BYTES ((uint64_t)1 << 40)

typedef struct meta_kv {
    char *key, *value;
} meta_kv;

struct ps_st_writer {
    ps_st_tensor *t;
    size_t n, cap;
    meta_kv *meta;
    size_t nmeta;
};

struct ps_st_file {
    unsigned char *buf; /* the whole file */
    size_t len;
    ps_st_tensor *t;
    size_t n;
    char **names; /* owned copies, t[i].name points here */
    meta_kv *meta;
    size_t nmeta;
};

const char *ps_st_dtype_name(ps_st_dtype d)
{
    switch (d) {
    case PS_ST_F32:
        return "F32";
    case PS_ST_U64:
        return "U64";
    case PS_ST_I64:
        return "I64";
    }
    return "?";
}

size_t ps_st_dtype_size(ps_st_dtype d)
{
    return d == PS_ST_F32 ? 4 : (d == PS_ST_U64 || d == PS_ST_I64) ? 8 : 0;
}

static int dtype_parse(const char *s, ps_st_dtype *d)
{
    for (int i = PS_ST_F32; i <= PS_ST_I64; i++) {
        if (strcmp(s, ps_st_dtype_name((ps_st_dtype)i)) == 0) {
            *d = (ps_st_dtype)i;
            return 0;
        }
    }
    return -1;
}

/* Product of a shape in elements; -1 on overflow. */
static int shape_elems(const uint64_t *shape, size_t ndim, uint64_t *elems)
{
    uint64_t p = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (shape[i] != 0 && p > UINT64_MAX / shape[i])
            return -1;
        p *= shape[i];
    }
    *elems = p;
    return 0;
}

/* ---- writer ---- */

int ps_st_writer_new(ps_st_writer **out)
{
    ps_st_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return PS_ENOMEM;
    *out = w;
    return PS_OK;
}

void ps_st_writer_free(ps_st_writer *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++)
        free((char *)w->t[i].name);
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->t);
    free(w->meta);
    free(w);
}

int ps_st_add(ps_st_writer *w, const char *name, ps_st_dtype dtype,
              const uint64_t *shape, size_t ndim, const void *data)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > PS_ST_MAX_NAME ||
        strcmp(name, "__metadata__") == 0 || ndim > PS_ST_MAX_DIMS ||
        ps_st_dtype_size(dtype) == 0 || w->n >= MAX_TENSORS)
        return PS_EINVAL;
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return PS_EINVAL;
    ps_st_tensor t;
    memset(&t, 0, sizeof(t));
    t.dtype = dtype;
    t.ndim = ndim;
    for (size_t i = 0; i < ndim; i++)
        t.shape[i] = shape[i];
    if (shape_elems(t.shape, ndim, &t.elems) != 0 ||
        t.elems > UINT64_MAX / ps_st_dtype_size(dtype))
        return PS_EINVAL;
    t.nbytes = t.elems * ps_st_dtype_size(dtype);
    if (t.nbytes > 0 && data == NULL)
        return PS_EINVAL;
    t.data = data;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        ps_st_tensor *nt = realloc(w->t, cap * sizeof(*nt));
        if (nt == NULL)
            return PS_ENOMEM;
        w->t = nt;
        w->cap = cap;
    }
    t.name = strdup(name);
    if (t.name == NULL)
        return PS_ENOMEM;
    w->t[w->n++] = t;
    return PS_OK;
}

int ps_st_set_meta(ps_st_writer *w, const char *key, const char *value)
{
    if (key == NULL || value == NULL || key[0] == '\0')
        return PS_EINVAL;
    char *v = strdup(value);
    if (v == NULL)
        return PS_ENOMEM;
    for (size_t i = 0; i < w->nmeta; i++) {
        if (strcmp(w->meta[i].key, key) == 0) {
            free(w->meta[i].value);
            w->meta[i].value = v;
            return PS_OK;
        }
    }
    meta_kv *m = realloc(w->meta, (w->nmeta + 1) * sizeof(*m));
    char *k = strdup(key);
    if (m != NULL)
        w->meta = m;
    if (m == NULL || k == NULL) {
        free(k);
        free(v);
        return PS_ENOMEM;
    }
    w->meta[w->nmeta].key = k;
    w->meta[w->nmeta].value = v;
    w->nmeta++;
    return PS_OK;
}

/* The header JSON, padded with spaces to a multiple of 8 bytes. */
static char *build_header(const ps_st_writer *w, size_t *len)
{
    ps_strbuf b;
    ps_strbuf_init(&b, PS_ST_MAX_HEADER);
    ps_strbuf_add(&b, "{", 1);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const ps_st_tensor *t = &w->t[i];
        if (i)
            ps_strbuf_add(&b, ",", 1);
        ps_strbuf_json_str(&b, t->name);
        ps_strbuf_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[",
                         ps_st_dtype_name(t->dtype));
        for (size_t d = 0; d < t->ndim; d++)
            ps_strbuf_printf(&b, "%s%llu", d ? "," : "",
                             (unsigned long long)t->shape[d]);
        ps_strbuf_printf(&b, "],\"data_offsets\":[%llu,%llu]}",
                         (unsigned long long)off,
                         (unsigned long long)(off + t->nbytes));
        off += t->nbytes;
    }
    if (w->nmeta > 0) {
        ps_strbuf_add(&b, w->n ? ",\"__metadata__\":{" : "\"__metadata__\":{",
                      w->n ? 17 : 16);
        for (size_t i = 0; i < w->nmeta; i++) {
            if (i)
                ps_strbuf_add(&b, ",", 1);
            ps_strbuf_json_str(&b, w->meta[i].key);
            ps_strbuf_add(&b, ":", 1);
            ps_strbuf_json_str(&b, w->meta[i].value);
        }
        ps_strbuf_add(&b, "}", 1);
    }
    ps_strbuf_add(&b, "}", 1);
    while (!ps_strbuf_failed(&b) && b.len % 8 != 0)
        ps_strbuf_add(&b, " ", 1);
    *len = b.len;
    return ps_strbuf_take(&b);
}

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync of the directory holding path, so the rename is durable. */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int ps_st_write(ps_st_writer *w, const char *path, char *err, size_t errlen)
{
    size_t hlen;
    char *hdr = build_header(w, &hlen);
    if (hdr == NULL)
        return ps_errf(err, errlen, PS_ENOMEM, "%s: header too large", path);
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    if (tmp == NULL) {
        free(hdr);
        return ps_errf(err, errlen, PS_ENOMEM, "out of memory");
    }
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    int rc = PS_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = ps_errf(err, errlen, PS_EIO, "%s: cannot create: %s", tmp,
                     strerror(errno));
        goto out;
    }
    unsigned char n8[8];
    for (int i = 0; i < 8; i++)
        n8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = write_all(fd, n8, 8) || write_all(fd, hdr, hlen);
    for (size_t i = 0; !bad && i < w->n; i++)
        bad = w->t[i].nbytes > 0 &&
              write_all(fd, w->t[i].data, (size_t)w->t[i].nbytes);
    if (bad || fsync(fd) != 0) {
        rc = ps_errf(err, errlen, PS_EIO, "%s: write failed: %s", tmp,
                     strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        rc = ps_errf(err, errlen, PS_EIO, "%s: cannot rename into place: %s",
                     path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    sync_dir(path);
out:
    free(tmp);
    free(hdr);
    return rc;
}

/* ---- reader ---- */

void ps_st_close(ps_st_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->names[i]);
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->names);
    free(f->meta);
    free(f->t);
    free(f->buf);
    free(f);
}

/* A JSON number that is a non-negative integer below 2^53 (exact in a
 * double, which is how cJSON holds numbers). */
static int json_u64(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j))
        return -1;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d))
        return -1;
    *v = (uint64_t)d;
    return 0;
}

static int parse_meta(ps_st_file *f, const cJSON *m, const char *path,
                      char *err, size_t errlen)
{
    if (!cJSON_IsObject(m))
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: __metadata__ is not an object", path);
    size_t n = (size_t)cJSON_GetArraySize(m);
    f->meta = calloc(n + 1, sizeof(*f->meta));
    if (f->meta == NULL)
        return ps_errf(err, errlen, PS_ENOMEM, "out of memory");
    for (const cJSON *e = m->child; e != NULL; e = e->next) {
        if (!cJSON_IsString(e) || e->string == NULL)
            return ps_errf(err, errlen, PS_EINVAL,
                           "%s: metadata '%s' is not a string", path,
                           e->string ? e->string : "?");
        meta_kv *kv = &f->meta[f->nmeta];
        kv->key = strdup(e->string);
        kv->value = strdup(e->valuestring);
        if (kv->key == NULL || kv->value == NULL) {
            free(kv->key);
            free(kv->value);
            return ps_errf(err, errlen, PS_ENOMEM, "out of memory");
        }
        f->nmeta++;
    }
    return PS_OK;
}

/* One tensor entry: dtype, shape, offsets, all checked against the data
 * section of dlen bytes. */
static int parse_tensor(ps_st_file *f, const cJSON *e,
                        const unsigned char *data, uint64_t dlen,
                        const char *path, char *err, size_t errlen)
{
    const char *name = e->string;
    if (name == NULL || name[0] == '\0' || strlen(name) > PS_ST_MAX_NAME)
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: a tensor name is empty or longer than %u bytes",
                       path, PS_ST_MAX_NAME);
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return ps_errf(err, errlen, PS_EINVAL,
                           "%s: tensor '%s' appears twice", path, name);
    if (!cJSON_IsObject(e))
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: tensor '%s' is not an object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of))
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: tensor '%s' needs dtype (string), shape and "
                       "data_offsets (arrays)",
                       path, name);
    ps_st_tensor t;
    memset(&t, 0, sizeof(t));
    if (dtype_parse(dt->valuestring, &t.dtype) != 0)
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: tensor '%s' has unsupported dtype '%s' (F32, U64, "
                       "I64)",
                       path, name, dt->valuestring);
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > PS_ST_MAX_DIMS)
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: tensor '%s' has %d dims (at most %d)", path, name,
                       ndim, PS_ST_MAX_DIMS);
    t.ndim = (size_t)ndim;
    size_t d = 0;
    for (const cJSON *x = sh->child; x != NULL; x = x->next, d++)
        if (json_u64(x, &t.shape[d]) != 0)
            return ps_errf(err, errlen, PS_EINVAL,
                           "%s: tensor '%s': shape[%zu] is not a non-negative "
                           "integer",
                           path, name, d);
    uint64_t begin, end;
    if (cJSON_GetArraySize(of) != 2 || json_u64(of->child, &begin) != 0 ||
        json_u64(of->child->next, &end) != 0 || begin > end)
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: tensor '%s': data_offsets must be [begin, end] "
                       "with begin <= end",
                       path, name);
    if (end > dlen)
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: tensor '%s': data_offsets [%llu, %llu] run past "
                       "the %llu bytes of data",
                       path, name, (unsigned long long)begin,
                       (unsigned long long)end, (unsigned long long)dlen);
    size_t es = ps_st_dtype_size(t.dtype);
    if (shape_elems(t.shape, t.ndim, &t.elems) != 0 ||
        t.elems > UINT64_MAX / es || t.elems * es != end - begin)
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: tensor '%s': %llu bytes at data_offsets, but "
                       "dtype %s and its shape need %llu",
                       path, name, (unsigned long long)(end - begin),
                       ps_st_dtype_name(t.dtype),
                       (unsigned long long)(t.elems * es));
    t.nbytes = end - begin;
    t.data = data + begin;
    f->names[f->n] = strdup(name);
    if (f->names[f->n] == NULL)
        return ps_errf(err, errlen, PS_ENOMEM, "out of memory");
    t.name = f->names[f->n];
    f->t[f->n++] = t;
    return PS_OK;
}

static int by_offset(const void *a, const void *b)
{
    const ps_st_tensor *x = a, *y = b;
    const unsigned char *p = x->data, *q = y->data;
    return p < q ? -1 : p > q;
}

static int parse_header(ps_st_file *f, const char *path, char *err,
                        size_t errlen)
{
    if (f->len < 8)
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: %zu bytes: too short for a safetensors file", path,
                       f->len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)f->buf[i] << (8 * i);
    if (hlen > f->len - 8 || hlen > PS_ST_MAX_HEADER || hlen < 2)
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: header length %llu does not fit the file of %zu "
                       "bytes (or the %u-byte limit)",
                       path, (unsigned long long)hlen, f->len,
                       PS_ST_MAX_HEADER);
    const char *json = (const char *)f->buf + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
    /* Only the padding may follow the object. */
    while (root != NULL && end < json + hlen &&
           (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r'))
        end++;
    if (root != NULL && end != json + hlen) {
        cJSON_Delete(root);
        return ps_errf(err, errlen, PS_EINVAL,
                       "%s: unexpected bytes after the header JSON (byte %ld)",
                       path, (long)(end - json) + 8);
    }
    if (root == NULL)
        return ps_errf(
            err, errlen, PS_EINVAL,
            "%s: header is not valid JSON (near byte %ld)", path,
            cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - json) + 8 : -1L);
    int rc = PS_OK;
    if (!cJSON_IsObject(root)) {
        rc = ps_errf(err, errlen, PS_EINVAL, "%s: header is not a JSON object",
                     path);
        goto out;
    }
    size_t n = (size_t)cJSON_GetArraySize(root);
    if (n > MAX_TENSORS) {
        rc = ps_errf(err, errlen, PS_EINVAL, "%s: more than %d tensors", path,
                     MAX_TENSORS);
        goto out;
    }
    f->t = calloc(n + 1, sizeof(*f->t));
    f->names = calloc(n + 1, sizeof(*f->names));
    if (f->t == NULL || f->names == NULL) {
        rc = ps_errf(err, errlen, PS_ENOMEM, "out of memory");
        goto out;
    }
    const unsigned char *data = f->buf + 8 + hlen;
    uint64_t dlen = f->len - 8 - hlen;
    int seen_meta = 0;
    for (const cJSON *e = root->child; rc == PS_OK && e != NULL; e = e->next) {
        if (e->string != NULL && strcmp(e->string, "__metadata__") == 0) {
            rc = seen_meta ? ps_errf(err, errlen, PS_EINVAL,
                                     "%s: __metadata__ appears twice", path)
                           : parse_meta(f, e, path, err, errlen);
            seen_meta = 1;
        } else {
            rc = parse_tensor(f, e, data, dlen, path, err, errlen);
        }
    }
    if (rc != PS_OK)
        goto out;
    /* Sorted by offset, each tensor must end before the next begins. */
    qsort(f->t, f->n, sizeof(*f->t), by_offset);
    for (size_t i = 1; i < f->n; i++) {
        const unsigned char *prev_end =
            (const unsigned char *)f->t[i - 1].data + f->t[i - 1].nbytes;
        if ((const unsigned char *)f->t[i].data < prev_end &&
            f->t[i].nbytes > 0 && f->t[i - 1].nbytes > 0) {
            rc = ps_errf(err, errlen, PS_EINVAL,
                         "%s: tensors '%s' and '%s' overlap in the data", path,
                         f->t[i - 1].name, f->t[i].name);
            goto out;
        }
    }
out:
    cJSON_Delete(root);
    return rc;
}

int ps_st_parse(ps_st_file **out, const void *buf, size_t len, const char *path,
                char *err, size_t errlen)
{
    ps_st_file *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return ps_errf(err, errlen, PS_ENOMEM, "out of memory");
    f->buf = malloc(len ? len : 1);
    if (f->buf == NULL) {
        ps_st_close(f);
        return ps_errf(err, errlen, PS_ENOMEM,
                       "%s: out of memory for %zu bytes", path, len);
    }
    if (len)
        memcpy(f->buf, buf, len);
    f->len = len;
    int rc = parse_header(f, path, err, errlen);
    if (rc != PS_OK) {
        ps_st_close(f);
        return rc;
    }
    *out = f;
    return PS_OK;
}

int ps_st_open(ps_st_file **out, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return ps_errf(err, errlen, PS_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode) ||
        (uint64_t)sb.st_size > MAX_FILE_BYTES) {
        fclose(fp);
        return ps_errf(err, errlen, PS_EIO,
                       "%s: not a regular file of a "
                       "readable size",
                       path);
    }
    size_t len = (size_t)sb.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        fclose(fp);
        return ps_errf(err, errlen, PS_ENOMEM,
                       "%s: out of memory for %zu bytes", path, len);
    }
    size_t got = len ? fread(buf, 1, len, fp) : 0;
    int rd_err = ferror(fp);
    fclose(fp);
    if (got != len || rd_err) {
        free(buf);
        return ps_errf(err, errlen, PS_EIO, "%s: read failed", path);
    }
    ps_st_file *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        free(buf);
        return ps_errf(err, errlen, PS_ENOMEM, "out of memory");
    }
    f->buf = buf; /* taken over: no second copy of a large file */
    f->len = len;
    int rc = parse_header(f, path, err, errlen);
    if (rc != PS_OK) {
        ps_st_close(f);
        return rc;
    }
    *out = f;
    return PS_OK;
}

size_t ps_st_count(const ps_st_file *f)
{
    return f->n;
}

const ps_st_tensor *ps_st_at(const ps_st_file *f, size_t i)
{
    return i < f->n ? &f->t[i] : NULL;
}

const ps_st_tensor *ps_st_find(const ps_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    return NULL;
}

const char *ps_st_meta(const ps_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}
