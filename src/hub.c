/* hub.c: the hub process: relays parked (long idle) sessions, many per process. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub.h"
#include "io.h"
#include "log.h"
#include "priv.h"
#include "relay.h"
#include "session.h"

#define HUB_BUF		16384	/* per direction, only while bytes wait */
#define HUB_FD_RESERVE	4	/* fds kept free beyond the sessions' */
#define HUB_SCAN_MS	1000	/* the pipe pool is trimmed this often */
#define HUB_IDLE_MS	100	/* idle checks at most this often (and late) */
#define HUB_MAX_EVENTS	256
#define HUB_FILL_READS	16	/* reads per event while the dst takes all */
#define HUB_PIPES	64	/* splice: pipes for sessions moving bytes */
#define HUB_PIPES_KEPT	4	/* empty ones kept through a quiet second */
#define HUB_TAKE_BATCH	64	/* messages read per wake-up */
#define HUB_MAX_FDS	8	/* fds one message may bring before MSG_CTRUNC */
#define HUB_MAX_AGE_MS	((int64_t)400 * 86400 * 1000)	/* a session's start */

enum { SIDE_CLIENT = 0, SIDE_TARGET = 1 };

struct hsession;

/* One socket of a session, as the epoll set knows it. */
struct hsock {
	struct hsession *s;		/* NULL for the channel and the signalfd */
	int fd;
	uint32_t events;		/* interest registered */
	bool in_set;
	bool hup;			/* clean hang-up: left out while nothing is wanted */
};

/* One direction, as in relay.c: dir[RELAY_UP] reads sock[SIDE_CLIENT] and
 * writes sock[SIDE_TARGET], dir[RELAY_DOWN] the reverse. */
struct hdir {
	uint8_t *buf;			/* NULL while nothing waits */
	int pipe[2];			/* splice: -1 while nothing waits */
	size_t off, len;		/* len: bytes held in buf or pipe */
	bool eof, shut;
	bool urgent;			/* EPOLLPRI: TCP urgent data to step over */
	uint64_t bytes;			/* delivered, the worker's count included */
};

struct hsession {
	struct hsock sock[2];
	struct hdir dir[2];
	struct hub_msg m;		/* what the audit line needs */
	int first_eof;			/* direction that saw EOF first, or -1 */
	int64_t last;			/* last activity */
	bool dead;			/* ended; freed after the event batch */
	struct hsession *prev, *next;
};

static struct {
	struct hub *h;
	int ep;
	struct hsock chan, sig;
	bool chan_done;			/* shut and drained: read no more */
	struct hsession *sessions;
	struct hsession *dead;		/* ended during this event batch */
	size_t nsessions;
	long nfds, maxfds;		/* open fds, RLIMIT_NOFILE soft limit */
	int idle_ms;
	bool retiring, stopping;
	int64_t cutoff;			/* stop: end everything at this time */
	int64_t last_scan;		/* the last pipe trim */
	int64_t idle_scan;		/* the last idle check */
	int64_t next_idle;		/* no session idles out before this */
} hub;

/* Bytes go through here first: a direction needs its own buffer only for
 * what the other side does not take at once. */
static uint8_t scratch[HUB_BUF];

/* relay.mode splice: a direction that moves bytes borrows a pipe, and
 * gives it back once it is empty, so idle parked sessions hold none. At
 * most HUB_PIPES are open, outside the fds the tickets promise; when all
 * are out, a direction copies through scratch instead. */
static struct {
	bool on;
	int size;			/* relay.pipe_size */
	int free[HUB_PIPES][2];
	int nfree, nopen;
	unsigned borrowed;		/* since the last scan */
} pipes;

/* fds kept out of the sessions' share. */
static long
hub_fd_reserve(void)
{
	return HUB_FD_RESERVE + (pipes.on ? 2 * HUB_PIPES : 0);
}

