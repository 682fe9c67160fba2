/* session.c: one client session: negotiation, request, command, relay, audit line. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "connect.h"
#include "hub.h"
#include "io.h"
#include "log.h"
#include "relay.h"
#include "rules.h"
#include "session.h"
#include "socks5.h"

#define SESSION_INBUF 1024	/* more than the longest negotiation message */

/* The relay's pipes and buffers, made once per worker. */
static struct relay_ctx session_relay_ctx;

struct session {
	struct worker *w;
	const struct config *conf;
	const struct listener_conf *lc;
	int fd;
	int target;
	struct sockaddr_storage peer;
	struct sockaddr_storage target_addr;
	bool has_target;
	int64_t start;
	int64_t deadline;		/* of the negotiation phase */
	uint8_t in[SESSION_INBUF];	/* received and not yet consumed */
	size_t inlen;
	int cmd;			/* -1 until a request is read */
	bool await_reply;		/* the client must read before it sends */
	char dst[HUB_DST_LEN];		/* escaped, for the log */
	int rep;			/* reply code sent, -1 if none */
	int rule;			/* rule number, -1 if none applied */
	uint64_t up, down;
	const char *end;
	bool parked;			/* a hub logs it and closes it */
};

/* Reads more client bytes. On failure sets s->end and returns -1. */
static int
session_fill(struct session *s)
{
	ssize_t n;

	if (s->inlen == sizeof(s->in)) {
		s->end = "protocol";
		return -1;
	}
	if (s->await_reply) {
		/* The client reads our answer before it sends more: wait
		 * first instead of a read that would say EAGAIN. */
		int ready = io_wait(s->fd, POLLIN, s->deadline);

		s->await_reply = false;
		if (ready <= 0) {
			if (ready == 0)
				errno = ETIMEDOUT;
			n = -1;
			goto failed;
		}
	}
	n = io_read_some(s->fd, s->in + s->inlen, sizeof(s->in) - s->inlen,
	    s->deadline);
	if (n > 0) {
		s->inlen += (size_t)n;
		return 0;
	}
failed:
	if (n == 0)
		s->end = "client";
	else if (errno == ETIMEDOUT)
		s->end = io_cut_off() ? "shutdown" : "timeout";
	else if (errno == ECONNRESET)
		s->end = "client";
	else
		s->end = "error";
	return -1;
}

static void
session_consume(struct session *s, size_t used)
{
	memmove(s->in, s->in + used, s->inlen - used);
	s->inlen -= used;
}

static int
session_send(struct session *s, const uint8_t *buf, size_t len)
{
	if (io_write_all(s->fd, buf, len, s->deadline) == -1) {
		s->end = errno != ETIMEDOUT ? "client" :
		    io_cut_off() ? "shutdown" : "timeout";
		return -1;
	}
	return 0;
}

static int
session_reply(struct session *s, uint8_t rep, const struct sockaddr *bnd)
{
	uint8_t out[SOCKS5_MAX_REPLY];
	size_t n = socks5_write_reply(out, rep, bnd);

	s->rep = rep;
	return session_send(s, out, n);
}

/* Greeting and method choice. Returns 0 when method 00 was agreed. */
static int
session_negotiate(struct session *s)
{
	struct socks5_greeting g;
	enum socks5_status st;
	size_t used;
	uint8_t out[2], method;

	while ((st = socks5_parse_greeting(s->in, s->inlen, &g, &used)) ==
	    SOCKS5_INCOMPLETE)
		if (session_fill(s) == -1)
			return -1;
	if (st != SOCKS5_OK) {
		/* Not SOCKS5: no SOCKS5 answer. */
		s->end = "protocol";
		log_debug("greeting: %s (first byte %u)",
		    socks5_status_str(st), s->in[0]);
		return -1;
	}
	session_consume(s, used);
	method = socks5_select_method(s->lc->methods, (size_t)s->lc->nmethods, &g);
	if (session_send(s, out, socks5_write_method(out, method)) == -1)
		return -1;
	s->await_reply = true;
	if (method == SOCKS5_METHOD_NO_ACCEPTABLE) {
		s->end = "noauth";
		return -1;
	}
	return 0;
}

static void
format_dst(struct session *s, const struct socks5_addr *a)
{
	struct sockaddr_storage ss;
	char name[SOCKS5_MAX_DOMAIN * 4 + 1];

	if (a->atyp == SOCKS5_ATYP_DOMAIN) {
		log_escape(name, sizeof(name), a->u.domain.name, a->u.domain.len);
		snprintf(s->dst, sizeof(s->dst), "%s:%u", name, a->port);
		return;
	}
	(void)socks5_addr_to_sockaddr(a, &ss);
	addr_format((struct sockaddr *)&ss, s->dst, sizeof(s->dst));
}

