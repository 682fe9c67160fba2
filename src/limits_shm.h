/* limits_shm.h: the shared table of counted limits (max_sessions per rule and
 * key, the per-user rate buckets; max_negotiating is the scoreboard's):
 * one mapping the master makes before it forks anything, so it outlives
 * every generation, and which workers and hubs inherit. What each process
 * holds is a lease in the same mapping, so that the master can give back
 * what a child held when it reaps it (a SIGKILLed worker or hub). */
#ifndef SOCKS5D_LIMITS_SHM_H
#define SOCKS5D_LIMITS_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LIMITS_ENTRIES	16384	/* keys counted at once (a power of two) */
#define LIMITS_LEASES	65536	/* holdings at once, every process's */
#define LIMITS_LOG_SLOTS 256	/* keys remembered for the once-a-minute log */
#define LIMITS_LOG_MS	60000
#define LIMITS_RATE_MAX	(1ULL << 40)	/* bytes/s: a rate key's range */

/* What a holder keeps to give a lease back: the lease's index + 1 (0: holds
 * nothing) and the lease's take number, so that a lease the master gave
 * back (and someone else took since) is never given back twice. */
struct limits_hold {
	uint32_t lease;
	uint32_t gen;
};

/* What a parked session's hub message carries of its limits: the leases
 * (given back by the hub when the session ends) and the rate caps with
 * their state, so that the hub goes on limiting. */
enum { LIMITS_HOLD_SESSIONS = 0, LIMITS_HOLD_RATE = 1, LIMITS_HOLDS = 2 };
struct limits_msg {
	struct limits_hold holds[LIMITS_HOLDS];
	uint64_t rate[2];		/* bytes/s [0] up, [1] down; 0: none */
	int64_t tat[2];			/* a per-session bucket's state (ns) */
	uint8_t shared;			/* the buckets are holds[RATE]'s entry */
};

/* Creates the mapping (the master, before any fork; a unit test): 0, or
 * -1 with errno. limits_shm_bytes is its size, for children_register_map. */
int limits_create(void);
void limits_destroy(void);
void *limits_shm_addr(void);
size_t limits_shm_bytes(void);

/* Takes one count of key for owner when fewer than max are held (max 0:
 * no cap): 0 with *h set, or -1 with errno EAGAIN (at the cap) or ENOSPC
 * (the table or the leases are full). */
int limits_take(uint64_t key, uint32_t max, pid_t owner, struct limits_hold *h);
/* Gives back what h holds, if it still holds it; empties h. */
void limits_release(struct limits_hold *h);
/* Counts held of key now (tests, status). */
uint32_t limits_count(uint64_t key);

/* A parked session's leases change hands: the worker marks them in
 * transit before it sends (so that its exit does not give them back), and
 * back when the send fails; the hub adopts them when it takes the
 * session. Adopting a lease that is no longer in transit (its count was
 * given back meanwhile) empties h: the session then counts no more. */
void limits_transit(struct limits_hold *h, bool in_transit);
void limits_adopt(struct limits_hold *h, pid_t owner);

/* The master: gives back every lease pid held. It never waits for the
 * lock (a worker holds it): what it cannot do now is done by
 * limits_heal_pending, called again from the master's loop. */
void limits_heal(pid_t pid);
void limits_heal_pending(void);

/* The rate bucket state of the entry h holds a count of, shared by every
 * holder of that key (two: [0] up, [1] down); NULL when h holds nothing. */
_Atomic int64_t *limits_bucket(const struct limits_hold *h);

/* Whether a "limit" line about key is due (at most one a minute per key,
 * across every process): marks it said. */
bool limits_log_due(uint64_t key, int64_t now_ms);

/* The 64-bit key of (kind, rule identity, bytes): SipHash with a key drawn
 * at limits_create. */
uint64_t limits_key(uint32_t kind, uint64_t rule_id, const void *data,
    size_t len);

#endif