/* 0 with a pipe in h->pipe, or -1: none to be had (copy instead). */
static int
pipe_borrow(struct hdir *h)
{
	pipes.borrowed++;
	if (pipes.nfree > 0) {
		pipes.nfree--;
		h->pipe[0] = pipes.free[pipes.nfree][0];
		h->pipe[1] = pipes.free[pipes.nfree][1];
		return 0;
	}
	if (pipes.nopen >= HUB_PIPES ||
	    pipe2(h->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		h->pipe[0] = h->pipe[1] = -1;
		return -1;
	}
	(void)fcntl(h->pipe[1], F_SETPIPE_SZ, pipes.size);
	pipes.nopen++;
	return 0;
}

/* An empty pipe goes back to the pool; one still holding bytes (its
 * session ended) is closed. */
static void
pipe_return(struct hdir *h)
{
	if (h->pipe[0] == -1)
		return;
	if (h->len == 0 && pipes.nfree < HUB_PIPES) {
		pipes.free[pipes.nfree][0] = h->pipe[0];
		pipes.free[pipes.nfree][1] = h->pipe[1];
		pipes.nfree++;
	} else {
		close(h->pipe[0]);
		close(h->pipe[1]);
		pipes.nopen--;
	}
	h->pipe[0] = h->pipe[1] = -1;
}

/* After a quiet second the pool keeps only a few empty pipes: they count
 * against the user's pipe pages, which the workers' pipes share. */
static void
pipes_trim(void)
{
	if (pipes.borrowed == 0)
		while (pipes.nfree > HUB_PIPES_KEPT) {
			pipes.nfree--;
			close(pipes.free[pipes.nfree][0]);
			close(pipes.free[pipes.nfree][1]);
			pipes.nopen--;
		}
	pipes.borrowed = 0;
}

/* 0, or -1 (errno) when epoll cannot take the socket (ENOMEM, ENOSPC
 * from max_user_watches): that ends one session, not the hub. */
static int
hub_ctl_try(struct hsock *k, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = k };

	if (epoll_ctl(hub.ep, op, k->fd, &ev) == -1)
		return -1;
	k->events = events;
	k->in_set = op != EPOLL_CTL_DEL;
	return 0;
}

static void
hub_ctl(struct hsock *k, int op, uint32_t events)
{
	if (hub_ctl_try(k, op, events) == -1)
		fatal("epoll_ctl");
}

/* What socket side of s waits for now. */
static uint32_t
hsock_want(const struct hsession *s, int side)
{
	const struct hdir *rd = &s->dir[side], *wr = &s->dir[1 - side];
	uint32_t ev = 0;

	if (!rd->eof && rd->len == 0)
		ev |= EPOLLIN | EPOLLPRI;
	if (wr->len > 0)
		ev |= EPOLLOUT;
	return ev;
}

/* Level-triggered epoll reports hang-ups and errors even on a socket with
 * no interest. An error ends the session where it is seen; a clean hang-up
 * (both halves shut) would be reported again and again, so that socket
 * leaves the set until it is wanted again (relay.c does the same with
 * poll, after it spun on this). */
static int
hsession_interest(struct hsession *s)
{
	for (int i = 0; i < 2; i++) {
		struct hsock *k = &s->sock[i];
		uint32_t want = hsock_want(s, i);
		int rc = 0;

		if (want == 0 && k->hup) {
			if (k->in_set)
				rc = hub_ctl_try(k, EPOLL_CTL_DEL, 0);
		} else if (!k->in_set) {
			rc = hub_ctl_try(k, EPOLL_CTL_ADD, want);
		} else if (want != k->events) {
			rc = hub_ctl_try(k, EPOLL_CTL_MOD, want);
		}
		if (rc == -1)
			return -1;
	}
	return 0;
}

static void
hsession_end(struct hsession *s, enum relay_end end)
{
	struct session_audit a = {
		.client = &s->m.client,
		.listener = &s->m.listener,
		.target = &s->m.target,
		.cmd = SOCKS5_CMD_CONNECT,
		.rule = s->m.rule,
		.rep = SOCKS5_REP_SUCCEEDED,
		.dst = s->m.dst,
		.up = s->dir[RELAY_UP].bytes,
		.down = s->dir[RELAY_DOWN].bytes,
		.ms = io_now_ms() - s->m.start_ms,
		.end = relay_end_name(end),
		.parked = true,
	};

	session_log_audit(&a);
	for (int i = 0; i < 2; i++) {
		if (s->sock[i].in_set)
			(void)hub_ctl_try(&s->sock[i], EPOLL_CTL_DEL, 0);
		close(s->sock[i].fd);
		pipe_return(&s->dir[i]);
		free(s->dir[i].buf);
		s->dir[i].buf = NULL;
	}
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		hub.sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->dead = true;
	s->next = hub.dead;
	hub.dead = s;
	hub.nsessions--;
	hub.nfds -= 2;
	atomic_fetch_add(&hub.h->room->tickets, 1);
}

