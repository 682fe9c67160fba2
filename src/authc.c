/* authc.c: the worker's side of the auth helpers. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authc.h"
#include "fdpass.h"
#include "io.h"

/* The worker's reply socket pair, kept from one login to the next: [0]
 * stays here; [1] goes to the helper with a request and comes back with
 * its reply, so while a helper works on a request it holds the only copy
 * of [1] and its death is EOF on [0]. After any failure (a timeout, a
 * helper that died, a bad reply) the pair is dropped and the next login
 * makes a new one: a late reply can only reach a closed socket. */
static struct {
	int fd[2];
	dev_t dev;			/* of [1], to know it when it comes back */
	ino_t ino;
} rp = { .fd = { -1, -1 } };

static void
reply_pair_drop(void)
{
	for (int i = 0; i < 2; i++)
		if (rp.fd[i] != -1) {
			close(rp.fd[i]);
			rp.fd[i] = -1;
		}
}

static int
reply_pair_make(void)
{
	struct stat st;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rp.fd) == -1) {
		rp.fd[0] = rp.fd[1] = -1;
		return -1;
	}
	if (fstat(rp.fd[1], &st) == -1) {
		reply_pair_drop();
		return -1;
	}
	rp.dev = st.st_dev;
	rp.ino = st.st_ino;
	return 0;
}

/* Whether fd is the pair's [1], back from the helper. */
static bool
reply_pair_back(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_dev == rp.dev &&
	    st.st_ino == rp.ino;
}

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

/* The reply, which brings [1] back. */
static int
recv_reply(int64_t deadline, struct auth_reply *out)
{
	int fds[FDPASS_MAX], nfds, flags, r = io_wait(rp.fd[0], POLLIN, deadline);
	ssize_t n;

	if (r <= 0) {
		if (r == 0)
			errno = ETIMEDOUT;
		return -1;
	}
	n = fdpass_recv(rp.fd[0], out, sizeof(*out), fds, &nfds, &flags,
	    MSG_DONTWAIT);
	if (n == 0 || (n == -1 && errno == ECONNRESET)) {
		errno = EPIPE;	/* the helper closed it: it died */
		return -1;
	}
	if (n == -1)
		return -1;
	if (nfds == 1 && reply_pair_back(fds[0])) {
		rp.fd[1] = fds[0];
		nfds = 0;
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (rp.fd[1] == -1 || (flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    auth_reply_check(out, n) != NULL) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int
authc_ask(int chan, const struct auth_request *req, int64_t deadline,
    struct auth_reply *out)
{
	int rc, saved;

	if (chan == -1) {
		errno = EPIPE;
		return -1;
	}
	if (rp.fd[0] == -1 && reply_pair_make() == -1)
		return -1;
	rc = send_request(chan, req, rp.fd[1], deadline);
	if (rc == 0) {
		close(rp.fd[1]);	/* only the helper holds it now */
		rp.fd[1] = -1;
		rc = recv_reply(deadline, out);
	}
	if (rc == -1) {
		saved = errno;
		reply_pair_drop();
		errno = saved;
	}
	return rc;
}
