/* master.c: the supervising process: listeners, the worker pool, signals.
 * It never reads a byte from a client. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub.h"
#include "io.h"
#include "listener.h"
#include "log.h"
#include "master.h"
#include "priv.h"
#include "scoreboard.h"
#include "slots.h"
#include "worker.h"

#define TICK_MS 1000
#define FAST_TICK_MS 100
#define MAX_SPAWN_RATE 64
#define POOL_FULL_LOG_MS 60000
#define RETIRE_MS 2000
#define HUB_MAX_DRAINS 3		/* per slot, against a hub that keeps dying */
#define HUB_RESPAWN_MS 1000
/* Messages a worker may queue to its hub before sends say EAGAIN: a hub
 * that is not reading (fd limit) leaves few sessions waiting in the queue. */

enum { CHAN_HUB = 0, CHAN_WORKER = 1 };

/* A hub of a generation. Its channel belongs to the generation, not to the
 * process: a respawned hub goes on reading where the dead one stopped, and
 * the workers keep the end they inherited. */
struct hub_slot {
	pid_t pid;			/* 0 while not running */
	int chan[2];			/* [CHAN_HUB], [CHAN_WORKER] */
	int64_t spawned;
	int drains;			/* hubs started only to drain the channel */
};

/* One configuration and the workers started with it. */
struct generation {
	unsigned id;
	struct config *conf;
	struct scoreboard *sb;
	struct slots slots;		/* scoreboard slots in use: ours, not the workers' */
	int *fds;			/* listening sockets, per conf listener */
	size_t nworkers;		/* live workers */
	struct hub_slot *hubs;		/* none when relay.park_after is 0 */
	struct hub_tickets *tickets;	/* shared, one per hub */
	int queue_msgs;			/* what one channel holds, measured */
	size_t nhubs;
	size_t livehubs;		/* running hub processes */
	struct generation *next;	/* older generations still draining */
};

/* The master's own record of its children: what it signals comes from
 * here, never from the scoreboard that workers can write. */
enum child_role { CHILD_WORKER, CHILD_HUB };

struct child {
	pid_t pid;
	struct generation *gen;
	int slot;			/* scoreboard slot, or hub index */
	enum child_role role;
	bool retiring;
};

static struct {
	struct generation *current;
	struct generation *draining;
	struct listen_set listeners;
	struct child *children;
	size_t nchildren, cap;
	size_t nhubs;			/* of nchildren, the hubs */
	int sigfd, notify_rd, notify_wr;
	unsigned next_gen;
	int spawn_rate;
	int start_failures;		/* workers in a row that died starting */
	int64_t spawn_pause_until;
	int64_t last_full_log;
	int64_t last_retire;
	size_t idle_low;		/* fewest idle workers since last_retire */
	bool stopping, killed;
	int64_t stop_deadline;
	bool debug;
} m;

static void master_reap(void);

/* How many messages a channel holds before a send says EAGAIN: the kernel
 * counts buffer sizes its own way (it doubles SO_SNDBUF, and adds its
 * overhead), so it is measured, on the empty channel, and then drained.
 * The hubs keep that many tickets back (see hub.h). */
static int
channel_capacity(const int chan[2])
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
 * fds. Without them the generation simply does not park. */
static void
generation_channels(struct generation *g)
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
		g->queue_msgs = channel_capacity(g->hubs[0].chan);
}

static struct generation *
generation_new(struct config *conf, const struct listen_set *ls)
{
	struct generation *g = calloc(1, sizeof(*g));

	if (g == NULL || (g->fds = calloc(ls->n + 1, sizeof(int))) == NULL)
		fatal("calloc");
	g->sb = scoreboard_create((size_t)conf->workers.max);
	if (g->sb == NULL || slots_init(&g->slots, g->sb->nslots) == -1) {
		log_warn("scoreboard for %d workers", conf->workers.max);
		scoreboard_destroy(g->sb);
		free(g->fds);
		free(g);
		return NULL;
	}
	for (size_t i = 0; i < ls->n; i++)
		g->fds[i] = ls->socks[i].fd;
	g->conf = conf;
	g->id = ++m.next_gen;
	generation_channels(g);
	return g;
}

static void
generation_free(struct generation *g)
{
	for (size_t i = 0; i < g->nhubs; i++) {
		close(g->hubs[i].chan[CHAN_HUB]);
		close(g->hubs[i].chan[CHAN_WORKER]);
	}
	free(g->hubs);
	hub_tickets_destroy(g->tickets, g->nhubs);
	scoreboard_destroy(g->sb);
	slots_free(&g->slots);
	config_free(g->conf);
	free(g->fds);
	free(g);
}

