/* hub.c: the hub process: takes parked sessions from its channel and has
 * hub_relay.c relay them, many per process, until they end. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hub.h"
#include "hub_relay.h"
#include "io.h"
#include "log.h"
#include "stats.h"

#define HUB_FD_RESERVE	4	/* fds kept free beyond the sessions' */
#define HUB_SCAN_MS	1000	/* the pipe pool is trimmed this often */
#define HUB_IDLE_MS	100	/* idle checks at most this often (and late) */
#define HUB_MAX_EVENTS	256
#define HUB_TAKE_BATCH	64	/* messages read per wake-up */

static struct {
	struct hub *h;
	int ep;
	struct hub_sock chan, sig;
	bool chan_done;			/* shut and drained: read no more */
	long nfds, maxfds;		/* open fds, RLIMIT_NOFILE soft limit */
	bool retiring, stopping;
	int64_t cutoff;			/* stop: end everything at this time */
	int64_t last_scan;		/* the last pipe trim */
	int64_t idle_scan;		/* the last idle check */
	int64_t next_interim;		/* log.interim: next session-update */
} hub;

static void
hub_ctl(struct hub_sock *k, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = k };

	if (epoll_ctl(hub.ep, op, k->fd, &ev) == -1)
		fatal("epoll_ctl");
	k->events = events;
	k->in_set = op != EPOLL_CTL_DEL;
}

/* fds kept out of the sessions' share. */
static long
hub_fd_reserve(void)
{
	return HUB_FD_RESERVE + hub_relay_fd_reserve();
}

/* fds in use: what was open at start and two per session. */
static long
hub_fds_used(void)
{
	return hub.nfds + 2 * (long)hub_relay_count();
}

/* Tickets make sure a message always finds fds free; this is the backstop. */
static bool
hub_has_fds_free(void)
{
	return hub.maxfds - hub_fds_used() >= hub_fd_reserve() + 2;
}

/* What the workers may send: every session the fds can hold, less the
 * channel's capacity, which may still hold messages sent on the tickets of
 * a hub that died (so a respawned hub is never promised more than it can
 * take). */
static void
hub_open_tickets(void)
{
	hub_tickets_set(hub.h->tickets, (hub.maxfds - hub_fds_used() -
	    hub_fd_reserve()) / 2 - hub.h->queue_msgs);
}

/* Takes what the workers sent, while there are fds to spare. */
static void
hub_take(void)
{
	struct hub_msg m;
	int fds[2];

	for (int i = 0; i < HUB_TAKE_BATCH && !hub.chan_done && hub_has_fds_free();
	    i++) {
		switch (hub_recv(hub.chan.fd, hub.h->index, hub.h->tickets, &m,
		    fds)) {
		case HUB_RECV_NONE:
			return;
		case HUB_RECV_END:
			/* Shut (retire, stop) and drained: nothing more comes. */
			hub.chan_done = true;
			return;
		case HUB_RECV_BAD:
			break;
		case HUB_RECV_OK:
			hub_relay_start(&m, fds);
			break;
		}
	}
}

/* The channel is read only while fds are free: at the fd limit the
 * workers' sends fail with EAGAIN and they keep their sessions. */
static void
hub_chan_interest(void)
{
	uint32_t want = !hub.chan_done && hub_has_fds_free() ? EPOLLIN : 0;

	if (hub.chan_done) {
		if (hub.chan.in_set)
			hub_ctl(&hub.chan, EPOLL_CTL_DEL, 0);
		if (hub.chan.fd != -1)
			close(hub.chan.fd);
		hub.chan.fd = -1;
		return;
	}
	if (want != hub.chan.events)
		hub_ctl(&hub.chan, EPOLL_CTL_MOD, want);
}

/* When hub_scan is due: at the first idle deadline (but at most every
 * HUB_IDLE_MS), once a second for the pipe pool, at the stop cutoff. */
static int64_t
hub_scan_due(void)
{
	int64_t t = hub.last_scan + HUB_SCAN_MS;
	int64_t idle = hub.idle_scan + HUB_IDLE_MS;

	if (hub_relay_next_idle() > idle)
		idle = hub_relay_next_idle();
	if (idle < t)
		t = idle;
	if (hub.stopping && hub.cutoff < t)
		t = hub.cutoff;
	if (hub.h->conf->log.interim > 0 && hub.next_interim < t)
		t = hub.next_interim;
	return t;
}

/* Idle timeouts, at the stop cutoff everything; once a second the pipe
 * pool. */
static void
hub_scan(int64_t now)
{
	hub_relay_scan(now, hub.stopping && now >= hub.cutoff);
	hub.idle_scan = now;
	if (hub.h->conf->log.interim > 0 && now >= hub.next_interim) {
		hub_relay_interim(now);
		hub.next_interim = now + hub.h->conf->log.interim * 1000LL;
	}
	if (now - hub.last_scan >= HUB_SCAN_MS) {
		hub_relay_trim();
		hub.last_scan = now;
	}
}