/* Shows the destination in the worker's scoreboard slot (truncated). */
static void
session_status(struct session *s)
{
	char *dst = s->w->slot->dst;
	size_t n = strnlen(s->dst, sizeof(s->w->slot->dst) - 1);

	memcpy(dst, s->dst, n);
	dst[n] = '\0';
}

/* Reads the request. Returns 0 with *req filled, or -1 after any reply. */
static int
session_request(struct session *s, struct socks5_request *req)
{
	enum socks5_status st;
	size_t used;

	while ((st = socks5_parse_request(s->in, s->inlen, req, &used)) ==
	    SOCKS5_INCOMPLETE)
		if (session_fill(s) == -1)
			return -1;
	if (st != SOCKS5_OK) {
		if (st == SOCKS5_BAD_CMD) {
			s->cmd = req->cmd;
			format_dst(s, &req->dst);
		}
		s->end = "protocol";
		(void)session_reply(s, socks5_rep_from_status(st), NULL);
		return -1;
	}
	session_consume(s, used);
	s->cmd = req->cmd;
	format_dst(s, &req->dst);
	session_status(s);
	return 0;
}

/* Resolves, checks each address against the rules, connects to the first
 * allowed one that answers. Returns 0 with s->target open, or a REP code. */
static uint8_t
session_connect(struct session *s, const struct socks5_request *req)
{
	struct sockaddr_storage addrs[CONNECT_MAX_ADDRS];
	int n, err, last_err = 0;
	bool allowed = false;
	struct verdict v;
	int64_t deadline;

	/* No lookup for a client whose request no rule could let through:
	 * the proxy is not a name oracle for clients it refuses. */
	v = rules_may_pass(s->conf, (struct sockaddr *)&s->peer, req->cmd,
	    req->dst.port);
	if (!v.pass) {
		s->rule = v.rule;
		s->end = "refused";
		return SOCKS5_REP_NOT_ALLOWED;
	}
	err = connect_resolve(&req->dst, addrs, &n);
	if (err != 0) {
		s->end = "failed";
		return socks5_rep_from_errno(err);
	}
	deadline = io_now_ms() + (int64_t)s->conf->timeouts.connect * 1000;
	for (int i = 0; i < n; i++) {
		const struct sockaddr *sa = (struct sockaddr *)&addrs[i];

		v = rules_match_request(s->conf, (struct sockaddr *)&s->peer,
		    req->cmd, sa);

		s->rule = v.rule;
		if (!v.pass)
			continue;
		allowed = true;
		err = connect_to(s->conf, sa, deadline, &s->target);
		if (err == 0) {
			s->target_addr = addrs[i];
			s->has_target = true;
			return SOCKS5_REP_SUCCEEDED;
		}
		last_err = err;
		log_debug("connect %s: %s", s->dst, strerror(err));
		if (io_now_ms() >= deadline || io_cut_off())
			break;
	}
	if (!allowed) {
		s->end = "refused";
		return SOCKS5_REP_NOT_ALLOWED;
	}
	if (io_cut_off()) {
		s->end = "shutdown";
		return SOCKS5_REP_GENERAL_FAILURE;
	}
	s->end = "failed";
	return socks5_rep_from_errno(last_err);
}

