/* generation.h: one configuration and what the master keeps for it
 * (listening sockets, scoreboard, slot record, hub channels): the current
 * generation and the older ones still draining. */
#ifndef SOCKS5D_GENERATION_H
#define SOCKS5D_GENERATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "hub.h"
#include "listener.h"
#include "scoreboard.h"
#include "slots.h"

enum { CHAN_HUB = 0, CHAN_WORKER = 1 };

/* A hub of a generation. Its channel belongs to the generation, not to the
 * process: a respawned hub goes on reading where the dead one stopped, and
 * the workers keep the end they inherited. */
struct hub_slot {
	pid_t pid;			/* 0 while not running */
	int chan[2];			/* [CHAN_HUB], [CHAN_WORKER] */
	int64_t spawned;
	int drains;			/* hubs started only to drain the channel */
	enum hub_mode mode;		/* of the hub started last */
};

struct generation {
	unsigned id;
	struct config *conf;
	struct scoreboard *sb;
	struct slots slots;		/* scoreboard slots in use (ours) */
	int *fds;			/* listening sockets, per conf listener */
	size_t nchildren;		/* live children, of every role */
	struct hub_slot *hubs;		/* none when relay.park_after is 0 */
	struct hub_tickets *tickets;	/* shared, one per hub */
	int queue_msgs;			/* what one channel holds, measured */
	size_t nhubs;
	struct generation *next;	/* older generations still draining */
};

/* A generation for conf and the listeners ls, with the next id, not yet
 * current, with no hub channels. NULL (logged) when its scoreboard cannot
 * be had; conf is then still the caller's. */
struct generation *generation_new(struct config *conf,
    const struct listen_set *ls);
/* Frees g and its conf; its hub channels must be closed already. */
void generation_free(struct generation *g);
/* Makes g current; the one it replaces starts draining. */
void generation_install(struct generation *g);
struct generation *generation_current(void);
/* Every generation, the current one first, then the draining ones. */
struct generation *generation_first(void);
struct generation *generation_next(const struct generation *g);
/* Unlinks a draining generation with no child left (or, with current_too,
 * the current one too) and returns it; NULL when there is none. */
struct generation *generation_take_finished(bool current_too);

#endif
