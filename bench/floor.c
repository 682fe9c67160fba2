/*
 * floor.c: the least a SOCKS5 proxy can do, in two shapes, as benchmark
 * references ("design floors") for socks5d.
 *
 *   floor prefork PORT [N]   N pre-forked processes (default 320), each
 *                            accepting and running one session at a time
 *                            with blocking negotiation and a splice(2)
 *                            relay: socks5d's design with nothing else.
 *   floor events PORT [N]    N processes (default: online CPUs), each one
 *                            epoll loop holding many sessions, a splice(2)
 *                            relay with a pipe per session end taken from a
 *                            per-process pool: the event-driven design
 *                            (nginx, haproxy).
 *   floor events-copy PORT [N]  the same with a 16 KiB copy relay.
 *
 * Method 00 and CONNECT to an IPv4 address only; no rules, no log, no
 * timeouts beyond a 600 s idle poll, no privilege drop. Anything else
 * closes the connection. It listens on 127.0.0.1 only, and runs until
 * killed (bench/run stops it by process group). It is not a proxy to
 * use: it measures what a design costs on a machine before any feature.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define IDLE_MS 600000
#define PIPE_BYTES 65536
#define BUF_BYTES 16384

static int listen_fd;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The CONNECT reply: BND = the outgoing socket's local address. */
static void
make_reply(int target, unsigned char rep[10])
{
	struct sockaddr_in me = { 0 };
	socklen_t len = sizeof me;

	getsockname(target, (struct sockaddr *)&me, &len);
	rep[0] = 5, rep[1] = 0, rep[2] = 0, rep[3] = 1;
	memcpy(rep + 4, &me.sin_addr, 4);
	memcpy(rep + 8, &me.sin_port, 2);
}

/* A request is 05 01 00 01 ADDR(4) PORT(2); fills dst. */
static bool
parse_request(const unsigned char req[10], struct sockaddr_in *dst)
{
	if (req[0] != 5 || req[1] != 1 || req[2] != 0 || req[3] != 1)
		return false;
	memset(dst, 0, sizeof *dst);
	dst->sin_family = AF_INET;
	memcpy(&dst->sin_addr, req + 4, 4);
	memcpy(&dst->sin_port, req + 8, 2);
	return true;
}

/* ------------------------------------------------------------ prefork */

static bool
read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
		if (n <= 0)
			return false;
		got += n;
	}
	return true;
}

struct dir {
	int src, dst, pipe[2];
	size_t held;
	bool eof, done;
};

/* Moves what it can in one direction without blocking; true if it
 * moved anything (worth trying again before polling). */
static bool
dir_pump(struct dir *d)
{
	bool moved = false;

	if (d->done)
		return false;
	if (!d->eof && d->held < PIPE_BYTES) {
		ssize_t n = splice(d->src, NULL, d->pipe[1], NULL,
		    PIPE_BYTES - d->held, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			d->held += n, moved = true;
		else if (n == 0 || errno != EAGAIN)
			d->eof = true;
	}
	while (d->held > 0) {
		ssize_t n = splice(d->pipe[0], NULL, d->dst, NULL, d->held,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN)
				d->eof = d->done = true;	/* dst is gone */
			return moved;
		}
		d->held -= n;
	}
	if (d->eof && d->held == 0) {
		shutdown(d->dst, SHUT_WR);
		d->done = true;
	}
	return moved;
}

