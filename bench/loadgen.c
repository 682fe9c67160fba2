/*
 * loadgen: a SOCKS5 load generator with its own loopback targets.
 *
 * One process, T threads.  Each thread runs one epoll loop holding its share
 * of the clients and its own SO_REUSEPORT listeners of the three targets:
 *   echo   (echoes what it reads; rate, burst and idle modes),
 *   sink   (discards what it reads, with MSG_TRUNC: no copy; stream-up),
 *   source (writes without end, with sendfile from a memfd; stream-down).
 * Clients go through a SOCKS5 proxy (--proxy; method 00, or RFC 1929 with
 * --user/--pass; CONNECT by IPv4, by domain "localhost" or by IPv6) or, with
 * no --proxy, straight to the target (the "direct" row).
 *
 * Modes (all bounded in time; all traffic on loopback):
 *   rate         N closed-loop clients (-c N) for -d seconds after -w of
 *                warm-up: connect, negotiate, CONNECT, 64-byte echo, close.
 *   stream-up    S streams (-c S) writing to the sink; MB/s over -d seconds.
 *   stream-down  S streams reading from the source; MB/s over -d seconds.
 *   idle         K relayed sessions (-c K) set up (64-byte echo each), held,
 *                then checked again with one more echo each.  Talks to its
 *                caller on stdin/stdout: prints READY, waits for a line (or
 *                EOF), sets up, prints ESTABLISHED {json}, waits for a line
 *                (or EOF, then --hold seconds), verifies, prints RESULT.
 *   burst        K clients (-c K) started at once; each does one rate-mode
 *                session; time until all are served, wait percentiles.
 *   bind         N closed-loop clients as in rate, with BIND instead of
 *                CONNECT: BIND 127.0.0.1:0 (or ::1), first reply, a peer
 *                (an echo target of this thread) connects to the announced
 *                address, second reply, 64-byte echo through it, close.
 * The last line on stdout is "RESULT {json}".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXTHREADS 64
#define SRCSIZE (1 << 20)
#define SCRATCH (1 << 20)

enum mode { M_RATE, M_UP, M_DOWN, M_IDLE, M_BURST, M_BIND };
enum tkind { T_ECHO, T_SINK, T_SOURCE, T_N };
enum okind { O_LISTEN = 1, O_TARGET, O_CLIENT };
enum cstate {
	C_FREE, C_CONNECTING, C_SEND, C_METHOD, C_AUTH, C_REPLY, C_REPLY2, C_ECHO,
	C_HOLD, C_UP, C_DOWN, C_DONE
};
enum fail { F_CONNECT, F_RESET, F_SOCKS, F_TIMEOUT, F_OTHER, F_N };
static const char *fail_name[F_N] = { "connect", "reset", "socks", "timeout", "other" };

/* ---- options and shared state ---- */

static struct {
	enum mode mode;
	int clients, threads, payload, inflight;
	double duration, warmup, timeout, hold, pause;
	bool proxied;
	struct sockaddr_storage proxy;
	socklen_t proxylen;
	int atyp; /* 1 ipv4, 3 domain, 4 ipv6 */
	const char *user, *pass;
} opt = {
	.mode = M_RATE, .clients = 16, .threads = 2, .payload = 64,
	.inflight = 64, .duration = 3, .warmup = 0.5, .timeout = 30,
	.hold = 0, .atyp = 1,
};

static int tport[T_N];       /* target ports (same on 127.0.0.1 and ::1) */
static int srcfd = -1;       /* memfd the source sends from */
static int64_t t_start, t_meas0, t_meas1;
static atomic_int stop, phase; /* phase: 0 set-up, 1 verify (idle) */
static atomic_int go = 1;     /* stream-up: 0 while streams pause (-I) */
static atomic_int threads_done;
static pthread_barrier_t barrier;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* ---- objects in the epoll sets ---- */

struct obj { uint8_t kind; };

struct listener {
	uint8_t kind, tkind;
	int fd;
};

struct target {
	uint8_t kind, tkind;
	int fd;
	uint32_t wlen, woff;
	off_t srcoff;
	struct target *next_free;
	unsigned char buf[2048];
};

struct client {
	uint8_t kind, state, next;
	bool verifying;
	int fd;
	int64_t t0;
	uint32_t wlen, woff, rlen, want;
	struct client *next_restart;
	unsigned char wbuf[600];
	unsigned char rbuf[600];
};