/* Retire or stop: no new sessions. The channel is shut for reading, which
 * makes the workers' sends fail; the messages already queued are still
 * read. */
static void
hub_close_channel(void)
{
	if (hub.chan.fd != -1)
		(void)shutdown(hub.chan.fd, SHUT_RD);
}

static void
hub_begin_stop(void)
{
	if (!hub.stopping)
		hub.cutoff = io_now_ms() +
		    (int64_t)hub.h->conf->timeouts.shutdown * 1000;
	hub.stopping = true;
	hub_close_channel();
}

static void
hub_signal(void)
{
	struct signalfd_siginfo si;

	while (read(hub.sig.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			hub_begin_stop();
			break;
		case SIGUSR1:
			hub.retiring = true;
			hub_close_channel();
			break;
		}
	}
}

static void
hub_setup_signals(void)
{
	sigset_t set;

	/* The master's mask is inherited; the hub reads its signals from a
	 * signalfd, so no handler runs in the middle of the event loop. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	sigdelset(&set, SIGHUP);
	sigdelset(&set, SIGCHLD);
	if ((hub.sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
}

/* Raises the soft fd limit to the hard one and counts what is open. */
static void
hub_limits(void)
{
	struct rlimit rl;
	struct dirent *de;
	DIR *d;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("getrlimit");
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit RLIMIT_NOFILE");
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	hub.maxfds = rl.rlim_cur > (rlim_t)INT32_MAX ? INT32_MAX :
	    (long)rl.rlim_cur;
	hub.nfds = 0;
	if ((d = opendir("/proc/self/fd")) == NULL) {
		hub.nfds = HUB_FD_RESERVE;	/* a guess on the safe side */
		return;
	}
	while ((de = readdir(d)) != NULL)
		hub.nfds += de->d_name[0] != '.';
	closedir(d);
	hub.nfds--;		/* the directory's own */
}

static int
hub_timeout(int64_t now)
{
	int64_t due = hub_scan_due(), t;

	if (hub_relay_next_wake() < due)
		due = hub_relay_next_wake();
	t = due - now;

	return t < 0 ? 0 : t > HUB_SCAN_MS ? HUB_SCAN_MS : (int)t;
}

static void
hub_setup(struct hub *h)
{
	const struct config *c = h->conf;

	log_set_role("hub");
	(void)prctl(PR_SET_NAME, "socks5d-hub");
	memset(&hub, 0, sizeof(hub));
	hub.h = h;
	hub.chan.fd = h->chan;
	hub_setup_signals();
	if ((hub.ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	hub_relay_init(hub.ep, h->index, c->timeouts.idle * 1000,
	    c->relay.mode == RELAY_SPLICE, c->relay.pipe_size, h->tickets);
	hub_ctl(&hub.sig, EPOLL_CTL_ADD, EPOLLIN);
	hub_ctl(&hub.chan, EPOLL_CTL_ADD, EPOLLIN);
	hub_limits();
	hub_open_tickets();
	if (h->mode != HUB_RUN) {
		/* Started only to drain the channel of a hub that died. */
		hub.retiring = true;
		if (h->mode == HUB_STOP)
			hub_begin_stop();
		hub_close_channel();
	}
	hub.last_scan = hub.idle_scan = io_now_ms();
	hub.next_interim = hub.last_scan + c->log.interim * 1000LL;
}

/* One round of the event loop. */
static void
hub_round(void)
{
	struct epoll_event evs[HUB_MAX_EVENTS];
	int64_t now = io_now_ms();
	int n = epoll_wait(hub.ep, evs, HUB_MAX_EVENTS, hub_timeout(now));

	if (n == -1 && errno != EINTR)
		fatal("epoll_wait");
	for (int i = 0; i < n; i++) {
		struct hub_sock *k = evs[i].data.ptr;

		if (k == &hub.sig)
			hub_signal();
		else if (k == &hub.chan)
			hub_take();
		else
			hub_relay_event(k, evs[i].events);
	}
	hub_relay_wake(io_now_ms());
	hub_relay_reap();
	if (hub.retiring || hub.stopping)
		hub_take();	/* what was queued before the channel was shut */
	hub_chan_interest();
	now = io_now_ms();
	if (now >= hub_scan_due())
		hub_scan(now);
	hub_relay_reap();
}

noreturn void
hub_main(struct hub *h)
{
	hub_setup(h);
	stats_hub_claim();
	for (;;) {
		int64_t now = io_now_ms();

		if ((hub.retiring || hub.stopping) && hub_relay_count() == 0 &&
		    (hub.chan_done || (hub.stopping && now >= hub.cutoff)))
			break;
		hub_round();
	}
	hub_relay_free();
	close(hub.ep);
	close(hub.sig.fd);
	exit(0);
}
