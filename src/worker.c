/* worker.c: an unprivileged worker: accept one client, run its session, repeat. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "session.h"
#include "worker.h"

volatile sig_atomic_t worker_stopping;
volatile sig_atomic_t worker_retiring;

/* Written by the signal handlers and watched by epoll, so that a stop
 * signal arriving between the flag check and the wait still wakes it. */
static int wake_pipe[2] = { -1, -1 };

static void
wake(void)
{
	int saved = errno;

	if (write(wake_pipe[1], "s", 1) == -1)
		(void)0;	/* full already: it will wake anyway */
	errno = saved;
}

static int64_t grace_ms;

/* The worker's own copy of its listening fds, -1 once closed. */
static int listen_fds[CONFIG_MAX_LISTENERS];
static size_t nlisten;

/* A stop (SIGTERM from the master, or from PR_SET_PDEATHSIG when the
 * master died) closes the listeners at once, in the handler (close is
 * async-signal-safe), even while a session runs: a SIGKILLed master's
 * workers must not hold the port, or new clients would wait in a backlog
 * nobody accepts from and a new master could not bind. The session in
 * progress goes on within its grace. */
static void
close_listeners(void)
{
	for (size_t i = 0; i < nlisten; i++)
		if (listen_fds[i] != -1) {
			int fd = listen_fds[i];

			listen_fds[i] = -1;
			close(fd);
		}
}

static void
on_stop(int sig)
{
	int saved = errno;

	(void)sig;
	if (!worker_stopping)
		io_set_cutoff(io_now_ms() + grace_ms);
	worker_stopping = 1;
	close_listeners();
	errno = saved;
	wake();
}

static void
on_retire(int sig)
{
	(void)sig;
	worker_retiring = 1;
	wake();
}

static void
worker_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pipe2");
	/* One page is plenty for wake-up bytes; the default 16 would count
	 * against the user's pipe pages, which the relay pipes need. */
	(void)fcntl(wake_pipe[1], F_SETPIPE_SZ, 4096);
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
	/* The master blocks these for its signalfd; a worker takes them. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int
worker_epoll(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep == -1)
		fatal("epoll_create1");
	for (size_t i = 0; i < nlisten; i++) {
		if (listen_fds[i] == -1)
			continue;	/* a stop came first */
		/* EPOLLEXCLUSIVE: one connection wakes one idle worker. */
		struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE,
		    .data.u64 = i };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fds[i], &ev) == -1 &&
		    errno != EBADF)
			fatal("epoll_ctl");
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, wake_pipe[0], &ev) == -1)
		fatal("epoll_ctl");
	return ep;
}

static bool
worker_should_exit(const struct worker *w)
{
	return worker_stopping || worker_retiring ||
	    (w->conf->workers.max_sessions > 0 &&
	    w->slot->sessions >= (uint64_t)w->conf->workers.max_sessions);
}

/* Accept failures for want of resources (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM): the worker backs off (doubling from 10 ms up to 1 s, reset by
 * the next accept) and logs one line per ACCEPT_LOG_MS with how many it
 * did not log, rather than a line per failure. */
#define ACCEPT_LOG_MS 60000
#define ACCEPT_BACKOFF_MIN_US 10000
#define ACCEPT_BACKOFF_MAX_US 1000000

static struct {
	int64_t last_log;		/* 0: never logged */
	unsigned long suppressed;
	useconds_t backoff_us;
} accept_fail;

static void
worker_accept_failed(int err)
{
	int64_t now = io_now_ms();

	if (accept_fail.last_log == 0 ||
	    now - accept_fail.last_log >= ACCEPT_LOG_MS) {
		log_warnx("accept-failed error=\"%s\" not-logged=%lu: "
		    "backing off, one line per %d s", strerror(err),
		    accept_fail.suppressed, ACCEPT_LOG_MS / 1000);
		accept_fail.last_log = now;
		accept_fail.suppressed = 0;
	} else {
		accept_fail.suppressed++;
	}
	accept_fail.backoff_us = accept_fail.backoff_us == 0 ?
	    ACCEPT_BACKOFF_MIN_US : accept_fail.backoff_us * 2;
	if (accept_fail.backoff_us > ACCEPT_BACKOFF_MAX_US)
		accept_fail.backoff_us = ACCEPT_BACKOFF_MAX_US;
	/* Not usleep: POSIX lets it refuse a second (1000000 us). */
	nanosleep(&(struct timespec){
	    .tv_sec = accept_fail.backoff_us / 1000000,
	    .tv_nsec = (long)(accept_fail.backoff_us % 1000000) * 1000 }, NULL);
}

