/* status.c: the master's status report and metrics. Strings from the
 * scoreboard were written by workers: they are shown only through
 * status_clean, so that no worker can forge a line of the report. */
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "audit.h"
#include "children.h"
#include "generation.h"
#include "io.h"
#include "socks5.h"
#include "stats.h"
#include "status.h"

struct pool_counts {
	size_t starting, idle, busy;
};

static struct pool_counts
pool_counts(void)
{
	struct pool_counts pc = { 0, 0, 0 };

	for (struct generation *g = generation_first(); g != NULL;
	    g = generation_next(g)) {
		pc.starting += scoreboard_count(g->sb, SB_STARTING);
		pc.idle += scoreboard_count(g->sb, SB_IDLE);
		pc.busy += scoreboard_count(g->sb, SB_BUSY);
	}
	return pc;
}

/* A copy of a worker-written string of cap bytes, NUL-terminated, with
 * every byte outside printable ASCII (and the space) shown as '?'; "-"
 * when empty. */
static const char *
status_clean(char *out, const char *in, size_t cap)
{
	size_t n = 0;

	for (; n < cap && in[n] != '\0'; n++)
		out[n] = (char)(in[n] > 0x20 && in[n] < 0x7f ? in[n] : '?');
	out[n] = '\0';
	return n > 0 ? out : "-";
}

/* Seconds since start_ms, which workers and hubs write in shared memory:
 * a time outside [0, now] counts as now, so the master's subtraction
 * cannot overflow whatever a child wrote. */
static int64_t
status_age_secs(int64_t now, int64_t start_ms)
{
	if (start_ms < 0 || start_ms > now)
		return 0;
	return (now - start_ms) / 1000;
}

static void
status_slot(FILE *out, const struct sb_slot *slot, int64_t now)
{
	char client[ADDR_STRLEN], dst[sizeof(slot->dst) + 1];
	char user[sizeof(slot->user) + 1];
	struct sockaddr_storage peer = slot->client;
	int cmd = atomic_load(&slot->cmd);

	if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6)
		strcpy(client, "-");
	else
		addr_format((struct sockaddr *)&peer, client, sizeof(client));
	fprintf(out, "session sid=%" PRIu64 " pid=%ld client=%s user=%s cmd=%s "
	    "dst=%s up=%" PRIu64 " down=%" PRIu64 " secs=%" PRId64 " parked=0\n",
	    cmd >= 0 ? slot->sid : 0, (long)slot->pid, client,
	    status_clean(user, slot->user, sizeof(slot->user)),
	    cmd >= 0 && cmd <= 0xff ? socks5_cmd_name((uint8_t)cmd) : "-",
	    status_clean(dst, slot->dst, sizeof(slot->dst)),
	    atomic_load(&slot->up), atomic_load(&slot->down),
	    status_age_secs(now, slot->session_start_ms));
}

/* A parked session's row, written by its hub. */
static void
status_parked(FILE *out, const struct stats_parked *row, int64_t now)
{
	char client[sizeof(row->client) + 1], user[sizeof(row->user) + 1];
	char dst[sizeof(row->dst) + 1];

	fprintf(out, "session sid=%" PRIu64 " pid=%ld client=%s user=%s cmd=%s "
	    "dst=%s up=%" PRIu64 " down=%" PRIu64 " secs=%" PRId64 " parked=1\n",
	    row->sid, (long)atomic_load(&row->pid),
	    status_clean(client, row->client, sizeof(row->client)),
	    status_clean(user, row->user, sizeof(row->user)),
	    row->cmd >= 0 && row->cmd <= 0xff ?
	    socks5_cmd_name((uint8_t)row->cmd) : "-",
	    status_clean(dst, row->dst, sizeof(row->dst)),
	    atomic_load(&row->up), atomic_load(&row->down),
	    status_age_secs(now, row->start_ms));
}

void
status_write(FILE *out, bool stopping)
{
	struct stats *st = stats_get();
	struct generation *cur = generation_current();
	struct pool_counts pc = pool_counts();
	int64_t now = io_now_ms();
	size_t nrows;
	const struct stats_parked *rows = stats_parked_table(&nrows);

	fprintf(out, "daemon version=%s pid=%ld generation=%u uptime=%" PRId64
	    " stopping=%d\n", SOCKS5D_VERSION, (long)getpid(), cur->id,
	    status_age_secs(now, st->start_ms), stopping ? 1 : 0);
	fprintf(out, "pool workers=%zu starting=%zu idle=%zu busy=%zu max=%d "
	    "hubs=%zu parked=%" PRIu64 " helpers=%zu\n",
	    children_count(ROLE_WORKER), pc.starting, pc.idle, pc.busy,
	    cur->conf->workers.max, children_count(ROLE_HUB),
	    stats_parked_now(), children_count(ROLE_AUTH));
	fprintf(out, "totals sessions=%" PRIu64 " up=%" PRIu64 " down=%" PRIu64
	    " parked=%" PRIu64 " auth_fail=%" PRIu64 " hashes_reused=%" PRIu64
	    "\n", atomic_load(&st->sessions), atomic_load(&st->up),
	    atomic_load(&st->down), atomic_load(&st->parked),
	    atomic_load(&st->auth_fail), atomic_load(&st->hash_reused));
	for (struct generation *g = generation_first(); g != NULL;
	    g = generation_next(g))
		for (size_t i = 0; i < g->sb->nslots; i++)
			if (atomic_load(&g->sb->slots[i].state) == SB_BUSY)
				status_slot(out, &g->sb->slots[i], now);
	for (size_t i = 0; rows != NULL && i < nrows && i < STATS_MAX_PARKED; i++)
		if (atomic_load_explicit(&rows[i].pid, memory_order_relaxed) != 0)
			status_parked(out, &rows[i], now);
}

