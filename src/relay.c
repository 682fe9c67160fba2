/* relay.c: the relay engine: one direction's state machine, splice or copy,
 * and the pool of pipes and buffers the directions borrow. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "relay.h"

#define URGENT_STEP 4096	/* read past the urgent mark at most */
/* A pipe smaller than this (and than asked) moves too little per splice:
 * past fs.pipe-user-pages-soft the kernel gives new pipes of the user 2
 * pages and refuses F_SETPIPE_SZ, and splicing 8 KiB at a time costs
 * several times the CPU of copying through a buffer. Such a pipe is
 * closed, the direction copies, and pipes are tried again later. */
#define PIPE_SMALL 16384
#define PIPE_RETRY_MS 10000

void
relay_pool_init(struct relay_pool *p, bool splice, int pipe_size,
    size_t buf_size, int max_pipes, int keep_pipes, int keep_bufs)
{
	memset(p, 0, sizeof(*p));
	p->splice = splice;
	p->pipe_size = pipe_size;
	p->buf_size = buf_size;
	p->max_pipes = splice ? max_pipes : 0;
	p->keep_pipes = keep_pipes;
	p->keep_bufs = keep_bufs;
	if (p->max_pipes > 0 && (p->free_pipes = calloc((size_t)p->max_pipes,
	    sizeof(*p->free_pipes))) == NULL)
		fatal("calloc relay pipes");
	if (keep_bufs > 0 && (p->free_bufs = calloc((size_t)keep_bufs,
	    sizeof(*p->free_bufs))) == NULL)
		fatal("calloc relay buffers");
}

static void
pipe_close(int fds[2])
{
	close(fds[0]);
	close(fds[1]);
	fds[0] = fds[1] = -1;
}

static void
pool_shrink(struct relay_pool *p, int pipes, int bufs)
{
	while (p->nfree_pipes > pipes) {
		p->nfree_pipes--;
		pipe_close(p->free_pipes[p->nfree_pipes].fd);
		p->nopen_pipes--;
	}
	while (p->nfree_bufs > bufs)
		free(p->free_bufs[--p->nfree_bufs]);
}

void
relay_pool_free(struct relay_pool *p)
{
	pool_shrink(p, 0, 0);
	free(p->free_pipes);
	free(p->free_bufs);
	p->free_pipes = NULL;
	p->free_bufs = NULL;
}

void
relay_pool_trim(struct relay_pool *p)
{
	/* Pipes count against the user's pipe pages, which every worker
	 * and hub of the user shares: after a quiet period keep a few. */
	if (p->borrowed == 0)
		pool_shrink(p, p->keep_pipes, p->keep_bufs);
	p->borrowed = 0;
}

/* Opens one pipe into the free list: 0, or -1 (none to be had). */
static int
pool_open_pipe(struct relay_pool *p)
{
	struct relay_pipe *rp;
	int got;

	if (p->nopen_pipes >= p->max_pipes ||
	    (p->pipe_retry_ms != 0 && io_now_ms() < p->pipe_retry_ms))
		return -1;
	rp = &p->free_pipes[p->nfree_pipes];
	if (pipe2(rp->fd, O_NONBLOCK | O_CLOEXEC) == -1) {
		if (!p->warned)
			log_warn("pipe: relaying by copy instead of splice");
		p->warned = true;
		return -1;
	}
	/* A pipe can get less than asked (pipe-max-size, the user's pipe
	 * pages): its real size bounds what one splice moves into it. */
	got = fcntl(rp->fd[1], F_SETPIPE_SZ, p->pipe_size);
	if (got == -1)
		got = fcntl(rp->fd[1], F_GETPIPE_SZ);
	rp->cap = got > 0 ? (size_t)got : 4096;
	if (rp->cap < PIPE_SMALL && rp->cap < (size_t)p->pipe_size) {
		if (!p->warned_small)
			log_warnx("pipe-small size=%zu asked=%d: the user's pipe "
			    "pages are spent (fs.pipe-user-pages-soft): relaying "
			    "by copy, pipes tried again every %d s", rp->cap,
			    p->pipe_size, PIPE_RETRY_MS / 1000);
		p->warned_small = true;
		pipe_close(rp->fd);
		p->pipe_retry_ms = io_now_ms() + PIPE_RETRY_MS;
		return -1;
	}
	p->pipe_retry_ms = 0;
	p->nfree_pipes++;
	p->nopen_pipes++;
	return 0;
}

void
relay_pool_prefill(struct relay_pool *p, int n)
{
	while (p->nopen_pipes < n && pool_open_pipe(p) == 0)
		;
}

/* Lends d a pipe: 0, or -1 when none can be had (copy instead). */
static int
pool_take_pipe(struct relay_pool *p, struct relay_dir *d)
{
	const struct relay_pipe *rp;

	if (!p->splice || (p->nfree_pipes == 0 && pool_open_pipe(p) == -1))
		return -1;
	p->borrowed++;
	rp = &p->free_pipes[--p->nfree_pipes];
	d->pipe[0] = rp->fd[0];
	d->pipe[1] = rp->fd[1];
	d->cap = rp->cap;
	return 0;
}

