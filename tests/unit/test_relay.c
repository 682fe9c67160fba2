/* test_relay.c: unit tests for the relay engine (src/relay.c) through the
 * worker's driver (relay_run, src/relay_poll.c) and through relay_dir_step,
 * over real TCP connections on 127.0.0.1. Each relay_run runs in a thread
 * while the test drives both peers; every wait has a deadline. Tests that
 * relay run twice: _i == 0 with a splice pool, _i == 1 with a copy pool. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "io.h"
#include "relay.h"

#define DEADLINE_MS	10000	/* any one wait in a test */
#define PIPE_SIZE	65536
#define BUF_SIZE	16384

/* ---- poll calls, counted (the test is linked with -Wl,--wrap=poll) ----- */

int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);

static _Atomic unsigned long relay_polls;	/* by the relay thread only */
static _Thread_local bool in_relay;

int
__wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (in_relay)
		atomic_fetch_add(&relay_polls, 1);
	return __real_poll(fds, n, timeout);
}

/* ---- fds ----------------------------------------------------------------- */

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

static int fds_at_start;

static void
fds_setup(void)
{
	fds_at_start = count_fds();
}

static void
fds_teardown(void)
{
	io_set_cutoff(0);
	ck_assert_int_eq(count_fds(), fds_at_start);
}

/* A connected TCP pair on 127.0.0.1: *a connected, *b accepted. */
static void
tcp_pair(int *a, int *b, int a_rcvbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(l, 0);
	/* A port some TIME_WAIT socket still holds will do: a busy machine
	 * may have no other left. */
	ck_assert_int_eq(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 },
	    sizeof(int)), 0);
	ck_assert_msg(bind(l, (struct sockaddr *)&sin, sizeof(sin)) == 0,
	    "bind: %s", strerror(errno));
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*a, 0);
	if (a_rcvbuf > 0)
		ck_assert_int_eq(setsockopt(*a, SOL_SOCKET, SO_RCVBUF,
		    &a_rcvbuf, sizeof(a_rcvbuf)), 0);
	ck_assert_int_eq(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(*b, 0);
	close(l);
}

static void
set_linger0(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
	    sizeof(lg)), 0);
}

/* Closes fd so that its peer sees a reset. */
static void
reset_close(int fd)
{
	set_linger0(fd);
	close(fd);
}

static bool
linger0(int fd)
{
	struct linger lg;
	socklen_t len = sizeof(lg);

	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
	return lg.l_onoff && lg.l_linger == 0;
}

/* ---- the peers: blocking I/O bounded by a deadline ----------------------- */

static int64_t
deadline(int ms)
{
	return io_now_ms() + ms;
}

static int
left_ms(int64_t end)
{
	int64_t left = end - io_now_ms();

	return left > 0 ? (int)left : 0;
}

static void
wait_fd(int fd, short ev, int64_t end)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int n = poll(&p, 1, left_ms(end));

	ck_assert_msg(n == 1, "fd %d not ready (events %#x) by the deadline",
	    fd, ev);
}

static void
send_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	int64_t end = deadline(DEADLINE_MS);

	while (n > 0) {
		ssize_t k;

		wait_fd(fd, POLLOUT, end);
		k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		ck_assert_msg(k > 0, "send: %s", strerror(errno));
		p += k;
		n -= (size_t)k;
	}
}

/* Reads up to cap bytes until EOF, an error or the deadline (a failure);
 * stops early once want bytes came (want 0: to EOF or error). Returns the
 * count; *err is 0 at EOF, the recv errno at an error, -1 when want bytes
 * came before either. */
static size_t
recv_until(int fd, uint8_t *buf, size_t cap, size_t want, int *err)
{
	int64_t end = deadline(DEADLINE_MS);
	size_t got = 0;

	for (;;) {
		uint8_t scratch[65536];
		uint8_t *to = buf != NULL ? buf + got : scratch;
		size_t room = buf != NULL ? cap - got : sizeof(scratch);
		ssize_t k;

		if (want > 0 && got >= want) {
			*err = -1;
			return got;
		}
		ck_assert_msg(buf == NULL || got < cap, "more than %zu bytes",
		    cap);
		wait_fd(fd, POLLIN, end);
		k = recv(fd, to, room, MSG_DONTWAIT);
		if (k == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0) {
			*err = k == 0 ? 0 : errno;
			return got;
		}
		got += (size_t)k;
	}
}

/* Exactly n bytes equal to want. */
static void
expect_bytes(int fd, const void *want, size_t n)
{
	uint8_t *buf = malloc(n + 1);
	int err;
	size_t got;

	ck_assert_ptr_nonnull(buf);
	got = recv_until(fd, buf, n + 1, n, &err);
	ck_assert_msg(got == n, "got %zu of %zu bytes (err %d)", got, n, err);
	ck_assert_msg(memcmp(buf, want, n) == 0, "different bytes");
	free(buf);
}

/* Everything to EOF: exactly n bytes equal to want, then a clean EOF. */
static void
expect_bytes_eof(int fd, const void *want, size_t n)
{
	uint8_t *buf = malloc(n + 1);
	int err;
	size_t got;

	ck_assert_ptr_nonnull(buf);
	got = recv_until(fd, buf, n + 1, 0, &err);
	ck_assert_msg(err == 0, "not a clean EOF: %s", strerror(err));
	ck_assert_msg(got == n, "got %zu of %zu bytes", got, n);
	ck_assert_msg(memcmp(buf, want, n) == 0, "different bytes");
	free(buf);
}

/* Reads to the end and expects a reset (not a clean EOF). */
static void
expect_reset(int fd)
{
	int err;

	(void)recv_until(fd, NULL, 0, 0, &err);
	ck_assert_msg(err == ECONNRESET, "want ECONNRESET, got %s",
	    err == 0 ? "a clean EOF" : strerror(err));
}

/* A reset reaching a socket that had its peer's FIN already: recv keeps
 * saying EOF, but the socket reports an error and sends fail. */
static void
expect_reset_after_eof(int fd)
{
	struct pollfd p = { .fd = fd, .events = 0 };
	int err = 0;
	socklen_t len = sizeof(err);

	ck_assert_msg(poll(&p, 1, DEADLINE_MS) == 1 && (p.revents & POLLERR),
	    "no reset (revents %#x)", p.revents);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	ck_assert_msg(err == EPIPE || err == ECONNRESET, "SO_ERROR %s",
	    strerror(err));
}

/* Deterministic bytes that do not repeat at a short period. */
static uint8_t *
pattern(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n > 0 ? n : 1);
	uint32_t x = seed * 2654435761u + 1;

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

/* ---- a relay_run in a thread --------------------------------------------- */

struct job {
	struct relay_pool pool;
	struct relay_limits lim;
	struct relay_result res;
	int c, t;			/* the test's peers: client, target */
	int rc, rt;			/* the relay's sockets */
	const uint8_t *pending;
	size_t npending;
	pthread_t th;
	int done;			/* eventfd: relay_run returned */
	bool running, closed;
	double cpu_ms;			/* the relay thread's CPU time */
	/* the park hook */
	int park_answer;
	_Atomic int park_calls;
	struct relay_state park_st;
};

