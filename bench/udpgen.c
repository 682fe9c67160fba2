/* udpgen.c: UDP load through SOCKS5 UDP ASSOCIATE (or direct), for bench/run.
 *
 * Each association is a thread: a control connection with UDP ASSOCIATE
 * (DST 0.0.0.0:0), a UDP socket connected to the relay the reply names,
 * and its own echo server (a thread on a loopback port) as the target.
 * The client keeps `window` datagrams in flight (sendmmsg/recvmmsg);
 * a window that gets no answer for 20 ms counts as lost and is refilled.
 * With --window 1 it measures the echo round trip. Prints one JSON line:
 * datagrams and payload bytes echoed, seconds, lost, round trip p50/p99.
 *
 *   udpgen (--proxy PORT | --direct) [--assocs N] [--size BYTES]
 *          [--secs S] [--window W]
 */
#define _GNU_SOURCE		/* recvmmsg, sendmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ASSOCS 64
#define MAX_WINDOW 64
#define HDR 10			/* RSV FRAG ATYP=1 ADDR(4) PORT(2) */
#define MAX_SIZE 1472

struct assoc {
	int echo_fd, ctl, udp;
	struct sockaddr_in echo, relay;
	pthread_t echo_thread, thread;
	uint64_t rcvd, bytes, lost;
	uint32_t *rtt_us;		/* round trips (window 1) */
	size_t nrtt, cap;
};

static int proxy_port = -1, nassocs = 1, size = 64, secs = 5, window = 16;
static volatile int stop_echo;
static int64_t t_end;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
die(const char *what)
{
	fprintf(stderr, "udpgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
read_exact(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r <= 0) {
			errno = r == 0 ? ECONNRESET : errno;
			die("control connection");
		}
		got += (size_t)r;
	}
}