struct thr {
	int id, ep;
	pthread_t tid;
	struct listener lst[T_N][2];
	struct client *cl;
	int ncl, started, finished; /* idle/burst/stream bookkeeping */
	int established, verified, dropped, holding, vbusy;
	struct target *free_later;
	struct client *restart;
	char *scratch;
	/* results */
	float *lat;
	size_t nlat, caplat;
	uint64_t sessions_in_window, sessions_total;
	uint64_t fails[F_N];
	_Atomic uint64_t sink_bytes, down_bytes;
	atomic_int ready_streams;
	int64_t last_done;
} thr[MAXTHREADS];

static void add_lat(struct thr *t, float us)
{
	if (t->nlat == t->caplat) {
		t->caplat = t->caplat ? t->caplat * 2 : 65536;
		t->lat = realloc(t->lat, t->caplat * sizeof *t->lat);
		if (!t->lat)
			die("realloc");
	}
	t->lat[t->nlat++] = us;
}

static void set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- targets ---- */

static void target_close(struct thr *t, struct target *g)
{
	close(g->fd);
	g->fd = -1;
	g->next_free = t->free_later;
	t->free_later = g;
}

static void target_event(struct thr *t, struct target *g, uint32_t ev)
{
	ssize_t n;
	if (g->fd < 0)
		return;
	switch (g->tkind) {
	case T_ECHO:
		for (;;) {
			while (g->woff < g->wlen) {
				n = send(g->fd, g->buf + g->woff, g->wlen - g->woff, MSG_NOSIGNAL);
				if (n < 0) {
					if (errno == EAGAIN)
						return;
					target_close(t, g);
					return;
				}
				g->woff += n;
			}
			n = recv(g->fd, g->buf, sizeof g->buf, 0);
			if (n <= 0) {
				if (n < 0 && errno == EAGAIN)
					return;
				target_close(t, g);
				return;
			}
			g->wlen = n;
			g->woff = 0;
		}
	case T_SINK:
		for (;;) {
			n = recv(g->fd, t->scratch, SCRATCH, MSG_TRUNC);
			if (n <= 0) {
				if (n < 0 && errno == EAGAIN)
					return;
				target_close(t, g);
				return;
			}
			atomic_fetch_add_explicit(&t->sink_bytes, n, memory_order_relaxed);
		}
	case T_SOURCE:
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
			n = recv(g->fd, t->scratch, SCRATCH, MSG_TRUNC);
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				target_close(t, g);
				return;
			}
		}
		for (;;) {
			if (g->srcoff >= SRCSIZE)
				g->srcoff = 0;
			n = sendfile(g->fd, srcfd, &g->srcoff, SRCSIZE - g->srcoff);
			if (n <= 0) {
				if (n < 0 && errno == EAGAIN)
					return;
				target_close(t, g);
				return;
			}
		}
	}
}

static void listener_event(struct thr *t, struct listener *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				static atomic_int warned;
				if (!atomic_exchange(&warned, 1))
					fprintf(stderr, "loadgen: accept: %s\n", strerror(errno));
				return;
			}
			continue;
		}
		set_nodelay(fd);
		struct target *g = malloc(sizeof *g);
		if (!g)
			die("malloc");
		g->kind = O_TARGET;
		g->tkind = l->tkind;
		g->fd = fd;
		g->wlen = g->woff = 0;
		g->srcoff = 0;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = g };
		if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl");
		if (g->tkind == T_SOURCE)
			target_event(t, g, EPOLLOUT);
	}
}

/* ---- clients ---- */

static enum tkind mode_target(void)
{
	return opt.mode == M_UP ? T_SINK : opt.mode == M_DOWN ? T_SOURCE : T_ECHO;
}

static void client_end(struct thr *t, struct client *c, int fail)
{
	if (fail >= 0)
		t->fails[fail]++;
	if (c->verifying) {
		c->verifying = false;
		t->vbusy--;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = C_DONE;
	t->finished++;
	if ((opt.mode == M_RATE || opt.mode == M_BIND) &&
	    !atomic_load_explicit(&stop, memory_order_relaxed)) {
		c->next_restart = t->restart;
		t->restart = c;
	}
}

static void client_start(struct thr *t, struct client *c)
{
	int fam = opt.proxied ? opt.proxy.ss_family : AF_INET;
	c->kind = O_CLIENT;
	c->t0 = now_ns();
	c->rlen = c->wlen = c->woff = 0;
	c->fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	t->started++;
	if (c->fd < 0) {
		client_end(t, c, F_CONNECT);
		return;
	}
	set_nodelay(c->fd);
	c->state = C_CONNECTING;
	int r;
	if (opt.proxied) {
		r = connect(c->fd, (struct sockaddr *)&opt.proxy, opt.proxylen);
	} else {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(tport[mode_target()]) };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		r = connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
	}
	if (r < 0 && errno != EINPROGRESS) {
		client_end(t, c, F_CONNECT);
		return;
	}
	/* Added after connect(): an unconnected socket polls as HUP|OUT.  Once
	 * connected (now or later) the EPOLLOUT edge comes from epoll. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl");
}

static void queue_send(struct client *c, uint32_t len, uint8_t next)
{
	c->wlen = len;
	c->woff = 0;
	c->state = C_SEND;
	c->next = next;
	c->rlen = 0;
}

static void build_connect(struct client *c)
{
	unsigned char *p = c->wbuf;
	uint16_t port = htons(tport[mode_target()]);
	if (opt.mode == M_BIND)
		port = 0; /* the port the peer connects from: any */
	*p++ = 5; *p++ = opt.mode == M_BIND ? 2 : 1; *p++ = 0;
	*p++ = (unsigned char)opt.atyp;
	if (opt.atyp == 1) {
		uint32_t a = htonl(INADDR_LOOPBACK);
		memcpy(p, &a, 4); p += 4;
	} else if (opt.atyp == 4) {
		memcpy(p, &in6addr_loopback, 16); p += 16;
	} else {
		*p++ = 9; memcpy(p, "localhost", 9); p += 9;
	}
	memcpy(p, &port, 2); p += 2;
	queue_send(c, (uint32_t)(p - c->wbuf), C_REPLY);
}

