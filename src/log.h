/* log.h: logging to syslog, and to stderr in the foreground (after OpenBSD's log.c). */
#ifndef SOCKS5D_LOG_H
#define SOCKS5D_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdnoreturn.h>
#include <syslog.h>

/* to_stderr: also print each line on stderr (foreground mode). */
void log_init(const char *ident, int facility, int level, int to_stderr);
void log_set_level(int level);
void log_set_facility(int facility);
/* A short tag put before each stderr line, e.g. "worker"; NULL for none. */
void log_set_role(const char *role);
int log_get_level(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Escapes untrusted bytes for a key=value log line: printable ASCII other
 * than space, '"', '\\' and '=' is kept, anything else becomes \xHH. The
 * result is always NUL-terminated and truncated to fit; returns dst. */
char *log_escape(char *dst, size_t dstlen, const void *src, size_t srclen);

/* Syslog facility and level from their names ("daemon", "local0", "info"). */
int log_facility_from_name(const char *name);
int log_level_from_name(const char *name);

#endif
