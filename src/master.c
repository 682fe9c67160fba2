/* master.c: the supervising process: the table of roles, listeners,
 * signals, reload and stop. It never reads a byte from a client. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "authchan.h"
#include "children.h"
#include "control.h"
#include "diag.h"
#include "generation.h"
#include "hubchan.h"
#include "io.h"
#include "limits_shm.h"
#include "listener.h"
#include "log.h"
#include "master.h"
#include "nofile.h"
#include "notify.h"
#include "pidfile.h"
#include "pipepages.h"
#include "pool.h"
#include "priv.h"
#include "stats.h"
#include "status.h"

#define TICK_MS 1000
#define FAST_TICK_MS 100

/* Every process the master forks, one row per role, in start order (auth
 * helpers and hubs first: a generation's workers find them running). */
static const struct role roles[ROLE_COUNT] = {
	[ROLE_AUTH] = {
		.name = "auth-helper",
		.privileged = true,
		.counted = false,
		.respawn = RESPAWN_SLOT,
		.respawn_ms = 1000,
		.keeps = KEEP_AUTH_END | KEEP_AUTH_SHARED,
		.lost = ": the login it was checking failed",
		.enter = authchan_enter,
		.maintain = authchan_maintain,
		.release = authchan_release,
		.reaped = authchan_reaped,
	},
	[ROLE_HUB] = {
		.name = "hub",
		.privileged = false,
		.counted = false,
		.respawn = RESPAWN_SLOT,
		.respawn_ms = 1000,
		.keeps = KEEP_HUB_END,
		.lost = ": its parked sessions are lost",
		.enter = hubchan_enter,
		.maintain = hubchan_maintain,
		.release = hubchan_release,
		.reaped = hubchan_reaped,
	},
	[ROLE_WORKER] = {
		.name = "worker",
		.privileged = false,
		.counted = true,
		.respawn = RESPAWN_POOL,
		.keeps = KEEP_LISTENERS | KEEP_SCOREBOARD | KEEP_NOTIFY |
		    KEEP_WORKER_END | KEEP_AUTH_WORKER_END,
		.enter = pool_enter,
		.maintain = pool_maintain,
		.exit_state = pool_exit_state,
		.reaped = pool_reaped,
	},
};

static struct {
	struct listen_set listeners;
	int sigfd, notify_rd, notify_wr;
	bool stopping, killed, ready;
	int64_t stop_deadline;
	bool debug;
} m;

/* Every role tops up the current generation. Returns whether to tick
 * fast. */
static bool
master_maintain(bool starting)
{
	struct generation *g = generation_current();
	bool fast = false;

	for (int r = 0; r < ROLE_COUNT; r++)
		if (roles[r].maintain != NULL)
			fast |= roles[r].maintain(g, starting);
	return fast;
}

static void
master_release(struct generation *g, bool stopping)
{
	for (int r = 0; r < ROLE_COUNT; r++)
		if (roles[r].release != NULL)
			roles[r].release(g, stopping);
}

static struct generation *
master_generation_new(struct config *conf, const struct listen_set *ls)
{
	struct generation *g = generation_new(conf, ls);

	if (g != NULL)
		hubchan_open(g);
	return g;
}

/* Frees the generations with no child left (at exit: all of them). */
static void
master_collect(bool all)
{
	struct generation *g;

	while ((g = generation_take_finished(all)) != NULL) {
		log_debug("generation %u finished", g->id);
		hubchan_close(g);
		generation_free(g);
	}
}

/* SIGHUP, or `socks5d reload` (report: what to tell it, else NULL).
 * Returns whether the new configuration was taken. */
static bool
master_reload(FILE *report)
{
	struct generation *old = generation_current();
	const char *path = old->conf->path;
	struct listen_set next = { NULL, 0 };
	struct generation *g;
	struct config *conf;
	struct diag d = DIAG_INIT;

	notify_reloading();
	conf = config_load(path, &d);
	if (conf != NULL && nofile_check(conf, report) == -1) {
		config_free(conf);
		conf = NULL;
	}
	if (conf != NULL)
		pipepages_check(conf, report);
	if (conf != NULL && listener_set_build(&m.listeners, conf, &next,
	    &d) == -1) {
		config_free(conf);
		conf = NULL;
	}
	diag_log(&d);
	if (report != NULL)
		diag_print(&d, report);
	diag_free(&d);
	if (conf == NULL || (g = master_generation_new(conf, &next)) == NULL) {
		if (conf != NULL) {
			listener_set_discard(&m.listeners, &next);
			config_free(conf);
		}
		log_warnx("reload-failed config=%s: still serving generation %u",
		    path, old->id);
		if (report != NULL)
			fprintf(report, "reload-failed config=%s: still serving generation %u\n",
			    path, old->id);
		notify_ready();
		return false;
	}
	/* Children forked from here on inherit the new log settings. */
	log_set_level(m.debug ? LOG_DEBUG : conf->log.level);
	log_set_facility(conf->log.facility);
	generation_install(g);
	/* Before anything is forked, so that children close the new set. */
	listener_set_commit(&m.listeners, &next, conf);
	/* Old hubs shut their channels themselves when told to retire, and
	 * still take what was queued; a slot without a hub is drained. */
	children_signal(old, SIGUSR1);
	master_release(old, false);
	/* The loop tops the new generation up as soon as the signals are
	 * handled, hubs first (table order). */
	log_info("reload generation=%u config=%s", g->id, path);
	if (report != NULL)
		fprintf(report, "reload generation=%u config=%s\n", g->id, path);
	control_listen(conf->control_socket);
	master_collect(false);
	notify_ready();
	return true;
}

