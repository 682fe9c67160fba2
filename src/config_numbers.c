/* config_numbers.c: the integer literals of the configuration files as written. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_parse.h"
#include "log.h"

/*
 * libconfig 1.5 reads a decimal or hex literal without an L suffix into an
 * int, dropping the high bits (4294999376 becomes 32080), and gives no way
 * to get the text back. So this file lexes each configuration file again,
 * just enough to find its integer literals in order: it skips comments
 * (#, //, / * * /), strings and names, and takes every other run of
 * [0-9A-Za-z.+-] as a number token, an integer if it has no '.' and no
 * exponent. libconfig makes exactly one setting of every value, in file
 * order, so the k-th integer setting that came from a file (in tree order)
 * is the k-th integer literal of that file; the setting's hook points to it.
 * A file included twice repeats its literals, hence k modulo the count.
 */

#define NUMBER_TEXT 32			/* longer literals are shown cut */
#define MAX_FILE_SIZE (16 << 20)	/* larger files are not re-read */

struct number {
	long long value;
	bool fits;			/* false: beyond 64 bits */
	char text[NUMBER_TEXT];
};

struct number_file {
	char *path;
	struct number *nums;
	size_t n, cap, next;
};

struct config_numbers {
	struct number_file *files;
	size_t n;
};

static void
file_add(struct number_file *f, const char *tok, size_t len)
{
	struct number *n;
	char text[NUMBER_TEXT * 4];
	bool hex, cut;
	char *end;
	const char *digits;

	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 32;
		struct number *p = reallocarray(f->nums, cap, sizeof(*p));

		if (p == NULL)
			fatal("reallocarray");
		f->nums = p;
		f->cap = cap;
	}
	n = &f->nums[f->n++];
	snprintf(n->text, sizeof(n->text), "%.*s", (int)len, tok);
	cut = len >= sizeof(text);
	snprintf(text, sizeof(text), "%.*s", (int)len, tok);
	len = strlen(text);
	/* An L or LL suffix only says "64 bits". */
	while (len > 0 && (text[len - 1] == 'L' || text[len - 1] == 'l'))
		text[--len] = '\0';
	digits = text + (text[0] == '+' || text[0] == '-');
	hex = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
	errno = 0;
	if (hex)	/* libconfig takes hex as unsigned bits */
		n->value = (long long)strtoull(text, &end, 16);
	else
		n->value = strtoll(text, &end, 10);
	n->fits = errno == 0 && *end == '\0' && !cut && !(hex && text[0] == '-');
}

/* Length of the number token at s (a run of [0-9A-Za-z.+-]). */
static size_t
token_len(const char *s, const char *end)
{
	const char *t = s;

	while (t < end && (isalnum((unsigned char)*t) || *t == '.' ||
	    *t == '+' || *t == '-'))
		t++;
	return (size_t)(t - s);
}

static bool
token_is_integer(const char *s, size_t len)
{
	const char *d = s + (*s == '+' || *s == '-');
	bool hex = len > 2 && d[0] == '0' && (d[1] == 'x' || d[1] == 'X');

	if (memchr(s, '.', len) != NULL)
		return false;
	return hex || (memchr(s, 'e', len) == NULL &&
	    memchr(s, 'E', len) == NULL);
}

/* Where the comment or string at s ends (s itself if there is none). */
static const char *
skip_text(const char *s, const char *end)
{
	const char *t;

	if (*s == '#' || (*s == '/' && s + 1 < end && s[1] == '/')) {
		t = memchr(s, '\n', (size_t)(end - s));
		return t ? t : end;
	}
	if (*s == '/' && s + 1 < end && s[1] == '*') {
		for (t = s + 2; t + 1 < end; t++)
			if (t[0] == '*' && t[1] == '/')
				return t + 2;
		return end;
	}
	if (*s == '"') {
		for (t = s + 1; t < end && *t != '"'; t++)
			if (*t == '\\' && t + 1 < end)
				t++;
		return t < end ? t + 1 : end;
	}
	return s;
}

