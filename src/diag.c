/* diag.c: configuration diagnostics as records, sorted, printed or logged. */
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "log.h"

/* A record is one line wherever it goes (socks5d -t, the log), whatever
 * the file holds: a control byte of a value echoed in a message (a raw
 * newline in a string, libconfig's "\n") becomes \xHH. Frees s. */
static char *
diag_one_line(char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	size_t n = 0;
	char *out, *o;

	for (p = (const unsigned char *)s; *p; p++)
		n += *p < 0x20 || *p == 0x7f ? 4 : 1;
	if ((out = o = malloc(n + 1)) == NULL)
		fatal("diag");
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 0xf];
		} else {
			*o++ = (char)*p;
		}
	}
	*o = '\0';
	free(s);
	return out;
}

void
diag_vadd(struct diag *d, enum diag_severity sev, const char *file, int line,
    const char *fmt, va_list ap)
{
	struct diag_record *r;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct diag_record *recs = reallocarray(d->recs, cap,
		    sizeof(*recs));

		if (recs == NULL)
			fatal("reallocarray");
		d->recs = recs;
		d->cap = cap;
	}
	r = &d->recs[d->n];
	r->file = strdup(file != NULL ? file : "");
	if (r->file == NULL || vasprintf(&r->message, fmt, ap) == -1)
		fatal("diag");
	r->file = diag_one_line(r->file);
	r->message = diag_one_line(r->message);
	r->line = line > 0 ? line : 0;
	r->severity = sev;
	d->n++;
	if (sev == DIAG_ERROR)
		d->nerrors++;
}

void
diag_add(struct diag *d, enum diag_severity sev, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, sev, file, line, fmt, ap);
	va_end(ap);
}

/* A record with the rank of its file and its place before sorting. */
struct sort_key {
	size_t file, seq;
	struct diag_record rec;
};

static int
key_cmp(const void *a, const void *b)
{
	const struct sort_key *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->rec.line != y->rec.line)
		return x->rec.line < y->rec.line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void
diag_sort(struct diag *d)
{
	struct sort_key *keys;

	if (d->n < 2)
		return;
	keys = calloc(d->n, sizeof(*keys));
	if (keys == NULL)
		fatal("calloc");
	for (size_t i = 0; i < d->n; i++) {
		size_t f = 0;

		while (strcmp(d->recs[f].file, d->recs[i].file) != 0)
			f++;	/* the first record naming this file */
		keys[i].file = f;
		keys[i].seq = i;
		keys[i].rec = d->recs[i];
	}
	qsort(keys, d->n, sizeof(*keys), key_cmp);
	for (size_t i = 0; i < d->n; i++)
		d->recs[i] = keys[i].rec;
	free(keys);
}

void
diag_print(const struct diag *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct diag_record *r = &d->recs[i];
		const char *w = r->severity == DIAG_WARNING ? "warning: " : "";

		if (r->line > 0)
			fprintf(out, "%s:%d: %s%s\n", r->file, r->line, w,
			    r->message);
		else
			fprintf(out, "%s: %s%s\n", r->file, w, r->message);
	}
}

void
diag_log(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct diag_record *r = &d->recs[i];

		if (r->severity == DIAG_WARNING && r->line > 0)
			log_notice("config-warning %s:%d: %s", r->file, r->line,
			    r->message);
		else if (r->severity == DIAG_WARNING)
			log_notice("config-warning %s: %s", r->file, r->message);
		else if (r->line > 0)
			log_warnx("config-error %s:%d: %s", r->file, r->line,
			    r->message);
		else
			log_warnx("config-error %s: %s", r->file, r->message);
	}
}

void
diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->recs[i].file);
		free(d->recs[i].message);
	}
	free(d->recs);
	d->recs = NULL;
	d->n = d->cap = d->nerrors = 0;
}
