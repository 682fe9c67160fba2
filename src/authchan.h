/* authchan.h: the auth helpers' channel and shared memory, which the master
 * owns, and the auth-helper row of its table of roles. */
#ifndef SOCKS5D_AUTHCHAN_H
#define SOCKS5D_AUTHCHAN_H

#include <stdbool.h>
#include <stdnoreturn.h>

#include "children.h"
#include "config.h"
#include "generation.h"

/* Makes the channel and the helpers' shared memory (once, at start; they
 * outlive reloads, so a worker of any generation reaches the helpers of
 * the current one). Without them logins fail, logged. */
void authchan_open(void);
void authchan_close(void);
/* Whether a listener of c offers the username method (helpers run). */
bool authchan_wanted(const struct config *c);
/* Keeps auth.helpers helpers of g running while a listener of g offers
 * the username method, a dead one replaced at most once per respawn_ms,
 * and kills one stuck in PAM past auth.timeout. */
bool authchan_maintain(struct generation *g, bool starting);
/* g is no longer current: its helpers finish the request in hand and
 * exit (the current generation's take the channel over). */
void authchan_release(struct generation *g, bool stopping);
noreturn void authchan_enter(const struct child_start *cs);
void authchan_reaped(const struct child *c, int status);

#endif