static double
thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *
job_thread(void *arg)
{
	struct job *j = arg;
	uint64_t one = 1;
	double t0 = thread_cpu_ms();

	in_relay = true;
	relay_run(&j->pool, j->rc, j->rt, j->pending, j->npending, &j->lim,
	    &j->res);
	in_relay = false;
	j->cpu_ms = thread_cpu_ms() - t0;
	if (write(j->done, &one, sizeof(one)) != sizeof(one))
		abort();
	return NULL;
}

static int
park_hook(void *arg, const struct relay_state *st)
{
	struct job *j = arg;

	j->park_st = *st;
	atomic_fetch_add(&j->park_calls, 1);
	return j->park_answer;
}

/* Sets up both connections and the pool (mode 0 splice, 1 copy); the relay
 * does not run yet. c_rcvbuf: SO_RCVBUF of the client peer (0: default). */
static void
job_init2(struct job *j, int mode, int c_rcvbuf, int rt_rcvbuf)
{
	memset(j, 0, sizeof(*j));
	relay_pool_init(&j->pool, mode == 0, PIPE_SIZE, BUF_SIZE, 4, 2, 2);
	tcp_pair(&j->c, &j->rc, c_rcvbuf);
	tcp_pair(&j->rt, &j->t, rt_rcvbuf);
	ck_assert_int_eq(io_set_nonblock(j->rc, 1), 0);
	ck_assert_int_eq(io_set_nonblock(j->rt, 1), 0);
	j->lim.idle_ms = 60000;
	j->lim.park_arg = j;
	j->done = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(j->done, 0);
	atomic_store(&relay_polls, 0);
}

static void
job_init(struct job *j, int mode, int c_rcvbuf)
{
	job_init2(j, mode, c_rcvbuf, 0);
}

static void
job_start(struct job *j)
{
	ck_assert_int_eq(pthread_create(&j->th, NULL, job_thread, j), 0);
	j->running = true;
}

static bool
job_ended(struct job *j, int ms)
{
	struct pollfd p = { .fd = j->done, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

/* Waits for relay_run to return. */
static void
job_wait(struct job *j)
{
	if (j->running) {
		ck_assert_msg(job_ended(j, DEADLINE_MS),
		    "relay_run did not return by the deadline");
		ck_assert_int_eq(pthread_join(j->th, NULL), 0);
		j->running = false;
	}
}

/* Waits for relay_run to return, then closes its sockets as the worker
 * does: what the peers see next is what the daemon's close makes them see. */
static void
job_finish(struct job *j)
{
	job_wait(j);
	if (!j->closed) {
		close(j->rc);
		close(j->rt);
		j->closed = true;
	}
}

static void
job_free(struct job *j)
{
	job_finish(j);
	if (j->c != -1)
		close(j->c);
	if (j->t != -1)
		close(j->t);
	close(j->done);
	relay_pool_free(&j->pool);
}

static void
assert_pool_empty_handed(const struct job *j)
{
	/* Every pipe went back, and none still holds bytes. */
	ck_assert_int_eq(j->pool.nfree_pipes, j->pool.nopen_pipes);
	ck_assert_int_le(j->pool.nopen_pipes, j->pool.max_pipes);
	for (int i = 0; i < j->pool.nfree_pipes; i++) {
		int n = -1;

		ck_assert_int_eq(ioctl(j->pool.free_pipes[i].fd[0], FIONREAD,
		    &n), 0);
		ck_assert_int_eq(n, 0);
	}
	ck_assert_int_le(j->pool.nfree_bufs, j->pool.keep_bufs);
	if (!j->pool.splice)
		ck_assert_int_eq(j->pool.nopen_pipes, 0);
}

/* ---- bytes --------------------------------------------------------------- */

/* Both ways at once, sizes that need many rounds through the pipe or the
 * buffer, and different each way so that swapped counts would show. Both
 * peers are driven by one poll loop so that neither blocks the other. */
START_TEST(bytes_both_ways)
{
	const size_t nup = 3 * 1024 * 1024 + 17, ndown = 2 * 1024 * 1024 + 5;
	uint8_t *up = pattern(nup, 1), *down = pattern(ndown, 2);
	uint8_t *got_up = malloc(nup + 1), *got_down = malloc(ndown + 1);
	size_t sent[2] = { 0, 0 }, got[2] = { 0, 0 };
	bool eof[2] = { false, false }, shut[2] = { false, false };
	int64_t end = deadline(4 * DEADLINE_MS);
	struct job j;

	job_init(&j, _i, 0);
	job_start(&j);
	ck_assert_int_eq(io_set_nonblock(j.c, 1), 0);
	ck_assert_int_eq(io_set_nonblock(j.t, 1), 0);
	while (!eof[0] || !eof[1]) {
		struct pollfd p[3] = {
			{ .fd = j.c, .events = POLLIN |
			    (sent[0] < nup ? POLLOUT : 0) },
			{ .fd = j.t, .events = POLLIN |
			    (sent[1] < ndown ? POLLOUT : 0) },
			{ .fd = j.done, .events = POLLIN },
		};
		const uint8_t *out[2] = { up, down };
		uint8_t *in[2] = { got_down, got_up };
		size_t nout[2] = { nup, ndown }, nin[2] = { ndown, nup };

		ck_assert_msg(poll(p, 3, left_ms(end)) > 0,
		    "stuck: up %zu/%zu sent %zu got, down %zu/%zu sent %zu got",
		    sent[0], nup, got[1], sent[1], ndown, got[0]);
		if (p[2].revents & POLLIN)
			job_finish(&j);	/* both ways ended: its close is the EOF */
		for (int k = 0; k < 2; k++) {
			int fd = k == 0 ? j.c : j.t;

			if (sent[k] < nout[k]) {
				ssize_t n = send(fd, out[k] + sent[k],
				    nout[k] - sent[k], MSG_DONTWAIT | MSG_NOSIGNAL);

				if (n > 0)
					sent[k] += (size_t)n;
				else
					ck_assert_int_eq(errno, EAGAIN);
			} else if (!shut[k]) {
				ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
				shut[k] = true;
			}
			if (!eof[k]) {
				ssize_t n;

				ck_assert_msg(got[k] <= nin[k], "too many bytes");
				n = recv(fd, in[k] + got[k], nin[k] + 1 - got[k],
				    MSG_DONTWAIT);
				if (n == 0)
					eof[k] = true;
				else if (n > 0)
					got[k] += (size_t)n;
				else
					ck_assert_msg(errno == EAGAIN,
					    "recv: %s", strerror(errno));
			}
		}
	}
	job_finish(&j);
	ck_assert_uint_eq(got[1], nup);
	ck_assert_uint_eq(got[0], ndown);
	ck_assert(memcmp(got_up, up, nup) == 0);
	ck_assert(memcmp(got_down, down, ndown) == 0);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], nup);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], ndown);
	ck_assert_msg(j.res.end == AUDIT_END_CLIENT ||
	    j.res.end == AUDIT_END_TARGET, "end %d", j.res.end);
	/* Splice mode moved the bytes through pipes, copy mode through buffers. */
	ck_assert(_i == 0 ? j.pool.nopen_pipes > 0 : j.pool.nfree_bufs > 0);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(up);
	free(down);
	free(got_up);
	free(got_down);
}
END_TEST