static void
master_stop(int sig)
{
	int64_t shutdown_ms;

	if (m.stopping)
		return;
	m.stopping = true;
	notify_stopping();
	/* Workers end their sessions when their own grace runs out and log
	 * them; the master's deadline, a little later, is the backstop. */
	shutdown_ms = (int64_t)generation_current()->conf->timeouts.shutdown *
	    1000;
	m.stop_deadline = io_now_ms() + shutdown_ms + 2000;
	listener_set_close(&m.listeners);
	log_info("stop signal=%s workers=%zu hubs=%zu",
	    sig == SIGINT ? "INT" : "TERM", children_count(ROLE_WORKER),
	    children_count(ROLE_HUB));
	children_signal(NULL, SIGTERM);
	for (struct generation *g = generation_first(); g != NULL;
	    g = generation_next(g))
		master_release(g, true);
}

/* READY=1 once a worker of the first generation accepts (the listeners
 * are open before any is forked); then the live counts for systemctl
 * status, each tick. */
static void
master_notify(void)
{
	struct generation *g = generation_current();
	int idle = atomic_load(&g->sb->idle);
	char text[200];

	if (!m.ready && idle > 0) {
		m.ready = true;
		notify_ready();
	}
	snprintf(text, sizeof(text),
	    "generation %u: %zu workers (%zu busy), %zu hubs, %zu auth helpers",
	    g->id, children_count(ROLE_WORKER),
	    scoreboard_count(g->sb, SB_BUSY), children_count(ROLE_HUB),
	    children_count(ROLE_AUTH));
	notify_status(text);
}

/* SIGUSR1: one line of what the daemon is doing, for the log. */
static void
master_status(void)
{
	struct generation *g = generation_current();

	log_info("status generation=%u workers=%zu idle=%d hubs=%zu "
	    "helpers=%zu stopping=%d", g->id, children_count(ROLE_WORKER),
	    atomic_load(&g->sb->idle), children_count(ROLE_HUB),
	    children_count(ROLE_AUTH), m.stopping ? 1 : 0);
}

static bool
control_reload(FILE *out)
{
	if (m.stopping) {
		fprintf(out, "stopping: no reload\n");
		return false;
	}
	return master_reload(out);
}

static void
control_status(FILE *out, bool metrics)
{
	if (metrics)
		status_write_metrics(out, m.stopping);
	else
		status_write(out, m.stopping);
}

static const struct control_ops control_ops = {
	.reload = control_reload,
	.status = control_status,
};

