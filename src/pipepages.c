/* pipepages.c: the pipe pages a configuration may hold against
 * fs.pipe-user-pages-soft. Every worker and hub runs as one user, whose
 * pipes share that limit; past it the kernel gives new pipes 2 pages and
 * refuses F_SETPIPE_SZ, and those sessions are relayed by copy (relay.c).
 * Saying so at start is better than finding it under load. */
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"
#include "pipepages.h"

#define PAGE 4096L
#define WORKER_PIPES 2		/* session.c: a worker's relay pipes */
#define WAKE_PIPE_PAGES 1	/* worker.c shrinks its wake-up pipe */
#define HUB_PIPES 64		/* hub_relay.c: at most, while moving bytes */
#define SOFT_PATH "/proc/sys/fs/pipe-user-pages-soft"

/* What the kernel gives for size bytes: a power of two of pages. */
static long
pipe_pages(long size)
{
	long pages = (size + PAGE - 1) / PAGE, p = 1;

	while (p < pages)
		p *= 2;
	return p;
}

static long
read_soft(void)
{
	FILE *f = fopen(SOFT_PATH, "re");
	long v = -1;

	if (f == NULL)
		return -1;
	/* The kernel's number. */
	/* NOLINTNEXTLINE(cert-err34-c) */
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

void
pipepages_check(const struct config *c, FILE *report)
{
	long per_pipe = pipe_pages(c->relay.pipe_size), soft = read_soft();
	long per_worker = WORKER_PIPES * per_pipe + WAKE_PIPE_PAGES;
	long need = (long)c->workers.max * per_worker;
	bool parks = c->relay.hubs > 0 && c->relay.park_after > 0;
	char line[400];

	if (c->relay.mode != RELAY_SPLICE || soft <= 0)
		return;		/* 0: no limit */
	if (parks)
		need += (long)c->relay.hubs * HUB_PIPES * per_pipe;
	if (need <= soft)
		return;
	snprintf(line, sizeof(line),
	    "pipe-pages-short need=%ld soft=%ld (workers.max %d x %ld pages%s): "
	    "past about %ld busy workers new pipes get 2 pages and their "
	    "sessions are relayed by copy; raise fs.pipe-user-pages-soft or "
	    "lower relay.pipe_size", need, soft, c->workers.max, per_worker,
	    parks ? ", hubs x 64 pipes" : "", soft / per_worker);
	log_notice("%s", line);
	if (report != NULL)
		fprintf(report, "%s\n", line);
}
