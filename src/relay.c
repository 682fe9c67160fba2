/* relay.c: the two-direction relay, splice(2) or copy, directions independent. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "relay.h"

/* One direction: bytes flow from src through a pipe or buffer to dst. */
struct dir {
	int src, dst;
	int prd, pwr;			/* pipe ends; -1 in copy mode */
	uint8_t *buf;
	size_t cap;			/* pipe or buffer capacity */
	size_t len;			/* bytes held */
	size_t off;			/* copy: where they start in buf */
	bool rd_ready, wr_ready;	/* worth trying without polling */
	bool pipe_full;			/* splice said EAGAIN with bytes held */
	bool urgent;			/* poll said POLLPRI: TCP urgent data */
	bool eof, shut;
	uint64_t bytes;			/* delivered to dst */
};

static int
make_pipe(int p[2], int size, size_t *cap)
{
	int got;

	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1) {
		p[0] = p[1] = -1;
		return -1;
	}
	got = fcntl(p[1], F_SETPIPE_SZ, size);
	if (got == -1)
		got = fcntl(p[1], F_GETPIPE_SZ);
	*cap = got > 0 ? (size_t)got : 4096;
	return 0;
}

static void
close_pipe(int p[2])
{
	if (p[0] != -1)
		close(p[0]);
	if (p[1] != -1)
		close(p[1]);
	p[0] = p[1] = -1;
}

static bool
have_pipes(const struct relay_ctx *ctx)
{
	return ctx->pipes[0][0] != -1 && ctx->pipes[1][0] != -1;
}

static void
open_pipes(struct relay_ctx *ctx)
{
	static bool warned;

	for (int d = 0; d < 2; d++)
		if (ctx->pipes[d][0] == -1 &&
		    make_pipe(ctx->pipes[d], ctx->pipe_size, &ctx->pipe_cap[d]) == -1) {
			if (!warned)
				log_warn("pipe: relaying by copy instead of splice");
			warned = true;
		}
}

void
relay_init(struct relay_ctx *ctx, const struct config *conf)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->mode = conf->relay.mode;
	ctx->pipe_size = conf->relay.pipe_size;
	ctx->buf_cap = (size_t)conf->relay.buffer_size;
	ctx->pipes[0][0] = ctx->pipes[0][1] = -1;
	ctx->pipes[1][0] = ctx->pipes[1][1] = -1;
	if (ctx->mode == RELAY_SPLICE)
		open_pipes(ctx);
}

void
relay_free(struct relay_ctx *ctx)
{
	for (int d = 0; d < 2; d++) {
		close_pipe(ctx->pipes[d]);
		free(ctx->bufs[d]);
		ctx->bufs[d] = NULL;
	}
}

/* Buffers are allocated on first use: a splice worker never touches them. */
static void
ensure_bufs(struct relay_ctx *ctx)
{
	for (int d = 0; d < 2; d++)
		if (ctx->bufs[d] == NULL &&
		    (ctx->bufs[d] = malloc(ctx->buf_cap)) == NULL)
			fatal("malloc relay buffer");
}

/* splice(2) stops for good at TCP urgent data (a byte the peer sent with
 * MSG_OOB): it says EAGAIN, or 0 once a FIN follows, and the session would
 * spin or lose what follows. recv() steps over the urgent byte, which is
 * not relayed (as in copy mode), and reads what comes after it; that goes
 * into the pipe, which is empty here and takes a page at once. */
static ssize_t
dir_fill_past_urgent(struct dir *d)
{
	uint8_t buf[4096];
	ssize_t n = recv(d->src, buf, sizeof(buf), 0);

	d->urgent = false;
	if (n > 0) {
		if (write(d->pwr, buf, (size_t)n) != n) {
			errno = EIO;
			return -1;
		}
		d->len = (size_t)n;
		return n;
	}
	if (n == 0) {
		d->eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR) {
		d->rd_ready = false;
		return 0;
	}
	return -1;
}

/* Splice read: 0 from splice may be the urgent mark rather than EOF, and
 * so may EAGAIN after poll said POLLPRI. At the mark, the pipe is drained
 * first, then the byte is stepped over. Returns what splice would, or
 * what dir_fill_past_urgent did; *done when that was the latter. */
