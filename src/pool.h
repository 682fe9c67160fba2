/* pool.h: the worker pool: how many workers to keep, and the worker row of
 * the master's table of roles. */
#ifndef SOCKS5D_POOL_H
#define SOCKS5D_POOL_H

#include <stdbool.h>
#include <stdnoreturn.h>

#include "children.h"
#include "generation.h"

/* Keeps min_spare..max_spare idle workers of g, at most workers.max in
 * all (starting: fills up to min_spare at once). Returns whether to tick
 * fast. */
bool pool_maintain(struct generation *g, bool starting);
/* In the child: runs the worker of scoreboard slot cs->slot. */
noreturn void pool_enter(const struct child_start *cs);
/* " state=busy" or " state=idle", for the exit line of a killed worker. */
const char *pool_exit_state(const struct child *c);
/* Frees the slot of an exited worker and notes a failed start. */
void pool_reaped(const struct child *c, int status);

#endif
