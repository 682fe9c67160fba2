/* relay_poll.c: the worker's relay driver: one session's two directions
 * in one poll() loop. The rules of relaying are the engine's (relay.c). */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "io.h"
#include "relay.h"

enum { SIDE_CLIENT = 0, SIDE_TARGET = 1 };

struct run {
	struct relay_pool *pool;
	const struct relay_limits *lim;
	struct relay_dir dirs[2];	/* [RELAY_UP] reads the client */
	int fds[2];			/* [SIDE_CLIENT], [SIDE_TARGET] */
	bool hup[2];			/* per side: clean hang-up seen */
	int first_eof;
	int bad_fd;
	int64_t last, next_park, next_interim;
};

/* What side waits for: poll only what a direction could not just try. */
static short
side_events(const struct run *r, int side)
{
	const struct relay_dir *rd = &r->dirs[side], *wr = &r->dirs[1 - side];
	unsigned ev = 0;

	if (!rd->rd_ready)
		ev |= relay_dir_want_src(rd);
	if (!wr->wr_ready)
		ev |= relay_dir_want_dst(wr);
	return (short)ev;
}

/* Both directions, as far as they go without waiting: -1 on an error,
 * else whether anything moved. */
static int
run_steps(struct run *r)
{
	int moved = 0, n;

	for (int i = 0; i < 2; i++) {
		bool was_eof = r->dirs[i].eof;

		n = relay_dir_step(&r->dirs[i], r->pool, r->dirs[1 - i].shut,
		    &r->bad_fd);
		if (n < 0)
			return -1;
		moved |= n;
		if (!was_eof && r->dirs[i].eof && r->first_eof == -1)
			r->first_eof = i;
	}
	return moved;
}

static void
run_progress(const struct run *r)
{
	for (int i = 0; i < 2; i++)
		if (r->lim->progress[i] != NULL)
			atomic_store_explicit(r->lim->progress[i],
			    r->dirs[i].bytes, memory_order_relaxed);
}

/* log.interim: the bytes so far, when due. */
static void
run_interim(struct run *r, int64_t now)
{
	uint64_t bytes[2];

	if (r->lim->interim_ms <= 0 || now < r->next_interim)
		return;
	bytes[RELAY_UP] = r->dirs[RELAY_UP].bytes;
	bytes[RELAY_DOWN] = r->dirs[RELAY_DOWN].bytes;
	r->lim->interim(r->lim->interim_arg, bytes);
	r->next_interim = now + r->lim->interim_ms;
}

/* A session may be parked once idle long enough when the handover loses
 * nothing: no bytes held here and no stop under way. A half-closed one
 * may go too: the hub is told which directions are done. */
static bool
run_may_park(const struct run *r)
{
	return r->lim->park != NULL && r->lim->park_ms > 0 &&
	    io_cutoff_time() == 0 && r->dirs[0].len == 0 && r->dirs[1].len == 0;
}

/* Offers the idle session to a hub when it is time: 1 when taken, else
 * 0, with *timeout cut to the next offer. */
static int
run_park(struct run *r, int64_t now, int *timeout)
{
	int64_t at = r->last + r->lim->park_ms;

	if (!run_may_park(r))
		return 0;
	if (at < r->next_park)
		at = r->next_park;
	if (now >= at) {
		struct relay_state st = { .last_ms = r->last,
		    .first_eof = r->first_eof };

		for (int i = 0; i < 2; i++) {
			st.bytes[i] = r->dirs[i].bytes;
			st.done[i] = r->dirs[i].shut;
		}
		if (r->lim->park(r->lim->park_arg, &st) == 0)
			return 1;
		/* Hub busy or gone: keep relaying, ask later. */
		r->next_park = at = now + r->lim->park_ms;
	}
	if (at - now < *timeout)
		*timeout = (int)(at - now);
	return 0;
}

/* poll() reports hang-ups and errors even on a socket it was asked
 * nothing about. An error there (a reset) ends the session: no pending
 * operation would ever see it. A clean hang-up (both halves shut) may still
 * leave bytes to read once the other side drains, so that socket is left
 * out of the poll set until it is wanted again; polling it would spin.
 * Returns -1 with errno and bad_fd set on an error. */
static int
run_unpolled(struct run *r, const struct pollfd pfd[2])
{
	for (int i = 0; i < 2; i++) {
		if (pfd[i].events != 0 || pfd[i].fd == -1)
			continue;
		if (pfd[i].revents & POLLERR) {
			errno = relay_sock_error(pfd[i].fd);
			r->bad_fd = pfd[i].fd;
			return -1;
		}
		if (pfd[i].revents & POLLHUP)
			r->hup[i] = true;
	}
	return 0;
}

