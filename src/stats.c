/* stats.c: the counters since start. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "io.h"
#include "log.h"
#include "stats.h"

static struct stats *st;
static struct stats_hub *own_hub;
static struct stats_parked *parked;	/* STATS_MAX_PARKED rows */

void
stats_init(void)
{
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st == MAP_FAILED)
		fatal("mmap stats");
	st->start_ms = io_now_ms();
	st->start_wall = (int64_t)time(NULL);
	/* 12 MiB of address space; only the rows in use are touched. */
	parked = mmap(NULL, STATS_MAX_PARKED * sizeof(*parked),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
	    -1, 0);
	if (parked == MAP_FAILED)
		fatal("mmap parked sessions");
}

struct stats_parked *
stats_parked_table(size_t *nrows)
{
	*nrows = st != NULL ? atomic_load(&st->parked_rows) : 0;
	return parked;
}

struct stats_parked *
stats_parked_add(const struct audit_record *rec)
{
	pid_t self = getpid();
	size_t n;

	if (parked == NULL)
		return NULL;
	/* First fit, so that the rows in use stay at the start and a reader
	 * touches no more of the mapping than the most sessions ever parked
	 * at once needed. */
	for (size_t i = 0; i < STATS_MAX_PARKED; i++) {
		struct stats_parked *row = &parked[i];
		uint32_t used = atomic_load(&st->parked_rows);
		pid_t none = 0;

		if (!atomic_compare_exchange_strong(&row->pid, &none, self))
			continue;
		while (used < i + 1 && !atomic_compare_exchange_weak(
		    &st->parked_rows, &used, (uint32_t)(i + 1)))
			;
		row->sid = rec->sid;
		row->start_ms = rec->start_ms;
		row->cmd = rec->cmd;
		addr_format((const struct sockaddr *)&rec->client, row->client,
		    sizeof(row->client));
		row->user[0] = '\0';
		if (rec->user_len > 0)
			log_escape(row->user, sizeof(row->user), rec->user,
			    rec->user_len);
		n = strnlen(rec->dst, sizeof(row->dst) - 1);
		memcpy(row->dst, rec->dst, n);
		row->dst[n] = '\0';
		stats_parked_bytes(row, rec->up, rec->down);
		return row;
	}
	return NULL;
}

void
stats_parked_bytes(struct stats_parked *row, uint64_t up, uint64_t down)
{
	if (row == NULL)
		return;
	atomic_store_explicit(&row->up, up, memory_order_relaxed);
	atomic_store_explicit(&row->down, down, memory_order_relaxed);
}

void
stats_parked_remove(struct stats_parked *row)
{
	if (row != NULL)
		atomic_store(&row->pid, 0);
}

struct stats *
stats_get(void)
{
	return st;
}

void
stats_session_end(const struct audit_record *rec)
{
	unsigned end = (unsigned)rec->end;

	if (st == NULL)
		return;
	atomic_fetch_add_explicit(&st->sessions, 1, memory_order_relaxed);
	if (end < STATS_MAX_ENDS)
		atomic_fetch_add_explicit(&st->ends[end], 1,
		    memory_order_relaxed);
	atomic_fetch_add_explicit(&st->up, rec->up, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->down, rec->down, memory_order_relaxed);
}

uint64_t
stats_next_sid(void)
{
	/* cppcheck-suppress unassignedVariable ; static: starts at 0 */
	static uint64_t local;

	if (st == NULL)
		return ++local;
	return atomic_fetch_add_explicit(&st->next_sid, 1,
	    memory_order_relaxed) + 1;
}

void
stats_auth_fail(void)
{
	if (st != NULL)
		atomic_fetch_add_explicit(&st->auth_fail, 1,
		    memory_order_relaxed);
}

void
stats_auth_hash_reused(void)
{
	if (st != NULL)
		atomic_fetch_add_explicit(&st->hash_reused, 1,
		    memory_order_relaxed);
}

void
stats_hub_claim(void)
{
	pid_t self = getpid();

	if (st == NULL)
		return;
	for (size_t i = 0; i < STATS_MAX_HUBS; i++) {
		pid_t none = 0;

		if (atomic_compare_exchange_strong(&st->hubs[i].pid, &none,
		    self)) {
			own_hub = &st->hubs[i];
			atomic_store(&own_hub->parked, 0);
			return;
		}
	}
	log_debug("stats: no free hub entry: its sessions are not counted");
}

void
stats_hub_parked(int delta)
{
	if (own_hub == NULL)
		return;
	if (delta > 0) {
		atomic_fetch_add(&own_hub->parked, (uint32_t)delta);
		atomic_fetch_add_explicit(&st->parked, (uint64_t)delta,
		    memory_order_relaxed);
	} else {
		atomic_fetch_sub(&own_hub->parked, (uint32_t)-delta);
	}
}

void
stats_hub_release(pid_t pid)
{
	if (st == NULL || pid <= 0)
		return;
	for (size_t i = 0; i < STATS_MAX_HUBS; i++)
		if (atomic_load(&st->hubs[i].pid) == pid) {
			atomic_store(&st->hubs[i].parked, 0);
			atomic_store(&st->hubs[i].pid, 0);
		}
	for (size_t i = 0; parked != NULL && i < atomic_load(&st->parked_rows);
	    i++)
		if (atomic_load_explicit(&parked[i].pid, memory_order_relaxed) ==
		    pid)
			atomic_store(&parked[i].pid, 0);
}

uint64_t
stats_parked_now(void)
{
	uint64_t n = 0;

	if (st == NULL)
		return 0;
	for (size_t i = 0; i < STATS_MAX_HUBS; i++)
		if (atomic_load(&st->hubs[i].pid) != 0)
			n += atomic_load(&st->hubs[i].parked);
	return n;
}