/* Frees draining generations whose last worker is gone. */
static void
generation_collect(void)
{
	struct generation **pp = &m.draining;

	while (*pp != NULL) {
		struct generation *g = *pp;
		if (g->nworkers == 0 && g->livehubs == 0) {
			*pp = g->next;
			log_debug("generation %u finished", g->id);
			generation_free(g);
		} else {
			pp = &g->next;
		}
	}
}

static void
child_add(pid_t pid, struct generation *g, int slot, enum child_role role)
{
	if (m.nchildren == m.cap) {
		size_t cap = m.cap ? m.cap * 2 : 64;
		struct child *c = reallocarray(m.children, cap, sizeof(*c));
		if (c == NULL)
			fatal("reallocarray");
		m.children = c;
		m.cap = cap;
	}
	m.children[m.nchildren++] = (struct child){ pid, g, slot, role, false };
}

static void
unmap_scoreboard(struct scoreboard *sb)
{
	munmap(sb, sizeof(*sb) + sb->nslots * sizeof(struct sb_slot));
}

/* In the child after fork: let go of what belongs to the master, and of
 * every hub channel end but keep (-1 for none). */
static void
child_detach(int keep)
{
	close(m.sigfd);
	close(m.notify_rd);
	for (struct generation *g = m.draining; g != NULL; g = g->next)
		unmap_scoreboard(g->sb);
	for (struct generation *g = m.current; g != NULL;
	    g = g == m.current ? m.draining : g->next)
		for (size_t i = 0; i < g->nhubs; i++)
			for (int e = 0; e < 2; e++)
				if (g->hubs[i].chan[e] != keep)
					close(g->hubs[i].chan[e]);
}

/* A hub serves no listener and no scoreboard: it keeps only its channel. */
static bool
hub_spawn(struct generation *g, size_t i, enum hub_mode mode)
{
	struct hub_slot *hs = &g->hubs[i];
	struct hub h;
	pid_t pid, master = getpid();

	hs->spawned = io_now_ms();
	pid = fork();
	if (pid == -1) {
		log_warn("fork hub");
		return false;
	}
	if (pid == 0) {
		child_detach(hs->chan[CHAN_HUB]);
		close(m.notify_wr);
		for (size_t j = 0; j < m.listeners.n; j++)
			close(m.listeners.socks[j].fd);
		/* child_detach unmapped the draining generations' ones. */
		if (g == m.current)
			unmap_scoreboard(g->sb);
		memset(&h, 0, sizeof(h));
		h.conf = g->conf;
		h.generation = g->id;
		h.index = (int)i;
		h.chan = hs->chan[CHAN_HUB];
		h.tickets = &g->tickets[i];
		h.mode = mode;
		h.queue_msgs = g->queue_msgs;
		h.master = master;
		hub_main(&h);
	}
	hs->pid = pid;
	g->livehubs++;
	m.nhubs++;
	child_add(pid, g, (int)i, CHILD_HUB);
	return true;
}

/* Starts the current generation's hubs that are not running, a dead one
 * at most once a second. Returns whether one is still missing. */
static bool
hubs_maintain(void)
{
	struct generation *g = m.current;
	int64_t now = io_now_ms();
	bool missing = false;

	for (size_t i = 0; i < g->nhubs; i++) {
		struct hub_slot *hs = &g->hubs[i];

		if (hs->pid != 0)
			continue;
		if ((hs->spawned != 0 && now - hs->spawned < HUB_RESPAWN_MS) ||
		    !hub_spawn(g, i, HUB_RUN))
			missing = true;
	}
	return missing;
}

/* A hub slot of an old generation (or of a stopping daemon) with no hub
 * running: sessions a worker handed over may still wait in its channel.
 * A hub is started just to take them (and relay them to their end, or to
 * the grace); an empty channel is shut so that sends fail at once. */
static void
hub_drain_or_shut(struct generation *g, size_t i)
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
		if (hub_spawn(g, i, m.stopping ? HUB_STOP : HUB_RETIRE))
			return;
	}
	(void)shutdown(hs->chan[CHAN_HUB], SHUT_RD);
}

