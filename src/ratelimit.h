/* ratelimit.h: a token bucket in the GCRA form (one number: the time at
 * which the bytes already sent would have been due), so that sessions in
 * several processes can share one through an atomic in shared memory.
 * Pure arithmetic on times given by the caller; no I/O. */
#ifndef SOCKS5D_RATELIMIT_H
#define SOCKS5D_RATELIMIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RATE_BURST_NS	50000000LL	/* 50 ms of the rate may go at once */
#define RATE_STEP_MIN	1024		/* wait for at least this much ... */
#define RATE_STEP_MAX	65536		/* ... or a 1/100 s of the rate, to here */

struct rate_bucket {
	uint64_t rate;			/* bytes/s; 0: no cap */
	_Atomic int64_t *tat;		/* shared (a user's), or &own */
	_Atomic int64_t own;
};

/* A bucket of rate bytes/s; shared: another's state (shm), or NULL. */
void rate_init(struct rate_bucket *b, uint64_t rate, _Atomic int64_t *shared);
/* Monotonic nanoseconds. */
int64_t rate_now_ns(void);
/* Bytes that may go now (SIZE_MAX: no cap). When fewer than a step are
 * due, 0, and *wait_ns says when they will be. */
size_t rate_allow(const struct rate_bucket *b, int64_t now_ns,
    int64_t *wait_ns);
/* n bytes went. */
void rate_charge(struct rate_bucket *b, int64_t now_ns, size_t n);

#endif
