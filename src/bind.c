/* bind.c: the SOCKS5 BIND command: a listening socket for one peer (the
 * server of active FTP connecting back), two replies, then a relay. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "bind.h"
#include "connect.h"
#include "io.h"
#include "limits_session.h"
#include "log.h"
#include "portbind.h"
#include "rules.h"

#define BIND_WARN_EVERY_MS 10000	/* "no free port" at most this often */
#define BIND_LISTEN_TRIES 4		/* portbind + listen, for the race */

/* What the request asks for: the peers it expects and the family. */
struct bind_want {
	struct sockaddr_storage addrs[CONNECT_MAX_ADDRS];
	int naddrs;		/* 0 with any: DST.ADDR was all zeros */
	bool any;		/* any peer address may connect */
	int family;		/* of the listening socket */
};

/* How the wait for the peer ended. */
enum bind_wait {
	BIND_PEER,		/* one connected: *peer_fd */
	BIND_CLIENT_CLOSED,	/* the control connection closed or reset */
	BIND_CLIENT_BYTES,	/* the client sent before the second reply */
	BIND_TIMEOUT,		/* timeouts.bind passed */
	BIND_SHUTDOWN,		/* the daemon is stopping */
	BIND_ERROR,		/* poll or accept failed (errno) */
};

/* in with an IPv4-mapped address made IPv4 (port kept), into out. */
static void
unmap_v4(const struct sockaddr_storage *in, struct sockaddr_storage *out)
{
	if (in != out)
		*out = *in;
	addr_unmap(out);
}

static bool
same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* The family to listen in for a name: the control connection's when the
 * name has an address of it (the client's own network is the likelier
 * path for the peer), else the first address's. */
static int
bind_family(const struct cmd_ctx *c, const struct bind_want *w)
{
	struct sockaddr_storage ctl;
	socklen_t len = sizeof(ctl);

	if (getsockname(c->fd, (struct sockaddr *)&ctl, &len) == 0) {
		unmap_v4(&ctl, &ctl);
		for (int i = 0; i < w->naddrs; i++)
			if (w->addrs[i].ss_family == ctl.ss_family)
				return ctl.ss_family;
	}
	return w->addrs[0].ss_family;
}

/* The rules for the request (cmd bind, DST when not zeros; a name is
 * resolved and every address the rules let through is a peer to accept)
 * into *w. Returns SUCCEEDED, or the REP of the refusal with rec->end set. */
static uint8_t
bind_check_request(struct cmd_ctx *c, const struct socks5_request *req,
    struct bind_want *w)
{
	struct sockaddr_storage addrs[CONNECT_MAX_ADDRS];
	struct rules_query q = cmd_query(c, SOCKS5_CMD_BIND);
	struct verdict v;
	int n, err;

	memset(w, 0, sizeof(*w));
	q.port = req->dst.port;
	v = rules_may_pass(&c->conf->rules, &q);
	cmd_verdict(c, &v);
	if (v.pass && socks5_addr_is_zero(&req->dst)) {
		w->any = true;
		w->family = req->dst.atyp == SOCKS5_ATYP_IPV6 ? AF_INET6 : AF_INET;
		return SOCKS5_REP_SUCCEEDED;
	}
	if (!v.pass) {
		c->rec->end = AUDIT_END_REFUSED;
		return SOCKS5_REP_NOT_ALLOWED;
	}
	if ((err = connect_resolve(&req->dst, addrs, &n)) != 0) {
		c->rec->end = AUDIT_END_FAILED;
		return socks5_rep_from_errno(err);
	}
	for (int i = 0; i < n; i++) {
		q.dst = (const struct sockaddr *)&addrs[i];
		v = rules_match_request(&c->conf->rules, &q);
		cmd_verdict(c, &v);
		if (v.pass)
			unmap_v4(&addrs[i], &w->addrs[w->naddrs++]);
	}
	if (w->naddrs == 0) {
		c->rec->end = AUDIT_END_REFUSED;
		return SOCKS5_REP_NOT_ALLOWED;
	}
	w->any = c->conf->bind.any_peer;
	w->family = bind_family(c, w);
	return SOCKS5_REP_SUCCEEDED;
}

/* The source address this host would use towards dst (a route lookup by
 * connecting a UDP socket; nothing is sent). 0 or an errno value. */
