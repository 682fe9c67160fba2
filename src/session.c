/* session.c: one client session: negotiation, request, the command (from a
 * table), the audit line. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "audit.h"
#include "authc.h"
#include "bind.h"
#include "command.h"
#include "connect.h"
#include "io.h"
#include "limits_session.h"
#include "log.h"
#include "rules.h"
#include "session.h"
#include "socks5.h"
#include "stats.h"
#include "udp.h"

#define SESSION_INBUF 1024	/* more than the longest negotiation message */
#define WORKER_PIPES 2		/* one per direction, reused by every session */

/* The commands, by SOCKS5 code. NULL: not supported (REP 07). */
static const cmd_run_fn commands[] = {
	[SOCKS5_CMD_CONNECT] = connect_command,
	[SOCKS5_CMD_BIND] = bind_command,
	[SOCKS5_CMD_UDP_ASSOCIATE] = udp_command,
};

struct session {
	struct worker *w;
	struct cmd_ctx cmd;		/* what the command gets */
	struct audit_record rec;
	uint32_t gids[AUTH_MAX_GROUPS];	/* the user's groups, for the rules */
	size_t ngids;
	uint8_t in[SESSION_INBUF];	/* received and not yet consumed */
	size_t inlen;
	bool await_reply;		/* the client must read before it sends */
	unsigned methods;		/* the client rule's; 0: any */
};

static struct relay_pool worker_pool;
static struct cmd_env worker_env;

void
session_worker_init(struct worker *w)
{
	const struct config *c = w->conf;

	relay_pool_init(&worker_pool, c->relay.mode == RELAY_SPLICE,
	    c->relay.pipe_size, (size_t)c->relay.buffer_size, WORKER_PIPES,
	    WORKER_PIPES, WORKER_PIPES);
	relay_pool_prefill(&worker_pool, WORKER_PIPES);
	worker_env.pool = &worker_pool;
	worker_env.hub_fd = w->hub_fd;
	worker_env.hub_tickets = w->hub_tickets;
	worker_env.auth_fd = w->auth_fd;
	worker_env.progress[RELAY_UP] = &w->slot->up;
	worker_env.progress[RELAY_DOWN] = &w->slot->down;
}

void
session_worker_fini(void)
{
	relay_pool_free(&worker_pool);
}

static enum audit_end
end_of_read_error(ssize_t n)
{
	if (n == 0 || errno == ECONNRESET)
		return AUDIT_END_CLIENT;
	if (errno == ETIMEDOUT)
		return io_cutoff_passed() ? AUDIT_END_SHUTDOWN :
		    AUDIT_END_TIMEOUT;
	return AUDIT_END_ERROR;
}

/* Reads more client bytes. On failure sets the end and returns -1. While
 * the negotiation counts against workers.max_negotiating, the wait is cut
 * in steps: a slow session of an address over the cap gives its worker up
 * once the pool is full (limits_negotiate_excess). */
static int
session_fill(struct session *s)
{
	ssize_t n = -1;
	int ready = 1;

	if (s->inlen == sizeof(s->in)) {
		s->rec.end = AUDIT_END_PROTOCOL;
		return -1;
	}
	for (;;) {
		int64_t until = limits_negotiate_check_at(s->cmd.deadline);

		/* The client reads our answer before it sends more: wait
		 * first instead of a read that would say EAGAIN. */
		ready = 1;
		/* cppcheck-suppress redundantAssignment ; kept if no reply */
		if (s->await_reply && (ready = io_wait(s->cmd.fd, POLLIN,
		    until)) == 0)
			errno = ETIMEDOUT;
		if (ready > 0) {
			s->await_reply = false;
			n = io_read_some(s->cmd.fd, s->in + s->inlen,
			    sizeof(s->in) - s->inlen, until);
		}
		if (ready > 0 && n > 0) {
			s->inlen += (size_t)n;
			return 0;
		}
		if ((ready > 0 && n == 0) || errno != ETIMEDOUT ||
		    until >= s->cmd.deadline || io_cutoff_passed())
			break;
		if (limits_negotiate_excess(s->cmd.conf, s->w->sb)) {
			s->rec.end = AUDIT_END_LIMIT;
			return -1;
		}
	}
	s->rec.end = end_of_read_error(ready > 0 ? n : -1);
	return -1;
}

static void
session_consume(struct session *s, size_t used)
{
	memmove(s->in, s->in + used, s->inlen - used);
	s->inlen -= used;
	/* What was consumed may have been a password. */
	explicit_bzero(s->in + s->inlen, used);
}

/* Asks an auth helper about the credentials: 0 when the user is logged
 * in, else -1 with *why and the failure delay PAM asked for. */
