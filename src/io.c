/* io.c: reads and writes on non-blocking sockets bounded by a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

static volatile int64_t cutoff;

void
io_set_cutoff(int64_t when)
{
	cutoff = when;
}

int64_t
io_cutoff_time(void)
{
	return cutoff;
}

int
io_cutoff_passed(void)
{
	int64_t c = cutoff;

	return c != 0 && io_now_ms() >= c;
}

int64_t
io_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
io_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int64_t c = cutoff, left;
		int n;

		left = (c != 0 && c < deadline ? c : deadline) - io_now_ms();
		if (left <= 0)
			return 0;
		n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return pfd.revents;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

void
io_pause(int64_t until)
{
	for (;;) {
		int64_t c = cutoff, left;

		left = (c != 0 && c < until ? c : until) - io_now_ms();
		if (left <= 0)
			return;
		(void)poll(NULL, 0, left > 60000 ? 60000 : (int)left);
	}
}

ssize_t
io_read_some(int fd, void *buf, size_t cap, int64_t deadline)
{
	for (;;) {
		ssize_t n = recv(fd, buf, cap, 0);
		int r;

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		r = io_wait(fd, POLLIN, deadline);
		if (r == 0)
			errno = ETIMEDOUT;
		if (r <= 0)
			return -1;
	}
}

int
io_write_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		int r;

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		r = io_wait(fd, POLLOUT, deadline);
		if (r == 0)
			errno = ETIMEDOUT;
		if (r <= 0)
			return -1;
	}
	return 0;
}

int
io_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1)
		return -1;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
}

bool
io_at_urgent_mark(int fd)
{
	int saved = errno, at = 0;
	bool yes = ioctl(fd, SIOCATMARK, &at) == 0 && at != 0;

	errno = saved;
	return yes;
}