/* One non-blocking accept on listener li: the socket, or -1 (errno). An
 * EINVAL means the master shut the listener down (reload or stop): it is
 * dropped from the epoll set; EBADF, that a stop closed it. */
static int
worker_try_accept(int ep, size_t li, struct sockaddr_storage *peer)
{
	socklen_t len = sizeof(*peer);
	int lfd = listen_fds[li], fd;

	if (lfd == -1)
		return -1;
	fd = accept4(lfd, (struct sockaddr *)peer, &len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd != -1) {
		accept_fail.backoff_us = 0;
		return fd;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
	    errno == ECONNABORTED || errno == EBADF)
		return -1;
	if (errno == EINVAL)
		(void)epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
	else
		worker_accept_failed(errno);
	return -1;
}

/* Waits for one client. Returns its socket, or -1 when it is time to exit.
 * Under load a client is usually waiting already, so while the last try
 * found one, accept is tried before waiting (one system call, not two).
 * EPOLLEXCLUSIVE wakes one worker per connection: a worker told to exit
 * may have been the one woken, so before it goes it looks once more, and
 * serves what it finds, rather than leave a client with no one awake. */
static int
worker_accept(struct worker *w, int ep, struct sockaddr_storage *peer,
    size_t *li)
{
	static size_t last;
	static bool try_first, swept;
	struct epoll_event evs[CONFIG_MAX_LISTENERS + 1];
	int fd, n;

	for (;;) {
		if (worker_should_exit(w)) {
			for (size_t i = 0; !swept && i < w->conf->nlisteners; i++)
				if ((fd = worker_try_accept(ep, i, peer)) != -1) {
					*li = i;
					return fd;
				}
			swept = true;
			return -1;
		}
		if (try_first && (fd = worker_try_accept(ep, last, peer)) != -1) {
			*li = last;
			return fd;
		}
		try_first = false;
		n = epoll_wait(ep, evs, CONFIG_MAX_LISTENERS + 1, -1);
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == UINT64_MAX) {
				char buf[16];
				while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
					;
				continue;
			}
			/* Woken for a client: take it, even if told to exit. */
			last = (size_t)evs[i].data.u64;
			if ((fd = worker_try_accept(ep, last, peer)) != -1) {
				*li = last;
				try_first = true;
				return fd;
			}
		}
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
	size_t li;
	int ep, fd;

	log_set_role("worker");
	nlisten = w->conf->nlisteners;
	for (size_t i = 0; i < nlisten; i++)
		listen_fds[i] = w->listen_fds[i];
	w->listen_fds = listen_fds;
	grace_ms = (int64_t)w->conf->timeouts.shutdown * 1000;
	worker_signals();
	session_worker_init(w);
	ep = worker_epoll();
	scoreboard_set_state(w->sb, w->slot, SB_IDLE);

	while ((fd = worker_accept(w, ep, &peer, &li)) != -1) {
		scoreboard_set_state(w->sb, w->slot, SB_BUSY);
		worker_wake_master(w);
		w->slot->session_start_ms = io_now_ms();
		w->slot->client = peer;
		w->slot->dst[0] = w->slot->user[0] = '\0';
		atomic_store(&w->slot->cmd, -1);
		atomic_store(&w->slot->up, 0);
		atomic_store(&w->slot->down, 0);
		session_run(w, fd, &peer, li);
		w->slot->sessions++;
		scoreboard_set_state(w->sb, w->slot, SB_IDLE);
	}
	close(ep);
	session_worker_fini();
	exit(0);
}
