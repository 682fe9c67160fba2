/* connect.c: resolving a SOCKS5 destination and connecting to it. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "connect.h"
#include "io.h"
#include "limits_session.h"
#include "log.h"
#include "rules.h"

static int
errno_from_gai(int rc)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
	case EAI_ADDRFAMILY:
		return ENOENT;
	case EAI_MEMORY:
		return ENOMEM;
	case EAI_SYSTEM:
		return errno ? errno : EIO;
	default:		/* EAI_AGAIN, EAI_FAIL: the resolver failed */
		return EHOSTUNREACH;
	}
}

int
connect_resolve(const struct socks5_addr *dst,
    struct sockaddr_storage addrs[CONNECT_MAX_ADDRS], int *naddrs)
{
	struct addrinfo hints, *res, *ai;
	int rc;

	*naddrs = 0;
	if (socks5_addr_to_sockaddr(dst, &addrs[0]) == 0) {
		*naddrs = 1;
		return 0;
	}
	/* No AI_ADDRCONFIG: it ignores loopback, so a host whose only
	 * interface is lo would resolve nothing. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	errno = 0;
	rc = getaddrinfo(dst->u.domain.name, NULL, &hints, &res);
	if (rc != 0)
		return errno_from_gai(rc);
	for (ai = res; ai != NULL && *naddrs < CONNECT_MAX_ADDRS; ai = ai->ai_next) {
		struct sockaddr_storage *ss = &addrs[*naddrs];

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(*ss))
			continue;
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, ai->ai_addr, ai->ai_addrlen);
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons(dst->port);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons(dst->port);
		(*naddrs)++;
	}
	freeaddrinfo(res);
	return *naddrs > 0 ? 0 : ENOENT;
}

/* Binds to the external address of dst's family, if one is configured. The
 * port is left to connect() (IP_BIND_ADDRESS_NO_PORT) so that bound source
 * ports do not run out under TIME_WAIT. */
static int
bind_external(const struct config *conf, int fd, int family)
{
	const struct sockaddr_storage *ext;
	int one = 1;

	if (family == AF_INET && conf->has_external4)
		ext = &conf->external4;
	else if (family == AF_INET6 && conf->has_external6)
		ext = &conf->external6;
	else
		return 0;
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
	    sizeof(one));
	if (bind(fd, (const struct sockaddr *)ext,
	    addr_len((const struct sockaddr *)ext)) == -1)
		return errno;
	return 0;
}

/* Waits for a non-blocking connect to finish: 0 or an errno value. */
static int
connect_wait(int fd, int64_t deadline)
{
	socklen_t len = sizeof(int);
	int err = 0, revents = io_wait(fd, POLLOUT, deadline);

	if (revents == 0)
		return ETIMEDOUT;
	if (revents == -1)
		return errno;
	/* Writable and nothing else: connected, no need to ask SO_ERROR. */
	if (revents == POLLOUT)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return errno;
	return err != 0 ? err : ECONNREFUSED;
}

int
connect_to(const struct config *conf, const struct sockaddr *dst,
    int64_t deadline, int *fdp)
{
	int fd, err, one = 1;

	fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return errno;
	if ((err = bind_external(conf, fd, dst->sa_family)) != 0)
		goto fail;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, dst, addr_len(dst)) == 0)
		goto done;
	if (errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	if ((err = connect_wait(fd, deadline)) != 0)
		goto fail;
done:
	*fdp = fd;
	return 0;
fail:
	close(fd);
	return err;
}

/* Resolves, checks each address against the rules, connects to the first
 * allowed one that answers. Returns SUCCEEDED with c->target open, or the
 * REP code of the failure with rec->end set. */
static uint8_t
connect_open(struct cmd_ctx *c, const struct socks5_request *req)
{
	struct sockaddr_storage addrs[CONNECT_MAX_ADDRS];
	int n, err, last_err = 0;
	bool allowed = false;
	struct verdict v;
	int64_t deadline;
	struct rules_query q = cmd_query(c, req->cmd);

	q.port = req->dst.port;
	/* No lookup for a client whose request no rule could let through:
	 * the proxy is not a name oracle for clients it refuses. A literal
	 * address needs no lookup: the rules are asked once, below. */
	if (req->dst.atyp == SOCKS5_ATYP_DOMAIN) {
		q.dst_name = req->dst.u.domain.name;
		v = rules_may_pass(&c->conf->rules, &q);
		if (!v.pass) {
			cmd_verdict(c, &v);
			c->rec->end = AUDIT_END_REFUSED;
			return SOCKS5_REP_NOT_ALLOWED;
		}
	}
	err = connect_resolve(&req->dst, addrs, &n);
	if (err != 0) {
		c->rec->end = AUDIT_END_FAILED;
		return socks5_rep_from_errno(err);
	}
	deadline = io_now_ms() + (int64_t)c->conf->timeouts.connect * 1000;
	for (int i = 0; i < n; i++) {
		const struct sockaddr *sa = (struct sockaddr *)&addrs[i];

		q.dst = sa;
		q.port = addr_port(sa);
		v = rules_match_request(&c->conf->rules, &q);
		cmd_verdict(c, &v);
		if (!v.pass)
			continue;
		allowed = true;
		if (limits_take_verdict(c->conf, &v, &q) == -1) {
			c->rec->end = AUDIT_END_LIMIT;
			return SOCKS5_REP_NOT_ALLOWED;
		}
		err = connect_to(c->conf, sa, deadline, &c->target);
		if (err == 0) {
			c->rec->target = addrs[i];
			return SOCKS5_REP_SUCCEEDED;
		}
		last_err = err;
		log_debug("connect %s: %s", c->rec->dst, strerror(err));
		if (io_now_ms() >= deadline || io_cutoff_passed())
			break;
	}
	c->rec->end = !allowed ? AUDIT_END_REFUSED : io_cutoff_passed() ?
	    AUDIT_END_SHUTDOWN : AUDIT_END_FAILED;
	if (!allowed)
		return SOCKS5_REP_NOT_ALLOWED;
	return io_cutoff_passed() ? SOCKS5_REP_GENERAL_FAILURE :
	    socks5_rep_from_errno(last_err);
}

void
connect_command(struct cmd_ctx *c, const struct socks5_request *req)
{
	struct sockaddr_storage bnd;
	socklen_t len = sizeof(bnd);
	uint8_t rep = connect_open(c, req);

	if (rep != SOCKS5_REP_SUCCEEDED) {
		(void)cmd_reply(c, rep, NULL);
		return;
	}
	if (getsockname(c->target, (struct sockaddr *)&bnd, &len) == -1)
		memset(&bnd, 0, sizeof(bnd));
	if (cmd_reply(c, SOCKS5_REP_SUCCEEDED, (struct sockaddr *)&bnd) == -1)
		return;
	cmd_started(c);
	cmd_relay(c);
}
