/* stats.h: counters since the daemon started, in shared memory the master
 * maps once (before any child) and every worker and hub inherits; they
 * outlive reload generations. Workers and hubs add to them when a session
 * ends; hubs keep their parked-session count in an entry of their own. The
 * master only reads them, for `socks5d status` and its metrics, and trusts
 * none of it for process control. */
#ifndef SOCKS5D_STATS_H
#define SOCKS5D_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"

#define STATS_MAX_HUBS	256	/* hub entries: every generation's hubs */
#define STATS_MAX_ENDS	32	/* end reasons counted (enum audit_end) */

struct stats_hub {
	_Atomic pid_t pid;		/* 0: free */
	_Atomic uint32_t parked;	/* sessions it relays now */
};

struct stats {
	int64_t start_ms;		/* monotonic */
	int64_t start_wall;		/* time(2) at start */
	_Atomic uint64_t sessions;	/* ended (logged) sessions */
	_Atomic uint64_t ends[STATS_MAX_ENDS];	/* of those, by end= */
	_Atomic uint64_t up, down;	/* bytes relayed by ended sessions */
	_Atomic uint64_t parked;	/* sessions handed to a hub */
	_Atomic uint64_t auth_fail;	/* failed logins */
	_Atomic uint64_t hash_reused;	/* password hashes answered by hashonce.c */
	_Atomic uint64_t next_sid;	/* session ids given out */
	_Atomic uint32_t parked_rows;	/* rows of the parked table ever
					 * used: readers look no further */
	struct stats_hub hubs[STATS_MAX_HUBS];
};

/* In the master, once, before any child: maps the counters. */
void stats_init(void);
/* The counters (NULL before stats_init, e.g. in unit tests). */
struct stats *stats_get(void);

/* A session ended (its audit line was written). */
void stats_session_end(const struct audit_record *rec);
void stats_auth_fail(void);
void stats_auth_hash_reused(void);
/* A new session id (sid=): unique since start, across generations. */
uint64_t stats_next_sid(void);

/* In a hub: claims an entry for this process; later calls count its
 * parked sessions (+1 when one is taken, -1 when one ends). */
void stats_hub_claim(void);
void stats_hub_parked(int delta);
/* In the master: frees the entry of a hub that exited, and its sessions'
 * rows in the parked table. */
void stats_hub_release(pid_t pid);

/* One parked session, for `socks5d status`: written by its hub (strings
 * escaped and truncated there), read by the master through status_clean. */
#define STATS_MAX_PARKED	65536
struct stats_parked {
	_Atomic pid_t pid;		/* the hub's; 0: a free row */
	uint64_t sid;
	int64_t start_ms;
	int cmd;
	char client[48], user[64], dst[96];
	_Atomic uint64_t up, down;	/* as of the hub's last scan */
};
/* In a hub: a row for a session it took (NULL when the table is full:
 * the session is counted, not listed), its bytes, its end. */
struct stats_parked *stats_parked_add(const struct audit_record *rec);
void stats_parked_bytes(struct stats_parked *row, uint64_t up,
    uint64_t down);
void stats_parked_remove(struct stats_parked *row);
/* The table, NULL before stats_init; *nrows: the rows ever used. */
struct stats_parked *stats_parked_table(size_t *nrows);
/* Parked sessions over every live hub. */
uint64_t stats_parked_now(void);

#endif