/* The client's pipelined bytes reach the target before anything it sends
 * later, and count as relayed. */
START_TEST(preloaded_bytes_first)
{
	static const uint8_t pending[] = "pipelined request";
	uint8_t *more = pattern(100000, 3);
	uint8_t *want = malloc(sizeof(pending) + 100000);
	struct job j;

	memcpy(want, pending, sizeof(pending));
	memcpy(want + sizeof(pending), more, 100000);
	job_init(&j, _i, 0);
	j.pending = pending;
	j.npending = sizeof(pending);
	job_start(&j);
	expect_bytes(j.t, pending, sizeof(pending));
	send_all(j.c, more, 100000);
	ck_assert_int_eq(shutdown(j.c, SHUT_WR), 0);
	expect_bytes_eof(j.t, want + sizeof(pending), 100000);
	close(j.t);
	j.t = -1;
	job_finish(&j);
	expect_bytes_eof(j.c, "", 0);
	ck_assert_int_eq(j.res.end, AUDIT_END_CLIENT);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], sizeof(pending) + 100000);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 0);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(more);
	free(want);
}
END_TEST

/* More pending bytes than one pipe or buffer holds: an error, not a
 * truncated stream. */
START_TEST(preload_too_big_is_an_error)
{
	size_t n = (_i == 0 ? 1024 * 1024 : BUF_SIZE) + 1;
	uint8_t *pending = pattern(n, 4);
	struct job j;

	job_init(&j, _i, 0);
	j.pending = pending;
	j.npending = n;
	job_start(&j);
	job_finish(&j);
	ck_assert_int_eq(j.res.end, AUDIT_END_ERROR);
	ck_assert_int_eq(j.res.err, EMSGSIZE);
	/* An error: both peers hear a reset, not a clean end. */
	expect_reset(j.c);
	expect_reset(j.t);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(pending);
}
END_TEST

/* ---- half-close ---------------------------------------------------------- */

START_TEST(half_close_client_first)
{
	uint8_t *answer = pattern(200000, 5);
	struct job j;

	job_init(&j, _i, 0);
	job_start(&j);
	send_all(j.c, "request", 7);
	ck_assert_int_eq(shutdown(j.c, SHUT_WR), 0);
	expect_bytes_eof(j.t, "request", 7);	/* the FIN came through */
	send_all(j.t, answer, 200000);		/* and it can still send */
	ck_assert_int_eq(close(j.t), 0);
	j.t = -1;
	job_finish(&j);
	expect_bytes_eof(j.c, answer, 200000);
	ck_assert_int_eq(j.res.end, AUDIT_END_CLIENT);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 7);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 200000);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(answer);
}
END_TEST

START_TEST(half_close_target_first)
{
	uint8_t *banner = pattern(150000, 6), *reply = pattern(250000, 7);
	struct job j;

	job_init(&j, _i, 0);
	job_start(&j);
	send_all(j.t, banner, 150000);
	ck_assert_int_eq(shutdown(j.t, SHUT_WR), 0);
	expect_bytes_eof(j.c, banner, 150000);
	send_all(j.c, reply, 250000);
	ck_assert_int_eq(close(j.c), 0);
	j.c = -1;
	expect_bytes(j.t, reply, 250000);
	job_finish(&j);		/* the client's FIN ended it: the close passes it on */
	expect_bytes_eof(j.t, "", 0);
	ck_assert_int_eq(j.res.end, AUDIT_END_TARGET);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 250000);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 150000);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(banner);
	free(reply);
}
END_TEST

/* ---- resets -------------------------------------------------------------- */

/* The target resets after part of a download: the relay ends with
 * end=target and the client hears a reset, not an EOF that would make the
 * partial download look complete. */
START_TEST(reset_from_target)
{
	uint8_t *part = pattern(30000, 8);
	struct job j;

	job_init(&j, _i, 0);
	job_start(&j);
	send_all(j.c, "GET", 3);
	expect_bytes(j.t, "GET", 3);
	send_all(j.t, part, 30000);
	expect_bytes(j.c, part, 30000);
	reset_close(j.t);
	j.t = -1;
	job_wait(&j);
	ck_assert(linger0(j.rc));	/* the client is to hear of it */
	job_finish(&j);
	ck_assert_int_eq(j.res.end, AUDIT_END_TARGET);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 3);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 30000);
	expect_reset(j.c);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(part);
}
END_TEST

START_TEST(reset_from_client)
{
	uint8_t *part = pattern(30000, 9);
	struct job j;

	job_init(&j, _i, 0);
	job_start(&j);
	send_all(j.c, part, 30000);
	expect_bytes(j.t, part, 30000);
	send_all(j.t, "ok", 2);
	expect_bytes(j.c, "ok", 2);
	reset_close(j.c);
	j.c = -1;
	job_wait(&j);
	ck_assert(linger0(j.rt));	/* the target is to hear of it */
	job_finish(&j);
	ck_assert_int_eq(j.res.end, AUDIT_END_CLIENT);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 30000);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 2);
	expect_reset(j.t);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(part);
}
END_TEST

/* The client, half-closed, resets while the relay is writing to it (a
 * download it abandons): the write fails (EPIPE or ECONNRESET; the daemon
 * ignores SIGPIPE, as main() does here), end=client, and the target hears
 * a reset. */
START_TEST(reset_from_client_while_downloading)
{
	const size_t n = 16 * 1024 * 1024;
	uint8_t *data = pattern(n, 13);
	size_t sent = 0;
	int64_t end = deadline(DEADLINE_MS);
	struct job j;

	job_init(&j, _i, 0);
	job_start(&j);
	/* Half-closed: the relay no longer reads the client, so the reset
	 * shows in a write to it. */
	send_all(j.c, "GET", 3);
	ck_assert_int_eq(shutdown(j.c, SHUT_WR), 0);
	expect_bytes_eof(j.t, "GET", 3);
	ck_assert_int_eq(io_set_nonblock(j.t, 1), 0);
	/* The download under way: some of it reached the client. */
	while (sent < 256 * 1024) {
		ssize_t k;

		wait_fd(j.t, POLLOUT, end);
		k = send(j.t, data + sent, n - sent, MSG_DONTWAIT);
		if (k > 0)
			sent += (size_t)k;
	}
	{
		uint8_t buf[4096];
		int err;

		ck_assert_uint_eq(recv_until(j.c, buf, sizeof(buf), 1, &err) > 0,
		    1);
	}
	reset_close(j.c);
	j.c = -1;
	job_wait(&j);	/* the relay's next write fails: it ends */
	ck_assert_int_eq(j.res.end, AUDIT_END_CLIENT);
	ck_assert(linger0(j.rt));	/* the target is to hear of it */
	job_finish(&j);
	/* The target goes on sending until the reset reaches it. */
	for (;;) {
		struct pollfd p = { .fd = j.t, .events = POLLOUT };
		ssize_t k;

		ck_assert_msg(left_ms(end) > 0, "the target never heard a reset");
		if (poll(&p, 1, left_ms(end)) != 1)
			continue;
		k = send(j.t, data + sent % (n / 2), n / 2,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k > 0)
			sent += (size_t)k;
		else if (errno != EAGAIN)
			break;
	}
	/* EPIPE: the reset came in CLOSE_WAIT (the target had our FIN) */
	ck_assert_msg(errno == ECONNRESET || errno == EPIPE, "send: %s",
	    strerror(errno));
	ck_assert_uint_le(j.res.bytes[RELAY_DOWN], sent);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(data);
}
END_TEST