/* BIND: the peer, an echo target of this thread, connects to the address
 * of the first reply (rbuf); the proxy relays it once accepted. */
static bool bind_peer(struct thr *t, struct client *c)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	if (c->rbuf[3] == 1) {
		struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
		sa->sin_family = AF_INET;
		memcpy(&sa->sin_addr, c->rbuf + 4, 4);
		memcpy(&sa->sin_port, c->rbuf + 8, 2);
		len = sizeof *sa;
	} else if (c->rbuf[3] == 4) {
		struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
		sa->sin6_family = AF_INET6;
		memcpy(&sa->sin6_addr, c->rbuf + 4, 16);
		memcpy(&sa->sin6_port, c->rbuf + 20, 2);
		len = sizeof *sa;
	} else {
		return false;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	set_nodelay(fd);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		close(fd);
		return false;
	}
	struct target *g = malloc(sizeof *g);
	if (!g)
		die("malloc");
	g->kind = O_TARGET;
	g->tkind = T_ECHO;
	g->fd = fd;
	g->wlen = g->woff = 0;
	g->srcoff = 0;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = g };
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl");
	return true;
}

static void start_payload(struct thr *t, struct client *c)
{
	switch (opt.mode) {
	case M_UP:
		c->state = C_UP;
		atomic_fetch_add(&t->ready_streams, 1);
		break;
	case M_DOWN:
		c->state = C_DOWN;
		atomic_fetch_add(&t->ready_streams, 1);
		break;
	default:
		memset(c->wbuf, 'x', opt.payload);
		queue_send(c, opt.payload, C_ECHO);
		c->want = opt.payload;
	}
}

static void echo_done(struct thr *t, struct client *c)
{
	int64_t tn = now_ns();
	switch (opt.mode) {
	case M_RATE:
	case M_BIND:
		t->sessions_total++;
		if (tn >= t_meas0 && tn < t_meas1) {
			t->sessions_in_window++;
			add_lat(t, (float)((tn - c->t0) / 1000.0));
		}
		client_end(t, c, -1);
		break;
	case M_BURST:
		t->sessions_total++;
		add_lat(t, (float)((tn - t_start) / 1000.0));
		if (tn > t->last_done)
			t->last_done = tn;
		client_end(t, c, -1);
		break;
	case M_IDLE:
		c->state = C_HOLD;
		if (atomic_load(&phase) == 0) {
			t->established++;
			t->holding++;
			t->finished++;
		} else if (c->verifying) {
			t->verified++;
			c->verifying = false;
			t->vbusy--;
		}
		break;
	default:
		break;
	}
}