static ssize_t
dir_splice_in(struct dir *d, bool *done)
{
	ssize_t n = splice(d->src, NULL, d->pwr, NULL, d->cap - d->len,
	    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

	*done = false;
	if (n > 0 || (n == -1 && (errno != EAGAIN || !d->urgent)))
		return n;
	if (!io_at_urgent_mark(d->src)) {
		d->urgent = false;
		return n;
	}
	*done = true;
	if (d->len == 0)
		return dir_fill_past_urgent(d);
	d->pipe_full = true;
	return 0;
}

/* Moves bytes from src into the pipe/buffer: >0 moved, 0 would block,
 * -1 error. Sets eof on end of stream. */
static ssize_t
dir_fill(struct dir *d)
{
	ssize_t n;

	if (d->prd != -1) {
		bool done;

		n = dir_splice_in(d, &done);
		if (done)
			return n;
	} else {
		if (d->len == 0)
			d->off = 0;
		else if (d->off + d->len == d->cap) {
			memmove(d->buf, d->buf + d->off, d->len);
			d->off = 0;
		}
		n = recv(d->src, d->buf + d->off + d->len,
		    d->cap - d->off - d->len, 0);
	}
	if (n > 0) {
		d->len += (size_t)n;
		return n;
	}
	if (n == 0) {
		d->eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR) {
		/* A pipe can fill before cap bytes when the socket hands
		 * over small buffers: wait for the drain, not for POLLIN. */
		if (d->prd != -1 && d->len > 0)
			d->pipe_full = true;
		else
			d->rd_ready = false;
		return 0;
	}
	return -1;
}

/* Moves held bytes to dst: >0 moved, 0 would block, -1 error. */
static ssize_t
dir_drain(struct dir *d)
{
	ssize_t n;

	if (d->prd != -1)
		n = splice(d->prd, NULL, d->dst, NULL, d->len,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	else
		n = send(d->dst, d->buf + d->off, d->len, MSG_NOSIGNAL);
	if (n > 0) {
		d->len -= (size_t)n;
		d->off += (size_t)n;
		d->bytes += (uint64_t)n;
		d->pipe_full = false;
		return n;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		d->wr_ready = false;
		return 0;
	}
	if (n == 0)
		errno = EPIPE;
	return -1;
}

/* Runs what can run without waiting. Returns -1 on error (errno kept, the
 * failing socket in *bad_fd), else whether anything moved. */
static int
dir_step(struct dir *d, bool other_shut, int *bad_fd)
{
	int moved = 0;
	ssize_t n;

	if (!d->eof && d->len < d->cap && d->rd_ready && !d->pipe_full) {
		if ((n = dir_fill(d)) < 0) {
			*bad_fd = d->src;
			return -1;
		}
		moved |= n > 0 || d->eof;
	}
	if (d->len > 0 && d->wr_ready) {
		if ((n = dir_drain(d)) < 0) {
			*bad_fd = d->dst;
			return -1;
		}
		moved |= n > 0;
	}
	if (d->eof && d->len == 0 && !d->shut) {
		/* Half-close: the other direction goes on. When it is done
		 * already the session ends here, and close() sends the FIN. */
		if (!other_shut && shutdown(d->dst, SHUT_WR) == -1 &&
		    errno != ENOTCONN) {
			*bad_fd = d->dst;
			return -1;
		}
		d->shut = true;
		moved = 1;
	}
	return moved;
}

static short
dir_events_src(const struct dir *d)
{
	return !d->eof && d->len < d->cap && !d->pipe_full && !d->rd_ready ?
	    POLLIN | POLLPRI : 0;
}

static short
dir_events_dst(const struct dir *d)
{
	return d->len > 0 && !d->wr_ready ? POLLOUT : 0;
}

static void
dir_setup(struct dir *d, struct relay_ctx *ctx, int idx, bool splice_mode,
    int src, int dst)
{
	memset(d, 0, sizeof(*d));
	d->src = src;
	d->dst = dst;
	/* A session starts with the client waiting for the reply and the
	 * target for the request: asking poll first saves two reads that
	 * would only say EAGAIN. Writing is worth trying at once. */
	d->rd_ready = false;
	d->wr_ready = true;
	if (splice_mode) {
		d->prd = ctx->pipes[idx][0];
		d->pwr = ctx->pipes[idx][1];
		d->cap = ctx->pipe_cap[idx];
	} else {
		d->prd = d->pwr = -1;
		d->buf = ctx->bufs[idx];
		d->cap = ctx->buf_cap;
	}
}

/* Puts the client's pipelined bytes in front of the up direction. */
static int
dir_preload(struct dir *d, const uint8_t *data, size_t n)
{
	if (n == 0)
		return 0;
	if (d->prd == -1) {
		memcpy(d->buf, data, n);
		d->len = n;
		return 0;
	}
	/* The pipe is empty and holds at least a page: one write fits. */
	if (write(d->pwr, data, n) != (ssize_t)n)
		return -1;
	d->len = n;
	return 0;
}

/* After the session, a pipe still holding bytes cannot be reused. */
static void
reset_pipes(struct relay_ctx *ctx, const struct dir dirs[2])
{
	bool dirty = false;

	for (int i = 0; i < 2; i++)
		if (dirs[i].prd != -1 && dirs[i].len > 0) {
			close_pipe(ctx->pipes[i]);
			dirty = true;
		}
	if (dirty)
		open_pipes(ctx);
}

static void
wake_on_events(struct dir dirs[2], const struct pollfd pfd[2])
{
	for (int i = 0; i < 2; i++) {
		/* dirs[0] reads pfd[0] (client), writes pfd[1]; dirs[1] the reverse. */
		short rev_src = pfd[i].revents, rev_dst = pfd[1 - i].revents;

		if (rev_src & (POLLIN | POLLPRI | POLLHUP | POLLERR))
			dirs[i].rd_ready = true;
		if (rev_src & POLLPRI)
			dirs[i].urgent = true;
		if (rev_dst & (POLLOUT | POLLHUP | POLLERR))
			dirs[i].wr_ready = true;
	}
}

/* poll() reports hang-ups and errors even on a socket it was asked
 * nothing about. An error there (a reset) ends the session: no pending
 * operation would ever see it. A clean hang-up (both halves shut) may still
 * leave bytes to read once the other side drains, so that socket is left
 * out of the poll set until it is wanted again; polling it would spin.
 * Returns the socket that failed, with errno set, or -1. */
static int
check_unpolled(const struct pollfd pfd[2], bool hup[2])
{
	for (int i = 0; i < 2; i++) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (pfd[i].events != 0 || pfd[i].fd == -1)
			continue;
		if (pfd[i].revents & POLLERR) {
			if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &err,
			    &len) == -1)
				err = errno;
			errno = err != 0 ? err : ECONNRESET;
			return pfd[i].fd;
		}
		if (pfd[i].revents & POLLHUP)
			hup[i] = true;
	}
	return -1;
}