static void
relay(int client, int target, int pipes[2][2])
{
	struct dir dirs[2] = {
		{ client, target, { pipes[0][0], pipes[0][1] }, 0, false, false },
		{ target, client, { pipes[1][0], pipes[1][1] }, 0, false, false },
	};

	fcntl(client, F_SETFL, O_NONBLOCK);
	fcntl(target, F_SETFL, O_NONBLOCK);
	bool again[2] = { false, false };	/* worth trying before polling */

	while (!dirs[0].done || !dirs[1].done) {
		bool moved = false;
		for (int i = 0; i < 2; i++)
			if (again[i])
				moved |= again[i] = dir_pump(&dirs[i]);
		if (dirs[0].done && dirs[1].done)
			break;
		if (moved)	/* bulk data: a socket that had some has more */
			continue;
		struct pollfd p[2] = { { client, 0, 0 }, { target, 0, 0 } };
		for (int i = 0; i < 2; i++) {
			struct dir *d = &dirs[i];
			if (d->done)
				continue;
			if (!d->eof && d->held < PIPE_BYTES)
				p[i].events |= POLLIN;
			if (d->held > 0)
				p[1 - i].events |= POLLOUT;
		}
		if (poll(p, 2, IDLE_MS) <= 0)
			break;
		/* direction i reads p[i] and writes p[1 - i] */
		for (int i = 0; i < 2; i++)
			again[i] = p[i].revents != 0 || p[1 - i].revents != 0;
	}
	/* A pipe left holding bytes (its reader gone) is emptied for the
	 * next session: the pipes are non-blocking and hold at most
	 * PIPE_BYTES, so this ends. */
	for (int i = 0; i < 2; i++) {
		char sink[4096];
		while (dirs[i].held > 0 &&
		    read(pipes[i][0], sink, sizeof sink) > 0)
			;
	}
}

static void
prefork_session(int client, int pipes[2][2])
{
	unsigned char buf[257], rep[10];
	struct sockaddr_in dst;
	int target;

	if (!read_full(client, buf, 2) || buf[0] != 5 ||
	    !read_full(client, buf + 2, buf[1]) ||
	    memchr(buf + 2, 0, buf[1]) == NULL)
		return;
	if (send(client, "\5\0", 2, MSG_NOSIGNAL) != 2 ||
	    !read_full(client, buf, 10) || !parse_request(buf, &dst))
		return;
	target = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (target == -1)
		return;
	set_nodelay(target);
	if (connect(target, (struct sockaddr *)&dst, sizeof dst) == 0) {
		make_reply(target, rep);
		if (send(client, rep, 10, MSG_NOSIGNAL) == 10)
			relay(client, target, pipes);
	}
	close(target);
}

static void
prefork_worker(void)
{
	int pipes[2][2];

	for (int i = 0; i < 2; i++) {
		if (pipe2(pipes[i], O_NONBLOCK | O_CLOEXEC) == -1)
			die("pipe2");
		fcntl(pipes[i][1], F_SETPIPE_SZ, PIPE_BYTES);
	}
	for (;;) {
		int client = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (client == -1)
			continue;
		prefork_session(client, pipes);
		close(client);
	}
}

/* ------------------------------------------------------------- events */

enum state { GREETING, REQUEST, CONNECTING, RELAY };

struct sess;
struct end {			/* what epoll returns for one socket */
	struct sess *s;
	int fd;
	struct end *peer;
	unsigned char buf[BUF_BYTES];
	size_t off, len;	/* bytes read from this end, not yet sent on */
	int pipe[2];		/* events (splice): bytes are held here */
	bool eof, shut;		/* read EOF; peer shut for writing */
};

struct sess {
	enum state state;
	bool dead;
	struct sess *next_dead;
	struct end client, target;
	unsigned char req[10];
	size_t have;
};

/* Each socket is added once, edge-triggered, for both directions. */
static int
ev_add(int ep, struct end *e)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
	    EPOLLET, .data.ptr = e };

	return epoll_ctl(ep, EPOLL_CTL_ADD, e->fd, &ev);
}

/* events: each end of a relayed session holds a pipe, taken from
 * a per-process pool of empty pipes so that a session costs no pipe2()
 * once the pool has filled. */
static bool use_splice;
static int pipe_pool[4096][2];
static size_t pipes_free;

static bool
pipe_get(struct end *e)
{
	if (pipes_free > 0) {
		pipes_free--;
		e->pipe[0] = pipe_pool[pipes_free][0];
		e->pipe[1] = pipe_pool[pipes_free][1];
		return true;
	}
	return pipe2(e->pipe, O_NONBLOCK | O_CLOEXEC) == 0;
}