static void client_event(struct thr *t, struct client *c, uint32_t ev)
{
	ssize_t n;
	if (c->fd < 0)
		return;
	for (;;) {
		switch (c->state) {
		case C_CONNECTING: {
			if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
				return;
			int err = 0;
			socklen_t el = sizeof err;
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err) {
				client_end(t, c, F_CONNECT);
				return;
			}
			if (!opt.proxied) {
				start_payload(t, c);
				break;
			}
			c->wbuf[0] = 5; c->wbuf[1] = 1; c->wbuf[2] = opt.user ? 2 : 0;
			queue_send(c, 3, C_METHOD);
			break;
		}
		case C_SEND:
			while (c->woff < c->wlen) {
				n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
				if (n < 0) {
					if (errno == EAGAIN)
						return;
					client_end(t, c, F_RESET);
					return;
				}
				c->woff += n;
			}
			c->state = c->next;
			c->rlen = 0;
			break;
		case C_METHOD:
		case C_AUTH:
		case C_REPLY:
		case C_REPLY2:
		case C_ECHO: {
			size_t room = sizeof c->rbuf - c->rlen;
			if (c->state == C_METHOD || c->state == C_AUTH)
				room = 2 - c->rlen;
			else if (c->state == C_ECHO)
				room = c->want - c->rlen < room ? c->want - c->rlen : room;
			n = recv(c->fd, c->rbuf + c->rlen, room, 0);
			if (n <= 0) {
				if (n < 0 && errno == EAGAIN)
					return;
				client_end(t, c, F_RESET);
				return;
			}
			c->rlen += n;
			if (c->state == C_METHOD) {
				if (c->rlen < 2)
					break;
				if (c->rbuf[0] != 5 || c->rbuf[1] != (opt.user ? 2 : 0)) {
					client_end(t, c, F_SOCKS);
					return;
				}
				if (opt.user) {
					size_t ul = strlen(opt.user), pl = strlen(opt.pass);
					unsigned char *p = c->wbuf;
					*p++ = 1; *p++ = (unsigned char)ul; memcpy(p, opt.user, ul); p += ul;
					*p++ = (unsigned char)pl; memcpy(p, opt.pass, pl); p += pl;
					queue_send(c, (uint32_t)(p - c->wbuf), C_AUTH);
				} else {
					build_connect(c);
				}
			} else if (c->state == C_AUTH) {
				if (c->rlen < 2)
					break;
				if (c->rbuf[1] != 0) {
					client_end(t, c, F_SOCKS);
					return;
				}
				build_connect(c);
			} else if (c->state == C_REPLY || c->state == C_REPLY2) {
				if (c->rlen < 5)
					break;
				uint32_t need = c->rbuf[3] == 1 ? 10 : c->rbuf[3] == 4 ? 22 :
					c->rbuf[3] == 3 ? 7u + c->rbuf[4] : 0;
				if (c->rbuf[0] != 5 || c->rbuf[1] != 0 || need == 0) {
					client_end(t, c, F_SOCKS);
					return;
				}
				if (c->rlen < need)
					break;
				if (opt.mode == M_DOWN && c->rlen > need)
					atomic_fetch_add_explicit(&t->down_bytes, c->rlen - need, memory_order_relaxed);
				if (opt.mode == M_BIND && c->state == C_REPLY) {
					if (c->rlen > need || !bind_peer(t, c)) {
						client_end(t, c, F_SOCKS);
						return;
					}
					c->state = C_REPLY2;
					c->rlen = 0;
					break;
				}
				start_payload(t, c);
			} else {
				if (c->rlen < c->want)
					break;
				echo_done(t, c);
				if (c->fd < 0 || c->state == C_HOLD)
					return;
			}
			break;
		}
		case C_HOLD:
			if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				return;
			n = recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
			if (n < 0 && errno == EAGAIN)
				return;
			if (n <= 0) {
				t->dropped++;
				t->holding--;
				c->fd = (close(c->fd), -1);
				c->state = C_DONE;
				return;
			}
			break; /* unexpected data: ignore */
		case C_UP:
			if (!atomic_load_explicit(&go, memory_order_relaxed))
				return; /* pausing (-I): each thread kicks its streams */
			for (;;) {
				off_t off = 0;
				n = sendfile(c->fd, srcfd, &off, SRCSIZE);
				if (n <= 0) {
					if (n < 0 && errno == EAGAIN)
						return;
					atomic_fetch_sub(&t->ready_streams, 1);
					client_end(t, c, F_RESET);
					return;
				}
			}
		case C_DOWN:
			for (;;) {
				n = recv(c->fd, t->scratch, SCRATCH, MSG_TRUNC);
				if (n <= 0) {
					if (n < 0 && errno == EAGAIN)
						return;
					atomic_fetch_sub(&t->ready_streams, 1);
					client_end(t, c, F_RESET);
					return;
				}
				atomic_fetch_add_explicit(&t->down_bytes, n, memory_order_relaxed);
			}
		default:
			return;
		}
	}
}