/* An I/O error on fd (errno set): a reset names the side that went away,
 * as relay.c does; anything else is an error. */
static void
hsession_fail(struct hsession *s, int fd)
{
	if (errno == ECONNRESET || errno == EPIPE) {
		hsession_end(s, s->first_eof == RELAY_DOWN ||
		    (s->first_eof == -1 && fd == s->sock[SIDE_TARGET].fd) ?
		    RELAY_END_TARGET : RELAY_END_CLIENT);
		return;
	}
	log_debug("relay %s: %s", s->m.dst, strerror(errno));
	hsession_end(s, RELAY_END_ERROR);
}

/* Sends what direction d holds. 0, or -1 with errno (the dst failed). */
static int
hdir_flush(struct hsession *s, int d)
{
	struct hdir *h = &s->dir[d];
	int dst = s->sock[1 - d].fd;
	ssize_t n;

	if (h->len == 0)
		return 0;
	if (h->pipe[0] != -1)
		n = splice(h->pipe[0], NULL, dst, NULL, h->len,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	else
		n = send(dst, h->buf + h->off, h->len, MSG_NOSIGNAL);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	h->off += (size_t)n;
	h->len -= (size_t)n;
	h->bytes += (uint64_t)n;
	if (n > 0)
		s->last = io_now_ms();
	if (h->len == 0) {
		/* An idle parked session holds no buffer and no pipe. */
		pipe_return(h);
		free(h->buf);
		h->buf = NULL;
		h->off = 0;
	}
	return 0;
}

/* Reads once through scratch and sends on at once; only the rest is
 * buffered. 1 if all of what was read went on (the source may have more),
 * 0 otherwise, or -1 with errno and the failing socket in *bad. recv()
 * steps over TCP urgent data, which is not relayed. */
static int
hdir_copy_once(struct hsession *s, int d, int *bad)
{
	struct hdir *h = &s->dir[d];
	int src = s->sock[d].fd, dst = s->sock[1 - d].fd;
	ssize_t n, w;

	h->urgent = false;
	n = recv(src, scratch, sizeof(scratch), 0);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		*bad = src;
		return -1;
	}
	s->last = io_now_ms();
	if (n == 0) {
		h->eof = true;
		if (s->first_eof == -1)
			s->first_eof = d;
		return 0;
	}
	w = send(dst, scratch, (size_t)n, MSG_NOSIGNAL);
	if (w == -1) {
		if (errno != EAGAIN && errno != EINTR) {
			*bad = dst;
			return -1;
		}
		w = 0;
	}
	h->bytes += (uint64_t)w;
	if (w < n) {
		if ((h->buf = malloc(HUB_BUF)) == NULL)
			fatal("malloc hub buffer");
		memcpy(h->buf, scratch + w, (size_t)(n - w));
		h->off = 0;
		h->len = (size_t)(n - w);
		return 0;
	}
	return 1;
}

/* relay.mode splice: source to a borrowed pipe, and on at once. As
 * hdir_copy_once. splice stops for good at TCP urgent data (0, or EAGAIN
 * after EPOLLPRI): there the pipe, empty, goes back and recv() steps over
 * the urgent byte. */
