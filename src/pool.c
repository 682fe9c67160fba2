/* pool.c: the worker pool policy: between min_spare and max_spare idle
 * workers, never more than workers.max, spawning fast and retiring slowly. */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "authchan.h"
#include "pool.h"
#include "worker.h"

#define MAX_SPAWN_RATE 64
#define POOL_FULL_LOG_MS 60000
#define RETIRE_MS 2000
#define START_FAILURES 5	/* in a row, before spawns pause */
#define START_PAUSE_MS 5000
#define FORK_BACKOFF_MIN_MS 100	/* after a failed fork, doubling */
#define FORK_BACKOFF_MAX_MS 4000

static struct {
	int spawn_rate;			/* workers per tick while short */
	int start_failures;		/* workers in a row that died starting */
	int64_t spawn_pause_until;
	int fork_backoff_ms;		/* 0 while forks work */
	int64_t last_full_log;
	int64_t last_retire;
	size_t idle_low;		/* fewest idle workers since last_retire */
} pool = { .spawn_rate = 1, .idle_low = SIZE_MAX };

/* The slot comes from the master's own record: a worker that writes
 * SB_FREE into its scoreboard slot does not get it given away. */
static bool
pool_spawn(struct generation *g)
{
	int idx = slots_take(&g->slots);
	struct sb_slot *slot;
	pid_t pid;

	if (idx == -1)
		return false;
	slot = &g->sb->slots[idx];
	memset(slot, 0, sizeof(*slot));
	scoreboard_set_state(g->sb, slot, SB_STARTING);
	if ((pid = children_spawn(ROLE_WORKER, g, idx)) == -1) {
		scoreboard_set_state(g->sb, slot, SB_FREE);
		slots_put(&g->slots, idx);
		/* Keep serving with the workers there are; try again later,
		 * later each time (children.c logs it, once per interval). */
		pool.fork_backoff_ms = pool.fork_backoff_ms == 0 ?
		    FORK_BACKOFF_MIN_MS : pool.fork_backoff_ms * 2;
		if (pool.fork_backoff_ms > FORK_BACKOFF_MAX_MS)
			pool.fork_backoff_ms = FORK_BACKOFF_MAX_MS;
		pool.spawn_pause_until = io_now_ms() + pool.fork_backoff_ms;
		return false;
	}
	pool.fork_backoff_ms = 0;
	slot->pid = pid;
	return true;
}

noreturn void
pool_enter(const struct child_start *cs)
{
	struct generation *g = cs->gen;
	struct worker w;

	memset(&w, 0, sizeof(w));
	w.conf = g->conf;
	w.generation = g->id;
	w.sb = g->sb;
	w.slot = &g->sb->slots[cs->slot];
	w.listen_fds = g->fds;
	w.notify_fd = cs->notify_fd;
	w.hub_fd = cs->chan_fd;
	w.hub_tickets = g->nhubs > 0 ?
	    &g->tickets[(size_t)cs->slot % g->nhubs] : NULL;
	/* A worker that has no use for the helpers has no way to them. */
	w.auth_fd = children_kept_fd(KEEP_AUTH_WORKER_END);
	if (w.auth_fd != -1 && !authchan_wanted(g->conf)) {
		close(w.auth_fd);
		w.auth_fd = -1;
	}
	w.slot->pid = getpid();
	worker_main(&w);
}

static size_t
pool_idle(const struct generation *g)
{
	size_t n, idle = 0;
	const struct child *v = children_table(&n);

	for (size_t i = 0; i < n; i++) {
		int st;

		if (v[i].gen != g || v[i].role != ROLE_WORKER || v[i].retiring)
			continue;
		st = atomic_load(&g->sb->slots[v[i].slot].state);
		idle += st == SB_IDLE || st == SB_STARTING;
	}
	return idle;
}

