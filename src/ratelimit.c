/* ratelimit.c: the token bucket of ratelimit.h. */
#include <time.h>

#include "ratelimit.h"

#define NS_PER_S 1000000000LL

void
rate_init(struct rate_bucket *b, uint64_t rate, _Atomic int64_t *shared)
{
	b->rate = rate;
	atomic_store(&b->own, 0);
	b->tat = shared != NULL ? shared : &b->own;
}

int64_t
rate_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* What one wait is worth: a 1/100 s of the rate, within the bounds. */
static uint64_t
rate_step(uint64_t rate)
{
	uint64_t s = rate / 100;

	return s < RATE_STEP_MIN ? RATE_STEP_MIN :
	    s > RATE_STEP_MAX ? RATE_STEP_MAX : s;
}

/* The time n bytes take at the rate, in ns (rounded up). */
static int64_t
rate_cost(uint64_t rate, uint64_t n)
{
	unsigned __int128 ns = ((unsigned __int128)n * NS_PER_S + rate - 1) /
	    rate;

	return ns > (unsigned __int128)INT64_MAX / 4 ? INT64_MAX / 4 :
	    (int64_t)ns;
}

/* The burst: 50 ms of the rate, but never less than two steps. */
static int64_t
rate_burst(uint64_t rate)
{
	int64_t two = rate_cost(rate, 2 * rate_step(rate));

	return two > RATE_BURST_NS ? two : RATE_BURST_NS;
}

size_t
rate_allow(const struct rate_bucket *b, int64_t now_ns, int64_t *wait_ns)
{
	int64_t tat, room;
	unsigned __int128 bytes;
	uint64_t step;

	*wait_ns = 0;
	if (b->rate == 0)
		return SIZE_MAX;
	tat = atomic_load_explicit(b->tat, memory_order_relaxed);
	if (tat < now_ns)
		tat = now_ns;
	room = now_ns + rate_burst(b->rate) - tat;
	bytes = room > 0 ? (unsigned __int128)room * b->rate / NS_PER_S : 0;
	step = rate_step(b->rate);
	if (bytes >= step)
		return bytes > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)bytes;
	*wait_ns = rate_cost(b->rate, step) - room;
	if (*wait_ns < 1)
		*wait_ns = 1;
	return 0;
}

void
rate_charge(struct rate_bucket *b, int64_t now_ns, size_t n)
{
	int64_t tat, next, cost;

	if (b->rate == 0 || n == 0)
		return;
	cost = rate_cost(b->rate, n);
	tat = atomic_load_explicit(b->tat, memory_order_relaxed);
	do {
		next = (tat < now_ns ? now_ns : tat) + cost;
	} while (!atomic_compare_exchange_weak(b->tat, &tat, next));
}
