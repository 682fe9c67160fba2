/* hubmsg.c: the worker-to-hub protocol: sending, receiving and checking
 * the message that hands a parked session over, and the tickets. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdpass.h"
#include "hubmsg.h"
#include "log.h"


struct hub_tickets *
hub_tickets_create(size_t n)
{
	struct hub_tickets *t = mmap(NULL, n * sizeof(*t),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (t == MAP_FAILED)
		return NULL;
	for (size_t i = 0; i < n; i++)
		atomic_store(&t[i].count, 0);	/* until the hub sets them */
	return t;
}

void
hub_tickets_destroy(struct hub_tickets *t, size_t n)
{
	if (t != NULL)
		munmap(t, n * sizeof(*t));
}

void
hub_tickets_set(struct hub_tickets *t, long n)
{
	atomic_store(&t->count, n > 0 ? n : 0);
}

void
hub_tickets_give(struct hub_tickets *t)
{
	atomic_fetch_add(&t->count, 1);
}

static int
send_with_fds(int chan, const struct hub_msg *msg, int client, int target)
{
	int fds[2] = { client, target };
	/* Never wait: a full queue or a missing hub means "keep it". */
	ssize_t n = fdpass_send(chan, msg, sizeof(*msg), fds, 2, MSG_DONTWAIT);

	if (n == (ssize_t)sizeof(*msg))
		return 0;
	if (n >= 0)
		errno = EMSGSIZE;
	return -1;
}

int
hub_send(int chan, struct hub_tickets *t, const struct hub_msg *msg,
    int client, int target)
{
	int saved;

	if (atomic_fetch_sub(&t->count, 1) <= 0) {
		atomic_fetch_add(&t->count, 1);
		errno = ENOSPC;
		return -1;
	}
	if (send_with_fds(chan, msg, client, target) == 0)
		return 0;
	saved = errno;
	atomic_fetch_add(&t->count, 1);
	errno = saved;
	return -1;
}

static bool
addr_ok(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET || ss->ss_family == AF_INET6;
}

static bool
fd_is_stream_socket(int fd)
{
	int type;
	socklen_t len = sizeof(type);
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_STREAM;
}

static const char *
record_check(const struct audit_record *r)
{
	if (!audit_dst_valid(r->dst, sizeof(r->dst)))
		return memchr(r->dst, '\0', sizeof(r->dst)) == NULL ?
		    "dst not terminated" : "dst not escaped";
	if (!addr_ok(&r->client) || !addr_ok(&r->listener) ||
	    !addr_ok(&r->target))
		return "bad address";
	if (r->rule < -1 || r->cmd < -1 || r->cmd > 255 || r->rep < -1 ||
	    r->rep > 255 || r->method < -1 || r->method > 255)
		return "bad number";
	return NULL;
}

const char *
hub_msg_check(const struct hub_msg *m, ssize_t n, int flags, const int *fds,
    int nfds)
{
	if (flags & (MSG_TRUNC | MSG_CTRUNC))
		return "truncated";
	if (n != (ssize_t)sizeof(*m))
		return "wrong size";
	if (m->magic != HUB_MAGIC || m->version != HUB_VERSION)
		return "wrong magic or version";
	if (nfds != 2)
		return "not exactly two fds";
	for (int i = 0; i < nfds; i++)
		if (!fd_is_stream_socket(fds[i]))
			return "an fd is not a stream socket";
	if (m->done[0] > 1 || m->done[1] > 1 || (m->done[0] && m->done[1]) ||
	    m->first_eof < -1 || m->first_eof > 1)
		return "bad relay state";
	if (m->lim.rate[0] > LIMITS_RATE_MAX || m->lim.rate[1] > LIMITS_RATE_MAX ||
	    m->lim.shared > 1)
		return "bad limits";
	return record_check(&m->rec);
}

/* Whether the channel was shut for reading (by the hub on retire or stop,
 * or by the master): an empty read is then its end, not a message. */
static bool
channel_shut(int chan)
{
	struct pollfd pfd = { .fd = chan, .events = POLLRDHUP };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP));
}

enum hub_recv_result
hub_recv(int chan, int hub_index, struct hub_tickets *t, struct hub_msg *msg,
    int out[2])
{
	int fds[FDPASS_MAX], nfds, flags;
	const char *why;
	ssize_t n = fdpass_recv(chan, msg, sizeof(*msg), fds, &nfds, &flags,
	    MSG_DONTWAIT);

	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("hub %d: recvmsg", hub_index);
		return HUB_RECV_NONE;
	}
	if (n == 0 && nfds == 0 && channel_shut(chan))
		return HUB_RECV_END;
	if ((why = hub_msg_check(msg, n, flags, fds, nfds)) != NULL) {
		log_warnx("hub %d: bad message from a worker (%s): dropped",
		    hub_index, why);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		/* Only a message in the right form was sent on a ticket. */
		if (n == (ssize_t)sizeof(*msg) && msg->magic == HUB_MAGIC)
			hub_tickets_give(t);
		return HUB_RECV_BAD;
	}
	out[0] = fds[0];
	out[1] = fds[1];
	return HUB_RECV_OK;
}