static int
hdir_splice_once(struct hsession *s, int d, int *bad)
{
	struct hdir *h = &s->dir[d];
	ssize_t n;

	n = splice(s->sock[d].fd, NULL, h->pipe[1], NULL, (size_t)pipes.size,
	    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if ((n == 0 || (n == -1 && errno == EAGAIN && h->urgent)) &&
	    io_at_urgent_mark(s->sock[d].fd)) {
		pipe_return(h);
		return hdir_copy_once(s, d, bad);
	}
	if (n <= 0) {
		int saved = errno;

		pipe_return(h);
		if (n == -1) {
			if (saved == EAGAIN || saved == EINTR)
				return 0;
			errno = saved;
			*bad = s->sock[d].fd;
			return -1;
		}
		s->last = io_now_ms();
		h->eof = true;
		if (s->first_eof == -1)
			s->first_eof = d;
		return 0;
	}
	s->last = io_now_ms();
	h->len = (size_t)n;
	if (hdir_flush(s, d) == -1) {
		*bad = s->sock[1 - d].fd;
		return -1;
	}
	return h->len == 0;
}

/* One read and send, by splice when a pipe can be had. */
static int
hdir_fill_once(struct hsession *s, int d, int *bad)
{
	if (pipes.on && pipe_borrow(&s->dir[d]) == 0)
		return hdir_splice_once(s, d, bad);
	return hdir_copy_once(s, d, bad);
}

/* A parked session that turns busy: a few reads per event rather than one
 * per epoll_wait, bounded so that one session cannot starve the others. */
static int
hdir_fill(struct hsession *s, int d, int *bad)
{
	int rc = 1;

	for (int i = 0; i < HUB_FILL_READS && rc == 1; i++)
		rc = hdir_fill_once(s, d, bad);
	return rc == -1 ? -1 : 0;
}

/* EOF on one side becomes shutdown(SHUT_WR) on the other once everything
 * before it was delivered. Returns whether the session is over. */
static bool
hsession_halfclose(struct hsession *s, int *bad)
{
	for (int d = 0; d < 2; d++) {
		struct hdir *h = &s->dir[d];

		if (!h->eof || h->len > 0 || h->shut)
			continue;
		/* When the other direction is done already, close() sends
		 * the FIN. */
		if (!s->dir[1 - d].shut &&
		    shutdown(s->sock[1 - d].fd, SHUT_WR) == -1 &&
		    errno != ENOTCONN) {
			*bad = s->sock[1 - d].fd;
			return false;
		}
		h->shut = true;
	}
	return s->dir[0].shut && s->dir[1].shut;
}

/* Events on socket side of s. */
static void
hsession_event(struct hsession *s, int side, uint32_t ev)
{
	struct hsock *k = &s->sock[side];
	int bad = -1, err = 0;
	socklen_t len = sizeof(err);

	if (ev & EPOLLERR) {
		/* No pending error but EPOLLERR: something sits in the error
		 * queue (timestamps, zero-copy notices: options a worker could
		 * have set). It would be reported for ever: end the session. */
		if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		errno = err != 0 ? err : EPROTO;
		hsession_fail(s, k->fd);
		return;
	}
	if (ev & EPOLLHUP)
		k->hup = true;
	if (ev & EPOLLPRI)
		s->dir[side].urgent = true;
	if ((ev & (EPOLLIN | EPOLLPRI | EPOLLHUP | EPOLLERR)) &&
	    (hsock_want(s, side) & EPOLLIN) &&
	    hdir_fill(s, side, &bad) == -1)
		goto failed;
	if ((ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) &&
	    hdir_flush(s, 1 - side) == -1) {
		bad = k->fd;
		goto failed;
	}
	if (hsession_halfclose(s, &bad)) {
		hsession_end(s, s->first_eof == RELAY_DOWN ?
		    RELAY_END_TARGET : RELAY_END_CLIENT);
		return;
	}
	if (bad != -1)
		goto failed;
	if (hsession_interest(s) == -1) {
		bad = k->fd;
		goto failed;
	}
	return;
failed:
	hsession_fail(s, bad);
}

/* What log_escape() writes: printable ASCII without space, '"' and '='
 * (a '\\' only starts an escape). Anything else in dst could forge a log
 * line. */
static bool
dst_escaped(const char *dst)
{
	for (const unsigned char *p = (const unsigned char *)dst; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '=')
			return false;
	return true;
}

static bool
addr_ok(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET || ss->ss_family == AF_INET6;
}

/* Checks a message from a worker. NULL if it is good, else why not. */
static const char *
hub_msg_check(const struct hub_msg *m, ssize_t n, int flags, const int *fds,
    int nfds)
{
	int type;
	socklen_t len = sizeof(type);
	struct stat st;

	if (flags & (MSG_TRUNC | MSG_CTRUNC))
		return "truncated";
	if (n != (ssize_t)sizeof(*m))
		return "wrong size";
	if (m->magic != HUB_MAGIC || m->version != HUB_VERSION)
		return "wrong magic or version";
	if (nfds != 2)
		return "not exactly two fds";
	for (int i = 0; i < nfds; i++)
		if (fstat(fds[i], &st) == -1 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
		    type != SOCK_STREAM)
			return "an fd is not a stream socket";
	if (memchr(m->dst, '\0', sizeof(m->dst)) == NULL)
		return "dst not terminated";
	if (!dst_escaped(m->dst))
		return "dst not escaped";
	if (!addr_ok(&m->client) || !addr_ok(&m->listener) ||
	    !addr_ok(&m->target))
		return "bad address";
	if (m->rule < -1)
		return "bad rule";
	return NULL;
}

static void
hsession_start(const struct hub_msg *m, const int fds[2])
{
	struct hsession *s = calloc(1, sizeof(*s));
	char client[ADDR_STRLEN];
	int64_t now = io_now_ms();

	if (s == NULL)
		fatal("calloc");
	s->m = *m;
	s->first_eof = -1;
	/* Times come from another process: keep them in [start, now], so
	 * that no arithmetic on them overflows. */
	if (s->m.start_ms > now || s->m.start_ms < now - HUB_MAX_AGE_MS)
		s->m.start_ms = now;
	/* The idle timeout counts from the worker's last activity. */
	s->last = m->last_ms > now ? now :
	    m->last_ms < s->m.start_ms ? s->m.start_ms : m->last_ms;
	if (s->last + hub.idle_ms < hub.next_idle)
		hub.next_idle = s->last + hub.idle_ms;
	s->dir[RELAY_UP].bytes = m->up;
	s->dir[RELAY_DOWN].bytes = m->down;
	for (int i = 0; i < 2; i++) {
		s->sock[i].s = s;
		s->sock[i].fd = fds[i];
		s->dir[i].pipe[0] = s->dir[i].pipe[1] = -1;
		(void)io_set_nonblock(fds[i], 1);
	}
	s->next = hub.sessions;
	if (hub.sessions != NULL)
		hub.sessions->prev = s;
	hub.sessions = s;
	hub.nsessions++;
	hub.nfds += 2;
	if (hsession_interest(s) == -1) {
		log_warn("hub %d: epoll_ctl", hub.h->index);
		hsession_end(s, RELAY_END_ERROR);
		return;
	}
	if (log_get_level() >= LOG_DEBUG) {
		addr_format((const struct sockaddr *)&m->client, client,
		    sizeof(client));
		log_debug("park client=%s hub=%d", client, hub.h->index);
	}
}

static void hub_signal(void);
static int hub_send_msg(int chan, const struct hub_msg *msg, int client,
    int target);

/* Tickets make sure a message always finds room; this is the backstop. */
static bool
hub_has_room(void)
{
	return hub.maxfds - hub.nfds >= hub_fd_reserve() + 2;
}

/* What the workers may send: every session the fds can hold, less the
 * channel's capacity, which may still hold messages sent on the tickets of
 * a hub that died (so a respawned hub is never promised more than it can
 * take). */
static void
hub_open_room(void)
{
	long n = (hub.maxfds - hub.nfds - hub_fd_reserve()) / 2 -
	    hub.h->queue_msgs;

	atomic_store(&hub.h->room->tickets, n > 0 ? n : 0);
}

/* Whether the channel was shut for reading (by this hub on retire or stop,
 * or by the master): an empty read is then its end, not a message. */
static bool
channel_shut(void)
{
	struct pollfd pfd = { .fd = hub.chan.fd, .events = POLLRDHUP };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP));
}

