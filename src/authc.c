/* authc.c: the worker's side of the auth helpers. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "authc.h"
#include "fdpass.h"
#include "io.h"

/* The request with the helper's end of the reply pair, without blocking
 * the worker past the deadline when every helper is busy. */
static int
send_request(int chan, const struct auth_request *req, int fd,
    int64_t deadline)
{
	for (;;) {
		ssize_t n = fdpass_send(chan, req, sizeof(*req), &fd, 1,
		    MSG_DONTWAIT);
		int r;

		if (n == (ssize_t)sizeof(*req))
			return 0;
		if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
			errno = EPIPE;
			return -1;
		}
		if ((r = io_wait(chan, POLLOUT, deadline)) <= 0) {
			if (r == 0)
				errno = ETIMEDOUT;
			return -1;
		}
	}
}

static int
recv_reply(int fd, int64_t deadline, struct auth_reply *out)
{
	int r = io_wait(fd, POLLIN, deadline);
	ssize_t n;

	if (r <= 0) {
		if (r == 0)
			errno = ETIMEDOUT;
		return -1;
	}
	n = recv(fd, out, sizeof(*out), MSG_DONTWAIT | MSG_TRUNC);
	if (n == 0 || (n == -1 && errno == ECONNRESET)) {
		errno = EPIPE;	/* the helper closed it: it died */
		return -1;
	}
	if (n == -1)
		return -1;
	if (auth_reply_check(out, n) != NULL) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int
authc_ask(int chan, const struct auth_request *req, int64_t deadline,
    struct auth_reply *out)
{
	int pair[2], rc, saved;

	if (chan == -1) {
		errno = EPIPE;
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == -1)
		return -1;
	rc = send_request(chan, req, pair[1], deadline);
	close(pair[1]);	/* only the helper holds it now: its death is EOF */
	if (rc == 0)
		rc = recv_reply(pair[0], deadline, out);
	saved = errno;
	close(pair[0]);
	errno = saved;
	return rc;
}
