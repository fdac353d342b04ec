/* Monotonic time in milliseconds, microseconds and nanoseconds (for
 * intervals), and wall-clock time (for timestamps people read). Thread-safe.
 */
#ifndef PS_TIMEUTIL_H
#define PS_TIMEUTIL_H

#include <stdint.h>

int64_t ps_now_ms(void);
int64_t ps_now_us(void);
int64_t ps_now_ns(void);

/* Unix time in milliseconds (CLOCK_REALTIME: may jump). */
int64_t ps_wall_ms(void);

#endif