static void
pool_take_buf(struct relay_pool *p, struct relay_dir *d)
{
	p->borrowed++;
	if (p->nfree_bufs > 0)
		d->buf = p->free_bufs[--p->nfree_bufs];
	else if ((d->buf = malloc(p->buf_size)) == NULL)
		fatal("malloc relay buffer");
	d->cap = p->buf_size;
	d->off = 0;
}

/* Something to read into: a pipe, else a buffer. */
static void
dir_take_store(struct relay_dir *d, struct relay_pool *p)
{
	if (d->pipe[0] != -1 || d->buf != NULL)
		return;
	if (pool_take_pipe(p, d) == -1)
		pool_take_buf(p, d);
}

/* Once empty, what the direction held goes back (an idle session holds
 * nothing); a pipe still holding bytes (its session ended) is closed. */
static void
dir_give_back(struct relay_dir *d, struct relay_pool *p)
{
	if (d->pipe[0] != -1) {
		if (d->len == 0 && p->nfree_pipes < p->max_pipes) {
			struct relay_pipe *rp = &p->free_pipes[p->nfree_pipes++];

			rp->fd[0] = d->pipe[0];
			rp->fd[1] = d->pipe[1];
			rp->cap = d->cap;
			d->pipe[0] = d->pipe[1] = -1;
		} else {
			pipe_close(d->pipe);
			p->nopen_pipes--;
		}
	}
	if (d->buf != NULL) {
		if (p->nfree_bufs < p->keep_bufs)
			p->free_bufs[p->nfree_bufs++] = d->buf;
		else
			free(d->buf);
		d->buf = NULL;
	}
	d->len = d->off = d->cap = 0;
	d->pipe_full = false;
}

void
relay_dir_init(struct relay_dir *d, int src, int dst, bool done)
{
	memset(d, 0, sizeof(*d));
	d->src = src;
	d->dst = dst;
	d->pipe[0] = d->pipe[1] = -1;
	/* A session starts with the client waiting for the reply and the
	 * target for the request: waiting first saves two reads that would
	 * only say EAGAIN. Writing is worth trying at once. */
	d->rd_ready = false;
	d->wr_ready = true;
	d->eof = d->shut = done;
	d->room = SIZE_MAX;
}

int
relay_dir_preload(struct relay_dir *d, struct relay_pool *p,
    const uint8_t *data, size_t n)
{
	if (n == 0)
		return 0;
	dir_take_store(d, p);
	if (n > d->cap) {
		errno = EMSGSIZE;
		return -1;
	}
	if (d->buf != NULL) {
		memcpy(d->buf, data, n);
	} else if (write(d->pipe[1], data, n) != (ssize_t)n) {
		/* An empty pipe holds at least a page: one write fits. */
		errno = EIO;
		return -1;
	}
	d->len = n;
	return 0;
}

void
relay_dir_events(struct relay_dir *d, unsigned src_ev, unsigned dst_ev)
{
	if (src_ev & (RELAY_EV_IN | RELAY_EV_PRI | RELAY_EV_HUP | RELAY_EV_ERR))
		d->rd_ready = true;
	if (src_ev & RELAY_EV_PRI)
		d->urgent = true;
	if (dst_ev & (RELAY_EV_OUT | RELAY_EV_HUP | RELAY_EV_ERR))
		d->wr_ready = true;
}

unsigned
relay_dir_want_src(const struct relay_dir *d)
{
	bool space = d->cap == 0 || d->len < d->cap;

	return !d->eof && space && !d->pipe_full && !d->throttled ?
	    RELAY_EV_IN | RELAY_EV_PRI : 0;
}

int64_t
relay_dir_wake(const struct relay_dir *d)
{
	return d->throttled ? d->wake_ms : 0;
}

unsigned
relay_dir_want_dst(const struct relay_dir *d)
{
	return d->len > 0 ? RELAY_EV_OUT : 0;
}

/* splice(2) stops for good at TCP urgent data (a byte the peer sent with
 * MSG_OOB): it says EAGAIN, or 0 once a FIN follows, and the session would
 * spin or lose what follows. recv() steps over the urgent byte, which is
 * not relayed (as in copy mode), and reads what comes after it; that goes
 * into the pipe, which is empty here and takes a page at once. */