/* A reset from the target after it half-closed: the session ended on the
 * target's side first (end=target) and the client, still sending, hears a
 * reset. */
START_TEST(reset_from_target_after_its_fin)
{
	struct job j;

	job_init(&j, _i, 0);
	job_start(&j);
	ck_assert_int_eq(shutdown(j.t, SHUT_WR), 0);
	expect_bytes_eof(j.c, "", 0);
	send_all(j.c, "late", 4);
	expect_bytes(j.t, "late", 4);
	reset_close(j.t);
	j.t = -1;
	job_finish(&j);
	ck_assert_int_eq(j.res.end, AUDIT_END_TARGET);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 4);
	expect_reset_after_eof(j.c);
	job_free(&j);
}
END_TEST

/* The target resets while the relay holds bytes for a client that does not
 * read: the pipe with bytes left is closed, not given back for the next
 * session to send them. */
START_TEST(reset_with_bytes_held)
{
	const size_t n = 8 * 1024 * 1024;
	uint8_t *data = pattern(n, 10);
	size_t sent = 0;
	int64_t end = deadline(DEADLINE_MS);
	struct job j;

	job_init(&j, _i, 4096);
	relay_pool_prefill(&j.pool, 2);	/* as a worker's */
	ck_assert_int_eq(setsockopt(j.rc, SOL_SOCKET, SO_SNDBUF,
	    &(int){ 4096 }, sizeof(int)), 0);
	job_start(&j);
	send_all(j.c, "GET", 3);
	expect_bytes(j.t, "GET", 3);
	/* Send until the target's socket is full: the relay then holds all
	 * it can take. */
	ck_assert_int_eq(io_set_nonblock(j.t, 1), 0);
	for (;;) {
		struct pollfd p = { .fd = j.t, .events = POLLOUT };
		ssize_t k;

		if (sent == n || poll(&p, 1, 200) == 0)
			break;	/* nothing taken for 200 ms: all full */
		ck_assert_msg(left_ms(end) > 0, "never filled");
		k = send(j.t, data + sent, n - sent, MSG_DONTWAIT);
		if (k > 0)
			sent += (size_t)k;
	}
	reset_close(j.t);
	j.t = -1;
	job_finish(&j);
	ck_assert_int_eq(j.res.end, AUDIT_END_TARGET);
	ck_assert_uint_lt(j.res.bytes[RELAY_DOWN], sent);
	assert_pool_empty_handed(&j);
	if (_i == 0)	/* of the two, the downward one was closed */
		ck_assert_int_eq(j.pool.nopen_pipes, 1);
	expect_reset(j.c);
	job_free(&j);
	free(data);
}
END_TEST

/* ---- urgent data --------------------------------------------------------- */

/* send(MSG_OOB) inside a stream: not relayed (as recv() skips it), and
 * neither stalls the relay nor loses what follows, both ways, with and
 * without a FIN right behind. */
START_TEST(urgent_byte_mid_stream)
{
	uint8_t *tail = pattern(50000, 11), *want = malloc(50001);
	struct job j;

	want[0] = 'a';
	memcpy(want + 1, tail, 50000);
	job_init(&j, _i, 0);
	job_start(&j);
	/* up, no FIN behind */
	send_all(j.c, "a", 1);
	ck_assert_int_eq(send(j.c, "U", 1, MSG_OOB), 1);
	send_all(j.c, tail, 50000);
	expect_bytes(j.t, want, 50001);
	/* down, a FIN right behind */
	send_all(j.t, "a", 1);
	ck_assert_int_eq(send(j.t, "U", 1, MSG_OOB), 1);
	send_all(j.t, tail, 50000);
	ck_assert_int_eq(shutdown(j.t, SHUT_WR), 0);
	expect_bytes_eof(j.c, want, 50001);
	/* up again after the mark, then the end */
	send_all(j.c, "b", 1);
	ck_assert_int_eq(send(j.c, "V", 1, MSG_OOB), 1);
	ck_assert_int_eq(shutdown(j.c, SHUT_WR), 0);
	expect_bytes(j.t, "b", 1);
	job_finish(&j);		/* both ways ended: the close is the FIN */
	expect_bytes_eof(j.t, "", 0);
	ck_assert_int_eq(j.res.end, AUDIT_END_TARGET);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 50002);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 50001);
	/* splice at the mark: no spin (a few hundred polls at most for this) */
	ck_assert_uint_lt(atomic_load(&relay_polls), 2000);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(tail);
	free(want);
}
END_TEST

/* An urgent byte with nothing behind it yet: splice stops at the mark and
 * recv steps over it, and then the relay waits quietly (poll no longer
 * reports urgent data), and what comes next still goes through. */
START_TEST(urgent_byte_last_then_quiet)
{
	unsigned long polls0, polls1;
	struct job j;

	job_init(&j, _i, 0);
	job_start(&j);
	send_all(j.c, "c", 1);
	ck_assert_int_eq(send(j.c, "W", 1, MSG_OOB), 1);
	expect_bytes(j.t, "c", 1);
	send_all(j.t, "x", 1);
	ck_assert_int_eq(send(j.t, "Y", 1, MSG_OOB), 1);
	expect_bytes(j.c, "x", 1);
	polls0 = atomic_load(&relay_polls);
	ck_assert(!job_ended(&j, 300));
	polls1 = atomic_load(&relay_polls);
	ck_assert_msg(polls1 - polls0 < 20, "%lu polls in 300 ms while quiet",
	    polls1 - polls0);
	send_all(j.c, "d", 1);
	expect_bytes(j.t, "d", 1);
	send_all(j.t, "z", 1);
	expect_bytes(j.c, "z", 1);
	ck_assert_int_eq(shutdown(j.c, SHUT_WR), 0);
	expect_bytes_eof(j.t, "", 0);
	close(j.t);
	j.t = -1;
	job_finish(&j);
	expect_bytes_eof(j.c, "", 0);
	ck_assert_int_eq(j.res.end, AUDIT_END_CLIENT);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 2);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 2);
	assert_pool_empty_handed(&j);
	job_free(&j);
}
END_TEST

/* ---- hang-up while the other side drains --------------------------------- */

/* Whether everything fd sent, its FIN too, was acknowledged (its peer's
 * kernel has it). */
static bool
all_acked(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	/* FIN_WAIT2, or CLOSE when its peer had sent a FIN first */
	return ti.tcpi_unacked == 0 && (ti.tcpi_state == TCP_FIN_WAIT2 ||
	    ti.tcpi_state == TCP_CLOSE);
}

/* The client half-closes; the target sends more than the client's side
 * holds, then its FIN, and all of it reaches the relay's target socket,
 * which is then hung up (both halves shut) while the relay holds bytes for
 * a client that reads nothing. poll reports POLLHUP there whatever it is
 * asked for: the relay must not spin on it. Then the client reads
 * everything. */