/* Receives one message: 1 taken or refused, 0 nothing more for now. */
static int
hub_take_one(void)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(HUB_MAX_FDS * sizeof(int))];
	} cb;
	struct hub_msg m;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh;
	struct cmsghdr *c;
	int fds[HUB_MAX_FDS], nfds = 0;
	const char *why;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cb.buf;
	mh.msg_controllen = sizeof(cb.buf);
	n = recvmsg(hub.chan.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("hub %d: recvmsg", hub.h->index);
		return 0;
	}
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (nfds < HUB_MAX_FDS)
				fds[nfds++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0 && nfds == 0 && channel_shut()) {
		/* Shut (retire, stop) and drained: nothing more comes. */
		hub.chan_done = true;
		return 0;
	}
	if ((why = hub_msg_check(&m, n, mh.msg_flags, fds, nfds)) != NULL) {
		log_warnx("hub %d: bad message from a worker (%s): dropped",
		    hub.h->index, why);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		/* Only a message in the right form was sent on a ticket. */
		if (n == (ssize_t)sizeof(m) && m.magic == HUB_MAGIC)
			atomic_fetch_add(&hub.h->room->tickets, 1);
		return 1;
	}
	hsession_start(&m, fds);
	return 1;
}

/* Takes what the workers sent, while there are fds to spare. */
static void
hub_take(void)
{
	for (int i = 0; i < HUB_TAKE_BATCH && !hub.chan_done && hub_has_room();
	    i++)
		if (hub_take_one() == 0)
			break;
}

