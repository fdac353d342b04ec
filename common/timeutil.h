/* Monotonic time in milliseconds and microseconds. Thread-safe. */
#ifndef PS_TIMEUTIL_H
#define PS_TIMEUTIL_H

#include <stdint.h>

int64_t ps_now_ms(void);
int64_t ps_now_us(void);

#endif