static void
pipe_put(struct end *e)
{
	if (e->pipe[0] == -1)
		return;
	if (e->len == 0 && pipes_free < sizeof pipe_pool / sizeof *pipe_pool) {
		pipe_pool[pipes_free][0] = e->pipe[0];
		pipe_pool[pipes_free][1] = e->pipe[1];
		pipes_free++;
	} else {
		close(e->pipe[0]);
		close(e->pipe[1]);
	}
	e->pipe[0] = e->pipe[1] = -1;
}

/* Sessions ended while handling one batch of events are freed after it:
 * a later event of the same batch may still point at them. */
static struct sess *dead_list;

static void
sess_free(struct sess *s)
{
	close(s->client.fd);
	if (s->target.fd != -1)
		close(s->target.fd);
	pipe_put(&s->client);
	pipe_put(&s->target);
	s->dead = true;
	s->next_dead = dead_list;
	dead_list = s;
}

static void
free_dead(void)
{
	while (dead_list != NULL) {
		struct sess *s = dead_list;
		dead_list = s->next_dead;
		free(s);
	}
}

/* Reads from e into its buffer or pipe: > 0 bytes, 0 EOF, -1 errno. */
static ssize_t
ev_read(struct end *e)
{
	if (use_splice)
		return splice(e->fd, NULL, e->pipe[1], NULL, PIPE_BYTES,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	return recv(e->fd, e->buf, sizeof e->buf, 0);
}

/* Writes what e holds to its peer: bytes written, or -1 errno. */
static ssize_t
ev_write(struct end *e)
{
	if (use_splice)
		return splice(e->pipe[0], NULL, e->peer->fd, NULL, e->len,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	return send(e->peer->fd, e->buf + e->off, e->len, MSG_NOSIGNAL);
}

/* Moves bytes from e to its peer until neither can go on (edge-triggered:
 * every socket is drained to EAGAIN); false when the session is over or
 * broken. */
static bool
ev_pump(struct end *e)
{
	for (;;) {
		if (e->len == 0 && !e->eof) {
			ssize_t n = ev_read(e);
			if (n > 0)
				e->off = 0, e->len = n;
			else if (n == 0 || errno != EAGAIN)
				e->eof = true;
			else
				break;
		}
		if (e->len == 0)
			break;
		ssize_t n = ev_write(e);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN)
				return false;
			break;
		}
		e->off += n, e->len -= n;
		if (e->len > 0)
			break;
	}
	if (e->eof && e->len == 0 && !e->shut) {
		shutdown(e->peer->fd, SHUT_WR);
		e->shut = true;
	}
	return true;
}

static void
ev_relay(struct sess *s)
{
	if (!ev_pump(&s->client) || !ev_pump(&s->target) ||
	    (s->client.shut && s->target.shut))
		sess_free(s);
}

static bool ev_parse(int ep, struct sess *s);

static void
ev_start_connect(int ep, struct sess *s)
{
	struct sockaddr_in dst;
	int fd;

	if (!parse_request(s->req, &dst)) {
		sess_free(s);
		return;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		sess_free(s);
		return;
	}
	set_nodelay(fd);
	s->target.fd = fd;
	if (connect(fd, (struct sockaddr *)&dst, sizeof dst) == -1 &&
	    errno != EINPROGRESS) {
		sess_free(s);
		return;
	}
	s->state = CONNECTING;
	if (ev_add(ep, &s->target) == -1)
		sess_free(s);
}

/* The target's first EPOLLOUT: connected or failed. Client bytes that
 * came meanwhile are picked up by the first pump. */
static void
ev_connected(struct sess *s)
{
	unsigned char rep[10];
	int err = 0;
	socklen_t len = sizeof err;

	getsockopt(s->target.fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err != 0) {
		sess_free(s);
		return;
	}
	make_reply(s->target.fd, rep);
	if (send(s->client.fd, rep, 10, MSG_NOSIGNAL) != 10) {
		sess_free(s);
		return;
	}
	if (use_splice && (!pipe_get(&s->client) || !pipe_get(&s->target))) {
		sess_free(s);
		return;
	}
	s->state = RELAY;
	ev_relay(s);
}

/* Greeting and request, read as they come (at most 257 + 10 bytes); the
 * client is edge-triggered, so this reads until EAGAIN. */
