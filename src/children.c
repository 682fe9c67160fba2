/* children.c: forking a child of any role from its table row, and reaping. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "children.h"
#include "io.h"
#include "limits_shm.h"
#include "log.h"
#include "priv.h"

#define MAX_REGISTERED 8

static struct {
	const struct role *roles;
	struct children_env env;
	struct child *v;
	size_t n, cap;
	struct { int fd; unsigned kept_by; } fds[MAX_REGISTERED];
	struct { void *addr; size_t len; unsigned kept_by; } maps[MAX_REGISTERED];
	size_t nfds, nmaps;
} tab;

void
children_register_fd(int fd, unsigned kept_by)
{
	if (tab.nfds == MAX_REGISTERED)
		fatalx("children: too many registered fds");
	tab.fds[tab.nfds].fd = fd;
	tab.fds[tab.nfds++].kept_by = kept_by;
}

void
children_register_map(void *addr, size_t len, unsigned kept_by)
{
	if (tab.nmaps == MAX_REGISTERED)
		fatalx("children: too many registered mappings");
	tab.maps[tab.nmaps].addr = addr;
	tab.maps[tab.nmaps].len = len;
	tab.maps[tab.nmaps++].kept_by = kept_by;
}

void
children_unregister_fd(int fd)
{
	for (size_t i = 0; i < tab.nfds; i++)
		if (tab.fds[i].fd == fd) {
			tab.fds[i] = tab.fds[--tab.nfds];
			return;
		}
}

void
children_unregister_map(void *addr)
{
	for (size_t i = 0; i < tab.nmaps; i++)
		if (tab.maps[i].addr == addr) {
			tab.maps[i] = tab.maps[--tab.nmaps];
			return;
		}
}

int
children_kept_fd(unsigned bit)
{
	for (size_t i = 0; i < tab.nfds; i++)
		if (tab.fds[i].kept_by & bit)
			return tab.fds[i].fd;
	return -1;
}

/* What row r does not keep of the registered fds and mappings. */
static void
children_detach_registered(const struct role *r)
{
	for (size_t i = 0; i < tab.nfds; i++)
		if (!(tab.fds[i].kept_by & r->keeps)) {
			close(tab.fds[i].fd);
			tab.fds[i].fd = -1;
		}
	for (size_t i = 0; i < tab.nmaps; i++)
		if (!(tab.maps[i].kept_by & r->keeps))
			munmap(tab.maps[i].addr, tab.maps[i].len);
}

/* The table is data that the code trusts: a row that cannot work is a
 * programming error, found at start. A privileged row gets nothing that
 * clients reach (listeners, the scoreboard, the channels to hubs). */
static void
children_check_row(const struct role *r)
{
	if (r->name == NULL || r->enter == NULL)
		fatalx("role table: a row without name or entry");
	if (r->respawn == RESPAWN_SLOT && r->respawn_ms <= 0)
		fatalx("role table: %s: respawned per slot with no delay",
		    r->name);
	if (r->privileged && (r->keeps & (KEEP_LISTENERS | KEEP_SCOREBOARD |
	    KEEP_HUB_END | KEEP_WORKER_END | KEEP_AUTH_WORKER_END)))
		fatalx("role table: %s: privileged and client-facing", r->name);
	if (!r->privileged && (r->keeps & (KEEP_AUTH_END | KEEP_AUTH_SHARED)))
		fatalx("role table: %s: unprivileged with the helpers' end",
		    r->name);
}

void
children_init(const struct role *roles, const struct children_env *env)
{
	for (int i = 0; i < ROLE_COUNT; i++)
		children_check_row(&roles[i]);
	tab.roles = roles;
	tab.env = *env;
}

const struct role *
children_role(enum child_role role)
{
	return &tab.roles[role];
}

static void
children_add(pid_t pid, struct generation *g, int slot, enum child_role role)
{
	if (tab.n == tab.cap) {
		size_t cap = tab.cap ? tab.cap * 2 : 64;
		struct child *c = reallocarray(tab.v, cap, sizeof(*c));
		if (c == NULL)
			fatal("reallocarray");
		tab.v = c;
		tab.cap = cap;
	}
	tab.v[tab.n++] = (struct child){ pid, g, slot, role, false };
	g->nchildren++;
}

/* The channel end that row r keeps for slot of g, or -1. */
static int
children_chan_kept(const struct role *r, const struct generation *g, int slot)
{
	if (g->nhubs == 0)
		return -1;
	if (r->keeps & KEEP_HUB_END)
		return g->hubs[slot].chan[CHAN_HUB];
	if (r->keeps & KEEP_WORKER_END)
		return g->hubs[(size_t)slot % g->nhubs].chan[CHAN_WORKER];
	return -1;
}

/* In the child after fork: lets go of what row r does not keep. */
static void
children_detach(const struct role *r, const struct generation *own, int keep)
{
	close(tab.env.sigfd);
	close(tab.env.notify_rd);
	if (!(r->keeps & KEEP_NOTIFY))
		close(tab.env.notify_wr);
	if (!(r->keeps & KEEP_LISTENERS))
		for (size_t i = 0; i < tab.env.listeners->n; i++)
			close(tab.env.listeners->socks[i].fd);
	for (struct generation *g = generation_first(); g != NULL;
	    g = generation_next(g)) {
		if (g != own || !(r->keeps & KEEP_SCOREBOARD))
			scoreboard_destroy(g->sb);
		for (size_t i = 0; i < g->nhubs; i++)
			for (int e = 0; e < 2; e++)
				if (g->hubs[i].chan[e] != keep)
					close(g->hubs[i].chan[e]);
	}
	children_detach_registered(r);
}

