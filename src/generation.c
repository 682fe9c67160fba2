/* generation.c: the master's generations: one configuration each, the
 * current one and the older ones whose children are still finishing. */
#include <stdlib.h>

#include "generation.h"
#include "log.h"

static struct {
	struct generation *current;
	struct generation *draining;
	unsigned next_id;
} gens;

struct generation *
generation_new(struct config *conf, const struct listen_set *ls)
{
	struct generation *g = calloc(1, sizeof(*g));

	if (g == NULL || (g->fds = calloc(ls->n + 1, sizeof(int))) == NULL)
		fatal("calloc");
	g->sb = scoreboard_create((size_t)conf->workers.max);
	if (g->sb == NULL || slots_init(&g->slots, g->sb->nslots) == -1) {
		log_warn("scoreboard for %d workers", conf->workers.max);
		scoreboard_destroy(g->sb);
		free(g->fds);
		free(g);
		return NULL;
	}
	for (size_t i = 0; i < ls->n; i++)
		g->fds[i] = ls->socks[i].fd;
	g->conf = conf;
	g->id = ++gens.next_id;
	return g;
}

void
generation_free(struct generation *g)
{
	scoreboard_destroy(g->sb);
	slots_free(&g->slots);
	config_free(g->conf);
	free(g->fds);
	free(g);
}

void
generation_install(struct generation *g)
{
	if (gens.current != NULL) {
		gens.current->next = gens.draining;
		gens.draining = gens.current;
	}
	g->next = NULL;
	gens.current = g;
}

struct generation *
generation_current(void)
{
	return gens.current;
}

struct generation *
generation_first(void)
{
	return gens.current != NULL ? gens.current : gens.draining;
}

struct generation *
generation_next(const struct generation *g)
{
	return g == gens.current ? gens.draining : g->next;
}

struct generation *
generation_take_finished(bool current_too)
{
	struct generation **pp = &gens.draining, *g;

	for (; (g = *pp) != NULL; pp = &g->next)
		if (g->nchildren == 0) {
			*pp = g->next;
			return g;
		}
	if (current_too && (g = gens.current) != NULL && g->nchildren == 0) {
		gens.current = NULL;
		return g;
	}
	return NULL;
}