static void
ev_negotiate(int ep, struct sess *s)
{
	unsigned char *buf = s->client.buf;

	for (;;) {
		ssize_t n = recv(s->client.fd, buf + s->have,
		    sizeof s->client.buf - s->have, 0);
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN)
				sess_free(s);
			return;
		}
		s->have += n;
		if (!ev_parse(ep, s) || s->state == CONNECTING)
			return;
	}
}

/* Acts on what negotiation has read; false when s was freed. */
static bool
ev_parse(int ep, struct sess *s)
{
	unsigned char *buf = s->client.buf;

	if (s->state == GREETING) {
		if (s->have < 2 || s->have < 2u + buf[1])
			return true;
		if (buf[0] != 5 || memchr(buf + 2, 0, buf[1]) == NULL ||
		    s->have != 2u + buf[1] ||
		    send(s->client.fd, "\5\0", 2, MSG_NOSIGNAL) != 2) {
			sess_free(s);
			return false;
		}
		s->have = 0;
		s->state = REQUEST;
		return true;
	}
	if (s->have < 10)
		return true;
	if (s->have > 10) {	/* no pipelining in the floor */
		sess_free(s);
		return false;
	}
	memcpy(s->req, buf, 10);
	ev_start_connect(ep, s);
	return false;		/* s may be gone; the loop stops */
}

static void
ev_accept(int ep)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(listen_fd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			return;
		struct sess *s = calloc(1, sizeof *s);
		if (s == NULL) {
			close(fd);
			return;
		}
		s->client.s = s->target.s = s;
		s->client.fd = fd;
		s->target.fd = -1;
		s->client.pipe[0] = s->client.pipe[1] = -1;
		s->target.pipe[0] = s->target.pipe[1] = -1;
		s->client.peer = &s->target;
		s->target.peer = &s->client;
		if (ev_add(ep, &s->client) == -1)
			sess_free(s);
	}
}

static void
events_worker(void)
{
	struct epoll_event evs[128];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN | EPOLLEXCLUSIVE };

	if (ep == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev) == -1)
		die("epoll");
	for (;;) {
		int n = epoll_wait(ep, evs, 128, -1);
		for (int i = 0; i < n; i++) {
			struct end *e = evs[i].data.ptr;
			if (e == NULL) {
				ev_accept(ep);
				continue;
			}
			struct sess *s = e->s;
			if (s->dead)
				continue;
			switch (s->state) {
			case GREETING:
			case REQUEST:
				ev_negotiate(ep, s);
				break;
			case CONNECTING:
				if (e == &s->target)
					ev_connected(s);
				break;
			case RELAY:
				ev_relay(s);
				break;
			}
		}
		free_dead();
	}
}

/* --------------------------------------------------------------- main */

static void
open_listener(int port, bool nonblock)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
	    (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (listen_fd == -1)
		die("socket");
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	set_nodelay(listen_fd);
	if (bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) == -1 ||
	    listen(listen_fd, 4096) == -1)
		die("listen");
}

int
main(int argc, char **argv)
{
	bool events;
	int port, n;

	if (argc < 3 || argc > 4 || (strcmp(argv[1], "prefork") != 0 &&
	    strcmp(argv[1], "events") != 0 &&
	    strcmp(argv[1], "events-copy") != 0)) {
		fprintf(stderr, "usage: floor prefork|events|events-copy PORT "
		    "[PROCESSES]\n");
		return 2;
	}
	events = strncmp(argv[1], "events", 6) == 0;
	use_splice = strcmp(argv[1], "events") == 0;
	port = atoi(argv[2]);
	n = argc == 4 ? atoi(argv[3]) :
	    events ? (int)sysconf(_SC_NPROCESSORS_ONLN) : 320;
	if (port <= 0 || port > 65535 || n <= 0 || n > 4096) {
		fprintf(stderr, "floor: bad port or process count\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN);	/* no zombies if one dies */
	open_listener(port, events);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == -1)
			die("fork");
		if (pid == 0) {
			if (events)
				events_worker();
			else
				prefork_worker();
			_exit(0);
		}
	}
	printf("start floor %s port %d processes %d\n", argv[1], port, n);
	fflush(stdout);
	for (;;)
		pause();
}