/* A session may be parked when it has been idle long enough and the
 * handover loses nothing: no bytes held here, no half-close in progress
 * (the hub starts both directions fresh), no stop under way. */
static bool
may_park(const struct relay_limits *lim, const struct dir dirs[2])
{
	return lim->park != NULL && lim->park_ms > 0 && io_cutoff() == 0 &&
	    dirs[0].len == 0 && dirs[1].len == 0 &&
	    !dirs[0].eof && !dirs[1].eof;
}

static void
finish(struct relay_result *res, struct dir dirs[2], enum relay_end end,
    int err)
{
	res->bytes[RELAY_UP] = dirs[RELAY_UP].bytes;
	res->bytes[RELAY_DOWN] = dirs[RELAY_DOWN].bytes;
	res->end = end;
	res->err = err;
}

void
relay_run(struct relay_ctx *ctx, int client, int target,
    const uint8_t *pending, size_t npending, const struct relay_limits *lim,
    struct sb_slot *slot, struct relay_result *res)
{
	struct dir dirs[2];
	struct pollfd pfd[2];
	bool splice_mode = ctx->mode == RELAY_SPLICE && have_pipes(ctx);
	int64_t last = io_now_ms(), stop_deadline, next_park = 0;
	int first_eof = -1, bad_fd = -1;
	bool hup[2] = { false, false };	/* per pfd: clean hang-up seen */