static int
session_ask_helper(struct session *s, struct auth_request *req,
    const char **why, int64_t *delay_ms)
{
	struct auth_reply rep;
	int64_t deadline = io_now_ms() + (int64_t)s->cmd.conf->auth.timeout * 1000;

	*delay_ms = 0;
	if (deadline > s->cmd.deadline)
		deadline = s->cmd.deadline;
	if (authc_ask(s->cmd.env->auth_fd, req, deadline, &rep) == -1) {
		*why = errno == ETIMEDOUT ? "timeout" : "helper";
		return -1;
	}
	if (rep.result != AUTH_OK) {
		*why = auth_result_name((enum auth_result)rep.result);
		*delay_ms = rep.delay_ms;
		return -1;
	}
	s->ngids = rep.ngroups;
	s->cmd.ngids = rep.ngroups;
	memcpy(s->gids, rep.gids, rep.ngroups * sizeof(rep.gids[0]));
	s->rec.ngroups = (uint16_t)rep.ngroups;
	return 0;
}

/* A failed login: PAM's delay is paid here, by the worker that holds this
 * client anyway, then 01 01 and the close. */
static int
session_login_failed(struct session *s, const char *why, int64_t delay_ms)
{
	uint8_t out[2];

	if (delay_ms > 0)
		io_pause(io_now_ms() + delay_ms);
	audit_log_auth_fail(s->rec.sid, &s->rec.client, s->rec.user,
	    s->rec.user_len, why);
	stats_auth_fail();
	s->rec.user_len = 0;	/* not logged in: the session line says user=- */
	if (cmd_send(&s->cmd, out, socks5_write_auth_status(out, 1)) == 0)
		s->rec.end = AUDIT_END_AUTH;
	return -1;
}

/* RFC 1929: the credentials, a helper's answer, 01 00 or 01 01. 0 when
 * the user is logged in. Passwords are wiped as soon as they are used. */
static int
session_userpass(struct session *s)
{
	struct socks5_userpass up;
	struct auth_request req;
	enum socks5_status st;
	const char *why = "protocol";
	int64_t delay_ms = 0;
	uint8_t out[2];
	size_t used;
	int rc = -1;

	while ((st = socks5_parse_userpass(s->in, s->inlen, &up, &used)) ==
	    SOCKS5_INCOMPLETE)
		if (session_fill(s) == -1) {
			explicit_bzero(s->in, sizeof(s->in));
			goto done;
		}
	if (st == SOCKS5_OK) {
		session_consume(s, used);
		memcpy(s->rec.user, up.user, up.ulen);
		s->rec.user_len = up.ulen;
		if (auth_request_make(&req, up.user, up.ulen, up.pass, up.plen,
		    &s->rec.client) == 0)
			rc = session_ask_helper(s, &req, &why, &delay_ms);
		explicit_bzero(&req, sizeof(req));
	}
	if (rc == -1) {
		/* Nothing after a failed login matters, and what is left may
		 * be a malformed message holding a password. */
		explicit_bzero(s->in, sizeof(s->in));
		s->inlen = 0;
		rc = session_login_failed(s, why, delay_ms);
	} else if ((rc = cmd_send(&s->cmd, out, socks5_write_auth_status(out,
	    0))) == 0)
		s->await_reply = true;
done:
	explicit_bzero(&up, sizeof(up));
	return rc;
}

/* The listener's most preferred method that the client offers and its
 * client rule allows (`none` from one network, `username` from others). */
static uint8_t
session_select_method(const struct session *s, const struct socks5_greeting *g)
{
	uint8_t allowed[CONFIG_MAX_METHODS];
	size_t n = 0;

	for (int i = 0; i < s->cmd.lc->nmethods; i++) {
		uint8_t m = s->cmd.lc->methods[i];

		if (s->methods == 0 || (m < 32 && (s->methods & (1u << m))))
			allowed[n++] = m;
	}
	return socks5_select_method(allowed, n, g);
}

/* Greeting and method choice. Returns 0 when a method was agreed. */
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
		s->rec.end = AUDIT_END_PROTOCOL;
		log_debug("greeting: %s (first byte %u)",
		    socks5_status_str(st), s->in[0]);
		return -1;
	}
	session_consume(s, used);
	method = session_select_method(s, &g);
	if (cmd_send(&s->cmd, out, socks5_write_method(out, method)) == -1)
		return -1;
	s->await_reply = true;
	if (method == SOCKS5_METHOD_NO_ACCEPTABLE) {
		s->rec.end = AUDIT_END_NOAUTH;
		return -1;
	}
	s->rec.method = method;
	if (method == SOCKS5_METHOD_USERPASS)
		return session_userpass(s);
	return 0;
}