START_TEST(hangup_while_other_side_drains)
{
	const size_t n = 200000;
	uint8_t *data = pattern(n, 12), *got = malloc(n + 1);
	unsigned long polls0, polls1;
	int err;
	size_t k;
	int64_t end;
	struct job j;

	/* small on the client's side, room on the relay's target socket */
	job_init2(&j, _i, 4096, 1 << 20);
	ck_assert_int_eq(setsockopt(j.rc, SOL_SOCKET, SO_SNDBUF,
	    &(int){ 4096 }, sizeof(int)), 0);
	job_start(&j);
	send_all(j.c, "req", 3);
	ck_assert_int_eq(shutdown(j.c, SHUT_WR), 0);
	expect_bytes_eof(j.t, "req", 3);
	send_all(j.t, data, n);
	ck_assert_int_eq(shutdown(j.t, SHUT_WR), 0);
	end = deadline(DEADLINE_MS);
	while (!all_acked(j.t)) {	/* the bytes and the FIN are there */
		ck_assert_msg(left_ms(end) > 0, "target data never acked");
		ck_assert(!job_ended(&j, 10));
	}
	/* A window in which the client reads nothing: a relay spinning on
	 * the hang-up would call poll thousands of times in it. */
	polls0 = atomic_load(&relay_polls);
	ck_assert(!job_ended(&j, 300));
	polls1 = atomic_load(&relay_polls);
	ck_assert_msg(polls1 - polls0 < 20, "%lu polls in 300 ms while idle",
	    polls1 - polls0);
	k = recv_until(j.c, got, n + 1, n, &err);
	ck_assert_uint_eq(k, n);
	ck_assert(memcmp(got, data, n) == 0);
	job_finish(&j);
	expect_bytes_eof(j.c, "", 0);
	ck_assert_int_eq(j.res.end, AUDIT_END_CLIENT);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 3);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], n);
	ck_assert_msg(j.cpu_ms < 1000, "relay used %.0f ms of CPU", j.cpu_ms);
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(data);
	free(got);
}
END_TEST

/* ---- timers -------------------------------------------------------------- */

START_TEST(idle_timeout)
{
	int64_t t0;
	struct job j;

	job_init(&j, _i, 0);
	j.lim.idle_ms = 200;
	job_start(&j);
	send_all(j.c, "x", 1);
	expect_bytes(j.t, "x", 1);
	t0 = io_now_ms();
	job_wait(&j);
	ck_assert_int_ge(io_now_ms() - t0, 150);
	ck_assert_int_eq(j.res.end, AUDIT_END_IDLE);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 1);
	/* An idle end is a clean one: EOF on both sides, no reset. */
	ck_assert(!linger0(j.rc) && !linger0(j.rt));
	job_finish(&j);
	expect_bytes_eof(j.c, "", 0);
	expect_bytes_eof(j.t, "", 0);
	ck_assert_uint_lt(atomic_load(&relay_polls), 50);
	job_free(&j);
}
END_TEST

/* The idle timeout while the relay still holds bytes for a client that
 * stopped reading: those bytes are dropped, so the client must hear a
 * reset, not a clean EOF after a cut stream that would look complete. */
START_TEST(idle_timeout_with_bytes_held_resets)
{
	const size_t n = 8 * 1024 * 1024;
	uint8_t *data = pattern(n, 14), *got = malloc(n + 1);
	size_t sent = 0, k;
	int64_t end = deadline(DEADLINE_MS);
	int err;
	struct job j;

	job_init(&j, _i, 4096);
	ck_assert_int_eq(setsockopt(j.rc, SOL_SOCKET, SO_SNDBUF,
	    &(int){ 4096 }, sizeof(int)), 0);
	j.lim.idle_ms = 300;
	job_start(&j);
	send_all(j.c, "GET", 3);
	expect_bytes(j.t, "GET", 3);
	ck_assert_int_eq(io_set_nonblock(j.t, 1), 0);
	while (sent < n && !job_ended(&j, 0)) {	/* until all is full */
		struct pollfd p = { .fd = j.t, .events = POLLOUT };
		ssize_t w;

		ck_assert_msg(left_ms(end) > 0, "never filled");
		if (poll(&p, 1, 100) == 0)
			continue;
		w = send(j.t, data + sent, n - sent, MSG_DONTWAIT);
		if (w > 0)
			sent += (size_t)w;
	}
	job_wait(&j);
	ck_assert_int_eq(j.res.end, AUDIT_END_IDLE);
	ck_assert_uint_lt(j.res.bytes[RELAY_DOWN], sent);
	job_finish(&j);
	k = recv_until(j.c, got, n + 1, 0, &err);
	ck_assert_uint_lt(k, sent);
	ck_assert(memcmp(got, data, k) == 0);
	ck_assert_msg(err == ECONNRESET, "the client got %zu of %zu bytes, "
	    "then %s", k, sent, err == 0 ? "a clean EOF" : strerror(err));
	assert_pool_empty_handed(&j);
	job_free(&j);
	free(data);
	free(got);
}
END_TEST

/* The stop's cutoff ends a session mid-transfer with a reset both ways:
 * a cut download must not look complete. */
START_TEST(shutdown_cutoff_resets_both)
{
	struct job j;

	job_init(&j, _i, 0);
	/* Set before the relay starts: a stopping worker's signal also wakes
	 * its poll, which nothing would do here. */
	io_set_cutoff(io_now_ms() + 500);
	job_start(&j);
	send_all(j.t, "partial", 7);
	expect_bytes(j.c, "partial", 7);
	job_wait(&j);
	io_set_cutoff(0);
	ck_assert(linger0(j.rc) && linger0(j.rt));
	job_finish(&j);
	ck_assert_int_eq(j.res.end, AUDIT_END_SHUTDOWN);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 7);
	expect_reset(j.c);
	expect_reset(j.t);
	job_free(&j);
}
END_TEST

/* ---- parking ------------------------------------------------------------- */

START_TEST(park_taken)
{
	int64_t t0 = io_now_ms(), t_last;
	struct job j;

	job_init(&j, _i, 0);
	j.lim.park_ms = 100;
	j.lim.park = park_hook;
	j.park_answer = 0;
	job_start(&j);
	send_all(j.c, "ping!", 5);
	expect_bytes(j.t, "ping!", 5);
	send_all(j.t, "pong", 4);
	expect_bytes(j.c, "pong", 4);
	t_last = io_now_ms();
	job_wait(&j);
	ck_assert_int_ge(io_now_ms() - t_last, 90);
	ck_assert_int_eq(j.res.end, AUDIT_END_PARKED);
	ck_assert_int_eq(atomic_load(&j.park_calls), 1);
	ck_assert_uint_eq(j.park_st.bytes[RELAY_UP], 5);
	ck_assert_uint_eq(j.park_st.bytes[RELAY_DOWN], 4);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 5);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 4);
	ck_assert(!j.park_st.done[RELAY_UP] && !j.park_st.done[RELAY_DOWN]);
	ck_assert_int_eq(j.park_st.first_eof, -1);
	ck_assert_int_ge(j.park_st.last_ms, t0);
	ck_assert_int_le(j.park_st.last_ms, t_last);
	/* Taken over: not aborted (the hub relays on). */
	ck_assert(!linger0(j.rc) && !linger0(j.rt));
	assert_pool_empty_handed(&j);
	if (_i == 0)	/* taken over holding no pipe: the pool has both */
		ck_assert_int_eq(j.pool.nfree_pipes, j.pool.nopen_pipes);
	job_free(&j);
}
END_TEST