/* Retires n idle workers of g. */
static void
pool_retire(struct generation *g, size_t n)
{
	size_t nc;
	struct child *v = children_table(&nc);

	for (size_t i = 0; i < nc && n > 0; i++) {
		struct child *c = &v[i];

		if (c->gen == g && c->role == ROLE_WORKER && !c->retiring &&
		    atomic_load(&g->sb->slots[c->slot].state) == SB_IDLE) {
			c->retiring = true;
			kill(c->pid, SIGUSR1);
			n--;
		}
	}
}

/* Retires only what stayed idle for a whole period, half of it at a time:
 * retiring on a momentary peak forks again at the next dip. */
static void
pool_shrink(struct generation *g, size_t idle, int64_t now)
{
	size_t max_spare = (size_t)g->conf->workers.max_spare;

	if (idle < pool.idle_low)
		pool.idle_low = idle;
	if (now - pool.last_retire >= RETIRE_MS) {
		if (pool.idle_low > max_spare)
			pool_retire(g, (pool.idle_low - max_spare + 1) / 2);
		pool.idle_low = SIZE_MAX;
		pool.last_retire = now;
	}
}

/* Spawns 1, 2, 4, ... per tick while short of min_spare. Returns whether
 * to tick fast. */
static bool
pool_grow(struct generation *g, size_t idle, int64_t now)
{
	const struct config *c = g->conf;
	/* max bounds every live worker, old generations' included. */
	size_t want = (size_t)c->workers.min_spare - idle;
	size_t nworkers = children_counted();
	size_t can = nworkers < (size_t)c->workers.max ?
	    (size_t)c->workers.max - nworkers : 0;
	size_t n = want < can ? want : can;

	if (n > (size_t)pool.spawn_rate)
		n = (size_t)pool.spawn_rate;
	for (size_t i = 0; i < n; i++)
		if (!pool_spawn(g))
			break;
	if (can == 0) {
		if (now - pool.last_full_log >= POOL_FULL_LOG_MS) {
			log_warnx("pool-full workers=%zu max=%d: clients wait in the listen backlog",
			    nworkers, c->workers.max);
			pool.last_full_log = now;
		}
		return false;	/* nothing to do until a worker exits */
	}
	if (pool.spawn_rate < MAX_SPAWN_RATE)
		pool.spawn_rate *= 2;
	return true;
}

bool
pool_maintain(struct generation *g, bool starting)
{
	size_t idle = pool_idle(g);
	int64_t now = io_now_ms();

	if (starting) {
		while (pool_idle(g) < (size_t)g->conf->workers.min_spare &&
		    pool_spawn(g))
			;
		return false;
	}
	pool_shrink(g, idle, now);
	if (idle > (size_t)g->conf->workers.max_spare ||
	    idle >= (size_t)g->conf->workers.min_spare) {
		pool.spawn_rate = 1;
		return false;
	}
	if (now < pool.spawn_pause_until)
		return true;
	return pool_grow(g, idle, now);
}

const char *
pool_exit_state(const struct child *c)
{
	return atomic_load(&c->gen->sb->slots[c->slot].state) == SB_BUSY ?
	    " state=busy" : " state=idle";
}

/* A worker that cannot even start would be respawned in a tight loop:
 * after a few in a row, wait before trying again. */
static void
pool_note_start(int status, int slot_state)
{
	bool failed = slot_state == SB_STARTING &&
	    !(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	if (!failed) {
		pool.start_failures = 0;
		return;
	}
	if (++pool.start_failures >= START_FAILURES) {
		log_warnx("workers keep failing at start: pausing spawns for 5 s");
		pool.spawn_pause_until = io_now_ms() + START_PAUSE_MS;
		pool.start_failures = 0;
	}
}

void
pool_reaped(const struct child *c, int status)
{
	struct generation *g = c->gen;
	struct sb_slot *slot = &g->sb->slots[c->slot];

	pool_note_start(status, atomic_load(&slot->state));
	scoreboard_set_state(g->sb, slot, SB_FREE);
	slots_put(&g->slots, c->slot);
}