/* The relay's park hook: offers the idle session to this worker's hub. */
static int
session_park(void *arg, int64_t last_ms, const uint64_t bytes[2])
{
	struct session *s = arg;
	struct hub_msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.magic = HUB_MAGIC;
	msg.version = HUB_VERSION;
	msg.client = s->peer;
	msg.listener = s->lc->addr;
	msg.target = s->target_addr;
	memcpy(msg.dst, s->dst, sizeof(msg.dst));
	msg.dst[sizeof(msg.dst) - 1] = '\0';
	msg.rule = s->rule;
	msg.start_ms = s->start;
	msg.last_ms = last_ms;
	msg.up = bytes[RELAY_UP];
	msg.down = bytes[RELAY_DOWN];
	if (hub_send(s->w->hub_fd, s->w->hub_tickets, &msg, s->fd,
	    s->target) == -1) {
		log_debug("park %s: %s: relaying it here", s->dst,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static void
session_relay(struct session *s)
{
	struct relay_limits lim = {
		.idle_ms = s->conf->timeouts.idle * 1000,
	};
	struct relay_result res;

	if (s->w->hub_fd != -1 && s->conf->relay.park_after > 0) {
		lim.park_ms = s->conf->relay.park_after * 1000;
		lim.park = session_park;
		lim.park_arg = s;
	}
	relay_run(&session_relay_ctx, s->fd, s->target, s->in, s->inlen, &lim,
	    s->w->slot, &res);
	s->inlen = 0;
	s->up = res.bytes[RELAY_UP];
	s->down = res.bytes[RELAY_DOWN];
	s->end = relay_end_name(res.end);
	s->parked = res.end == RELAY_END_PARKED;
	if (res.end == RELAY_END_ERROR)
		log_debug("relay %s: %s", s->dst, strerror(res.err));
}

static void
session_command(struct session *s, const struct socks5_request *req)
{
	struct sockaddr_storage bnd;
	socklen_t len = sizeof(bnd);
	uint8_t rep;

	if (req->cmd != SOCKS5_CMD_CONNECT) {
		/* BIND and UDP ASSOCIATE are not built yet. */
		s->end = "failed";
		(void)session_reply(s, SOCKS5_REP_CMD_NOT_SUPPORTED, NULL);
		return;
	}
	rep = session_connect(s, req);
	if (rep != SOCKS5_REP_SUCCEEDED) {
		(void)session_reply(s, rep, NULL);
		return;
	}
	if (getsockname(s->target, (struct sockaddr *)&bnd, &len) == -1)
		memset(&bnd, 0, sizeof(bnd));
	if (session_reply(s, SOCKS5_REP_SUCCEEDED, (struct sockaddr *)&bnd) == -1)
		return;
	session_relay(s);
}

void
session_log_audit(const struct session_audit *a)
{
	char client[ADDR_STRLEN], listener[ADDR_STRLEN], target[ADDR_STRLEN];
	char rule[16], rep[16];

	if (log_get_level() < LOG_INFO)
		return;
	addr_format((const struct sockaddr *)a->client, client, sizeof(client));
	addr_format((const struct sockaddr *)a->listener, listener,
	    sizeof(listener));
	if (a->target != NULL)
		addr_format((const struct sockaddr *)a->target, target,
		    sizeof(target));
	else
		strcpy(target, "-");
	if (a->rule >= 0)
		snprintf(rule, sizeof(rule), "%d", a->rule);
	else
		strcpy(rule, "-");
	if (a->rep >= 0)
		snprintf(rep, sizeof(rep), "%d", a->rep);
	else
		strcpy(rep, "-");
	log_info("session client=%s listener=%s user=- cmd=%s dst=%s addr=%s "
	    "rule=%s rep=%s up=%" PRIu64 " down=%" PRIu64 " secs=%" PRId64
	    ".%03d end=%s%s", client, listener,
	    a->cmd >= 0 ? socks5_cmd_name((uint8_t)a->cmd) : "-",
	    a->dst[0] ? a->dst : "-", target, rule, rep, a->up, a->down,
	    a->ms / 1000, (int)(a->ms % 1000), a->end ? a->end : "error",
	    a->parked ? " parked=1" : "");
}

static void
session_log(const struct session *s)
{
	struct session_audit a = {
		.client = &s->peer,
		.listener = &s->lc->addr,
		.target = s->has_target ? &s->target_addr : NULL,
		.cmd = s->cmd,
		.rule = s->rule,
		.rep = s->rep,
		.dst = s->dst,
		.up = s->up,
		.down = s->down,
		.ms = io_now_ms() - s->start,
		.end = s->end,
	};

	session_log_audit(&a);
}

/* After a failed session: send FIN after the reply and read what the client
 * already sent, so that close() does not turn into a reset that could
 * destroy the reply before the client reads it. Bounded in time and bytes. */
static void
session_linger(int fd)
{
	uint8_t sink[4096];
	int64_t deadline = io_now_ms() + 200;
	size_t total = 0;

	if (shutdown(fd, SHUT_WR) == -1)
		return;
	while (total < 65536) {
		ssize_t n = io_read_some(fd, sink, sizeof(sink), deadline);
		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

void
session_run(struct worker *w, int fd, const struct sockaddr_storage *peer,
    size_t li)
{
	struct session s;
	struct socks5_request req;
	struct verdict v;

	memset(&s, 0, sizeof(s));
	s.w = w;
	s.conf = w->conf;
	s.lc = &w->conf->listeners[li];
	s.fd = fd;
	s.target = -1;
	s.peer = *peer;
	s.start = io_now_ms();
	s.deadline = s.start + (int64_t)s.conf->timeouts.negotiate * 1000;
	s.cmd = -1;
	s.rep = -1;
	s.rule = -1;

	v = rules_match_client(s.conf, (const struct sockaddr *)peer);
	if (!v.pass) {
		s.end = "refused";
		s.rule = v.rule;
	} else if (session_negotiate(&s) == 0 &&
	    session_request(&s, &req) == 0) {
		session_command(&s, &req);
	}
	/* A parked session is the hub's now: it writes the audit line. */
	if (!s.parked)
		session_log(&s);
	if (s.rep != SOCKS5_REP_SUCCEEDED)
		session_linger(fd);
	if (s.target != -1)
		close(s.target);
	close(fd);
}

void
session_worker_init(struct worker *w)
{
	relay_init(&session_relay_ctx, w->conf);
}

void
session_worker_fini(void)
{
	relay_free(&session_relay_ctx);
}