static ssize_t
dir_fill_past_urgent(struct relay_dir *d)
{
	uint8_t buf[URGENT_STEP];
	ssize_t n = recv(d->src, buf, sizeof(buf), 0);

	d->urgent = false;
	if (n > 0) {
		if (write(d->pipe[1], buf, (size_t)n) != n) {
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
 * so may EAGAIN after the wait said urgent data. At the mark the pipe is
 * drained first, then the byte is stepped over. Returns what splice
 * would, or what dir_fill_past_urgent did; *done when that was the latter. */
static ssize_t
dir_splice_in(struct relay_dir *d, bool *done)
{
	size_t want = d->cap - d->len;
	ssize_t n = splice(d->src, NULL, d->pipe[1], NULL,
	    want < d->room ? want : d->room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

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

static ssize_t
dir_recv(struct relay_dir *d)
{
	size_t want;

	d->urgent = false;	/* recv() steps over urgent data */
	if (d->len == 0)
		d->off = 0;
	else if (d->off + d->len == d->cap) {
		memmove(d->buf, d->buf + d->off, d->len);
		d->off = 0;
	}
	want = d->cap - d->off - d->len;
	return recv(d->src, d->buf + d->off + d->len,
	    want < d->room ? want : d->room, 0);
}

/* Moves bytes from src into the pipe or buffer: >0 moved, 0 would block
 * (or EOF, which sets eof), -1 error. */
static ssize_t
dir_fill(struct relay_dir *d, struct relay_pool *p)
{
	ssize_t n;

	dir_take_store(d, p);
	if (d->pipe[0] != -1) {
		bool done;

		n = dir_splice_in(d, &done);
		if (done)
			return n;
	} else {
		n = dir_recv(d);
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
		 * over small buffers: wait for the drain, not for input. */
		if (d->pipe[0] != -1 && d->len > 0)
			d->pipe_full = true;
		else
			d->rd_ready = false;
		return 0;
	}
	return -1;
}

/* Moves held bytes to dst: >0 moved, 0 would block, -1 error. */
static ssize_t
dir_drain(struct relay_dir *d)
{
	ssize_t n;

	if (d->pipe[0] != -1)
		n = splice(d->pipe[0], NULL, d->dst, NULL, d->len,
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

/* EOF becomes shutdown(SHUT_WR) on dst once everything before it was
 * delivered. When the other direction is done already the session ends
 * here, and close() sends the FIN. */
static int
dir_half_close(struct relay_dir *d, bool other_shut)
{
	if (!other_shut && shutdown(d->dst, SHUT_WR) == -1 &&
	    errno != ENOTCONN)
		return -1;
	d->shut = true;
	return 0;
}

/* The rate cap: whether src may be read now, with d->room set to how
 * much; when too little is due the direction is throttled until wake_ms.
 * *now_ns gets the time the bucket was asked at. */
static bool
dir_rate_allows(struct relay_dir *d, int64_t *now_ns)
{
	int64_t wait_ns;

	d->throttled = false;
	d->room = SIZE_MAX;
	if (d->rate == NULL || d->rate->rate == 0)
		return true;
	*now_ns = rate_now_ns();
	if ((d->room = rate_allow(d->rate, *now_ns, &wait_ns)) > 0)
		return true;
	d->throttled = true;
	d->wake_ms = (*now_ns + wait_ns + 999999) / 1000000;
	return false;
}

int
relay_dir_step(struct relay_dir *d, struct relay_pool *p, bool other_shut,
    int *bad_fd)
{
	int64_t now_ns = 0;
	int moved = 0;
	ssize_t n;

	d->throttled = false;
	if (d->rd_ready && (relay_dir_want_src(d) & RELAY_EV_IN) &&
	    dir_rate_allows(d, &now_ns)) {
		if ((n = dir_fill(d, p)) < 0) {
			*bad_fd = d->src;
			return -1;
		}
		if (n > 0 && d->rate != NULL)
			rate_charge(d->rate, now_ns, (size_t)n);
		moved |= n > 0 || d->eof;
	}
	if (d->len > 0 && d->wr_ready) {
		if ((n = dir_drain(d)) < 0) {
			*bad_fd = d->dst;
			return -1;
		}
		moved |= n > 0;
	}
	if (d->len == 0 && (d->pipe[0] != -1 || d->buf != NULL))
		dir_give_back(d, p);
	if (d->eof && d->len == 0 && !d->shut) {
		if (dir_half_close(d, other_shut) == -1) {
			*bad_fd = d->dst;
			return -1;
		}
		moved = 1;
	}
	return moved;
}

static void sock_abort(int fd);

void
relay_dir_release(struct relay_dir *d, struct relay_pool *p)
{
	/* Bytes held now are never delivered (the session was cut, e.g. by
	 * the idle timeout while dst did not read): dst hears a reset, not
	 * a FIN that would make the cut stream look complete. */
	if (d->len > 0)
		sock_abort(d->dst);
	dir_give_back(d, p);
}

enum audit_end
relay_end_of_error(int err, int first_eof, bool bad_is_target)
{
	if (err != ECONNRESET && err != EPIPE)
		return AUDIT_END_ERROR;
	return first_eof == RELAY_DOWN || (first_eof == -1 && bad_is_target) ?
	    AUDIT_END_TARGET : AUDIT_END_CLIENT;
}

int
relay_sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	return err != 0 ? err : EPROTO;
}

static void
sock_abort(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd != -1)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void
relay_abort_for(enum audit_end end, int err, int bad_fd, int client,
    int target)
{
	if (end == AUDIT_END_ERROR || end == AUDIT_END_SHUTDOWN) {
		sock_abort(client);
		sock_abort(target);
	} else if ((err == ECONNRESET || err == EPIPE) && bad_fd != -1) {
		/* The side that reset is gone already: the other one hears
		 * of it as a reset too, not as a clean end. */
		sock_abort(bad_fd == client ? target : client);
	}
}