/* fork failing (EAGAIN under RLIMIT_NPROC or the pid limit, ENOMEM): one
 * line per FORK_LOG_MS with the failures since the last one, and one when
 * a fork works again; the callers retry with their own backoff. */
#define FORK_LOG_MS 10000

static struct {
	int64_t last_log;
	unsigned long failures, unlogged;
} fork_fail;

static void
children_fork_failed(const struct role *r, int err)
{
	int64_t now = io_now_ms();

	fork_fail.failures++;
	if (fork_fail.last_log != 0 && now - fork_fail.last_log < FORK_LOG_MS) {
		fork_fail.unlogged++;
		return;
	}
	log_warnx("fork-failed role=%s error=\"%s\" failures=%lu not-logged=%lu: "
	    "serving with the %zu workers running, retrying with backoff",
	    r->name, strerror(err), fork_fail.failures, fork_fail.unlogged,
	    children_count(ROLE_WORKER));
	fork_fail.last_log = now;
	fork_fail.unlogged = 0;
}

static void
children_fork_worked(const struct role *r)
{
	if (fork_fail.failures == 0)
		return;
	log_info("fork-recovered role=%s failures=%lu", r->name,
	    fork_fail.failures);
	fork_fail.failures = fork_fail.unlogged = 0;
	fork_fail.last_log = 0;
}

pid_t
children_spawn(enum child_role role, struct generation *g, int slot)
{
	const struct role *r = &tab.roles[role];
	pid_t pid, master = getpid();

	pid = fork();
	if (pid == -1) {
		children_fork_failed(r, errno);
		return -1;
	}
	if (pid == 0) {
		struct child_start cs = {
			.gen = g, .slot = slot, .master = master,
			.chan_fd = children_chan_kept(r, g, slot),
			.notify_fd = r->keeps & KEEP_NOTIFY ?
			    tab.env.notify_wr : -1,
		};
		log_set_role(r->name);
		children_detach(r, g, cs.chan_fd);
		if (!r->privileged)
			priv_drop(g->conf, master, r->name);
		r->enter(&cs);
		fatalx("%s: its main returned", r->name);
	}
	children_fork_worked(r);
	children_add(pid, g, slot, role);
	return pid;
}

/* The signal's name and, for SIGSYS (the kernel's answer to a system
 * call the seccomp filter forbids), why: " signal=SIGSYS reason=seccomp".
 * Which call it was is not known to the master. */
static void
children_signal_text(int sig, char *buf, size_t len)
{
	const char *name = sigabbrev_np(sig);

	snprintf(buf, len, " signal=%s%s%s", name != NULL ? "SIG" : "",
	    name != NULL ? name : "unknown",
	    sig == SIGSYS ? " reason=seccomp" : "");
}

/* One line per exit, the same for every role: abnormal ones at warning
 * level, with what they cost; clean ones at debug level. */
static void
children_log_exit(const struct role *r, const struct child *c, int status,
    const char *state)
{
	const char *lost = r->lost != NULL ? r->lost : "";
	char sig[64];

	if (WIFSIGNALED(status)) {
		children_signal_text(WTERMSIG(status), sig, sizeof(sig));
		log_warnx("%s-exit pid=%ld generation=%u status=signal:%d%s%s%s",
		    r->name, (long)c->pid, c->gen->id, WTERMSIG(status), sig,
		    state != NULL ? state : "", lost);
	} else if (WEXITSTATUS(status) != 0)
		log_warnx("%s-exit pid=%ld generation=%u status=exit:%d%s",
		    r->name, (long)c->pid, c->gen->id, WEXITSTATUS(status),
		    lost);
	else
		log_debug("%s-exit pid=%ld generation=%u status=exit:0",
		    r->name, (long)c->pid, c->gen->id);
}

void
children_reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < tab.n; i++) {
			struct child c = tab.v[i];
			const struct role *r = &tab.roles[c.role];

			if (c.pid != pid)
				continue;
			tab.v[i] = tab.v[--tab.n];
			c.gen->nchildren--;
			/* What it held of the limits (a killed worker's
			 * session, a hub's parked ones) is given back. */
			limits_heal(pid);
			children_log_exit(r, &c, status,
			    r->exit_state != NULL ? r->exit_state(&c) : NULL);
			if (r->reaped != NULL)
				r->reaped(&c, status);
			break;
		}
	}
	if (pid == -1 && errno != ECHILD)
		log_warn("waitpid");
}

void
children_signal(const struct generation *g, int sig)
{
	for (size_t i = 0; i < tab.n; i++)
		if (g == NULL || tab.v[i].gen == g)
			kill(tab.v[i].pid, sig);
}

size_t
children_count(enum child_role role)
{
	size_t n = 0;

	for (size_t i = 0; i < tab.n; i++)
		n += tab.v[i].role == role;
	return n;
}

size_t
children_total(void)
{
	return tab.n;
}

size_t
children_counted(void)
{
	size_t n = 0;

	for (size_t i = 0; i < tab.n; i++)
		n += tab.roles[tab.v[i].role].counted;
	return n;
}

struct child *
children_table(size_t *n)
{
	*n = tab.n;
	return tab.v;
}

void
children_free(void)
{
	free(tab.v);
	tab.v = NULL;
	tab.n = tab.cap = 0;
}
