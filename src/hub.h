/* hub.h: the hub process, which relays parked (long idle) sessions for the
 * workers of its generation, and the message that hands one over. */
#ifndef SOCKS5D_HUB_H
#define SOCKS5D_HUB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"
#include "socks5.h"

#define HUB_MAGIC	0x73356862u	/* "s5hb" */
#define HUB_VERSION	1
#define HUB_DST_LEN	(SOCKS5_MAX_DOMAIN * 4 + 16)
#define HUB_QUEUE_MSGS	32	/* messages a channel holds before EAGAIN */

/* Worker to hub, one per SOCK_SEQPACKET message, with exactly two fds
 * (client, target) by SCM_RIGHTS: what the audit line needs and the state
 * the relay goes on from. Times are CLOCK_MONOTONIC ms, which is the same
 * clock in every process. */
struct hub_msg {
	uint32_t magic;
	uint32_t version;
	struct sockaddr_storage client;
	struct sockaddr_storage listener;
	struct sockaddr_storage target;
	char dst[HUB_DST_LEN];		/* escaped, NUL-terminated */
	int32_t rule;
	int64_t start_ms;		/* when the client was accepted */
	int64_t last_ms;		/* last byte moved: the idle timeout's origin */
	uint64_t up, down;		/* delivered so far */
};

/* How many more sessions a hub can take, counting those on their way
 * (shared memory, one per hub). A worker takes a ticket before it sends
 * and gives it back when the send fails; the hub gives one back for each
 * session that ends. So a hub is never sent more than its fds can hold,
 * and nothing is left stranded in its channel. */
struct hub_tickets {
	_Atomic long tickets;
};

/* n ticket counters in one shared anonymous mapping, inherited over fork. */
struct hub_tickets *hub_tickets_create(size_t n);
void hub_tickets_destroy(struct hub_tickets *tickets, size_t n);

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
	pid_t master;
};

/* Runs in the child right after fork; never returns. */
noreturn void hub_main(struct hub *h);

/* Worker side: hands client and target over without waiting, if the hub
 * has room. 0 when the hub has them (the caller closes its copies and logs
 * nothing), -1 with errno when it does not (ENOSPC: no room; EAGAIN: queue
 * full; hub gone): the caller keeps them. */
int hub_send(int chan, struct hub_tickets *tickets, const struct hub_msg *msg,
    int client, int target);

#endif