/* A session whose client half-closed, once the target has answered, is
 * idle and still parkable, and the hub is told the upward direction is
 * done. */
START_TEST(park_half_closed)
{
	struct job j;

	job_init(&j, _i, 0);
	j.lim.park_ms = 100;
	j.lim.park = park_hook;
	j.park_answer = 0;
	job_start(&j);
	send_all(j.c, "req", 3);
	ck_assert_int_eq(shutdown(j.c, SHUT_WR), 0);
	expect_bytes_eof(j.t, "req", 3);
	send_all(j.t, "answer", 6);
	expect_bytes(j.c, "answer", 6);
	job_finish(&j);
	ck_assert_int_eq(j.res.end, AUDIT_END_PARKED);
	ck_assert_int_eq(atomic_load(&j.park_calls), 1);
	ck_assert(j.park_st.done[RELAY_UP]);
	ck_assert(!j.park_st.done[RELAY_DOWN]);
	ck_assert_int_eq(j.park_st.first_eof, RELAY_UP);
	ck_assert_uint_eq(j.park_st.bytes[RELAY_UP], 3);
	ck_assert_uint_eq(j.park_st.bytes[RELAY_DOWN], 6);
	job_free(&j);
}
END_TEST

/* The same, target first. */
START_TEST(park_half_closed_target_first)
{
	struct job j;

	job_init(&j, _i, 0);
	j.lim.park_ms = 100;
	j.lim.park = park_hook;
	j.park_answer = 0;
	job_start(&j);
	send_all(j.t, "bye", 3);
	ck_assert_int_eq(shutdown(j.t, SHUT_WR), 0);
	expect_bytes_eof(j.c, "bye", 3);
	job_finish(&j);
	ck_assert_int_eq(j.res.end, AUDIT_END_PARKED);
	ck_assert(!j.park_st.done[RELAY_UP]);
	ck_assert(j.park_st.done[RELAY_DOWN]);
	ck_assert_int_eq(j.park_st.first_eof, RELAY_DOWN);
	ck_assert_uint_eq(j.park_st.bytes[RELAY_DOWN], 3);
	job_free(&j);
}
END_TEST

/* A hook that refuses: the session goes on relaying here, and is offered
 * again later. */
START_TEST(park_refused_keeps_relaying)
{
	int64_t end;
	struct job j;

	job_init(&j, _i, 0);
	j.lim.park_ms = 100;
	j.lim.park = park_hook;
	j.park_answer = -1;
	job_start(&j);
	send_all(j.c, "one", 3);
	expect_bytes(j.t, "one", 3);
	end = deadline(DEADLINE_MS);
	while (atomic_load(&j.park_calls) < 2) {	/* offered, refused, again */
		ck_assert_msg(left_ms(end) > 0, "offered %d times",
		    atomic_load(&j.park_calls));
		ck_assert(!job_ended(&j, 20));
	}
	send_all(j.c, "two", 3);
	expect_bytes(j.t, "two", 3);
	send_all(j.t, "back", 4);
	expect_bytes(j.c, "back", 4);
	ck_assert_int_eq(shutdown(j.c, SHUT_WR), 0);
	expect_bytes_eof(j.t, "", 0);
	close(j.t);
	j.t = -1;
	job_finish(&j);
	expect_bytes_eof(j.c, "", 0);
	ck_assert_int_eq(j.res.end, AUDIT_END_CLIENT);
	ck_assert_uint_eq(j.res.bytes[RELAY_UP], 6);
	ck_assert_uint_eq(j.res.bytes[RELAY_DOWN], 4);
	job_free(&j);
}
END_TEST

/* ---- the pool ------------------------------------------------------------ */

/* Sessions one after the other on one pool: pipes come back and are
 * reused (splice), at most one per direction is open; buffers are kept up
 * to keep_bufs (copy). */
START_TEST(pool_reused_across_sessions)
{
	struct relay_pool pool;

	/* as a worker's: two pipes, opened ahead */
	relay_pool_init(&pool, _i == 0, PIPE_SIZE, BUF_SIZE, 2, 2, 2);
	relay_pool_prefill(&pool, 2);
	ck_assert_int_eq(pool.nopen_pipes, _i == 0 ? 2 : 0);
	for (int round = 0; round < 3; round++) {
		uint8_t *data = pattern(300000, 20 + (uint32_t)round);
		struct job j;

		job_init(&j, _i, 0);
		relay_pool_free(&j.pool);
		j.pool = pool;
		job_start(&j);
		send_all(j.c, data, 300000);
		ck_assert_int_eq(shutdown(j.c, SHUT_WR), 0);
		expect_bytes_eof(j.t, data, 300000);
		send_all(j.t, data, 300000);
		ck_assert_int_eq(close(j.t), 0);
		j.t = -1;
		job_finish(&j);
		expect_bytes_eof(j.c, data, 300000);
		assert_pool_empty_handed(&j);
		pool = j.pool;
		if (_i == 0) {	/* the same two, back each time */
			ck_assert_int_eq(pool.nopen_pipes, 2);
			ck_assert_int_eq(pool.nfree_pipes, 2);
		} else {
			ck_assert_int_eq(pool.nopen_pipes, 0);
			ck_assert_int_ge(pool.nfree_bufs, 1);
		}
		/* job_free would free the shared pool: close the rest here */
		close(j.c);
		close(j.done);
		free(data);
	}
	relay_pool_free(&pool);
}
END_TEST

/* relay_dir_release: an empty pipe goes back to the pool; one with bytes
 * left is closed and its dst set to reset; max_pipes bounds what is open. */
