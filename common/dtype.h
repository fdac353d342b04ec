/* Value encodings on the wire: float32, and float16 / bfloat16 to halve the
 * bytes moved. Tables always hold float32; conversion happens at the edge.
 * Values are little-endian (checked at build time: we only support LE hosts).
 */
#ifndef PS_DTYPE_H
#define PS_DTYPE_H

#include <stddef.h>
#include <stdint.h>

enum { PS_DTYPE_F32 = 0, PS_DTYPE_F16 = 1, PS_DTYPE_BF16 = 2 };

/* Bytes per value, or 0 for an unknown dtype. */
size_t ps_dtype_size(int dtype);

/* "f32" / "f16" / "bf16"; "?" when unknown. */
const char *ps_dtype_name(int dtype);

/* Parses a name above; returns -1 when unknown. */
int ps_dtype_parse(const char *s);

/* Converts n values; src and dst must not overlap. F32 is a memcpy. */
void ps_dtype_to_f32(int dtype, const void *src, float *dst, size_t n);
void ps_dtype_from_f32(int dtype, const float *src, void *dst, size_t n);

/* IEEE conversions, round to nearest even (exposed for tests). */
uint16_t ps_f32_to_f16(float f);
float ps_f16_to_f32(uint16_t h);
uint16_t ps_f32_to_bf16(float f);
float ps_bf16_to_f32(uint16_t h);

#endif
