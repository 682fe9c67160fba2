/* config_include.c: checks the file and its @include tree before libconfig reads it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_parse.h"
#include "log.h"

/* A file by identity, with the name it was reached by. */
struct include_file {
	dev_t dev;
	ino_t ino;
	char path[PATH_MAX];
};

/*
 * The walk over the include tree. stack holds the files on the current
 * include path (main file first), so a file that includes one of them is a
 * cycle; seen holds every file already read, so each is read once however
 * often it is included. stop ends the walk after a cycle or a too-deep
 * include: one error, then no further reading.
 */
struct include_walk {
	struct parse *p;
	const char *dir;
	struct include_file stack[CONFIG_MAX_INCLUDE_DEPTH + 1];
	int depth;
	struct include_file *seen;
	size_t nseen, capseen;
	bool stop;
};

/* The path an @include names: relative ones are taken from dir, as
 * libconfig takes them from its include directory. */
static void
include_path(const char *dir, const char *name, char *out, size_t len)
{
	if (name[0] == '/')
		snprintf(out, len, "%s", name);
	else
		snprintf(out, len, "%s/%s", dir, name);
}

/* The name inside `@include "name"` on this line, or NULL. */
static char *
include_name(char *line)
{
	char *p = line + strspn(line, " \t"), *end;

	if (strncmp(p, "@include", 8) != 0 || (p = strchr(p + 8, '"')) == NULL ||
	    (end = strchr(p + 1, '"')) == NULL)
		return NULL;
	*end = '\0';
	return p + 1;
}

static bool
same_file(const struct include_file *f, const struct stat *st)
{
	return f->dev == st->st_dev && f->ino == st->st_ino;
}

static bool
walk_seen(const struct include_walk *w, const struct stat *st)
{
	for (size_t i = 0; i < w->nseen; i++)
		if (same_file(&w->seen[i], st))
			return true;
	return false;
}

static void
walk_remember(struct include_walk *w, const struct stat *st, const char *path)
{
	if (w->nseen == w->capseen) {
		size_t cap = w->capseen ? w->capseen * 2 : 8;
		struct include_file *f = reallocarray(w->seen, cap, sizeof(*f));

		if (f == NULL)
			fatal("reallocarray");
		w->seen = f;
		w->capseen = cap;
	}
	w->seen[w->nseen].dev = st->st_dev;
	w->seen[w->nseen].ino = st->st_ino;
	snprintf(w->seen[w->nseen].path, PATH_MAX, "%s", path);
	w->nseen++;
}

/* One error for the include of path at from:line that closes a cycle
 * (the stack from entry first) or goes too deep (first < 0). */
static void
walk_fail(struct include_walk *w, int first, const char *path,
    const char *from, int line)
{
	char chain[4096] = "";
	size_t len = 0;
	int i = first < 0 ? 0 : first;

	for (; i < w->depth && len < sizeof(chain); i++)
		len += (size_t)snprintf(chain + len, sizeof(chain) - len, "%s -> ",
		    w->stack[i].path);
	if (len < sizeof(chain))
		snprintf(chain + len, sizeof(chain) - len, "%s", path);
	if (first >= 0)
		diag_add(w->p->d, DIAG_ERROR, from, line, "include cycle: %s",
		    chain);
	else
		diag_add(w->p->d, DIAG_ERROR, from, line,
		    "includes nested deeper than %d: %s",
		    CONFIG_MAX_INCLUDE_DEPTH, chain);
	w->stop = true;
}

static void walk_file(struct include_walk *w, const char *path,
    const char *from, int line);

/* NOLINTBEGIN(misc-no-recursion): walk_file refuses to go deeper than
 * CONFIG_MAX_INCLUDE_DEPTH. */
/* Follows each @include of the open file f (path, on top of the stack). */
static void
walk_lines(struct include_walk *w, FILE *f, const char *path)
{
	char buf[4096], inc[PATH_MAX];
	bool at_start = true;
	int n = 0;

	while (!w->stop && fgets(buf, sizeof(buf), f) != NULL) {
		bool whole = at_start;
		char *name;

		at_start = strchr(buf, '\n') != NULL;
		n += whole;	/* this piece starts line n */
		if (!whole || (name = include_name(buf)) == NULL)
			continue;
		include_path(w->dir, name, inc, sizeof(inc));
		/* inc, named in path at line n. */
		/* NOLINTNEXTLINE(readability-suspicious-call-argument) */
		walk_file(w, inc, path, n);
	}
}

