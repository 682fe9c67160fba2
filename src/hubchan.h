/* hubchan.h: the hub channels the master owns, per generation, and the hub
 * row of its table of roles. */
#ifndef SOCKS5D_HUBCHAN_H
#define SOCKS5D_HUBCHAN_H

#include <stdbool.h>
#include <stdnoreturn.h>

#include "children.h"
#include "generation.h"

/* Makes g's relay.hubs channels (none when relay.park_after is 0; with
 * fewer, or none, when they cannot be had: logged, sessions stay with
 * their workers). */
void hubchan_open(struct generation *g);
/* Closes g's channels and unmaps its tickets. */
void hubchan_close(struct generation *g);
/* Starts g's hubs that are not running, a dead one at most once per
 * respawn_ms. Returns whether one is still missing. */
bool hubchan_maintain(struct generation *g, bool starting);
/* g is no longer current (stopping: the daemon stops): each channel with
 * no hub is drained by a hub started for it, or shut. */
void hubchan_release(struct generation *g, bool stopping);
/* In the child: runs the hub of channel cs->slot. */
noreturn void hubchan_enter(const struct child_start *cs);
/* A hub exited: its channel is respawned (current generation), drained
 * or shut. */
void hubchan_reaped(const struct child *c, int status);

#endif