START_TEST(dir_release_closes_pipe_with_bytes)
{
	struct relay_pool p;
	struct relay_dir d;
	int fds_before, rfd, bad = -1;
	int a, b;

	tcp_pair(&a, &b, 0);
	ck_assert_int_eq(io_set_nonblock(a, 1), 0);
	ck_assert_int_eq(io_set_nonblock(b, 1), 0);
	relay_pool_init(&p, true, PIPE_SIZE, BUF_SIZE, 1, 1, 1);
	fds_before = count_fds();

	/* bytes held at the end: closed */
	relay_dir_init(&d, a, b, false);
	ck_assert_int_eq(relay_dir_preload(&d, &p, (const uint8_t *)"held", 4),
	    0);
	ck_assert_int_ne(d.pipe[0], -1);
	ck_assert_uint_eq(d.len, 4);
	ck_assert_int_eq(p.nopen_pipes, 1);
	ck_assert_int_eq(count_fds(), fds_before + 2);
	ck_assert(!linger0(b));
	relay_dir_release(&d, &p);
	ck_assert(linger0(b));	/* never delivered: dst is to hear a reset */
	ck_assert_int_eq(p.nopen_pipes, 0);
	ck_assert_int_eq(p.nfree_pipes, 0);
	ck_assert_int_eq(count_fds(), fds_before);
	ck_assert_int_eq(d.pipe[0], -1);

	/* delivered, then empty: given back and reused */
	relay_dir_init(&d, a, b, false);
	ck_assert_int_eq(relay_dir_preload(&d, &p, (const uint8_t *)"sent", 4),
	    0);
	rfd = d.pipe[0];
	ck_assert_int_eq(relay_dir_step(&d, &p, false, &bad), 1);
	ck_assert_uint_eq(d.len, 0);
	ck_assert_uint_eq(d.bytes, 4);
	ck_assert_int_eq(d.pipe[0], -1);	/* given back once empty */
	ck_assert_int_eq(p.nfree_pipes, 1);
	ck_assert_int_eq(p.nfree_pipes, p.nopen_pipes);
	ck_assert_int_eq(p.free_pipes[0].fd[0], rfd);
	expect_bytes(a, "sent", 4);	/* written to b: a, its peer, reads */
	relay_dir_release(&d, &p);

	/* max_pipes 1: a second direction relays by copy */
	{
		struct relay_dir d2;

		relay_dir_init(&d, a, b, false);
		relay_dir_init(&d2, b, a, false);
		ck_assert_int_eq(relay_dir_preload(&d, &p,
		    (const uint8_t *)"x", 1), 0);
		ck_assert_int_eq(relay_dir_preload(&d2, &p,
		    (const uint8_t *)"y", 1), 0);
		ck_assert_int_ne(d.pipe[0], -1);
		ck_assert_int_eq(d2.pipe[0], -1);
		ck_assert_ptr_nonnull(d2.buf);
		ck_assert_int_eq(p.nopen_pipes, 1);
		relay_dir_release(&d, &p);	/* bytes held: closed */
		relay_dir_release(&d2, &p);
		ck_assert_int_eq(p.nopen_pipes, 0);
		ck_assert_int_le(p.nfree_bufs, 1);
	}
	relay_pool_free(&p);
	ck_assert_int_eq(count_fds(), fds_before);
	close(a);
	close(b);
}
END_TEST

/* ---- relay_dir_step directly --------------------------------------------- */

/* EOF becomes a shutdown(SHUT_WR) of dst once delivered, unless the other
 * direction is shut already (the final close sends the FIN). */
START_TEST(dir_step_eof_half_closes)
{
	struct relay_pool p;
	struct relay_dir d;
	int c, rc, rt, t, bad = -1;
	int64_t end = deadline(DEADLINE_MS);

	tcp_pair(&c, &rc, 0);
	tcp_pair(&rt, &t, 0);
	ck_assert_int_eq(io_set_nonblock(rc, 1), 0);
	ck_assert_int_eq(io_set_nonblock(rt, 1), 0);
	relay_pool_init(&p, _i == 0, PIPE_SIZE, BUF_SIZE, 2, 2, 2);
	relay_dir_init(&d, rc, rt, false);
	ck_assert_uint_eq(relay_dir_want_src(&d), RELAY_EV_IN | RELAY_EV_PRI);
	ck_assert_uint_eq(relay_dir_want_dst(&d), 0);
	/* not ready yet: a step does nothing */
	ck_assert_int_eq(relay_dir_step(&d, &p, false, &bad), 0);
	send_all(c, "abc", 3);
	ck_assert_int_eq(shutdown(c, SHUT_WR), 0);
	while (!d.shut) {
		ck_assert_msg(left_ms(end) > 0, "never shut");
		wait_fd(rc, POLLIN, end);
		relay_dir_events(&d, RELAY_EV_IN, 0);
		ck_assert_int_ge(relay_dir_step(&d, &p, false, &bad), 0);
	}
	ck_assert(d.eof);
	ck_assert_uint_eq(d.bytes, 3);
	ck_assert_uint_eq(relay_dir_want_src(&d), 0);
	expect_bytes_eof(t, "abc", 3);	/* the FIN passed on */
	relay_dir_release(&d, &p);

	/* the other direction shut: no shutdown, the close will do */
	{
		int c2, rc2, rt2, t2;
		struct relay_dir e;

		tcp_pair(&c2, &rc2, 0);
		tcp_pair(&rt2, &t2, 0);
		ck_assert_int_eq(io_set_nonblock(rc2, 1), 0);
		relay_dir_init(&e, rc2, rt2, false);
		ck_assert_int_eq(shutdown(c2, SHUT_WR), 0);
		wait_fd(rc2, POLLIN, end);
		relay_dir_events(&e, RELAY_EV_IN, 0);
		ck_assert_int_eq(relay_dir_step(&e, &p, true, &bad), 1);
		ck_assert(e.eof && e.shut);
		{
			struct pollfd q = { .fd = t2, .events = POLLIN };

			ck_assert_int_eq(poll(&q, 1, 100), 0);	/* no FIN */
		}
		relay_dir_release(&e, &p);
		close(c2);
		close(rc2);
		close(rt2);
		close(t2);
	}
	/* done: a direction taken over half-closed reads nothing */
	relay_dir_init(&d, rc, rt, true);
	ck_assert(d.eof && d.shut);
	ck_assert_uint_eq(relay_dir_want_src(&d), 0);
	relay_pool_free(&p);
	close(c);
	close(rc);
	close(rt);
	close(t);
}
END_TEST

/* A reset source: -1 with the source as bad_fd, errno ECONNRESET. */
START_TEST(dir_step_reset_names_bad_fd)
{
	struct relay_pool p;
	struct relay_dir d;
	int c, rc, rt, t, bad = -1, rv;
	int64_t end = deadline(DEADLINE_MS);

	tcp_pair(&c, &rc, 0);
	tcp_pair(&rt, &t, 0);
	ck_assert_int_eq(io_set_nonblock(rc, 1), 0);
	ck_assert_int_eq(io_set_nonblock(rt, 1), 0);
	relay_pool_init(&p, _i == 0, PIPE_SIZE, BUF_SIZE, 2, 2, 2);
	relay_dir_init(&d, rc, rt, false);
	reset_close(c);
	wait_fd(rc, POLLIN, end);
	relay_dir_events(&d, RELAY_EV_IN | RELAY_EV_ERR, 0);
	rv = relay_dir_step(&d, &p, false, &bad);
	ck_assert_int_eq(rv, -1);
	ck_assert_int_eq(errno, ECONNRESET);
	ck_assert_int_eq(bad, rc);
	relay_dir_release(&d, &p);
	relay_pool_free(&p);
	close(rc);
	close(rt);
	close(t);
}
END_TEST

/* ---- end reasons and errors ---------------------------------------------- */