static void
format_dst(struct session *s, const struct socks5_addr *a)
{
	struct sockaddr_storage ss;
	char name[SOCKS5_MAX_DOMAIN * 4 + 1];

	if (a->atyp == SOCKS5_ATYP_DOMAIN) {
		log_escape(name, sizeof(name), a->u.domain.name, a->u.domain.len);
		snprintf(s->rec.dst, sizeof(s->rec.dst), "%s:%u", name, a->port);
		return;
	}
	(void)socks5_addr_to_sockaddr(a, &ss);
	addr_format((struct sockaddr *)&ss, s->rec.dst, sizeof(s->rec.dst));
}

/* Shows the user, command and destination in the worker's scoreboard
 * slot (truncated), for `socks5d status`. */
static void
session_status(struct session *s)
{
	struct sb_slot *slot = s->w->slot;
	size_t n = strnlen(s->rec.dst, sizeof(slot->dst) - 1);

	memcpy(slot->dst, s->rec.dst, n);
	slot->dst[n] = '\0';
	if (s->rec.user_len > 0)
		log_escape(slot->user, sizeof(slot->user), s->rec.user,
		    s->rec.user_len);
	else
		slot->user[0] = '\0';
	slot->sid = s->rec.sid;
	atomic_store(&slot->cmd, s->rec.cmd);
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
			s->rec.cmd = req->cmd;
			format_dst(s, &req->dst);
		}
		cmd_fail(&s->cmd, socks5_rep_from_status(st), AUDIT_END_PROTOCOL);
		return -1;
	}
	session_consume(s, used);
	limits_negotiate_end();
	s->rec.cmd = req->cmd;
	format_dst(s, &req->dst);
	session_status(s);
	return 0;
}

static void
session_command(struct session *s, const struct socks5_request *req)
{
	cmd_run_fn run = req->cmd < sizeof(commands) / sizeof(commands[0]) ?
	    commands[req->cmd] : NULL;

	if (run == NULL) {
		/* No entry for this code. */
		cmd_fail(&s->cmd, SOCKS5_REP_CMD_NOT_SUPPORTED, AUDIT_END_FAILED);
		return;
	}
	s->cmd.pending = s->in;
	s->cmd.npending = s->inlen;
	run(&s->cmd, req);
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

static void
session_setup(struct session *s, struct worker *w, int fd,
    const struct sockaddr_storage *peer, size_t li)
{
	memset(s, 0, sizeof(*s));
	s->w = w;
	s->cmd.conf = w->conf;
	s->cmd.lc = &w->conf->listeners[li];
	s->cmd.env = &worker_env;
	s->cmd.fd = fd;
	s->cmd.target = -1;
	s->cmd.rec = &s->rec;
	s->cmd.listener = li;
	s->cmd.gids = s->gids;
	audit_begin(&s->rec, peer, &s->cmd.lc->addr, io_now_ms());
	s->rec.sid = stats_next_sid();
	s->cmd.deadline = s->rec.start_ms +
	    (int64_t)w->conf->timeouts.negotiate * 1000;
}

void
session_run(struct worker *w, int fd, const struct sockaddr_storage *peer,
    size_t li)
{
	struct session s;
	struct socks5_request req;
	struct verdict v;
	bool linger = true;

	session_setup(&s, w, fd, peer, li);
	v = rules_match_client(&w->conf->clients,
	    &(struct rules_query){ .client = (const struct sockaddr *)peer,
	    .listener = (int)li });
	s.methods = v.methods;
	/* A client rule with log = false quiets the sessions it lets in too. */
	if (v.quiet || !v.pass)
		audit_set_rule(&s.rec, v.rule, v.name, v.quiet);
	limits_session_begin();
	if (!v.pass) {
		s.rec.end = AUDIT_END_REFUSED;
	} else if (limits_negotiate_begin(w->conf, peer, w->sb, w->slot) == -1) {
		/* Closed at once: no lingering for a source that holds
		 * workers with slow greetings. */
		s.rec.end = AUDIT_END_LIMIT;
		linger = false;
	} else if (session_negotiate(&s) == 0 &&
	    session_request(&s, &req) == 0) {
		session_command(&s, &req);
	}
	limits_session_end();
	/* A parked session is the hub's now: it writes the audit line. */
	if (!s.rec.parked) {
		audit_log(&s.rec, io_now_ms());
		stats_session_end(&s.rec);
	}
	if (s.rec.rep != SOCKS5_REP_SUCCEEDED && linger)
		session_linger(fd);
	if (s.cmd.target != -1)
		close(s.cmd.target);
	close(fd);
}