static void
master_signals(void)
{
	struct signalfd_siginfo si;
	ssize_t n;

	while ((n = read(m.sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			children_reap();
			master_collect(false);
			break;
		case SIGHUP:
			if (!m.stopping)
				(void)master_reload(NULL);
			break;
		case SIGTERM:
		case SIGINT:
			master_stop((int)si.ssi_signo);
			break;
		case SIGUSR1:
			master_status();
			break;
		}
	}
	if (n == -1 && errno != EAGAIN)
		fatal("read signalfd");
}

static void
master_setup(void)
{
	sigset_t set;
	struct sigaction sa;
	int p[2];

	/* Signals a daemon does not act on are ignored, never fatal: an
	 * administrator's stray SIGUSR2 (haproxy's reload) must not end every
	 * session. Children inherit this and set their own handlers. */
	static const int ignored[] = { SIGPIPE, SIGUSR2, SIGALRM, SIGVTALRM,
	    SIGPROF, SIGIO, SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ };

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		sigaction(ignored[i], &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	m.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m.sigfd == -1)
		fatal("signalfd");
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pipe2");
	m.notify_rd = p[0];
	m.notify_wr = p[1];
	stats_init();
	children_init(roles, &(struct children_env){
	    .sigfd = m.sigfd, .notify_rd = m.notify_rd,
	    .notify_wr = m.notify_wr, .listeners = &m.listeners });
	authchan_open();
}

static void
drain_notify(void)
{
	char buf[256];

	while (read(m.notify_rd, buf, sizeof(buf)) > 0)
		;
}

static void
log_start(void)
{
	char list[CONFIG_MAX_LISTENERS * (ADDR_STRLEN + 1)] = "";
	char one[ADDR_STRLEN];
	const struct config *c = generation_current()->conf;

	/* NOLINTBEGIN(clang-analyzer-security.insecureAPI.strcpy): list has
	 * room for every listener and a comma after each. */
	for (size_t i = 0; i < c->nlisteners; i++) {
		addr_format((const struct sockaddr *)&c->listeners[i].addr, one,
		    sizeof(one));
		if (i > 0)
			strcat(list, ",");
		strcat(list, one);
	}
	/* NOLINTEND(clang-analyzer-security.insecureAPI.strcpy) */
	log_info("start version=%s config=%s listeners=%s workers=%zu user=%s",
	    SOCKS5D_VERSION, c->path, list, children_count(ROLE_WORKER),
	    priv_switches_user() ? c->user : "(unchanged)");
}

/* Waits for signals, wake-ups from workers, or the next tick. */
static void
master_wait(bool fast)
{
	struct pollfd pfd[3] = {
		{ .fd = m.sigfd, .events = POLLIN },
		{ .fd = m.notify_rd, .events = POLLIN },
		{ .fd = control_fd(), .events = POLLIN },
	};
	int timeout = fast ? FAST_TICK_MS : TICK_MS;

	if (m.stopping) {
		int64_t left = m.stop_deadline - io_now_ms();
		/* After the deadline, only reaping is left: no spinning. */
		timeout = left < FAST_TICK_MS ? FAST_TICK_MS :
		    left < TICK_MS ? (int)left : TICK_MS;
	}
	if (poll(pfd, 3, timeout) == -1 && errno != EINTR)
		fatal("poll");
	if (pfd[1].revents & POLLIN)
		drain_notify();
	if (pfd[0].revents & POLLIN)
		master_signals();
	if ((pfd[2].revents & POLLIN) && control_fd() != -1)
		control_serve(&control_ops);
}

static void
master_finish_stop(void)
{
	if (!m.killed && io_now_ms() >= m.stop_deadline &&
	    children_total() > 0) {
		log_warnx("stop: %zu children still busy after the grace: killing them",
		    children_total());
		children_signal(NULL, SIGKILL);
		m.killed = true;
	}
}

int
master_run(struct config *conf, const struct master_opts *opts)
{
	struct listen_set none = { NULL, 0 };
	struct diag d = DIAG_INIT;
	struct generation *g;
	bool fast = false;
	int rc;

	m.debug = opts->debug;
	if (nofile_check(conf, NULL) == -1) {
		log_warnx("cannot start: too few file descriptors");
		config_free(conf);
		return 1;
	}
	pipepages_check(conf, NULL);
	rc = listener_set_build(&none, conf, &m.listeners, &d);
	diag_log(&d);
	diag_free(&d);
	if (rc == -1) {
		config_free(conf);
		return 1;
	}
	if (opts->pidfile != NULL && pidfile_open(opts->pidfile) == -1) {
		listener_set_close(&m.listeners);
		config_free(conf);
		return 1;
	}
	if (!opts->foreground && daemon(0, 0) == -1)
		fatal("daemon");
	if (pidfile_write() == -1)
		fatalx("cannot start");
	master_setup();
	/* Once, before any fork: the counts outlive every generation. */
	if (limits_create() == -1)
		fatal("mmap limits");
	children_register_map(limits_shm_addr(), limits_shm_bytes(),
	    KEEP_SCOREBOARD | KEEP_HUB_END);
	if ((g = master_generation_new(conf, &m.listeners)) == NULL)
		fatalx("cannot start");
	generation_install(g);
	control_listen(conf->control_socket);
	(void)master_maintain(true);
	log_start();
	while (!m.stopping || children_total() > 0) {
		master_wait(fast);
		limits_heal_pending();
		if (m.stopping) {
			master_finish_stop();
		} else {
			fast = master_maintain(false);
			master_notify();
		}
	}
	log_info("exit");
	control_close();
	pidfile_remove();
	master_collect(true);
	authchan_close();
	children_unregister_map(limits_shm_addr());
	limits_destroy();
	children_free();
	close(m.sigfd);
	close(m.notify_rd);
	close(m.notify_wr);
	return 0;
}