/* --allow-unsafe-config: files and directories others can write are
 * read anyway. Set once from the command line; kept for every reload. */
static bool allow_unsafe;

void
config_allow_unsafe_files(bool allow)
{
	allow_unsafe = allow;
}

/* Why what st describes could be changed by someone other than root and
 * us (NULL if it cannot), after sshd's StrictModes: its owner is neither,
 * or its group or others may write it; a directory with the sticky bit
 * (/tmp) lets others write only their own entries, so it is safe. */
static const char *
unsafe_owner_or_mode(const struct stat *st, char *buf, size_t len)
{
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		snprintf(buf, len, "owned by uid %u (neither root nor us)",
		    (unsigned)st->st_uid);
		return buf;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) &&
	    !(S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX))) {
		snprintf(buf, len, "writable by %s (mode %04o)",
		    st->st_mode & S_IWOTH ? "others" : "its group",
		    (unsigned)(st->st_mode & 07777));
		return buf;
	}
	return NULL;
}

/* Why the file st describes, reached by path, is unsafe to read as the
 * configuration: the file itself, or any directory above it (resolved, up
 * to /). NULL if it is safe or unsafe files are allowed. */
static const char *
unsafe_file(const char *path, const struct stat *st, char *buf, size_t len)
{
	char real[PATH_MAX], why[96];
	struct stat dst;
	char *slash;

	if (allow_unsafe)
		return NULL;
	if (unsafe_owner_or_mode(st, why, sizeof(why)) != NULL) {
		snprintf(buf, len, "unsafe file: %s (--allow-unsafe-config "
		    "reads it anyway)", why);
		return buf;
	}
	if (realpath(path, real) == NULL)
		return strerror(errno);
	while ((slash = strrchr(real, '/')) != NULL) {
		slash[slash == real] = '\0';	/* "/a/b" -> "/a", "/a" -> "/" */
		if (stat(real, &dst) == -1)
			return strerror(errno);
		if (unsafe_owner_or_mode(&dst, why, sizeof(why)) != NULL) {
			snprintf(buf, len, "unsafe directory %s: %s "
			    "(--allow-unsafe-config reads it anyway)", real,
			    why);
			return buf;
		}
		if (slash == real)
			break;
	}
	return NULL;
}

/* Why path cannot be read (NULL if it can); fills st. buf holds the
 * text of an unsafe file's reason. */
static const char *
file_problem(const char *path, struct stat *st, char *buf, size_t len)
{
	if (stat(path, st) == -1)
		return strerror(errno);
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	return unsafe_file(path, st, buf, len);
}

/* from/line say where path was named (NULL for the main file). */
static void
walk_file(struct include_walk *w, const char *path, const char *from, int line)
{
	struct stat st;
	char buf[PATH_MAX + 160];
	const char *why = file_problem(path, &st, buf, sizeof(buf));
	FILE *f = NULL;

	for (int i = 0; why == NULL && i < w->depth; i++)
		if (same_file(&w->stack[i], &st)) {
			walk_fail(w, i, path, from, line);
			return;
		}
	if (why == NULL && w->depth > CONFIG_MAX_INCLUDE_DEPTH) {
		walk_fail(w, -1, path, from, line);
		return;
	}
	if (why == NULL && walk_seen(w, &st))
		return;		/* checked already */
	if (why == NULL && (f = fopen(path, "re")) == NULL)
		why = strerror(errno);
	if (why != NULL) {
		if (from != NULL)
			diag_add(w->p->d, DIAG_ERROR, from, line,
			    "@include \"%s\": %s", path, why);
		else
			diag_add(w->p->d, DIAG_ERROR, path, 0, "cannot read: %s",
			    why);
		return;
	}
	walk_remember(w, &st, path);
	w->stack[w->depth].dev = st.st_dev;
	w->stack[w->depth].ino = st.st_ino;
	snprintf(w->stack[w->depth].path, PATH_MAX, "%s", path);
	w->depth++;
	walk_lines(w, f, path);
	w->depth--;
	fclose(f);
}
/* NOLINTEND(misc-no-recursion) */

bool
config_include_check(struct parse *p)
{
	struct include_walk *w = calloc(1, sizeof(*w));
	size_t before = p->d->nerrors;

	if (w == NULL)
		fatal("calloc");
	w->p = p;
	w->dir = p->dir;
	walk_file(w, p->path, NULL, 0);
	free(w->seen);
	free(w);
	return p->d->nerrors == before;
}