static int
route_source(const struct sockaddr_storage *dst, struct sockaddr_storage *out)
{
	socklen_t len = sizeof(*out);
	int fd = socket(dst->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd == -1)
		return errno;
	if (connect(fd, (const struct sockaddr *)dst,
	    addr_len((const struct sockaddr *)dst)) == -1 ||
	    getsockname(fd, (struct sockaddr *)out, &len) == -1)
		err = errno;
	close(fd);
	return err;
}

/*
 * Where to listen: the external address of the family when configured,
 * else the address the client reached us at (the peer is taken to reach
 * it too). When the client came in over the other family and named a peer,
 * the address routed towards that peer. Port 0. 0 or an errno value.
 */
static int
bind_local_addr(const struct cmd_ctx *c, const struct bind_want *w,
    struct sockaddr_storage *out)
{
	struct sockaddr_storage ctl;
	socklen_t len = sizeof(ctl);
	int err = 0;

	if (w->family == AF_INET && c->conf->has_external4)
		*out = c->conf->external4;
	else if (w->family == AF_INET6 && c->conf->has_external6)
		*out = c->conf->external6;
	else if (getsockname(c->fd, (struct sockaddr *)&ctl, &len) == -1)
		return errno;
	else {
		unmap_v4(&ctl, out);
		if (out->ss_family != w->family && w->naddrs > 0)
			err = route_source(&w->addrs[0], out);
	}
	if (out->ss_family == AF_INET)
		((struct sockaddr_in *)out)->sin_port = 0;
	else
		((struct sockaddr_in6 *)out)->sin6_port = 0;
	return err;
}

/*
 * The ports to listen on: bind.ports, else the kernel's ephemeral range,
 * read once per process. The kernel's own pick (bind to port 0) scans that
 * range for a port no socket uses, TIME_WAIT ones included: with tens of
 * thousands of them (a busy proxy) one bind costs milliseconds, where
 * trying ports ourselves with SO_REUSEADDR costs microseconds. NULL (the
 * kernel picks) if the range cannot be read.
 */
static const struct port_range *
bind_ports(const struct config *conf)
{
	static struct port_range ephemeral;
	static bool read_done;
	unsigned lo, hi;
	FILE *f;

	if (conf->bind.ports.lo != 0)
		return &conf->bind.ports;
	if (!read_done) {
		read_done = true;
		if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re")) != NULL) {
			/* The kernel's numbers, range-checked here. */
			/* NOLINTNEXTLINE(cert-err34-c) */
			if (fscanf(f, "%u %u", &lo, &hi) == 2 && lo >= 1 &&
			    lo <= hi && hi <= 65535) {
				ephemeral.lo = (uint16_t)lo;
				ephemeral.hi = (uint16_t)hi;
			}
			fclose(f);
		}
	}
	return ephemeral.lo != 0 ? &ephemeral : NULL;
}

/* A listening socket on addr with a port of bind_ports: 0 with *fd, or an
 * errno value (EADDRINUSE: no port of the range is free). */
static int
bind_listen(const struct config *conf, const struct sockaddr_storage *addr,
    int *fdp)
{
	const struct port_range *ports = bind_ports(conf);
	int fd, one = 1, err = EADDRINUSE;

	/* Two sockets with SO_REUSEADDR may bind one port; the second to
	 * listen fails. Another worker's BIND can win that race: try again. */
	for (int attempt = 0; attempt < BIND_LISTEN_TRIES && err == EADDRINUSE;
	    attempt++) {
		fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1)
			return errno;
		/* A port whose last session is in TIME_WAIT is free to
		 * listen on. */
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (addr->ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof(one));
		if ((err = portbind(fd, (const struct sockaddr *)addr, ports)) != 0) {
			close(fd);
			return err;	/* EADDRINUSE: no port of the range */
		}
		if (listen(fd, 1) == 0) {
			*fdp = fd;
			return 0;
		}
		err = errno;
		close(fd);
	}
	return err;
}

/* A listening socket that cannot be had is worth a warning, but a client
 * repeating BIND while bind.ports is exhausted must not flood the log:
 * one warning per worker per BIND_WARN_EVERY_MS, the rest at debug. */
