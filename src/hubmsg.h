/* hubmsg.h: the worker-to-hub protocol: the message that hands a parked
 * session over with its two sockets, its checks, and the tickets that keep
 * a hub from being sent more sessions than its fds hold. */
#ifndef SOCKS5D_HUBMSG_H
#define SOCKS5D_HUBMSG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"
#include "limits_shm.h"

#define HUB_MAGIC	0x73356862u	/* "s5hb" */
#define HUB_VERSION	3		/* 3: limits (leases, rate caps) */
#define HUB_QUEUE_MSGS	32		/* messages a channel holds before EAGAIN */
#define HUB_MAX_AGE_MS	((int64_t)400 * 86400 * 1000)	/* a session's start */

/* Worker to hub, one per SOCK_SEQPACKET message, with exactly two fds
 * (client, target) by SCM_RIGHTS: the session's audit record and the
 * relay state it goes on from. Times are CLOCK_MONOTONIC ms, the same
 * clock in every process. Both ends run the same binary. */
struct hub_msg {
	uint32_t magic;
	uint32_t version;
	struct audit_record rec;	/* up/down: delivered so far */
	int64_t last_ms;		/* last byte moved: the idle timeout's origin */
	uint8_t done[2];		/* [RELAY_UP], [RELAY_DOWN] ended */
	int8_t first_eof;		/* direction that ended first, or -1 */
	struct limits_msg lim;		/* counts the hub gives back, rate caps */
};

/* How many more sessions a hub can take, counting those on their way
 * (shared memory, one per hub). A worker takes a ticket before it sends
 * and gives it back when the send fails; the hub gives one back for each
 * session that ends. So a hub is never sent more than its fds can hold,
 * and nothing is left stranded in its channel. */
struct hub_tickets {
	_Atomic long count;
};

/* n counters in one shared anonymous mapping, inherited over fork. */
struct hub_tickets *hub_tickets_create(size_t n);
void hub_tickets_destroy(struct hub_tickets *t, size_t n);
/* The hub: sets how many sessions it can take; gives one back. */
void hub_tickets_set(struct hub_tickets *t, long n);
void hub_tickets_give(struct hub_tickets *t);

/* Worker side: hands client and target over without waiting, if the hub
 * has a ticket. 0 when the hub has them (the caller closes its copies and
 * logs nothing), -1 with errno when it does not (ENOSPC: no ticket;
 * EAGAIN: queue full; hub gone): the caller keeps them. */
int hub_send(int chan, struct hub_tickets *t, const struct hub_msg *msg,
    int client, int target);

/* Hub side: one message and its fds, received without waiting. */
enum hub_recv_result {
	HUB_RECV_NONE,			/* nothing (more) now */
	HUB_RECV_END,			/* the channel was shut and is drained */
	HUB_RECV_BAD,			/* malformed: logged, its fds closed */
	HUB_RECV_OK,			/* *msg and out[2] are the session's */
};
enum hub_recv_result hub_recv(int chan, int hub_index, struct hub_tickets *t,
    struct hub_msg *msg, int out[2]);
/* Why a message is malformed (NULL: it is well-formed): size, magic,
 * version, exactly two fds that are stream sockets, address families, a
 * dst in escaped form (no byte of it can forge a log line), numbers in
 * range. */
const char *hub_msg_check(const struct hub_msg *m, ssize_t n, int flags,
    const int *fds, int nfds);

#endif
