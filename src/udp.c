/* udp.c: the UDP ASSOCIATE command: whether the rules could pass it, the
 * relay socket and the reply, the loop that runs the association (in the
 * worker) and its end. The datagrams themselves are udp_relay.c's. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "portbind.h"
#include "rules.h"
#include "udp.h"
#include "udp_relay.h"

/*
 * Whether any destination and port could pass UDP for this client. The
 * answer of rules_may_pass changes with the port only at the edges of the
 * rules' port ranges, so asking at port 1 and at each edge covers every
 * port. The verdict that refuses is the one for port 1.
 */
static struct verdict
udp_may_pass(const struct ruleset *rs, struct rules_query q)
{
	struct verdict first, v;

	q.port = 1;
	first = v = rules_may_pass(rs, &q);
	for (size_t i = 0; i < rs->n && !v.pass; i++)
		for (size_t k = 0; k < rs->list[i].nports && !v.pass; k++) {
			const struct port_range *pr = &rs->list[i].ports[k];

			q.port = pr->lo;
			v = rules_may_pass(rs, &q);
			if (!v.pass && pr->hi < 65535) {
				q.port = (uint16_t)(pr->hi + 1);
				v = rules_may_pass(rs, &q);
			}
		}
	return v.pass ? v : first;
}

/*
 * Where the client's datagrams must come from: always the control
 * connection's IP. The request's DST.PORT is kept when DST.ADDR is zero
 * or that IP; a DST.ADDR that differs (a client behind NAT names its
 * private address, whose port is translated too) or a port of 0 leaves
 * the port to be latched from the first good datagram from that IP.
 */
static void
udp_expect_client(struct udp_assoc *a, const struct socks5_addr *dst)
{
	struct sockaddr_storage named;
	bool same = socks5_addr_is_zero(dst) ||
	    (socks5_addr_to_sockaddr(dst, &named) == 0 &&
	    udp_same_ip((struct sockaddr *)&named,
	    (struct sockaddr *)&a->client));

	a->port_known = same && dst->port != 0;
	if (a->client.ss_family == AF_INET)
		((struct sockaddr_in *)&a->client)->sin_port = htons(dst->port);
	else
		((struct sockaddr_in6 *)&a->client)->sin6_port = htons(dst->port);
	if (!same)
		log_debug("udp %s: not the control connection's address: the "
		    "port is taken from the first datagram", a->rec->dst);
}

/* The relay socket, on the address the client reached the listener at,
 * within udp.ports; *bnd gets what the reply names. 0 or an errno. */
static int
udp_open_relay(struct cmd_ctx *c, struct udp_assoc *a,
    struct sockaddr_storage *bnd)
{
	const struct port_range *range = c->conf->udp.ports.lo != 0 ?
	    &c->conf->udp.ports : NULL;
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	int one = 1, err;

	if (getsockname(c->fd, (struct sockaddr *)&local, &len) == -1)
		return errno;
	addr_unmap(&local);
	a->relay_fd = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (a->relay_fd == -1)
		return errno;
	if (local.ss_family == AF_INET6 && setsockopt(a->relay_fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1)
		return errno;
	if ((err = portbind(a->relay_fd, (struct sockaddr *)&local, range)) != 0)
		return err;
	len = sizeof(*bnd);
	if (getsockname(a->relay_fd, (struct sockaddr *)bnd, &len) == -1)
		return errno;
	if (c->lc->udp_announce.ss_family != 0) {
		uint16_t port = addr_port((struct sockaddr *)bnd);

		*bnd = c->lc->udp_announce;
		if (bnd->ss_family == AF_INET)
			((struct sockaddr_in *)bnd)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)bnd)->sin6_port = htons(port);
	}
	return 0;
}

/* What ends the association now, or AUDIT_END_NONE: the control
 * connection (EOF, reset, or any byte: nothing may follow the request),
 * the shutdown cutoff, timeouts.udp of silence. */