static void
file_lex(struct number_file *f, const char *s, const char *end)
{
	while (s < end) {
		const char *t = skip_text(s, end);
		size_t len;

		if (t != s) {
			s = t;
		} else if (isalpha((unsigned char)*s) || *s == '*' || *s == '_') {
			while (s < end && (isalnum((unsigned char)*s) ||
			    *s == '_' || *s == '-' || *s == '*'))
				s++;	/* a name, true or false */
		} else if (isdigit((unsigned char)*s) || *s == '+' ||
		    *s == '-' || *s == '.') {
			len = token_len(s, end);
			if (token_is_integer(s, len))
				file_add(f, s, len);
			s += len ? len : 1;
		} else {
			s++;
		}
	}
}

/* Reads path whole into a NUL-ended buffer; NULL if it cannot. */
static char *
file_read(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "re");
	struct stat st;
	char *buf = NULL;

	if (fp == NULL)
		return NULL;
	if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size < MAX_FILE_SIZE &&
	    (buf = malloc((size_t)st.st_size + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)st.st_size, fp);
		buf[*len] = '\0';
	}
	fclose(fp);
	return buf;
}

static struct number_file *
numbers_file(struct config_numbers *nums, const char *path)
{
	struct number_file *f, *files;
	size_t len = 0;
	char *text;

	for (size_t i = 0; i < nums->n; i++)
		if (strcmp(nums->files[i].path, path) == 0)
			return &nums->files[i];
	files = reallocarray(nums->files, nums->n + 1, sizeof(*files));
	if (files == NULL)
		fatal("reallocarray");
	nums->files = files;
	f = &files[nums->n++];
	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(path)) == NULL)
		fatal("strdup");
	if ((text = file_read(path, &len)) != NULL) {
		file_lex(f, text, text + len);
		free(text);
	}
	return f;
}

/* NOLINTBEGIN(misc-no-recursion): as deep as the tree libconfig parsed
 * from the operator's file (its parser and config_destroy recurse too). */
static void
numbers_walk(const struct parse *p, struct config_numbers *nums,
    config_setting_t *s)
{
	int type = config_setting_type(s);
	char buf[PATH_MAX];
	const char *file;
	struct number_file *f;

	if (config_setting_is_aggregate(s)) {
		for (int i = 0; i < config_setting_length(s); i++)
			numbers_walk(p, nums, config_setting_get_elem(s,
			    (unsigned)i));
		return;
	}
	if ((type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) ||
	    (file = parse_source_file(p, s, buf, sizeof(buf))) == NULL)
		return;
	f = numbers_file(nums, file);
	if (f->n > 0)
		config_setting_set_hook(s, &f->nums[f->next++ % f->n]);
}
/* NOLINTEND(misc-no-recursion) */

struct config_numbers *
config_numbers_read(const struct parse *p, const config_setting_t *root)
{
	struct config_numbers *nums = calloc(1, sizeof(*nums));

	if (nums == NULL)
		fatal("calloc");
	numbers_walk(p, nums, (config_setting_t *)root);
	return nums;
}

void
config_numbers_free(struct config_numbers *nums)
{
	if (nums == NULL)
		return;
	for (size_t i = 0; i < nums->n; i++) {
		free(nums->files[i].path);
		free(nums->files[i].nums);
	}
	free(nums->files);
	free(nums);
}

bool
config_number_get(const struct config_numbers *nums,
    const config_setting_t *s, long long *v, char *shown, size_t len)
{
	const struct number *n = config_setting_get_hook(s);

	(void)nums;	/* the hooks point into it */
	*v = config_setting_get_int64(s);
	if (n == NULL) {
		snprintf(shown, len, "%lld", *v);
		return true;
	}
	if (!n->fits) {
		snprintf(shown, len, "%s", n->text);
		return false;
	}
	*v = n->value;
	snprintf(shown, len, "%lld", *v);
	return true;
}
