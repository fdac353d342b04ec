/* float16 / bfloat16 conversions; see dtype.h. */
#include "common/dtype.h"

#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "sparkps sends raw little-endian arrays");

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

size_t ps_dtype_size(int dtype)
{
    switch (dtype) {
    case PS_DTYPE_F32:
        return 4;
    case PS_DTYPE_F16:
    case PS_DTYPE_BF16:
        return 2;
    default:
        return 0;
    }
}

const char *ps_dtype_name(int dtype)
{
    static const char *names[] = {"f32", "f16", "bf16"};
    return dtype >= 0 && dtype <= 2 ? names[dtype] : "?";
}

int ps_dtype_parse(const char *s)
{
    for (int i = 0; i <= 2; i++)
        if (strcmp(s, ps_dtype_name(i)) == 0)
            return i;
    return -1;
}

uint16_t ps_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a quiet NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float ps_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t ps_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u);
    if (abs >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) {   /* below 2^-14: subnormal half or zero */
        if (abs < 0x33000000u) /* below half the smallest subnormal */
            return (uint16_t)sign;
        uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(abs >> 23); /* half units are 2^-24 */
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u)))
            half++;
        return (uint16_t)(sign | half);
    }
    /* Normal: rebias exponent 127 -> 15, round the 13 dropped bits. */
    uint32_t h = ((abs - 0x38000000u) >> 13);
    uint32_t rem = abs & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

float ps_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* Inf / NaN */
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0)
            return bits_f32(sign);
        /* Subnormal: value = mant * 2^-24. */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* Wire buffers may be oddly aligned (libzmq slices small messages out of its
 * receive buffer), so 16-bit values are loaded and stored with memcpy. */
static uint16_t load16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

void ps_dtype_to_f32(int dtype, const void *src, float *dst, size_t n)
{
    const unsigned char *h = src;
    switch (dtype) {
    case PS_DTYPE_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = ps_f16_to_f32(load16(h + 2 * i));
        break;
    case PS_DTYPE_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = ps_bf16_to_f32(load16(h + 2 * i));
        break;
    default:
        memcpy(dst, src, n * sizeof(float));
    }
}

void ps_dtype_from_f32(int dtype, const float *src, void *dst, size_t n)
{
    unsigned char *h = dst;
    uint16_t v;
    switch (dtype) {
    case PS_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            v = ps_f32_to_f16(src[i]);
            memcpy(h + 2 * i, &v, 2);
        }
        break;
    case PS_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            v = ps_f32_to_bf16(src[i]);
            memcpy(h + 2 * i, &v, 2);
        }
        break;
    default:
        memcpy(dst, src, n * sizeof(float));
    }
}
