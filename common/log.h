/* Logging: one line per event on stderr, `key=value` fields after a message.
 *
 * The level and sink are process globals (set once at start-up); ps_log may
 * be called from any thread: each line is written with one fprintf. */
#ifndef PS_LOG_H
#define PS_LOG_H

typedef enum ps_log_level {
    PS_LOG_ERROR = 0,
    PS_LOG_WARN = 1,
    PS_LOG_INFO = 2,
    PS_LOG_DEBUG = 3
} ps_log_level;

/* Sets the lowest level that is printed (default PS_LOG_INFO). */
void ps_log_set_level(ps_log_level level);

/* Parses "error|warn|info|debug"; returns -1 for anything else. */
int ps_log_parse_level(const char *s);

/* Sets the program name printed on every line (borrowed, must outlive use). */
void ps_log_set_name(const char *name);

int ps_log_enabled(ps_log_level level);

/* Formats only when the level is enabled. */
#define ps_log(level, ...)                                                     \
    do {                                                                       \
        if (ps_log_enabled(level))                                             \
            ps_log_write((level), __VA_ARGS__);                                \
    } while (0)

void ps_log_write(ps_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