/* ---- threads ---- */

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	struct epoll_event evs[512];
	t->scratch = malloc(SCRATCH);
	if (!t->scratch)
		die("malloc");
	for (int k = 0; k < T_N; k++)
		for (int f = 0; f < 2; f++)
			if (t->lst[k][f].fd >= 0) {
				struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &t->lst[k][f] };
				if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->lst[k][f].fd, &ev) < 0)
					die("epoll_ctl listener");
			}
	pthread_barrier_wait(&barrier); /* set up */
	pthread_barrier_wait(&barrier); /* t_start is set: go */

	int next = 0;    /* next client to start (idle, burst, stream) */
	int vnext = 0;   /* next held client to verify (idle) */
	int myphase = 0;
	bool reported = false;
	if (opt.mode == M_RATE || opt.mode == M_BIND) {
		for (int i = 0; i < t->ncl; i++)
			client_start(t, &t->cl[i]);
		next = t->ncl;
	} else if (opt.mode != M_IDLE) {
		for (; next < t->ncl; next++)
			client_start(t, &t->cl[next]);
	}
	int cap = opt.inflight / opt.threads;
	if (cap < 1)
		cap = 1;
	bool kicked = atomic_load(&go);
	while (!atomic_load(&stop)) {
		if (!kicked && atomic_load(&go)) {
			/* The pause is over: start the streams, whose sockets
			 * (edge-triggered) will not report writable again. */
			kicked = true;
			for (int i = 0; i < t->ncl; i++)
				if (t->cl[i].state == C_UP)
					client_event(t, &t->cl[i], EPOLLOUT);
		}
		if (opt.mode == M_IDLE) {
			if (myphase == 0) {
				while (next < t->ncl && t->started - t->finished < cap)
					client_start(t, &t->cl[next++]);
			} else {
				while (vnext < t->ncl && t->vbusy < cap) {
					struct client *c = &t->cl[vnext++];
					if (c->state != C_HOLD)
						continue;
					memset(c->wbuf, 'y', opt.payload);
					queue_send(c, opt.payload, C_ECHO);
					c->want = opt.payload;
					c->verifying = true;
					t->vbusy++;
					client_event(t, c, 0);
				}
			}
		}
		int n = epoll_wait(t->ep, evs, 512, 5);
		for (int i = 0; i < n; i++) {
			struct obj *o = evs[i].data.ptr;
			if (o->kind == O_LISTEN)
				listener_event(t, (struct listener *)o);
			else if (o->kind == O_TARGET)
				target_event(t, (struct target *)o, evs[i].events);
			else
				client_event(t, (struct client *)o, evs[i].events);
		}
		while (t->free_later) {
			struct target *g = t->free_later;
			t->free_later = g->next_free;
			free(g);
		}
		while (t->restart) {
			struct client *c = t->restart;
			t->restart = c->next_restart;
			if (!atomic_load_explicit(&stop, memory_order_relaxed))
				client_start(t, c);
		}
		if (opt.mode == M_IDLE) {
			if (myphase == 0 && atomic_load(&phase) == 1) {
				myphase = 1;
				reported = false;
			}
			if (!reported && myphase == 0 && next == t->ncl && t->finished == t->ncl) {
				reported = true;
				atomic_fetch_add(&threads_done, 1);
			}
			if (!reported && myphase == 1 && vnext == t->ncl && t->vbusy == 0) {
				reported = true;
				atomic_fetch_add(&threads_done, 1);
			}
		} else if (opt.mode == M_BURST && !reported && t->finished == t->ncl) {
			reported = true;
			atomic_fetch_add(&threads_done, 1);
		}
	}
	return NULL;
}

/* ---- set-up ---- */

static int make_listener(int fam, int port)
{
	int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int r;
	if (fam == AF_INET) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	} else {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
		struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port),
					   .sin6_addr = in6addr_loopback };
		r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	}
	if (r < 0 || listen(fd, 4096) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int parse_proxy(const char *s)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	if (!colon || colon - s >= (int)sizeof host)
		return -1;
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	int port = atoi(colon + 1);
	char *h = host;
	if (h[0] == '[') {
		h++;
		h[strlen(h) - 1] = 0;
	}
	memset(&opt.proxy, 0, sizeof opt.proxy);
	struct sockaddr_in *a4 = (struct sockaddr_in *)&opt.proxy;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&opt.proxy;
	if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		opt.proxylen = sizeof *a4;
	} else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		opt.proxylen = sizeof *a6;
	} else {
		return -1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen -m rate|stream-up|stream-down|idle|burst|bind [options]\n"
		"  -p, --proxy ADDR:PORT  SOCKS5 proxy (IPv4 or [IPv6]); none: direct\n"
		"  -a, --atyp ipv4|domain|ipv6  CONNECT address type (default ipv4;\n"
		"            bind: ipv4 or ipv6)\n"
		"  -U, --user U -P, --pass P    RFC 1929 username/password\n"
		"  -c N      clients, streams or sessions (default 16)\n"
		"  -t N      threads (default 2)\n"
		"  -d S      measured seconds (rate, stream; default 3)\n"
		"  -w S      warm-up seconds (rate, stream; default 0.5)\n"
		"  -T S      time limit for set-up / burst / verify (default 30)\n"
		"  -H S      idle: hold seconds after stdin EOF (default 0)\n"
		"  -I S      stream-up: every stream waits S seconds after CONNECT\n"
		"            before it sends (a proxy may park it meanwhile)\n"
		"  -i N      idle: sessions being set up at once (default 64)\n"
		"  -s N      echo payload bytes (default 64, at most 512)\n");
	exit(2);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static double pct(float *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)ceil(p / 100.0 * n);
	if (i > 0)
		i--;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void sleep_until(int64_t t)
{
	for (;;) {
		int64_t d = t - now_ns();
		if (d <= 0)
			return;
		struct timespec ts = { d / 1000000000, d % 1000000000 };
		nanosleep(&ts, NULL);
	}
}