static void
metric(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP socks5d_%s %s\n# TYPE socks5d_%s %s\n", name,
	    help, name, type);
}

static void
metrics_totals(FILE *out, const struct stats *st)
{
	metric(out, "sessions_total", "counter",
	    "Sessions ended since start, by end reason.");
	/* Not ended (NONE) is logged as end=error too: one series. */
	for (unsigned e = 1; e < STATS_MAX_ENDS; e++) {
		uint64_t n = atomic_load(&st->ends[e]) + (e == AUDIT_END_ERROR ?
		    atomic_load(&st->ends[AUDIT_END_NONE]) : 0);
		const char *name = audit_end_name((enum audit_end)e);

		if (n > 0 || e == AUDIT_END_CLIENT)
			fprintf(out, "socks5d_sessions_total{end=\"%s\"} %" PRIu64
			    "\n", name, n);
	}
	metric(out, "bytes_total", "counter",
	    "Bytes relayed by ended sessions, by direction.");
	fprintf(out, "socks5d_bytes_total{direction=\"up\"} %" PRIu64 "\n"
	    "socks5d_bytes_total{direction=\"down\"} %" PRIu64 "\n",
	    atomic_load(&st->up), atomic_load(&st->down));
	metric(out, "parked_total", "counter",
	    "Sessions handed to a hub since start.");
	fprintf(out, "socks5d_parked_total %" PRIu64 "\n",
	    atomic_load(&st->parked));
	metric(out, "auth_failures_total", "counter",
	    "Failed username/password logins since start.");
	fprintf(out, "socks5d_auth_failures_total %" PRIu64 "\n",
	    atomic_load(&st->auth_fail));
	metric(out, "auth_hashes_reused_total", "counter",
	    "Password hashes a PAM module asked for twice, computed once "
	    "(auth.hash_once).");
	fprintf(out, "socks5d_auth_hashes_reused_total %" PRIu64 "\n",
	    atomic_load(&st->hash_reused));
}

void
status_write_metrics(FILE *out, bool stopping)
{
	struct stats *st = stats_get();
	struct pool_counts pc = pool_counts();

	metric(out, "start_time_seconds", "gauge",
	    "When the daemon started, in seconds since the epoch.");
	fprintf(out, "socks5d_start_time_seconds %" PRId64 "\n",
	    st->start_wall);
	metric(out, "generation", "gauge", "The current configuration generation.");
	fprintf(out, "socks5d_generation %u\n", generation_current()->id);
	metric(out, "stopping", "gauge", "1 while the daemon stops.");
	fprintf(out, "socks5d_stopping %d\n", stopping ? 1 : 0);
	metric(out, "workers", "gauge", "Worker processes, by state.");
	fprintf(out, "socks5d_workers{state=\"starting\"} %zu\n"
	    "socks5d_workers{state=\"idle\"} %zu\n"
	    "socks5d_workers{state=\"busy\"} %zu\n",
	    pc.starting, pc.idle, pc.busy);
	metric(out, "workers_max", "gauge", "workers.max of the current generation.");
	fprintf(out, "socks5d_workers_max %d\n",
	    generation_current()->conf->workers.max);
	metric(out, "hubs", "gauge", "Hub processes.");
	fprintf(out, "socks5d_hubs %zu\n", children_count(ROLE_HUB));
	metric(out, "auth_helpers", "gauge", "Auth helper processes.");
	fprintf(out, "socks5d_auth_helpers %zu\n", children_count(ROLE_AUTH));
	metric(out, "live_sessions", "gauge",
	    "Live sessions: run by a worker, or parked in a hub.");
	fprintf(out, "socks5d_live_sessions{state=\"active\"} %zu\n"
	    "socks5d_live_sessions{state=\"parked\"} %" PRIu64 "\n", pc.busy,
	    stats_parked_now());
	metrics_totals(out, st);
}