static void
bind_warn_listen(const struct cmd_ctx *c, int err)
{
	static int64_t last_ms;
	int64_t now = io_now_ms();
	const struct port_range *r = &c->conf->bind.ports;
	char text[128];

	if (err == EADDRINUSE && r->lo != 0)
		snprintf(text, sizeof(text), "no free port in bind.ports %u-%u",
		    r->lo, r->hi);
	else
		snprintf(text, sizeof(text), "cannot listen: %s", strerror(err));
	if (last_ms == 0 || now - last_ms >= BIND_WARN_EVERY_MS) {
		last_ms = now;
		log_warnx("bind %s: %s", c->rec->dst, text);
	} else
		log_debug("bind %s: %s", c->rec->dst, text);
}

/* What the client did while we wait: closed, or sent bytes it must not. */
static enum bind_wait
bind_client_event(int fd, short revents)
{
	uint8_t byte;
	ssize_t n;

	if (!(revents & POLLIN))
		return BIND_CLIENT_CLOSED;	/* POLLERR, POLLHUP */
	n = recv(fd, &byte, 1, MSG_PEEK);
	if (n > 0)
		return BIND_CLIENT_BYTES;
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return BIND_ERROR;		/* not really ready: the caller retries */
	return BIND_CLIENT_CLOSED;		/* EOF or reset */
}

/* Waits until deadline (or the cutoff) for a peer on lfd, watching the
 * control connection. Bounded in time; each round waits in poll. */
static enum bind_wait
bind_wait_peer(struct cmd_ctx *c, int lfd, int64_t deadline, int *peer_fd)
{
	struct pollfd pfd[2] = {
		{ .fd = lfd, .events = POLLIN },
		{ .fd = c->fd, .events = POLLIN },
	};
	enum bind_wait ev;

	for (;;) {
		int64_t cut = io_cutoff_time(), left;
		int n;

		left = (cut != 0 && cut < deadline ? cut : deadline) - io_now_ms();
		if (left <= 0)
			return io_cutoff_passed() ? BIND_SHUTDOWN : BIND_TIMEOUT;
		n = poll(pfd, 2, left > 60000 ? 60000 : (int)left);
		if (n == -1 && errno != EINTR)
			return BIND_ERROR;
		if (n <= 0)
			continue;
		if (pfd[1].revents != 0 &&
		    (ev = bind_client_event(c->fd, pfd[1].revents)) != BIND_ERROR)
			return ev;
		if (!(pfd[0].revents & POLLIN))
			continue;
		*peer_fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (*peer_fd != -1)
			return BIND_PEER;
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			return BIND_ERROR;
	}
}

/* Whether the peer may be relayed to: from DST (unless any peer may
 * connect) and let through by the rules as a destination of cmd bind.
 * Returns SUCCEEDED, or NOT_ALLOWED with rec->end set. */
static uint8_t
bind_check_peer(struct cmd_ctx *c, const struct bind_want *w,
    const struct sockaddr_storage *peer)
{
	struct rules_query q = cmd_query(c, SOCKS5_CMD_BIND);
	struct verdict v;
	char text[ADDR_STRLEN];
	bool from_dst = w->any;

	for (int i = 0; i < w->naddrs && !from_dst; i++)
		from_dst = same_ip(peer, &w->addrs[i]);
	if (!from_dst) {
		log_debug("bind %s: peer %s is not the address asked for",
		    c->rec->dst, addr_format((const struct sockaddr *)peer,
		    text, sizeof(text)));
		c->rec->end = AUDIT_END_REFUSED;
		return SOCKS5_REP_NOT_ALLOWED;
	}
	q.dst = (const struct sockaddr *)peer;
	q.port = addr_port(q.dst);
	v = rules_match_request(&c->conf->rules, &q);
	cmd_verdict(c, &v);
	if (!v.pass) {
		c->rec->end = AUDIT_END_REFUSED;
		return SOCKS5_REP_NOT_ALLOWED;
	}
	/* The peer's rule decides the session: its max_sessions and rates. */
	if (limits_take_verdict(c->conf, &v, &q) == -1) {
		c->rec->end = AUDIT_END_LIMIT;
		return SOCKS5_REP_NOT_ALLOWED;
	}
	return SOCKS5_REP_SUCCEEDED;
}

