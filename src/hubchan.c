/* hubchan.c: the hub channels the master owns, per generation: made with
 * it, a hub kept on each, drained or shut when the generation ends. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hubchan.h"
#include "io.h"
#include "log.h"
#include "stats.h"

#define HUB_MAX_DRAINS 3		/* per slot, against a hub that keeps dying */

static bool stopping;			/* drain hubs end at the grace */

/* How many messages a channel holds before a send says EAGAIN: the kernel
 * counts buffer sizes its own way (it doubles SO_SNDBUF, and adds its
 * overhead), so it is measured, on the empty channel, and then drained.
 * The hubs keep that many tickets back (see hubmsg.h). */
static int
hubchan_capacity(const int chan[2])
{
	struct hub_msg msg;
	int n = 0;

	memset(&msg, 0, sizeof(msg));
	while (n < 4096 && send(chan[CHAN_WORKER], &msg, sizeof(msg),
	    MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(msg))
		n++;
	while (recv(chan[CHAN_HUB], &msg, sizeof(msg), MSG_DONTWAIT) > 0)
		;
	return n > 0 ? n : HUB_QUEUE_MSGS;
}

/* One SOCK_SEQPACKET pair per hub: messages keep their bounds and carry
 * fds. Without them the generation simply does not park. Messages a
 * worker may queue to its hub before sends say EAGAIN: a hub that is not
 * reading (fd limit) leaves few sessions waiting in the queue. */
void
hubchan_open(struct generation *g)
{
	size_t n = g->conf->relay.park_after > 0 ?
	    (size_t)g->conf->relay.hubs : 0;
	int sndbuf = HUB_QUEUE_MSGS * (int)sizeof(struct hub_msg);

	if (n == 0)
		return;
	if ((g->hubs = calloc(n, sizeof(*g->hubs))) == NULL)
		fatal("calloc");
	if ((g->tickets = hub_tickets_create(n)) == NULL) {
		log_warn("mmap hub tickets: sessions are not parked");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    g->hubs[i].chan) == -1) {
			log_warn("socketpair: sessions are not parked");
			break;
		}
		(void)setsockopt(g->hubs[i].chan[CHAN_WORKER], SOL_SOCKET,
		    SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		g->nhubs++;
	}
	if (g->nhubs > 0)
		g->queue_msgs = hubchan_capacity(g->hubs[0].chan);
}

void
hubchan_close(struct generation *g)
{
	for (size_t i = 0; i < g->nhubs; i++) {
		close(g->hubs[i].chan[CHAN_HUB]);
		close(g->hubs[i].chan[CHAN_WORKER]);
	}
	free(g->hubs);
	hub_tickets_destroy(g->tickets, g->nhubs);
	g->hubs = NULL;
	g->tickets = NULL;
	g->nhubs = 0;
}

static bool
hubchan_spawn(struct generation *g, size_t i, enum hub_mode mode)
{
	struct hub_slot *hs = &g->hubs[i];
	pid_t pid;

	hs->spawned = io_now_ms();
	hs->mode = mode;
	if ((pid = children_spawn(ROLE_HUB, g, (int)i)) == -1)
		return false;
	hs->pid = pid;
	return true;
}

/* A hub serves no listener and no scoreboard: it keeps only its channel. */
noreturn void
hubchan_enter(const struct child_start *cs)
{
	struct generation *g = cs->gen;
	struct hub h;

	memset(&h, 0, sizeof(h));
	h.conf = g->conf;
	h.generation = g->id;
	h.index = cs->slot;
	h.chan = cs->chan_fd;
	h.tickets = &g->tickets[cs->slot];
	h.mode = g->hubs[cs->slot].mode;
	h.queue_msgs = g->queue_msgs;
	hub_main(&h);
}

bool
hubchan_maintain(struct generation *g, bool starting)
{
	int64_t now = io_now_ms();
	int64_t every = children_role(ROLE_HUB)->respawn_ms;
	bool missing = false;

	(void)starting;
	for (size_t i = 0; i < g->nhubs; i++) {
		struct hub_slot *hs = &g->hubs[i];

		if (hs->pid != 0)
			continue;
		if ((hs->spawned != 0 && now - hs->spawned < every) ||
		    !hubchan_spawn(g, i, HUB_RUN))
			missing = true;
	}
	return missing;
}

/* A hub slot of an old generation (or of a stopping daemon) with no hub
 * running: sessions a worker handed over may still wait in its channel.
 * A hub is started just to take them (and relay them to their end, or to
 * the grace); an empty channel is shut so that sends fail at once. */
static void
hubchan_drain_or_shut(struct generation *g, size_t i)
{
	struct hub_slot *hs = &g->hubs[i];
	char byte;

	if (hs->pid != 0)
		return;
	/* A peek, not poll(): a channel shut for reading polls readable. It
	 * brings no fds along (no control buffer). */
	if (recv(hs->chan[CHAN_HUB], &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0 &&
	    hs->drains < HUB_MAX_DRAINS) {
		hs->drains++;
		if (hubchan_spawn(g, i, stopping ? HUB_STOP : HUB_RETIRE))
			return;
	}
	(void)shutdown(hs->chan[CHAN_HUB], SHUT_RD);
}

void
hubchan_release(struct generation *g, bool stop)
{
	if (stop)
		stopping = true;
	for (size_t i = 0; i < g->nhubs; i++)
		hubchan_drain_or_shut(g, i);
}

/* Sessions a hub held are gone with it (its exit line says so). Only the
 * current generation's hubs come back to work; other channels are drained
 * of what waits there, or shut. */
void
hubchan_reaped(const struct child *c, int status)
{
	struct generation *g = c->gen;

	(void)status;
	stats_hub_release(c->pid);
	g->hubs[c->slot].pid = 0;
	if (g != generation_current() || stopping)
		hubchan_drain_or_shut(g, (size_t)c->slot);
}
