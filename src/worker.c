/* worker.c: an unprivileged worker: accept one client, run its session, repeat. */
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "session.h"
#include "worker.h"

volatile sig_atomic_t worker_stopping;
volatile sig_atomic_t worker_retiring;

static const int *closable_fds;	/* this worker's listeners, for closing */
static size_t nclosable;
static int listeners_closed;

static void
on_stop(int sig)
{
	(void)sig;
	worker_stopping = 1;
}

static void
on_retire(int sig)
{
	(void)sig;
	worker_retiring = 1;
}

void
worker_close_listeners(void)
{
	if (listeners_closed)
		return;
	listeners_closed = 1;
	for (size_t i = 0; i < nclosable; i++)
		close(closable_fds[i]);
}

/* setgroups, setresgid, setresuid, in that order, fatal on any failure
 * (after OpenBSD's daemons); then refuse to go on as root. */
static void
worker_drop_privileges(const struct worker *w)
{
	const struct config *c = w->conf;
	gid_t gid = c->gid;
	uid_t uid = c->uid;

	if (c->switch_user) {
		if (setgroups(1, &gid) == -1)
			fatal("setgroups");
		if (setresgid(gid, gid, gid) == -1)
			fatal("setresgid %u", (unsigned)gid);
		if (setresuid(uid, uid, uid) == -1)
			fatal("setresuid %u", (unsigned)uid);
	}
	if (getuid() == 0 || geteuid() == 0)
		fatalx("worker would run sessions as root: refusing");
	/* Set after the uid change, which clears it. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("prctl PR_SET_PDEATHSIG");
	if (getppid() != w->master)
		exit(0);
}

static void
worker_signals(sigset_t *waitmask)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_retire;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	/* Stop signals stay blocked except inside epoll_pwait, so that one
	 * arriving between the check and the wait is not lost. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_SETMASK, &block, NULL);
	sigemptyset(waitmask);
}

static int
worker_epoll(const struct worker *w)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep == -1)
		fatal("epoll_create1");
	for (size_t i = 0; i < w->conf->nlisteners; i++) {
		/* EPOLLEXCLUSIVE: one connection wakes one idle worker. */
		struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE,
		    .data.u64 = i };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, w->listen_fds[i], &ev) == -1)
			fatal("epoll_ctl");
	}
	return ep;
}

static bool
worker_should_exit(const struct worker *w)
{
	return worker_stopping || worker_retiring ||
	    (w->conf->workers.max_sessions > 0 &&
	    w->slot->sessions >= (uint64_t)w->conf->workers.max_sessions);
}

/* Waits for one client. Returns its socket, or -1 when it is time to exit. */
static int
worker_accept(struct worker *w, int ep, const sigset_t *waitmask,
    struct sockaddr_storage *peer, size_t *li)
{
	static size_t last;
	struct epoll_event evs[CONFIG_MAX_LISTENERS];

	for (;;) {
		socklen_t len = sizeof(*peer);
		int fd, n;

		if (worker_should_exit(w))
			return -1;
		/* Under load a connection is usually waiting: try first. */
		fd = accept4(w->listen_fds[last], (struct sockaddr *)peer, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd != -1) {
			*li = last;
			return fd;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED) {
			/* EMFILE and friends: back off instead of spinning. */
			log_warn("accept");
			usleep(100000);
		}
		n = epoll_pwait(ep, evs, CONFIG_MAX_LISTENERS, -1, waitmask);
		if (n == -1 && errno != EINTR)
			fatal("epoll_pwait");
		if (n > 0)
			last = (size_t)evs[0].data.u64;
	}
}

static void
worker_wake_master(struct worker *w)
{
	if (atomic_load(&w->sb->idle) < w->conf->workers.min_spare &&
	    write(w->notify_fd, "w", 1) == -1 && errno != EAGAIN)
		log_warn("notify master");
}

noreturn void
worker_main(struct worker *w)
{
	struct sockaddr_storage peer;
	sigset_t waitmask, block;
	size_t li;
	int ep, fd;

	log_set_role("worker");
	closable_fds = w->listen_fds;
	nclosable = w->conf->nlisteners;
	worker_signals(&waitmask);
	worker_drop_privileges(w);
	relay_init(&w->relay, w->conf);
	ep = worker_epoll(w);
	sigprocmask(SIG_BLOCK, NULL, &block);
	scoreboard_set_state(w->sb, w->slot, SB_IDLE);

	while ((fd = worker_accept(w, ep, &waitmask, &peer, &li)) != -1) {
		scoreboard_set_state(w->sb, w->slot, SB_BUSY);
		worker_wake_master(w);
		w->slot->session_start_ms = io_now_ms();
		w->slot->client = peer;
		atomic_store(&w->slot->up, 0);
		atomic_store(&w->slot->down, 0);
		/* A stop signal during the session only sets a flag. */
		sigprocmask(SIG_SETMASK, &waitmask, NULL);
		session_run(w, fd, &peer, li);
		sigprocmask(SIG_SETMASK, &block, NULL);
		w->slot->sessions++;
		scoreboard_set_state(w->sb, w->slot, SB_IDLE);
	}
	close(ep);
	relay_free(&w->relay);
	worker_close_listeners();
	exit(0);
}
