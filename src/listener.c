/* listener.c: the master's listening sockets, kept open across reloads. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "listener.h"
#include "log.h"

/* SOCKS5 clients speak first: with TCP_DEFER_ACCEPT the kernel holds a
 * connection that has sent nothing yet instead of handing it to a worker,
 * so silent clients do not tie up the pool. */
static int
listener_defer(int fd, const struct config *conf)
{
	int secs = conf->timeouts.negotiate;

	return setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs,
	    sizeof(secs));
}

/* A bound socket for lc, not listening yet: the fd, or -1 with errno and
 * *what naming the call that failed. */
static int
listener_bind(const struct listener_conf *lc, const struct config *conf,
    const char **what)
{
	int fd, err, one = 1, v6only = lc->v6only;

	*what = "socket";
	fd = socket(lc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	*what = "setsockopt";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	/* Accepted sockets inherit TCP_NODELAY from the listener. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		goto fail;
	if (listener_defer(fd, conf) == -1)
		goto fail;
	if (lc->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	    sizeof(v6only)) == -1)
		goto fail;
	*what = "bind";
	if (bind(fd, (const struct sockaddr *)&lc->addr, lc->addrlen) == -1)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

static void
listener_report(const struct listener_conf *lc, const struct config *conf,
    struct diag *d, enum diag_severity sev, const char *what, int err)
{
	char where[ADDR_STRLEN];

	addr_format((const struct sockaddr *)&lc->addr, where, sizeof(where));
	diag_add(d, sev, lc->file ? lc->file : conf->path, lc->line,
	    "listener %s: %s: %s%s", where, what, strerror(err),
	    sev == DIAG_WARNING ? " (a running socks5d holds its own "
	    "listeners: start would fail, a reload keeps them)" : "");
}

static int
listener_open(const struct listener_conf *lc, const struct config *conf,
    struct diag *d)
{
	const char *what;
	int fd = listener_bind(lc, conf, &what), err;

	if (fd != -1 && listen(fd, lc->backlog) == 0)
		return fd;
	err = errno;
	if (fd != -1) {
		what = "listen";
		close(fd);
	}
	listener_report(lc, conf, d, DIAG_ERROR, what, err);
	return -1;
}

int
listener_probe(const struct config *conf, struct diag *d)
{
	int rc = 0;

	for (size_t i = 0; i < conf->nlisteners; i++) {
		const struct listener_conf *lc = &conf->listeners[i];
		const char *what;
		int fd = listener_bind(lc, conf, &what);

		if (fd != -1) {
			close(fd);
			continue;
		}
		if (errno == EADDRINUSE) {
			listener_report(lc, conf, d, DIAG_WARNING, what, errno);
			continue;
		}
		listener_report(lc, conf, d, DIAG_ERROR, what, errno);
		rc = -1;
	}
	return rc;
}

static int
find_match(const struct listen_set *cur, const struct listener_conf *lc,
    const bool *taken)
{
	for (size_t i = 0; i < cur->n; i++)
		if (!taken[i] && cur->socks[i].addrlen == lc->addrlen &&
		    cur->socks[i].v6only == lc->v6only &&
		    memcmp(&cur->socks[i].addr, &lc->addr, lc->addrlen) == 0)
			return (int)i;
	return -1;
}

int
listener_set_build(const struct listen_set *cur, const struct config *conf,
    struct listen_set *next, struct diag *d)
{
	bool *taken = calloc(cur->n + 1, sizeof(*taken));
	bool *opened = calloc(conf->nlisteners + 1, sizeof(*opened));

	next->n = conf->nlisteners;
	next->socks = calloc(conf->nlisteners + 1, sizeof(*next->socks));
	if (taken == NULL || opened == NULL || next->socks == NULL)
		fatal("calloc");
	for (size_t i = 0; i < conf->nlisteners; i++) {
		const struct listener_conf *lc = &conf->listeners[i];
		struct listen_sock *ls = &next->socks[i];
		int m = find_match(cur, lc, taken);

		ls->addr = lc->addr;
		ls->addrlen = lc->addrlen;
		ls->v6only = lc->v6only;
		if (m >= 0) {
			taken[m] = true;
			ls->fd = cur->socks[m].fd;
			continue;	/* its settings change only at commit */
		}
		if ((ls->fd = listener_open(lc, conf, d)) == -1) {
			for (size_t j = 0; j < i; j++)
				if (opened[j])
					close(next->socks[j].fd);
			free(next->socks);
			next->socks = NULL;
			next->n = 0;
			free(taken);
			free(opened);
			return -1;
		}
		opened[i] = true;
	}
	free(taken);
	free(opened);
	return 0;
}

/* Stops a listening socket in every process that shares it (old workers
 * hold copies until they exit) and frees its port, then closes ours. */
static void
listener_stop(int fd)
{
	(void)shutdown(fd, SHUT_RDWR);
	close(fd);
}

void
listener_set_commit(struct listen_set *cur, struct listen_set *next,
    const struct config *conf)
{
	for (size_t i = 0; i < cur->n; i++) {
		bool kept = false;

		for (size_t j = 0; j < next->n && !kept; j++)
			kept = next->socks[j].fd == cur->socks[i].fd;
		if (!kept)
			listener_stop(cur->socks[i].fd);
	}
	/* Carried-over sockets take the new backlog and defer time. */
	for (size_t j = 0; j < next->n; j++) {
		(void)listen(next->socks[j].fd, conf->listeners[j].backlog);
		(void)listener_defer(next->socks[j].fd, conf);
	}
	free(cur->socks);
	*cur = *next;
	next->socks = NULL;
	next->n = 0;
}

void
listener_set_close(struct listen_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		listener_stop(set->socks[i].fd);
	free(set->socks);
	set->socks = NULL;
	set->n = 0;
}

void
listener_set_discard(const struct listen_set *cur, struct listen_set *next)
{
	for (size_t i = 0; i < next->n; i++) {
		bool shared = false;

		for (size_t j = 0; j < cur->n && !shared; j++)
			shared = cur->socks[j].fd == next->socks[i].fd;
		if (!shared)
			close(next->socks[i].fd);
	}
	free(next->socks);
	next->socks = NULL;
	next->n = 0;
}