/* The channel is read only while there is room: at the fd limit the
 * workers' sends fail with EAGAIN and they keep their sessions. */
static void
hub_chan_interest(void)
{
	uint32_t want = !hub.chan_done && hub_has_room() ? EPOLLIN : 0;

	if (hub.chan_done) {
		if (hub.chan.in_set)
			hub_ctl(&hub.chan, EPOLL_CTL_DEL, 0);
		if (hub.chan.fd != -1)
			close(hub.chan.fd);
		hub.chan.fd = -1;
		return;
	}
	if (want != hub.chan.events)
		hub_ctl(&hub.chan, EPOLL_CTL_MOD, want);
}

static void
hub_reap_dead(void)
{
	while (hub.dead != NULL) {
		struct hsession *s = hub.dead;

		hub.dead = s->next;
		free(s);
	}
}

/* When hub_scan is due: at the first idle deadline (but at most every
 * HUB_IDLE_MS), once a second for the pipe pool, at the stop cutoff. */
static int64_t
hub_scan_due(void)
{
	int64_t t = hub.last_scan + HUB_SCAN_MS;
	int64_t idle = hub.idle_scan + HUB_IDLE_MS;

	if (hub.next_idle > idle)
		idle = hub.next_idle;
	if (idle < t)
		t = idle;
	if (hub.stopping && hub.cutoff < t)
		t = hub.cutoff;
	return t;
}

/* Idle timeouts, at the stop cutoff everything; once a second the pipe
 * pool. */
static void
hub_scan(int64_t now)
{
	bool cut = hub.stopping && now >= hub.cutoff;
	struct hsession *s, *next;

	hub.next_idle = INT64_MAX;
	for (s = hub.sessions; s != NULL; s = next) {
		next = s->next;
		if (cut)
			hsession_end(s, RELAY_END_SHUTDOWN);
		else if (now - s->last >= hub.idle_ms)
			hsession_end(s, RELAY_END_IDLE);
		else if (s->last + hub.idle_ms < hub.next_idle)
			hub.next_idle = s->last + hub.idle_ms;
	}
	hub.idle_scan = now;
	if (now - hub.last_scan >= HUB_SCAN_MS) {
		pipes_trim();
		hub.last_scan = now;
	}
}

/* Retire or stop: no new sessions. The channel is shut for reading, which
 * makes the workers' sends fail; the messages already queued are still
 * read. */
static void
hub_close_channel(void)
{
	if (hub.chan.fd != -1)
		(void)shutdown(hub.chan.fd, SHUT_RD);
}

static void
hub_signal(void)
{
	struct signalfd_siginfo si;

	while (read(hub.sig.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (!hub.stopping)
				hub.cutoff = io_now_ms() +
				    (int64_t)hub.h->conf->timeouts.shutdown * 1000;
			hub.stopping = true;
			hub_close_channel();
			break;
		case SIGUSR1:
			hub.retiring = true;
			hub_close_channel();
			break;
		}
	}
}