/* Waits for a line on stdin; false on EOF or time-out. */
static bool wait_line(double limit)
{
	static bool eof;
	if (eof)
		return false;
	struct pollfd p = { .fd = 0, .events = POLLIN };
	if (poll(&p, 1, (int)(limit * 1000)) <= 0)
		return false;
	char c;
	for (;;) {
		ssize_t n = read(0, &c, 1);
		if (n <= 0) {
			eof = true;
			return false;
		}
		if (c == '\n')
			return true;
	}
}

static int sum_int(size_t off)
{
	int s = 0;
	for (int i = 0; i < opt.threads; i++)
		s += *(int *)((char *)&thr[i] + off);
	return s;
}

static uint64_t sum_atomic(size_t off)
{
	uint64_t s = 0;
	for (int i = 0; i < opt.threads; i++)
		s += atomic_load((_Atomic uint64_t *)((char *)&thr[i] + off));
	return s;
}

static int sum_ready(void)
{
	int s = 0;
	for (int i = 0; i < opt.threads; i++)
		s += atomic_load(&thr[i].ready_streams);
	return s;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(s, l) ((!strcmp(a, s) || !strcmp(a, l)) && v && ++i)
		if (ARG("-m", "--mode")) {
			if (!strcmp(v, "rate")) opt.mode = M_RATE;
			else if (!strcmp(v, "stream-up")) opt.mode = M_UP;
			else if (!strcmp(v, "stream-down")) opt.mode = M_DOWN;
			else if (!strcmp(v, "idle")) opt.mode = M_IDLE;
			else if (!strcmp(v, "burst")) opt.mode = M_BURST;
			else if (!strcmp(v, "bind")) opt.mode = M_BIND;
			else usage();
		} else if (ARG("-p", "--proxy")) {
			if (parse_proxy(v) < 0)
				usage();
			opt.proxied = true;
		} else if (ARG("-a", "--atyp")) {
			opt.atyp = !strcmp(v, "ipv4") ? 1 : !strcmp(v, "domain") ? 3 :
				   !strcmp(v, "ipv6") ? 4 : 0;
			if (!opt.atyp)
				usage();
		} else if (ARG("-U", "--user")) {
			opt.user = v;
		} else if (ARG("-P", "--pass")) {
			opt.pass = v;
		} else if (ARG("-c", "--clients")) {
			opt.clients = atoi(v);
		} else if (ARG("-t", "--threads")) {
			opt.threads = atoi(v);
		} else if (ARG("-d", "--duration")) {
			opt.duration = atof(v);
		} else if (ARG("-w", "--warmup")) {
			opt.warmup = atof(v);
		} else if (ARG("-T", "--timeout")) {
			opt.timeout = atof(v);
		} else if (ARG("-H", "--hold")) {
			opt.hold = atof(v);
		} else if (ARG("-I", "--pause")) {
			opt.pause = atof(v);
		} else if (ARG("-i", "--inflight")) {
			opt.inflight = atoi(v);
		} else if (ARG("-s", "--payload")) {
			opt.payload = atoi(v);
		} else {
			usage();
		}
#undef ARG
	}
	if (opt.clients < 1 || opt.threads < 1 || opt.threads > MAXTHREADS ||
	    opt.payload < 1 || opt.payload > 512 || opt.duration <= 0 || opt.timeout <= 0)
		usage();
	if (opt.user && (!opt.pass || strlen(opt.user) > 255 || strlen(opt.pass) > 255))
		usage();
	if (opt.pause < 0 || opt.pause > 3600 || (opt.pause > 0 && opt.mode != M_UP))
		usage();
	if (opt.pause > 0)
		atomic_store(&go, 0);
	if (opt.threads > opt.clients)
		opt.threads = opt.clients;
	signal(SIGPIPE, SIG_IGN);

	/* Descriptors: a client and a target end per session, plus slack. */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t need = (rlim_t)opt.clients * 2 + 256;
	if (rl.rlim_cur < need) {
		rl.rlim_cur = need;
		if (rl.rlim_max < need)
			rl.rlim_max = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "loadgen: cannot raise RLIMIT_NOFILE to %lu: %s\n",
				(unsigned long)need, strerror(errno));
	}

	srcfd = memfd_create("loadgen-source", MFD_CLOEXEC);
	if (srcfd < 0 || ftruncate(srcfd, SRCSIZE) < 0)
		die("memfd");
	{
		char *m = malloc(SRCSIZE);
		if (!m)
			die("malloc");
		for (int i = 0; i < SRCSIZE; i++)
			m[i] = (char)('a' + i % 26);
		if (pwrite(srcfd, m, SRCSIZE, 0) != SRCSIZE)
			die("pwrite");
		free(m);
	}

	/* Targets: the first listener takes a free port, the others share it. */
	for (int k = 0; k < T_N; k++) {
		tport[k] = 0;
		for (int i = 0; i < opt.threads; i++) {
			int fd = make_listener(AF_INET, tport[k]);
			if (fd < 0)
				die("listen 127.0.0.1");
			if (!tport[k]) {
				struct sockaddr_in sa;
				socklen_t sl = sizeof sa;
				getsockname(fd, (struct sockaddr *)&sa, &sl);
				tport[k] = ntohs(sa.sin_port);
			}
			thr[i].lst[k][0] = (struct listener){ O_LISTEN, (uint8_t)k, fd };
			thr[i].lst[k][1] = (struct listener){ O_LISTEN, (uint8_t)k,
				make_listener(AF_INET6, tport[k]) };
		}
	}

	pthread_barrier_init(&barrier, NULL, opt.threads + 1);
	for (int i = 0; i < opt.threads; i++) {
		struct thr *t = &thr[i];
		t->id = i;
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		if (t->ep < 0)
			die("epoll_create1");
		t->ncl = opt.clients / opt.threads + (i < opt.clients % opt.threads);
		t->cl = calloc(t->ncl, sizeof *t->cl);
		if (!t->cl)
			die("calloc");
		for (int j = 0; j < t->ncl; j++)
			t->cl[j].fd = -1;
		if (pthread_create(&t->tid, NULL, thread_main, t))
			die("pthread_create");
	}
	pthread_barrier_wait(&barrier);

	if (opt.mode == M_IDLE) {
		printf("READY\n");
		fflush(stdout);
		wait_line(opt.timeout * 4);
	}
	t_start = now_ns();
	t_meas0 = t_start + (int64_t)(opt.warmup * 1e9);
	t_meas1 = t_meas0 + (int64_t)(opt.duration * 1e9);
	int64_t deadline = t_start + (int64_t)(opt.timeout * 1e9);
	pthread_barrier_wait(&barrier);

	double measured = opt.duration;
	uint64_t win_bytes = 0;
	int streams_ready = 0;
	double setup_s = 0, verify_s = 0;
	int established = 0, verified = 0, dropped = 0;

	switch (opt.mode) {
	case M_RATE:
	case M_BIND:
		sleep_until(t_meas1);
		break;
	case M_UP:
	case M_DOWN: {
		/* The window opens once every stream is relaying, after warm-up. */
		while (sum_ready() < opt.clients && now_ns() < deadline)
			usleep(2000);
		streams_ready = sum_ready();
		if (!atomic_load(&go)) {
			usleep((useconds_t)(opt.pause * 1e6));
			atomic_store(&go, 1);
		}
		sleep_until(now_ns() + (int64_t)(opt.warmup * 1e9));
		size_t off = opt.mode == M_UP ? offsetof(struct thr, sink_bytes) : offsetof(struct thr, down_bytes);
		uint64_t b0 = sum_atomic(off);
		int64_t w0 = now_ns();
		sleep_until(w0 + (int64_t)(opt.duration * 1e9));
		uint64_t b1 = sum_atomic(off);
		measured = (now_ns() - w0) / 1e9;
		win_bytes = b1 - b0;
		break;
	}
	case M_BURST:
		while (atomic_load(&threads_done) < opt.threads && now_ns() < deadline)
			usleep(1000);
		break;
	case M_IDLE: {
		while (atomic_load(&threads_done) < opt.threads && now_ns() < deadline)
			usleep(2000);
		setup_s = (now_ns() - t_start) / 1e9;
		usleep(100000); /* let drops show before counting */
		/* Plain reads of other threads' counters: a snapshot is enough. */
		established = sum_int(offsetof(struct thr, holding));
		int failed = 0;
		for (int i = 0; i < opt.threads; i++)
			for (int f = 0; f < F_N; f++)
				failed += (int)thr[i].fails[f];
		printf("ESTABLISHED {\"established\":%d,\"failed\":%d,\"setup_s\":%.3f}\n",
		       established, opt.clients - established, setup_s);
		(void)failed;
		fflush(stdout);
		if (!wait_line(opt.timeout * 4) && opt.hold > 0)
			usleep((useconds_t)(opt.hold * 1e6));
		int64_t v0 = now_ns();
		int64_t vdeadline = v0 + (int64_t)(opt.timeout * 1e9);
		atomic_store(&threads_done, 0);
		atomic_store(&phase, 1);
		while (atomic_load(&threads_done) < opt.threads && now_ns() < vdeadline)
			usleep(2000);
		verify_s = (now_ns() - v0) / 1e9;
		break;
	}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < opt.threads; i++)
		pthread_join(thr[i].tid, NULL);

	/* Results. */
	uint64_t fails[F_N] = { 0 };
	uint64_t sess_win = 0, sess_total = 0;
	size_t nlat = 0;
	int64_t last_done = 0;
	for (int i = 0; i < opt.threads; i++) {
		for (int f = 0; f < F_N; f++)
			fails[f] += thr[i].fails[f];
		sess_win += thr[i].sessions_in_window;
		sess_total += thr[i].sessions_total;
		nlat += thr[i].nlat;
		if (thr[i].last_done > last_done)
			last_done = thr[i].last_done;
	}
	float *lat = malloc((nlat + 1) * sizeof *lat);
	if (!lat)
		die("malloc");
	size_t k = 0;
	for (int i = 0; i < opt.threads; i++) {
		memcpy(lat + k, thr[i].lat, thr[i].nlat * sizeof *lat);
		k += thr[i].nlat;
	}
	qsort(lat, nlat, sizeof *lat, cmp_float);

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double self_cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
			  ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	static const char *mname[] = { "rate", "stream-up", "stream-down", "idle", "burst", "bind" };
	printf("RESULT {\"mode\":\"%s\",\"clients\":%d,\"threads\":%d,\"proxied\":%s,",
	       mname[opt.mode], opt.clients, opt.threads, opt.proxied ? "true" : "false");
	switch (opt.mode) {
	case M_RATE:
	case M_BIND:
		printf("\"sessions\":%llu,\"sessions_total\":%llu,\"rate\":%.1f,"
		       "\"p50_ms\":%.4f,\"p99_ms\":%.4f,",
		       (unsigned long long)sess_win, (unsigned long long)sess_total,
		       sess_win / opt.duration, pct(lat, nlat, 50) / 1000, pct(lat, nlat, 99) / 1000);
		break;
	case M_UP:
	case M_DOWN: {
		uint64_t total = sum_atomic(opt.mode == M_UP ? offsetof(struct thr, sink_bytes) :
					    offsetof(struct thr, down_bytes));
		printf("\"streams_ready\":%d,\"window_bytes\":%llu,\"bytes_total\":%llu,\"mbps\":%.1f,",
		       streams_ready, (unsigned long long)win_bytes, (unsigned long long)total,
		       win_bytes / measured / 1e6);
		break;
	}
	case M_BURST: {
		uint64_t failed = 0;
		for (int f = 0; f < F_N; f++)
			failed += fails[f];
		/* Clients neither served nor failed ran out of time. */
		uint64_t unfinished = opt.clients - sess_total - failed;
		fails[F_TIMEOUT] += unfinished;
		printf("\"served\":%llu,\"all_served_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,",
		       (unsigned long long)sess_total,
		       sess_total == (uint64_t)opt.clients ? (last_done - t_start) / 1e6 : -1.0,
		       pct(lat, nlat, 50) / 1000, pct(lat, nlat, 99) / 1000, pct(lat, nlat, 100) / 1000);
		break;
	}
	case M_IDLE:
		verified = sum_int(offsetof(struct thr, verified));
		dropped = sum_int(offsetof(struct thr, dropped));
		printf("\"established\":%d,\"verified\":%d,\"dropped\":%d,\"setup_s\":%.3f,\"verify_s\":%.3f,",
		       established, verified, dropped, setup_s, verify_s);
		break;
	}
	uint64_t failed = 0;
	printf("\"fail\":{");
	for (int f = 0; f < F_N; f++) {
		printf("%s\"%s\":%llu", f ? "," : "", fail_name[f], (unsigned long long)fails[f]);
		failed += fails[f];
	}
	printf("},\"failed\":%llu,\"loadgen_cpu_s\":%.3f}\n", (unsigned long long)failed, self_cpu);
	fflush(stdout);
	_exit(0); /* the kernel closes every socket at once */
}