START_TEST(end_of_error_table)
{
	/* resets and broken pipes name a side */
	ck_assert_int_eq(relay_end_of_error(ECONNRESET, -1, true),
	    AUDIT_END_TARGET);
	ck_assert_int_eq(relay_end_of_error(ECONNRESET, -1, false),
	    AUDIT_END_CLIENT);
	ck_assert_int_eq(relay_end_of_error(EPIPE, -1, true), AUDIT_END_TARGET);
	ck_assert_int_eq(relay_end_of_error(EPIPE, -1, false),
	    AUDIT_END_CLIENT);
	/* the side that ended first wins over where the error showed */
	ck_assert_int_eq(relay_end_of_error(ECONNRESET, RELAY_DOWN, false),
	    AUDIT_END_TARGET);
	ck_assert_int_eq(relay_end_of_error(EPIPE, RELAY_DOWN, false),
	    AUDIT_END_TARGET);
	ck_assert_int_eq(relay_end_of_error(ECONNRESET, RELAY_UP, true),
	    AUDIT_END_CLIENT);
	ck_assert_int_eq(relay_end_of_error(EPIPE, RELAY_UP, true),
	    AUDIT_END_CLIENT);
	/* anything else is an error, wherever it showed */
	static const int others[] = { EPROTO, EIO, ENOMEM, ETIMEDOUT, EBADF,
	    ECONNREFUSED, EHOSTUNREACH, 0 };
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		for (int fe = -1; fe <= 1; fe++) {
			ck_assert_int_eq(relay_end_of_error(others[i], fe,
			    true), AUDIT_END_ERROR);
			ck_assert_int_eq(relay_end_of_error(others[i], fe,
			    false), AUDIT_END_ERROR);
		}
}
END_TEST

START_TEST(sock_error_values)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l, s, a, b, pfd[2];
	int64_t end = deadline(DEADLINE_MS);

	/* a refused connect leaves ECONNREFUSED pending */
	l = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 },
	    sizeof(int)), 0);
	ck_assert_msg(bind(l, (struct sockaddr *)&sin, sizeof(sin)) == 0,
	    "bind: %s", strerror(errno));
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	close(l);	/* bound, never listening: connects are refused */
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (connect(s, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno == EINPROGRESS) {
		wait_fd(s, POLLOUT, end);
		ck_assert_int_eq(relay_sock_error(s), ECONNREFUSED);
		/* read once, SO_ERROR is clear: EPROTO */
		ck_assert_int_eq(relay_sock_error(s), EPROTO);
	} else {	/* refused at once: reported by connect, not pending */
		ck_assert_int_eq(errno, ECONNREFUSED);
	}
	close(s);

	/* a reset received leaves ECONNRESET pending */
	tcp_pair(&a, &b, 0);
	reset_close(a);
	wait_fd(b, POLLERR, end);
	ck_assert_int_eq(relay_sock_error(b), ECONNRESET);
	close(b);

	/* a healthy socket: no error pending, EPROTO */
	tcp_pair(&a, &b, 0);
	ck_assert_int_eq(relay_sock_error(a), EPROTO);
	close(a);
	close(b);

	/* not a socket: what getsockopt said */
	ck_assert_int_eq(pipe(pfd), 0);
	ck_assert_int_eq(relay_sock_error(pfd[0]), ENOTSOCK);
	close(pfd[0]);
	close(pfd[1]);
	ck_assert_int_eq(relay_sock_error(-1), EBADF);
}
END_TEST

/* Which sockets are set to reset on close. */
START_TEST(abort_for_table)
{
	static const struct {
		enum audit_end end;
		int err;
		int bad;		/* 0 client, 1 target, -1 none */
		bool rst_client, rst_target;
	} cases[] = {
		{ AUDIT_END_ERROR, EIO, -1, true, true },
		{ AUDIT_END_ERROR, EPROTO, 0, true, true },
		{ AUDIT_END_SHUTDOWN, 0, -1, true, true },
		{ AUDIT_END_TARGET, ECONNRESET, 1, true, false },
		{ AUDIT_END_CLIENT, ECONNRESET, 0, false, true },
		{ AUDIT_END_TARGET, EPIPE, 1, true, false },
		{ AUDIT_END_CLIENT, EPIPE, 0, false, true },
		/* the first EOF named the end, the reset came on the other */
		{ AUDIT_END_TARGET, ECONNRESET, 0, false, true },
		{ AUDIT_END_CLIENT, 0, -1, false, false },
		{ AUDIT_END_TARGET, 0, -1, false, false },
		{ AUDIT_END_IDLE, 0, -1, false, false },
		{ AUDIT_END_PARKED, 0, -1, false, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int c, rc, rt, t, bad;

		tcp_pair(&c, &rc, 0);
		tcp_pair(&rt, &t, 0);
		bad = cases[i].bad == 0 ? rc : cases[i].bad == 1 ? rt : -1;
		relay_abort_for(cases[i].end, cases[i].err, bad, rc, rt);
		ck_assert_msg(linger0(rc) == cases[i].rst_client,
		    "case %zu: client", i);
		ck_assert_msg(linger0(rt) == cases[i].rst_target,
		    "case %zu: target", i);
		close(c);
		close(rc);
		close(rt);
		close(t);
	}
}
END_TEST

static Suite *
relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *tc;

	/* _i: 0 splice, 1 copy */
	tc = tcase_create("relay_run");
	tcase_add_checked_fixture(tc, fds_setup, fds_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, bytes_both_ways, 0, 2);
	tcase_add_loop_test(tc, preloaded_bytes_first, 0, 2);
	tcase_add_loop_test(tc, preload_too_big_is_an_error, 0, 2);
	tcase_add_loop_test(tc, half_close_client_first, 0, 2);
	tcase_add_loop_test(tc, half_close_target_first, 0, 2);
	tcase_add_loop_test(tc, reset_from_target, 0, 2);
	tcase_add_loop_test(tc, reset_from_client, 0, 2);
	tcase_add_loop_test(tc, reset_from_client_while_downloading, 0, 2);
	tcase_add_loop_test(tc, reset_from_target_after_its_fin, 0, 2);
	tcase_add_loop_test(tc, reset_with_bytes_held, 0, 2);
	tcase_add_loop_test(tc, urgent_byte_mid_stream, 0, 2);
	tcase_add_loop_test(tc, urgent_byte_last_then_quiet, 0, 2);
	tcase_add_loop_test(tc, hangup_while_other_side_drains, 0, 2);
	tcase_add_loop_test(tc, idle_timeout, 0, 2);
	tcase_add_loop_test(tc, idle_timeout_with_bytes_held_resets, 0, 2);
	tcase_add_loop_test(tc, shutdown_cutoff_resets_both, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("park");
	tcase_add_checked_fixture(tc, fds_setup, fds_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, park_taken, 0, 2);
	tcase_add_loop_test(tc, park_half_closed, 0, 2);
	tcase_add_loop_test(tc, park_half_closed_target_first, 0, 2);
	tcase_add_loop_test(tc, park_refused_keeps_relaying, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("pool");
	tcase_add_checked_fixture(tc, fds_setup, fds_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, pool_reused_across_sessions, 0, 2);
	tcase_add_test(tc, dir_release_closes_pipe_with_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("dir");
	tcase_add_checked_fixture(tc, fds_setup, fds_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, dir_step_eof_half_closes, 0, 2);
	tcase_add_loop_test(tc, dir_step_reset_names_bad_fd, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, fds_setup, fds_teardown);
	tcase_add_test(tc, end_of_error_table);
	tcase_add_test(tc, sock_error_values);
	tcase_add_test(tc, abort_for_table);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(relay_suite());
	int failed;

	/* As in the daemon (master.c, worker.c): a splice or send to a socket
	 * that reset says EPIPE instead of killing the process. */
	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