static bool
worker_spawn(struct generation *g)
{
	struct worker w;
	struct sb_slot *slot;
	int idx = slots_take(&g->slots);
	pid_t pid, master;

	if (idx == -1)
		return false;
	slot = &g->sb->slots[idx];
	memset(slot, 0, sizeof(*slot));
	scoreboard_set_state(g->sb, slot, SB_STARTING);
	master = getpid();
	pid = fork();
	if (pid == -1) {
		log_warn("fork");
		scoreboard_set_state(g->sb, slot, SB_FREE);
		slots_put(&g->slots, idx);
		return false;
	}
	if (pid == 0) {
		memset(&w, 0, sizeof(w));
		w.hub_fd = g->nhubs > 0 ?
		    g->hubs[(size_t)idx % g->nhubs].chan[CHAN_WORKER] : -1;
		w.hub_tickets = g->nhubs > 0 ?
		    &g->tickets[(size_t)idx % g->nhubs] : NULL;
		child_detach(w.hub_fd);
		w.conf = g->conf;
		w.generation = g->id;
		w.sb = g->sb;
		w.slot = slot;
		w.listen_fds = g->fds;
		w.notify_fd = m.notify_wr;
		w.master = master;
		slot->pid = getpid();
		worker_main(&w);
	}
	slot->pid = pid;
	g->nworkers++;
	child_add(pid, g, idx, CHILD_WORKER);
	return true;
}

static void
signal_children(struct generation *g, int sig)
{
	for (size_t i = 0; i < m.nchildren; i++)
		if (g == NULL || m.children[i].gen == g)
			kill(m.children[i].pid, sig);
}

static size_t
pool_idle(const struct generation *g)
{
	size_t idle = 0;

	for (size_t i = 0; i < m.nchildren; i++) {
		const struct child *c = &m.children[i];
		int st;

		if (c->gen != g || c->role != CHILD_WORKER || c->retiring)
			continue;
		st = atomic_load(&g->sb->slots[c->slot].state);
		idle += st == SB_IDLE || st == SB_STARTING;
	}
	return idle;
}

/* Retires n idle workers of g. */
static void
pool_retire(struct generation *g, size_t n)
{
	for (size_t i = 0; i < m.nchildren && n > 0; i++) {
		struct child *c = &m.children[i];

		if (c->gen == g && c->role == CHILD_WORKER && !c->retiring &&
		    atomic_load(&g->sb->slots[c->slot].state) == SB_IDLE) {
			c->retiring = true;
			kill(c->pid, SIGUSR1);
			n--;
		}
	}
}

/* Keeps min_spare..max_spare idle workers, at most max in all, spawning
 * 1, 2, 4, ... per tick while short, retiring half of a lasting excess.
 * Returns whether to tick fast. */
static bool
pool_maintain(void)
{
	struct generation *g = m.current;
	const struct config *c = g->conf;
	size_t idle = pool_idle(g);
	int64_t now = io_now_ms();

	/* Retire only what stayed idle for a whole period, half of it at a
	 * time: retiring on a momentary peak forks again at the next dip. */
	if (idle < m.idle_low)
		m.idle_low = idle;
	if (now - m.last_retire >= RETIRE_MS) {
		if (m.idle_low > (size_t)c->workers.max_spare)
			pool_retire(g, (m.idle_low -
			    (size_t)c->workers.max_spare + 1) / 2);
		m.idle_low = SIZE_MAX;
		m.last_retire = now;
	}
	if (idle > (size_t)c->workers.max_spare) {
		m.spawn_rate = 1;
		return false;
	}
	if (idle >= (size_t)c->workers.min_spare) {
		m.spawn_rate = 1;
		return false;
	}
	if (now < m.spawn_pause_until)
		return true;
	/* max bounds every live worker, old generations' included. */
	size_t want = (size_t)c->workers.min_spare - idle;
	size_t nworkers = m.nchildren - m.nhubs;
	size_t room = nworkers < (size_t)c->workers.max ?
	    (size_t)c->workers.max - nworkers : 0;
	size_t n = want < room ? want : room;
	if (n > (size_t)m.spawn_rate)
		n = (size_t)m.spawn_rate;
	for (size_t i = 0; i < n; i++)
		if (!worker_spawn(g))
			break;
	if (room == 0) {
		if (now - m.last_full_log >= POOL_FULL_LOG_MS) {
			log_warnx("pool-full workers=%zu max=%d: clients wait in the listen backlog",
			    nworkers, c->workers.max);
			m.last_full_log = now;
		}
		return false;	/* nothing to do until a worker exits */
	}
	if (m.spawn_rate < MAX_SPAWN_RATE)
		m.spawn_rate *= 2;
	return true;
}

static void
log_child_exit(const struct child *c, int status, int slot_state)
{
	if (WIFSIGNALED(status))
		log_warnx("worker-exit pid=%ld generation=%u status=signal:%d state=%s",
		    (long)c->pid, c->gen->id, WTERMSIG(status),
		    slot_state == SB_BUSY ? "busy" : "idle");
	else if (WEXITSTATUS(status) != 0)
		log_warnx("worker-exit pid=%ld generation=%u status=exit:%d",
		    (long)c->pid, c->gen->id, WEXITSTATUS(status));
	else
		log_debug("worker-exit pid=%ld generation=%u status=exit:0",
		    (long)c->pid, c->gen->id);
}

