/* log.c: logging to syslog, and to stderr in the foreground (after OpenBSD's log.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_to_stderr;
static int log_level = LOG_INFO;
static const char *log_role;

/* Under systemd, stderr may already be the journal, which gets the syslog
 * copy too: do not write every line twice. */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;

	/* A wrong number only fails the comparison below. */
	/* NOLINTNEXTLINE(cert-err34-c) */
	if (js == NULL || sscanf(js, "%lu:%lu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return st.st_dev == dev && st.st_ino == ino;
}

void
log_init(const char *ident, int facility, int level, int to_stderr)
{
	log_to_stderr = to_stderr && !stderr_is_journal();
	log_level = level;
	closelog();
	openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

void
log_set_facility(int facility)
{
	closelog();
	openlog("socks5d", LOG_PID | LOG_NDELAY, facility);
}

void
log_set_role(const char *role)
{
	log_role = role;
}

static void
vlog(int pri, const char *fmt, va_list ap, int with_errno)
{
	char msg[4096];		/* a session line with a long user and dst */
	int saved = errno;
	int n;

	if (pri > log_level)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno && n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s",
		    strerror(saved));
	syslog(pri, "%s", msg);
	if (log_to_stderr) {
		/* One write per line, so that lines from several processes
		 * sharing stderr do not interleave. */
		char line[sizeof(msg) + 64];
		int len = snprintf(line, sizeof(line), "socks5d[%ld]%s%s: %s\n",
		    (long)getpid(), log_role ? " " : "", log_role ? log_role : "",
		    msg);
		if (len > (int)sizeof(line) - 1)
			len = (int)sizeof(line) - 1;
		if (len > 0 && write(STDERR_FILENO, line, (size_t)len) == -1)
			(void)0;	/* nowhere left to report it */
	}
	errno = saved;
}

#define LOG_FN(name, pri, with_errno)			\
	void name(const char *fmt, ...)			\
	{						\
		va_list ap;				\
		va_start(ap, fmt);			\
		vlog(pri, fmt, ap, with_errno);		\
		va_end(ap);				\
	}

LOG_FN(log_warn, LOG_WARNING, 1)
LOG_FN(log_warnx, LOG_WARNING, 0)
LOG_FN(log_notice, LOG_NOTICE, 0)
LOG_FN(log_info, LOG_INFO, 0)
LOG_FN(log_debug, LOG_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 0);
	va_end(ap);
	exit(1);
}

char *
log_escape(char *dst, size_t dstlen, const void *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t o = 0;

	if (dstlen == 0)
		return dst;
	for (size_t i = 0; i < srclen; i++) {
		unsigned char c = s[i];
		if (c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=') {
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		}
	}
	dst[o] = '\0';
	return dst;
}

struct name_code {
	const char *name;
	int code;
};

static int
lookup(const struct name_code *t, const char *name)
{
	for (; t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t->code;
	return -1;
}

int
log_facility_from_name(const char *name)
{
	static const struct name_code t[] = {
		{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
		{ "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
		{ NULL, 0 }
	};
	return lookup(t, name);
}

int
log_level_from_name(const char *name)
{
	static const struct name_code t[] = {
		{ "debug", LOG_DEBUG }, { "info", LOG_INFO },
		{ "notice", LOG_NOTICE }, { "warning", LOG_WARNING },
		{ "err", LOG_ERR }, { "error", LOG_ERR },
		{ NULL, 0 }
	};
	return lookup(t, name);
}