static enum audit_end
udp_control(struct cmd_ctx *c, short revents)
{
	uint8_t byte;
	ssize_t n;

	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return AUDIT_END_NONE;
	n = recv(c->fd, &byte, 1, MSG_DONTWAIT);
	if (n == 1) {
		log_debug("udp %s: bytes on the control connection", c->rec->dst);
		return AUDIT_END_PROTOCOL;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return AUDIT_END_NONE;
	return AUDIT_END_CLIENT;
}

/* The poll timeout until silence or the cutoff ends it: ms, or -1 when
 * the end is now (*end set). */
static int
udp_wait_ms(const struct cmd_ctx *c, const struct udp_assoc *a,
    enum audit_end *end)
{
	int64_t now = io_now_ms(), cut = io_cutoff_time();
	int64_t until = a->last_ms + (int64_t)c->conf->timeouts.udp * 1000;

	if (cut != 0 && cut <= now) {
		*end = AUDIT_END_SHUTDOWN;
		return -1;
	}
	if (until <= now) {
		*end = AUDIT_END_IDLE;
		return -1;
	}
	if (cut != 0 && cut < until)
		until = cut;
	return until - now > 60000 ? 60000 : (int)(until - now);
}

/* log.interim: a session-update line when due; the poll timeout cut to
 * the next one. */
static int
udp_interim(const struct cmd_ctx *c, int64_t *next, int ms)
{
	int64_t every = (int64_t)c->conf->log.interim * 1000, now;

	if (every <= 0 || ms == -1)
		return ms;
	now = io_now_ms();
	if (now >= *next) {
		audit_log_update(c->rec, c->rec->up, c->rec->down, now);
		*next = now + every;
	}
	return *next - now < ms ? (int)(*next - now) : ms;
}

/* Runs the association until it ends: the record's end. */
static enum audit_end
udp_loop(struct cmd_ctx *c, struct udp_assoc *a)
{
	enum audit_end end = AUDIT_END_NONE;
	int64_t next_interim = io_now_ms() + (int64_t)c->conf->log.interim * 1000;

	while (end == AUDIT_END_NONE) {
		struct pollfd pfd[2 + UDP_FAMILIES] = {
			{ .fd = c->fd, .events = POLLIN },
			{ .fd = a->relay_fd, .events = POLLIN },
			{ .fd = a->out[UDP_V4], .events = POLLIN },
			{ .fd = a->out[UDP_V6], .events = POLLIN },
		};
		uint64_t moved = a->rec->udp.dgrams_up + a->rec->udp.dgrams_down;
		int ms = udp_interim(c, &next_interim, udp_wait_ms(c, a, &end));
		int n;

		if (ms == -1)
			break;
		n = poll(pfd, 2 + UDP_FAMILIES, ms);
		if (n == -1 && errno != EINTR) {
			log_warn("udp %s: poll", c->rec->dst);
			return AUDIT_END_ERROR;
		}
		if (n <= 0)
			continue;
		if ((end = udp_control(c, pfd[0].revents)) != AUDIT_END_NONE)
			break;
		/* One batch per socket per round: a flood on one cannot
		 * starve the others or hide the control connection's end. */
		if ((pfd[1].revents & (POLLIN | POLLERR)) &&
		    udp_pump_client(a) == -1)
			end = AUDIT_END_ERROR;
		for (int f = 0; f < UDP_FAMILIES && end == AUDIT_END_NONE; f++)
			if ((pfd[2 + f].revents & (POLLIN | POLLERR)) &&
			    udp_pump_remote(a, f) == -1)
				end = AUDIT_END_ERROR;
		if (a->rec->udp.dgrams_up + a->rec->udp.dgrams_down != moved)
			a->last_ms = io_now_ms();
	}
	if (end == AUDIT_END_ERROR)
		log_debug("udp %s: %s", c->rec->dst, strerror(errno));
	return end;
}

/* Sets up the association and replies: 0, or -1 with the failure sent. */
static int
udp_start(struct cmd_ctx *c, struct udp_assoc *a,
    const struct socks5_request *req)
{
	struct sockaddr_storage bnd;
	struct verdict v;
	int err;

	a->q = cmd_query(c, SOCKS5_CMD_UDP_ASSOCIATE);
	v = udp_may_pass(&c->conf->rules, a->q);
	cmd_verdict(c, &v);
	if (!v.pass) {
		cmd_fail(c, SOCKS5_REP_NOT_ALLOWED, AUDIT_END_REFUSED);
		return -1;
	}
	memcpy(&a->client, &c->rec->client, sizeof(a->client));
	addr_unmap(&a->client);
	udp_expect_client(a, &req->dst);
	if ((err = udp_open_relay(c, a, &bnd)) != 0 || udp_relay_init(a) == -1) {
		if (err == 0)
			err = ENOMEM;
		log_warn("udp %s: relay socket: %s", c->rec->dst, strerror(err));
		cmd_fail(c, SOCKS5_REP_GENERAL_FAILURE, AUDIT_END_FAILED);
		return -1;
	}
	return cmd_reply(c, SOCKS5_REP_SUCCEEDED, (struct sockaddr *)&bnd);
}

void
udp_command(struct cmd_ctx *c, const struct socks5_request *req)
{
	struct udp_assoc *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		log_warn("udp %s: association", c->rec->dst);
		cmd_fail(c, SOCKS5_REP_GENERAL_FAILURE, AUDIT_END_FAILED);
		return;
	}
	a->conf = c->conf;
	a->rec = c->rec;
	a->progress[0] = c->env->progress[0];
	a->progress[1] = c->env->progress[1];
	a->relay_fd = -1;
	a->out[UDP_V4] = a->out[UDP_V6] = -1;
	if (udp_start(c, a, req) == 0) {
		cmd_started(c);
		a->last_ms = io_now_ms();
		/* Bytes pipelined after the request: a second request on
		 * the control connection, which ends the association. */
		c->rec->end = c->npending > 0 ? AUDIT_END_PROTOCOL :
		    udp_loop(c, a);
		c->npending = 0;
	}
	udp_relay_free(a);
	if (a->relay_fd != -1)
		close(a->relay_fd);
	free(a);
}
