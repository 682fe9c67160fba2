/* hub.h: the hub process, which relays parked (long idle) sessions for the
 * workers of its generation. The message that hands one over is in
 * hubmsg.h, the relaying in hub_relay.c. */
#ifndef SOCKS5D_HUB_H
#define SOCKS5D_HUB_H

#include <stdnoreturn.h>
#include <sys/types.h>

#include "config.h"
#include "hubmsg.h"

enum hub_mode {
	HUB_RUN,			/* take sessions */
	HUB_RETIRE,			/* drain the channel, finish, exit */
	HUB_STOP,			/* drain, end everything at the grace */
};

struct hub {
	const struct config *conf;
	struct hub_tickets *tickets;
	enum hub_mode mode;		/* at start */
	int queue_msgs;			/* messages the channel can hold */
	unsigned generation;
	int index;			/* 0 .. relay.hubs - 1 */
	int chan;			/* our end of the channel */
};

/* Runs in the child right after fork; never returns. */
noreturn void hub_main(struct hub *h);

#endif
