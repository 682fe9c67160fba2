/* diag.h: configuration diagnostics as records (file, line, severity, message). */
#ifndef SOCKS5D_DIAG_H
#define SOCKS5D_DIAG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct diag_record {
	char *file;			/* the file it is about */
	int line;			/* 1-based; 0 when it is about the whole file */
	enum diag_severity severity;
	char *message;			/* no file, line or severity prefix */
};

/* The diagnostics of one load, in the order they were added until
 * diag_sort. Zero-initialised (or DIAG_INIT) is empty. */
struct diag {
	struct diag_record *recs;
	size_t n, cap;
	size_t nerrors;
};

#define DIAG_INIT { NULL, 0, 0, 0 }

void diag_add(struct diag *d, enum diag_severity sev, const char *file,
    int line, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void diag_vadd(struct diag *d, enum diag_severity sev, const char *file,
    int line, const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
/* Orders the records by file (in the order each file first appears) and
 * line; records on the same line keep their order. */
void diag_sort(struct diag *d);
/* Writes "file:line: message" or "file:line: warning: message" lines
 * ("file: ..." when line is 0). */
void diag_print(const struct diag *d, FILE *out);
/* Logs each record as "config-error file:line: message" (warning level)
 * or "config-warning file:line: message" (notice level). */
void diag_log(const struct diag *d);
void diag_free(struct diag *d);

#endif