/* Reflects every datagram to its source, in batches. */
static void *
echo_main(void *arg)
{
	struct assoc *a = arg;
	struct mmsghdr m[32];
	struct iovec iov[32];
	struct sockaddr_in from[32];
	static __thread uint8_t buf[32][MAX_SIZE + HDR];

	while (!stop_echo) {
		int n;

		for (int i = 0; i < 32; i++) {
			iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
			memset(&m[i], 0, sizeof(m[i]));
			m[i].msg_hdr.msg_name = &from[i];
			m[i].msg_hdr.msg_namelen = sizeof(from[i]);
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(a->echo_fd, m, 32, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;	/* SO_RCVTIMEO: look at stop_echo */
		for (int i = 0; i < n; i++)
			iov[i].iov_len = m[i].msg_len;
		(void)sendmmsg(a->echo_fd, m, (unsigned)n, 0);
	}
	return NULL;
}

static void
assoc_setup(struct assoc *a)
{
	struct sockaddr_in lo = { .sin_family = AF_INET };
	struct timeval tv = { 0, 100000 };
	socklen_t len = sizeof(a->echo);
	uint8_t rep[10];
	int big = 4 << 20;

	lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((a->echo_fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    bind(a->echo_fd, (struct sockaddr *)&lo, sizeof(lo)) == -1 ||
	    getsockname(a->echo_fd, (struct sockaddr *)&a->echo, &len) == -1)
		die("echo socket");
	(void)setsockopt(a->echo_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(a->echo_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (pthread_create(&a->echo_thread, NULL, echo_main, a) != 0)
		die("echo thread");
	a->relay = a->echo;
	a->ctl = -1;
	if (proxy_port > 0) {
		struct sockaddr_in px = lo;
		static const uint8_t greet[] = { 5, 1, 0 };
		static const uint8_t req[] = { 5, 3, 0, 1, 0, 0, 0, 0, 0, 0 };

		px.sin_port = htons((uint16_t)proxy_port);
		if ((a->ctl = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
		    connect(a->ctl, (struct sockaddr *)&px, sizeof(px)) == -1 ||
		    write(a->ctl, greet, 3) != 3)
			die("proxy");
		read_exact(a->ctl, rep, 2);
		if (write(a->ctl, req, sizeof(req)) != sizeof(req))
			die("request");
		read_exact(a->ctl, rep, 10);
		if (rep[1] != 0 || rep[3] != 1) {
			fprintf(stderr, "udpgen: UDP ASSOCIATE answered %u (atyp %u)\n",
			    rep[1], rep[3]);
			exit(1);
		}
		memcpy(&a->relay.sin_addr, rep + 4, 4);
		memcpy(&a->relay.sin_port, rep + 8, 2);
	}
	if ((a->udp = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    bind(a->udp, (struct sockaddr *)&lo, sizeof(lo)) == -1 ||
	    connect(a->udp, (struct sockaddr *)&a->relay, sizeof(a->relay)) == -1)
		die("client socket");
	(void)setsockopt(a->udp, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
}

/* Sends n datagrams, each stamped with the time it leaves. */
static int
send_some(struct assoc *a, uint8_t (*out)[MAX_SIZE + HDR], int n)
{
	struct mmsghdr m[MAX_WINDOW];
	struct iovec iov[MAX_WINDOW];
	size_t off = proxy_port > 0 ? HDR : 0;
	int64_t t = now_us();

	for (int i = 0; i < n; i++) {
		memcpy(out[i] + off, &t, sizeof(t));
		iov[i] = (struct iovec){ out[i], off + (size_t)size };
		memset(&m[i], 0, sizeof(m[i]));
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	n = sendmmsg(a->udp, m, (unsigned)n, 0);
	return n < 0 ? 0 : n;
}

static void
record_rtt(struct assoc *a, int64_t rtt)
{
	if (a->nrtt == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 4096;
		if ((a->rtt_us = realloc(a->rtt_us, a->cap * sizeof(*a->rtt_us))) == NULL)
			die("realloc");
	}
	a->rtt_us[a->nrtt++] = (uint32_t)rtt;
}

static int
recv_some(struct assoc *a, uint8_t (*in)[MAX_SIZE + HDR + 32])
{
	struct mmsghdr m[MAX_WINDOW];
	struct iovec iov[MAX_WINDOW];
	size_t off = proxy_port > 0 ? HDR : 0;
	int n;

	for (int i = 0; i < window; i++) {
		iov[i] = (struct iovec){ in[i], sizeof(in[i]) };
		memset(&m[i], 0, sizeof(m[i]));
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	n = recvmmsg(a->udp, m, (unsigned)window, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		int64_t t;

		if (m[i].msg_len < off + sizeof(t))
			continue;
		a->rcvd++;
		a->bytes += m[i].msg_len - off;
		if (window == 1) {
			memcpy(&t, in[i] + off, sizeof(t));
			record_rtt(a, now_us() - t);
		}
	}
	return n;
}

static void *
assoc_main(void *arg)
{
	struct assoc *a = arg;
	static __thread uint8_t out[MAX_WINDOW][MAX_SIZE + HDR];
	static __thread uint8_t in[MAX_WINDOW][MAX_SIZE + HDR + 32];
	struct pollfd pfd = { .fd = a->udp, .events = POLLIN };
	int inflight = 0;

	for (int i = 0; i < window; i++) {
		memset(out[i], 'u', sizeof(out[i]));
		out[i][0] = out[i][1] = out[i][2] = 0;
		out[i][3] = 1;
		memcpy(out[i] + 4, &a->echo.sin_addr, 4);
		memcpy(out[i] + 8, &a->echo.sin_port, 2);
	}
	while (now_us() < t_end) {
		int got;

		if (inflight < window)
			inflight += send_some(a, out, window - inflight);
		if (poll(&pfd, 1, 20) <= 0) {
			a->lost += (uint64_t)inflight;
			inflight = 0;
			continue;
		}
		got = recv_some(a, in);
		inflight = got > inflight ? 0 : inflight - got;
	}
	return NULL;
}

static int
cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static void
report(struct assoc *as, double elapsed)
{
	uint64_t rcvd = 0, bytes = 0, lost = 0;
	size_t n = 0, k = 0;
	uint32_t *all;

	for (int i = 0; i < nassocs; i++) {
		rcvd += as[i].rcvd;
		bytes += as[i].bytes;
		lost += as[i].lost;
		n += as[i].nrtt;
	}
	all = malloc((n ? n : 1) * sizeof(*all));
	if (all == NULL)
		die("malloc");
	for (int i = 0; i < nassocs; i++) {
		memcpy(all + k, as[i].rtt_us, as[i].nrtt * sizeof(*all));
		k += as[i].nrtt;
	}
	qsort(all, n, sizeof(*all), cmp_u32);
	printf("{\"dgrams\": %llu, \"bytes\": %llu, \"secs\": %.3f, \"lost\": %llu, "
	    "\"rtt_p50_us\": %u, \"rtt_p99_us\": %u}\n", (unsigned long long)rcvd,
	    (unsigned long long)bytes, elapsed, (unsigned long long)lost,
	    n ? all[n / 2] : 0, n ? all[n * 99 / 100] : 0);
	free(all);
}

static void
parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "0";

		if (strcmp(argv[i], "--direct") == 0)
			proxy_port = 0;
		else if (strcmp(argv[i], "--proxy") == 0 && ++i)
			proxy_port = atoi(v);
		else if (strcmp(argv[i], "--assocs") == 0 && ++i)
			nassocs = atoi(v);
		else if (strcmp(argv[i], "--size") == 0 && ++i)
			size = atoi(v);
		else if (strcmp(argv[i], "--secs") == 0 && ++i)
			secs = atoi(v);
		else if (strcmp(argv[i], "--window") == 0 && ++i)
			window = atoi(v);
		else
			proxy_port = -1, i = argc;
	}
	if (proxy_port < 0 || nassocs < 1 || nassocs > MAX_ASSOCS ||
	    size < 16 || size > MAX_SIZE || secs < 1 || window < 1 ||
	    window > MAX_WINDOW) {
		fprintf(stderr, "usage: udpgen (--proxy PORT | --direct) "
		    "[--assocs 1..64] [--size 16..1472] [--secs S] [--window 1..64]\n");
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	static struct assoc as[MAX_ASSOCS];
	int64_t t0;

	parse_args(argc, argv);
	for (int i = 0; i < nassocs; i++)
		assoc_setup(&as[i]);
	t0 = now_us();
	t_end = t0 + (int64_t)secs * 1000000;
	for (int i = 0; i < nassocs; i++)
		if (pthread_create(&as[i].thread, NULL, assoc_main, &as[i]) != 0)
			die("thread");
	for (int i = 0; i < nassocs; i++)
		pthread_join(as[i].thread, NULL);
	report(as, (double)(now_us() - t0) / 1e6);
	stop_echo = 1;
	for (int i = 0; i < nassocs; i++) {
		pthread_join(as[i].echo_thread, NULL);
		if (as[i].ctl != -1)
			close(as[i].ctl);
		close(as[i].udp);
		close(as[i].echo_fd);
		free(as[i].rtt_us);
	}
	return 0;
}