/* Sessions a hub held are gone with it: its clients see the close. */
static void
log_hub_exit(const struct child *c, int status)
{
	if (WIFSIGNALED(status))
		log_warnx("hub-exit pid=%ld generation=%u status=signal:%d: "
		    "its parked sessions are lost", (long)c->pid, c->gen->id,
		    WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		log_warnx("hub-exit pid=%ld generation=%u status=exit:%d: "
		    "its parked sessions are lost", (long)c->pid, c->gen->id,
		    WEXITSTATUS(status));
	else
		log_debug("hub-exit pid=%ld generation=%u status=exit:0",
		    (long)c->pid, c->gen->id);
}

static void
reap_hub(const struct child *c, int status)
{
	struct generation *g = c->gen;

	log_hub_exit(c, status);
	g->hubs[c->slot].pid = 0;
	g->livehubs--;
	m.nhubs--;
	/* Only the current generation's hubs come back to work; other
	 * channels are drained of what waits there, or shut. */
	if (g != m.current || m.stopping)
		hub_drain_or_shut(g, (size_t)c->slot);
}

/* A worker that cannot even start would be respawned in a tight loop:
 * after a few in a row, wait before trying again. */
static void
note_start_failure(int status, int slot_state)
{
	bool failed = slot_state == SB_STARTING &&
	    !(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	if (!failed) {
		m.start_failures = 0;
		return;
	}
	if (++m.start_failures >= 5) {
		log_warnx("workers keep failing at start: pausing spawns for 5 s");
		m.spawn_pause_until = io_now_ms() + 5000;
		m.start_failures = 0;
	}
}

static void
master_reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < m.nchildren; i++) {
			struct child c = m.children[i];
			struct sb_slot *slot;
			int st;

			if (c.pid != pid)
				continue;
			m.children[i] = m.children[--m.nchildren];
			if (c.role == CHILD_HUB) {
				reap_hub(&c, status);
				break;
			}
			slot = &c.gen->sb->slots[c.slot];
			st = atomic_load(&slot->state);
			log_child_exit(&c, status, st);
			note_start_failure(status, st);
			scoreboard_set_state(c.gen->sb, slot, SB_FREE);
			slots_put(&c.gen->slots, c.slot);
			c.gen->nworkers--;
			break;
		}
	}
	generation_collect();
}

static FILE *
memstream(char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);

	if (f == NULL)
		fatal("open_memstream");
	return f;
}

void
master_log_config_errors(const char *text)
{
	const char *line = text;

	while (line != NULL && *line != '\0') {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);

		if (memmem(line, (size_t)len, ": warning: ", 11) != NULL)
			log_notice("config-warning %.*s", len, line);
		else
			log_warnx("config-error %.*s", len, line);
		line = nl ? nl + 1 : NULL;
	}
}

static void
master_reload(void)
{
	const char *path = m.current->conf->path;
	struct listen_set next = { NULL, 0 };
	struct generation *g;
	struct config *conf;
	char *text = NULL;
	size_t len = 0;
	FILE *errs = memstream(&text, &len);

	conf = config_load(path, errs);
	if (conf != NULL && listener_set_build(&m.listeners, conf, &next,
	    errs) == -1) {
		config_free(conf);
		conf = NULL;
	}
	fclose(errs);
	master_log_config_errors(text);
	free(text);
	if (conf == NULL || (g = generation_new(conf, &next)) == NULL) {
		if (conf != NULL) {
			listener_set_discard(&m.listeners, &next);
			config_free(conf);
		}
		log_warnx("reload-failed config=%s: still serving generation %u",
		    path, m.current->id);
		return;
	}
	/* Children forked from here on inherit the new log settings. */
	log_set_level(m.debug ? LOG_DEBUG : conf->log.level);
	log_set_facility(conf->log.facility);
	m.current->next = m.draining;
	m.draining = m.current;
	/* Old hubs shut their channels themselves when told to retire, and
	 * still take what was queued; a slot without a hub is drained. */
	signal_children(m.draining, SIGUSR1);
	for (size_t i = 0; i < m.draining->nhubs; i++)
		hub_drain_or_shut(m.draining, i);
	listener_set_commit(&m.listeners, &next, conf);
	m.current = g;
	/* Before the workers, which inherit the channels. */
	(void)hubs_maintain();
	log_info("reload generation=%u config=%s", g->id, path);
	generation_collect();
}

