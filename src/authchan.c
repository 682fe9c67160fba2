/* authchan.c: the auth helpers' channel and shared memory, and their row
 * of the master's table of roles. */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "authcache.h"
#include "authchan.h"
#include "authd.h"
#include "io.h"
#include "log.h"
#include "priv.h"
#include "socks5.h"

#define AUTH_SLOTS	(2 * 64)	/* helpers of two generations at once */
#define AUTH_CACHE_SLOTS 4096
#define STUCK_GRACE_MS	1000		/* past auth.timeout */

static struct {
	int chan[2];			/* [0] the helpers' end, [1] the workers' */
	struct authd_slot *slots;	/* shared: what each helper is doing */
	bool used[AUTH_SLOTS];		/* the master's own record */
	struct auth_cache *cache;	/* NULL until auth.cache_ttl asks for one */
	int64_t last_death;		/* of a helper that did not exit cleanly */
} ac = { .chan = { -1, -1 } };

void
authchan_open(void)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ac.chan) == -1) {
		log_warn("socketpair: logins will fail");
		ac.chan[0] = ac.chan[1] = -1;
		return;
	}
	children_register_fd(ac.chan[0], KEEP_AUTH_END);
	children_register_fd(ac.chan[1], KEEP_AUTH_WORKER_END);
	ac.slots = mmap(NULL, AUTH_SLOTS * sizeof(*ac.slots),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ac.slots == MAP_FAILED) {
		log_warn("mmap: no auth helpers: logins will fail");
		ac.slots = NULL;
		return;
	}
	children_register_map(ac.slots, AUTH_SLOTS * sizeof(*ac.slots),
	    KEEP_AUTH_SHARED);
}

void
authchan_close(void)
{
	for (int i = 0; i < 2; i++)
		if (ac.chan[i] != -1) {
			children_unregister_fd(ac.chan[i]);
			close(ac.chan[i]);
			ac.chan[i] = -1;
		}
	if (ac.slots != NULL) {
		children_unregister_map(ac.slots);
		munmap(ac.slots, AUTH_SLOTS * sizeof(*ac.slots));
		ac.slots = NULL;
	}
	if (ac.cache != NULL) {
		children_unregister_map(ac.cache);
		authcache_destroy(ac.cache);
		ac.cache = NULL;
	}
}

bool
authchan_wanted(const struct config *c)
{
	for (size_t i = 0; i < c->nlisteners; i++)
		for (int j = 0; j < c->listeners[i].nmethods; j++)
			if (c->listeners[i].methods[j] == SOCKS5_METHOD_USERPASS)
				return true;
	return false;
}

/* The cache, made the first time a configuration asks for one. */
static void
ensure_cache(const struct config *c)
{
	size_t bytes;

	if (c->auth.cache_ttl == 0 || ac.cache != NULL)
		return;
	ac.cache = authcache_create(AUTH_CACHE_SLOTS,
	    (const char *const *)c->auth.cache_watch, c->auth.ncache_watch,
	    &bytes);
	if (ac.cache != NULL)
		children_register_map(ac.cache, bytes, KEEP_AUTH_SHARED);
}

static int
free_slot(void)
{
	for (int i = 0; i < AUTH_SLOTS; i++)
		if (!ac.used[i])
			return i;
	return -1;
}

/* A helper busy with one request for longer than auth.timeout is stuck in
 * a PAM module (a directory server that does not answer): its worker gave
 * up already; it is killed and replaced. */
static void
kill_stuck(const struct config *conf)
{
	int64_t now = io_now_ms(), limit = (int64_t)conf->auth.timeout * 1000 +
	    STUCK_GRACE_MS;
	size_t n;
	struct child *v = children_table(&n);

	for (size_t i = 0; i < n; i++) {
		int64_t since;

		if (v[i].role != ROLE_AUTH || v[i].retiring)
			continue;
		since = atomic_load(&ac.slots[v[i].slot].busy_since);
		if (since == 0 || now - since < limit)
			continue;
		log_warnx("auth-helper-stuck pid=%ld secs=%lld: killed",
		    (long)v[i].pid, (long long)((now - since) / 1000));
		v[i].retiring = true;
		kill(v[i].pid, SIGKILL);
	}
}

static size_t
live_helpers(const struct generation *g)
{
	size_t n, live = 0;
	const struct child *v = children_table(&n);

	for (size_t i = 0; i < n; i++)
		live += v[i].role == ROLE_AUTH && v[i].gen == g && !v[i].retiring;
	return live;
}

bool
authchan_maintain(struct generation *g, bool starting)
{
	int64_t now = io_now_ms();
	size_t want = authchan_wanted(g->conf) ? (size_t)g->conf->auth.helpers : 0;
	int slot;

	if (ac.slots == NULL)
		return false;
	kill_stuck(g->conf);
	ensure_cache(g->conf);
	/* After a helper died, wait before the next: one that dies at start
	 * would be forked in a loop. */
	if (!starting && ac.last_death != 0 &&
	    now - ac.last_death < children_role(ROLE_AUTH)->respawn_ms)
		return live_helpers(g) < want;
	while (live_helpers(g) < want) {
		if ((slot = free_slot()) == -1)
			return false;
		atomic_store(&ac.slots[slot].busy_since, 0);
		if (children_spawn(ROLE_AUTH, g, slot) == -1)
			return true;
		ac.used[slot] = true;
	}
	return false;
}

void
authchan_release(struct generation *g, bool stopping)
{
	size_t n;
	struct child *v = children_table(&n);

	if (stopping)
		return;	/* the stop signals every child */
	for (size_t i = 0; i < n; i++)
		if (v[i].role == ROLE_AUTH && v[i].gen == g && !v[i].retiring) {
			v[i].retiring = true;
			kill(v[i].pid, SIGUSR1);
		}
}

noreturn void
authchan_enter(const struct child_start *cs)
{
	const struct config *c = cs->gen->conf;
	struct authd a = {
		.service = c->auth.pam_service,
		.chan = children_kept_fd(KEEP_AUTH_END),
		.index = cs->slot,
		.worker_uid = priv_switches_user() ? c->uid : getuid(),
		.slot = &ac.slots[cs->slot],
		.master = cs->master,
		.cache = c->auth.cache_ttl > 0 ? ac.cache : NULL,
		.cache_ttl = c->auth.cache_ttl,
		.hash_once = c->auth.hash_once,
	};

	authd_main(&a);
}

void
authchan_reaped(const struct child *c, int status)
{
	ac.used[c->slot] = false;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		ac.last_death = io_now_ms();
}