	if (!splice_mode)
		ensure_bufs(ctx);
	res->spliced = splice_mode;
	dir_setup(&dirs[RELAY_UP], ctx, RELAY_UP, splice_mode, client, target);
	dir_setup(&dirs[RELAY_DOWN], ctx, RELAY_DOWN, splice_mode, target, client);
	if (dir_preload(&dirs[RELAY_UP], pending, npending) == -1) {
		finish(res, dirs, RELAY_END_ERROR, errno);
		reset_pipes(ctx, dirs);
		return;
	}
	for (;;) {
		int moved = 0, r, timeout;
		int64_t now;

		for (int i = 0; i < 2; i++) {
			bool was_eof = dirs[i].eof;

			if ((r = dir_step(&dirs[i], dirs[1 - i].shut, &bad_fd)) < 0)
				goto failed;
			moved |= r;
			if (!was_eof && dirs[i].eof && first_eof == -1)
				first_eof = i;
		}
		if (moved) {
			last = io_now_ms();
			atomic_store_explicit(&slot->up, dirs[RELAY_UP].bytes,
			    memory_order_relaxed);
			atomic_store_explicit(&slot->down, dirs[RELAY_DOWN].bytes,
			    memory_order_relaxed);
		}
		if (dirs[0].shut && dirs[1].shut) {
			finish(res, dirs, first_eof == RELAY_DOWN ?
			    RELAY_END_TARGET : RELAY_END_CLIENT, 0);
			break;
		}
		if (moved)
			continue;

		now = io_now_ms();
		stop_deadline = io_cutoff();
		if (stop_deadline != 0 && now >= stop_deadline) {
			finish(res, dirs, RELAY_END_SHUTDOWN, 0);
			break;
		}
		if (now - last >= lim->idle_ms) {
			finish(res, dirs, RELAY_END_IDLE, 0);
			break;
		}
		timeout = (int)(last + lim->idle_ms - now);
		if (stop_deadline != 0 && stop_deadline - now < timeout)
			timeout = (int)(stop_deadline - now);
		if (may_park(lim, dirs)) {
			int64_t at = last + lim->park_ms;

			if (at < next_park)
				at = next_park;
			if (now >= at) {
				uint64_t bytes[2] = { dirs[RELAY_UP].bytes,
				    dirs[RELAY_DOWN].bytes };

				if (lim->park(lim->park_arg, last, bytes) == 0) {
					finish(res, dirs, RELAY_END_PARKED, 0);
					break;
				}
				/* Hub busy or gone: keep relaying, ask later. */
				next_park = at = now + lim->park_ms;
			}
			if (at - now < timeout)
				timeout = (int)(at - now);
		}
		pfd[0].fd = client;
		pfd[0].events = dir_events_src(&dirs[RELAY_UP]) |
		    dir_events_dst(&dirs[RELAY_DOWN]);
		pfd[1].fd = target;
		pfd[1].events = dir_events_src(&dirs[RELAY_DOWN]) |
		    dir_events_dst(&dirs[RELAY_UP]);
		for (int i = 0; i < 2; i++) {
			pfd[i].revents = 0;
			if (pfd[i].events == 0 && hup[i])
				pfd[i].fd = -1;
		}
		r = poll(pfd, 2, timeout);
		if (r == -1 && errno != EINTR) {
			bad_fd = -1;
			goto failed;
		}
		if (r > 0 && (bad_fd = check_unpolled(pfd, hup)) != -1)
			goto failed;
		if (r > 0)
			wake_on_events(dirs, pfd);
	}
	reset_pipes(ctx, dirs);
	return;
failed:
	/* A reset is how a side closes abruptly: name the side, not an error. */
	if (errno == ECONNRESET || errno == EPIPE)
		finish(res, dirs, first_eof == RELAY_DOWN || (first_eof == -1 &&
		    bad_fd == target) ? RELAY_END_TARGET : RELAY_END_CLIENT, 0);
	else
		finish(res, dirs, RELAY_END_ERROR, errno);
	reset_pipes(ctx, dirs);
}

const char *
relay_end_name(enum relay_end end)
{
	switch (end) {
	case RELAY_END_CLIENT:
		return "client";
	case RELAY_END_TARGET:
		return "target";
	case RELAY_END_IDLE:
		return "idle";
	case RELAY_END_ERROR:
		return "error";
	case RELAY_END_SHUTDOWN:
		return "shutdown";
	case RELAY_END_PARKED:
		return "parked";
	}
	return "error";
}