static void
master_stop(int sig)
{
	if (m.stopping)
		return;
	m.stopping = true;
	/* Workers end their sessions when their own grace runs out and log
	 * them; the master's deadline, a little later, is the backstop. */
	m.stop_deadline = io_now_ms() +
	    (int64_t)m.current->conf->timeouts.shutdown * 1000 + 2000;
	listener_set_close(&m.listeners);
	log_info("stop signal=%s workers=%zu hubs=%zu",
	    sig == SIGINT ? "INT" : "TERM", m.nchildren - m.nhubs, m.nhubs);
	signal_children(NULL, SIGTERM);
	for (struct generation *g = m.current; g != NULL;
	    g = g == m.current ? m.draining : g->next)
		for (size_t i = 0; i < g->nhubs; i++)
			hub_drain_or_shut(g, i);
}

static void
master_signals(void)
{
	struct signalfd_siginfo si;
	ssize_t n;

	while ((n = read(m.sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			master_reap();
			break;
		case SIGHUP:
			if (!m.stopping)
				master_reload();
			break;
		case SIGTERM:
		case SIGINT:
			master_stop((int)si.ssi_signo);
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

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	sigdelset(&set, SIGUSR1);
	m.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m.sigfd == -1)
		fatal("signalfd");
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pipe2");
	m.notify_rd = p[0];
	m.notify_wr = p[1];
	m.spawn_rate = 1;
	m.idle_low = SIZE_MAX;
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
	const struct config *c = m.current->conf;

	for (size_t i = 0; i < c->nlisteners; i++) {
		addr_format((const struct sockaddr *)&c->listeners[i].addr, one,
		    sizeof(one));
		if (i > 0)
			strcat(list, ",");
		strcat(list, one);
	}
	log_info("start version=%s config=%s listeners=%s workers=%zu user=%s",
	    SOCKS5D_VERSION, c->path, list, m.current->nworkers,
	    priv_switches_user() ? c->user : "(unchanged)");
}

/* Waits for signals, wake-ups from workers, or the next tick. */
static void
master_wait(bool fast)
{
	struct pollfd pfd[2] = {
		{ .fd = m.sigfd, .events = POLLIN },
		{ .fd = m.notify_rd, .events = POLLIN },
	};
	int timeout = fast ? FAST_TICK_MS : TICK_MS;

	if (m.stopping) {
		int64_t left = m.stop_deadline - io_now_ms();
		/* After the deadline, only reaping is left: no spinning. */
		timeout = left < FAST_TICK_MS ? FAST_TICK_MS :
		    left < TICK_MS ? (int)left : TICK_MS;
	}
	if (poll(pfd, 2, timeout) == -1 && errno != EINTR)
		fatal("poll");
	if (pfd[1].revents & POLLIN)
		drain_notify();
	if (pfd[0].revents & POLLIN)
		master_signals();
}

static void
master_finish_stop(void)
{
	if (!m.killed && io_now_ms() >= m.stop_deadline && m.nchildren > 0) {
		log_warnx("stop: %zu children still busy after the grace: killing them",
		    m.nchildren);
		signal_children(NULL, SIGKILL);
		m.killed = true;
	}
}

int
master_run(struct config *conf, bool foreground, bool debug)
{
	struct listen_set none = { NULL, 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *errs = memstream(&text, &len);
	bool fast = false;
	int rc;

	m.debug = debug;
	rc = listener_set_build(&none, conf, &m.listeners, errs);
	fclose(errs);
	if (rc == -1) {
		master_log_config_errors(text);
		free(text);
		config_free(conf);
		return 1;
	}
	free(text);
	if (!foreground && daemon(0, 0) == -1)
		fatal("daemon");
	master_setup();
	if ((m.current = generation_new(conf, &m.listeners)) == NULL)
		fatalx("cannot start");
	(void)hubs_maintain();
	while (pool_idle(m.current) < (size_t)conf->workers.min_spare &&
	    worker_spawn(m.current))
		;
	log_start();
	while (!m.stopping || m.nchildren > 0) {
		master_wait(fast);
		if (m.stopping) {
			master_finish_stop();
		} else {
			fast = pool_maintain();
			fast |= hubs_maintain();
		}
	}
	log_info("exit");
	generation_free(m.current);
	while (m.draining != NULL) {
		struct generation *g = m.draining;
		m.draining = g->next;
		generation_free(g);
	}
	free(m.children);
	close(m.sigfd);
	close(m.notify_rd);
	close(m.notify_wr);
	return 0;
}