/* The second reply for a wait that did not bring a peer. */
static void
bind_wait_failed(struct cmd_ctx *c, enum bind_wait ev)
{
	switch (ev) {
	case BIND_CLIENT_CLOSED:
		c->rec->end = AUDIT_END_CLIENT;	/* nobody to answer */
		break;
	case BIND_CLIENT_BYTES:
		cmd_fail(c, SOCKS5_REP_GENERAL_FAILURE, AUDIT_END_PROTOCOL);
		break;
	case BIND_TIMEOUT:
		cmd_fail(c, SOCKS5_REP_TTL_EXPIRED, AUDIT_END_TIMEOUT);
		break;
	case BIND_SHUTDOWN:
		cmd_fail(c, SOCKS5_REP_GENERAL_FAILURE, AUDIT_END_SHUTDOWN);
		break;
	default:
		log_warn("bind %s: waiting for the peer", c->rec->dst);
		cmd_fail(c, SOCKS5_REP_GENERAL_FAILURE, AUDIT_END_ERROR);
		break;
	}
}

/* The listening socket and the first reply: 0 with *lfd, or -1 after the
 * failure's reply. */
static int
bind_announce(struct cmd_ctx *c, const struct bind_want *w, int *lfd)
{
	/* Zeroed: the analyzers do not know that a failing getsockname sets
	 * errno, so they see bind_local_addr succeed without setting addr. */
	struct sockaddr_storage addr = { 0 };
	socklen_t len = sizeof(addr);
	int err;

	if ((err = bind_local_addr(c, w, &addr)) != 0 ||
	    (err = bind_listen(c->conf, &addr, lfd)) != 0) {
		bind_warn_listen(c, err);
		cmd_fail(c, SOCKS5_REP_GENERAL_FAILURE, AUDIT_END_FAILED);
		return -1;
	}
	if (getsockname(*lfd, (struct sockaddr *)&addr, &len) == -1) {
		log_warn("bind %s: getsockname", c->rec->dst);
		cmd_fail(c, SOCKS5_REP_GENERAL_FAILURE, AUDIT_END_ERROR);
		close(*lfd);
		return -1;
	}
	if (cmd_reply(c, SOCKS5_REP_SUCCEEDED, (struct sockaddr *)&addr) == -1) {
		close(*lfd);
		return -1;
	}
	return 0;
}

void
bind_command(struct cmd_ctx *c, const struct socks5_request *req)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	struct bind_want w;
	enum bind_wait ev;
	int lfd = -1, pfd = -1, one = 1;
	uint8_t rep;

	/* Bytes after the request: nothing may come before the second
	 * reply (a second request on this connection, most likely). */
	if (c->npending > 0) {
		cmd_fail(c, SOCKS5_REP_GENERAL_FAILURE, AUDIT_END_PROTOCOL);
		return;
	}
	if ((rep = bind_check_request(c, req, &w)) != SOCKS5_REP_SUCCEEDED) {
		(void)cmd_reply(c, rep, NULL);
		return;
	}
	if (bind_announce(c, &w, &lfd) == -1)
		return;
	ev = bind_wait_peer(c, lfd,
	    io_now_ms() + (int64_t)c->conf->timeouts.bind * 1000, &pfd);
	close(lfd);		/* one peer: the port is free again */
	/* The second reply gets the time a reply gets. */
	c->deadline = io_now_ms() + (int64_t)c->conf->timeouts.negotiate * 1000;
	if (ev != BIND_PEER) {
		bind_wait_failed(c, ev);
		return;
	}
	c->target = pfd;
	if (getpeername(pfd, (struct sockaddr *)&peer, &len) == -1) {
		cmd_fail(c, SOCKS5_REP_GENERAL_FAILURE, AUDIT_END_ERROR);
		return;
	}
	unmap_v4(&peer, &c->rec->target);
	if ((rep = bind_check_peer(c, &w, &c->rec->target)) != SOCKS5_REP_SUCCEEDED) {
		(void)cmd_reply(c, rep, NULL);
		return;
	}
	(void)setsockopt(pfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (cmd_reply(c, SOCKS5_REP_SUCCEEDED,
	    (const struct sockaddr *)&c->rec->target) == 0) {
		cmd_started(c);
		cmd_relay(c);
	}
}