/* Waits up to timeout ms: -1 on an error (errno, bad_fd). */
static int
run_wait(struct run *r, int timeout)
{
	struct pollfd pfd[2];
	int n;

	for (int i = 0; i < 2; i++) {
		pfd[i].fd = r->fds[i];
		pfd[i].events = side_events(r, i);
		pfd[i].revents = 0;
		if (pfd[i].events == 0 && r->hup[i])
			pfd[i].fd = -1;
	}
	n = poll(pfd, 2, timeout);
	if (n == -1) {
		r->bad_fd = -1;
		return errno == EINTR ? 0 : -1;
	}
	if (n == 0)
		return 0;
	if (run_unpolled(r, pfd) == -1)
		return -1;
	relay_dir_events(&r->dirs[RELAY_UP], (unsigned short)pfd[SIDE_CLIENT].revents,
	    (unsigned short)pfd[SIDE_TARGET].revents);
	relay_dir_events(&r->dirs[RELAY_DOWN],
	    (unsigned short)pfd[SIDE_TARGET].revents,
	    (unsigned short)pfd[SIDE_CLIENT].revents);
	return 0;
}

/* When nothing moved: the end by time (idle, the stop cutoff, parked) as
 * an end reason, or AUDIT_END_NONE with how long to wait. */
static enum audit_end
run_timers(struct run *r, int *timeout)
{
	int64_t now = io_now_ms(), cut = io_cutoff_time();

	if (cut != 0 && now >= cut)
		return AUDIT_END_SHUTDOWN;
	if (now - r->last >= r->lim->idle_ms)
		return AUDIT_END_IDLE;
	*timeout = (int)(r->last + r->lim->idle_ms - now);
	if (cut != 0 && cut - now < *timeout)
		*timeout = (int)(cut - now);
	run_interim(r, now);
	if (r->lim->interim_ms > 0 && r->next_interim - now < *timeout)
		*timeout = (int)(r->next_interim - now);
	if (run_park(r, now, timeout) == 1)
		return AUDIT_END_PARKED;
	for (int i = 0; i < 2; i++) {
		int64_t wake = relay_dir_wake(&r->dirs[i]);

		if (wake != 0 && wake - now < *timeout)
			*timeout = wake > now ? (int)(wake - now) : 0;
	}
	return AUDIT_END_NONE;
}

/* Relays until the session ends: its end reason (err set for errors). */
static enum audit_end
run_loop(struct run *r, int *err)
{
	for (;;) {
		enum audit_end end;
		int moved, timeout;

		if ((moved = run_steps(r)) < 0)
			break;
		if (moved) {
			r->last = io_now_ms();
			run_progress(r);
			run_interim(r, r->last);
		}
		if (r->dirs[0].shut && r->dirs[1].shut)
			return r->first_eof == RELAY_DOWN ?
			    AUDIT_END_TARGET : AUDIT_END_CLIENT;
		if (moved)
			continue;
		if ((end = run_timers(r, &timeout)) != AUDIT_END_NONE)
			return end;
		if (run_wait(r, timeout) == -1)
			break;
	}
	*err = errno;
	return relay_end_of_error(errno, r->first_eof,
	    r->bad_fd == r->fds[SIDE_TARGET]);
}

void
relay_run(struct relay_pool *pool, int client, int target,
    const uint8_t *pending, size_t npending, const struct relay_limits *lim,
    struct relay_result *res)
{
	struct run r;
	int err = 0;

	memset(&r, 0, sizeof(r));
	memset(res, 0, sizeof(*res));
	r.pool = pool;
	r.lim = lim;
	r.fds[SIDE_CLIENT] = client;
	r.fds[SIDE_TARGET] = target;
	r.first_eof = -1;
	r.bad_fd = -1;
	r.last = io_now_ms();
	r.next_interim = r.last + lim->interim_ms;
	relay_dir_init(&r.dirs[RELAY_UP], client, target, false);
	relay_dir_init(&r.dirs[RELAY_DOWN], target, client, false);
	r.dirs[RELAY_UP].rate = lim->rate[RELAY_UP];
	r.dirs[RELAY_DOWN].rate = lim->rate[RELAY_DOWN];
	if (relay_dir_preload(&r.dirs[RELAY_UP], pool, pending, npending) == -1) {
		err = errno;
		res->end = AUDIT_END_ERROR;
	} else {
		res->end = run_loop(&r, &err);
	}
	for (int i = 0; i < 2; i++) {
		res->bytes[i] = r.dirs[i].bytes;
		relay_dir_release(&r.dirs[i], pool);
	}
	if (res->end == AUDIT_END_ERROR)
		res->err = err;
	relay_abort_for(res->end, err, r.bad_fd, client, target);
	run_progress(&r);
}