static void
hub_setup_signals(void)
{
	sigset_t set;

	/* The master's mask is inherited; the hub reads its signals from a
	 * signalfd, so no handler runs in the middle of the event loop. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	sigdelset(&set, SIGHUP);
	sigdelset(&set, SIGCHLD);
	if ((hub.sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
}

/* Raises the soft fd limit to the hard one and counts what is open. */
static void
hub_limits(void)
{
	struct rlimit rl;
	struct dirent *de;
	DIR *d;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("getrlimit");
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit RLIMIT_NOFILE");
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	hub.maxfds = rl.rlim_cur > (rlim_t)INT32_MAX ? INT32_MAX :
	    (long)rl.rlim_cur;
	hub.nfds = 0;
	if ((d = opendir("/proc/self/fd")) == NULL) {
		hub.nfds = HUB_FD_RESERVE;	/* a guess on the safe side */
		return;
	}
	while ((de = readdir(d)) != NULL)
		hub.nfds += de->d_name[0] != '.';
	closedir(d);
	hub.nfds--;		/* the directory's own */
}

static int
hub_timeout(int64_t now)
{
	int64_t t = hub_scan_due() - now;

	return t < 0 ? 0 : t > HUB_SCAN_MS ? HUB_SCAN_MS : (int)t;
}

noreturn void
hub_main(struct hub *h)
{
	struct epoll_event evs[HUB_MAX_EVENTS];

	log_set_role("hub");
	(void)prctl(PR_SET_NAME, "socks5d-hub");
	memset(&hub, 0, sizeof(hub));
	hub.h = h;
	hub.idle_ms = h->conf->timeouts.idle * 1000;
	pipes.on = h->conf->relay.mode == RELAY_SPLICE;
	pipes.size = h->conf->relay.pipe_size;
	hub.chan.fd = h->chan;
	hub_setup_signals();
	priv_drop(h->conf, h->master, "hub");
	if ((hub.ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	hub_ctl(&hub.sig, EPOLL_CTL_ADD, EPOLLIN);
	hub_ctl(&hub.chan, EPOLL_CTL_ADD, EPOLLIN);
	hub_limits();
	hub_open_room();
	if (h->mode != HUB_RUN) {
		/* Started only to drain the channel of a hub that died. */
		hub.retiring = true;
		if (h->mode == HUB_STOP) {
			hub.stopping = true;
			hub.cutoff = io_now_ms() +
			    (int64_t)h->conf->timeouts.shutdown * 1000;
		}
		hub_close_channel();
	}
	hub.last_scan = hub.idle_scan = io_now_ms();
	hub.next_idle = INT64_MAX;

	for (;;) {
		int64_t now = io_now_ms();
		int n;

		if ((hub.retiring || hub.stopping) && hub.nsessions == 0 &&
		    (hub.chan_done || (hub.stopping && now >= hub.cutoff)))
			break;
		n = epoll_wait(hub.ep, evs, HUB_MAX_EVENTS, hub_timeout(now));
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct hsock *k = evs[i].data.ptr;

			if (k == &hub.sig)
				hub_signal();
			else if (k == &hub.chan)
				hub_take();
			else if (!k->s->dead)
				hsession_event(k->s, (int)(k - k->s->sock),
				    evs[i].events);
		}
		hub_reap_dead();
		if (hub.retiring || hub.stopping) {
			/* Read what was queued before the channel was shut. */
			hub_take();
		}
		hub_chan_interest();
		now = io_now_ms();
		if (now >= hub_scan_due())
			hub_scan(now);
		hub_reap_dead();
	}
	close(hub.ep);
	close(hub.sig.fd);
	exit(0);
}

struct hub_room *
hub_rooms_create(size_t n)
{
	struct hub_room *r = mmap(NULL, n * sizeof(*r), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (r == MAP_FAILED)
		return NULL;
	for (size_t i = 0; i < n; i++)
		atomic_store(&r[i].tickets, 0);	/* until the hub opens it */
	return r;
}

void
hub_rooms_destroy(struct hub_room *rooms, size_t n)
{
	if (rooms != NULL)
		munmap(rooms, n * sizeof(*rooms));
}

int
hub_send(int chan, struct hub_room *room, const struct hub_msg *msg,
    int client, int target)
{
	int rc;

	if (atomic_fetch_sub(&room->tickets, 1) <= 0) {
		atomic_fetch_add(&room->tickets, 1);
		errno = ENOSPC;
		return -1;
	}
	if ((rc = hub_send_msg(chan, msg, client, target)) == -1) {
		int saved = errno;
		atomic_fetch_add(&room->tickets, 1);
		errno = saved;
	}
	return rc;
}

static int
hub_send_msg(int chan, const struct hub_msg *msg, int client, int target)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} cb;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = sizeof(*msg) };
	struct msghdr mh;
	struct cmsghdr *c;
	int fds[2] = { client, target };
	ssize_t n;

	memset(&cb, 0, sizeof(cb));
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cb.buf;
	mh.msg_controllen = sizeof(cb.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	/* Never wait: a full queue or a missing hub means "keep it". */
	n = sendmsg(chan, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n == (ssize_t)sizeof(*msg))
		return 0;
	if (n >= 0)
		errno = EMSGSIZE;
	return -1;
}
