/* command.c: what a command module gets from its session: the reply, the
 * relay and the hand-over of an idle session to a hub. */
#include <errno.h>
#include <string.h>

#include "command.h"
#include "io.h"
#include "limits_session.h"
#include "log.h"

struct rules_query
cmd_query(const struct cmd_ctx *c, uint8_t cmd)
{
	const struct audit_record *r = c->rec;

	return (struct rules_query){
		.client = (const struct sockaddr *)&r->client,
		.listener = (int)c->listener,
		.method = r->method < 0 ? SOCKS5_METHOD_NONE : (uint8_t)r->method,
		.user = r->user_len > 0 ? r->user : NULL,
		.user_len = r->user_len,
		.gids = c->gids,
		.ngids = c->ngids,
		.cmd = cmd,
	};
}

void
cmd_verdict(struct cmd_ctx *c, const struct verdict *v)
{
	audit_set_rule(c->rec, v->rule, v->name, v->quiet);
}

int
cmd_send(struct cmd_ctx *c, const uint8_t *buf, size_t len)
{
	if (io_write_all(c->fd, buf, len, c->deadline) == -1) {
		c->rec->end = errno != ETIMEDOUT ? AUDIT_END_CLIENT :
		    io_cutoff_passed() ? AUDIT_END_SHUTDOWN : AUDIT_END_TIMEOUT;
		return -1;
	}
	return 0;
}

int
cmd_reply(struct cmd_ctx *c, uint8_t rep, const struct sockaddr *bnd)
{
	uint8_t out[SOCKS5_MAX_REPLY];
	size_t n = socks5_write_reply(out, rep, bnd);

	c->rec->rep = rep;
	return cmd_send(c, out, n);
}

void
cmd_fail(struct cmd_ctx *c, uint8_t rep, enum audit_end end)
{
	c->rec->end = end;
	(void)cmd_reply(c, rep, NULL);	/* a failed send names its own end */
}

/* The relay's park hook: offers the idle session to this worker's hub. */
static int
cmd_park(void *arg, const struct relay_state *st)
{
	struct cmd_ctx *c = arg;
	struct hub_msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.magic = HUB_MAGIC;
	msg.version = HUB_VERSION;
	msg.rec = *c->rec;
	msg.rec.up = st->bytes[RELAY_UP];
	msg.rec.down = st->bytes[RELAY_DOWN];
	msg.last_ms = st->last_ms;
	msg.done[RELAY_UP] = st->done[RELAY_UP];
	msg.done[RELAY_DOWN] = st->done[RELAY_DOWN];
	msg.first_eof = (int8_t)st->first_eof;
	limits_park_fill(&msg.lim);
	if (hub_send(c->env->hub_fd, c->env->hub_tickets, &msg, c->fd,
	    c->target) == -1) {
		limits_park_done(false);
		log_debug("park %s: %s: relaying it here", c->rec->dst,
		    strerror(errno));
		return -1;
	}
	limits_park_done(true);
	return 0;
}

/* The relay's interim hook: a session-update line. */
static void
cmd_interim(void *arg, const uint64_t bytes[2])
{
	struct cmd_ctx *c = arg;

	audit_log_update(c->rec, bytes[RELAY_UP], bytes[RELAY_DOWN],
	    io_now_ms());
}

void
cmd_started(struct cmd_ctx *c)
{
	if (c->conf->log.session_start)
		audit_log_start(c->rec, io_now_ms());
}

void
cmd_relay(struct cmd_ctx *c)
{
	struct relay_limits lim = {
		.idle_ms = c->conf->timeouts.idle * 1000,
		.progress = { c->env->progress[0], c->env->progress[1] },
	};
	struct relay_result res;

	limits_session_rates(lim.rate);
	if (c->conf->log.interim > 0) {
		lim.interim_ms = c->conf->log.interim * 1000;
		lim.interim = cmd_interim;
		lim.interim_arg = c;
	}
	if (c->env->hub_fd != -1 && c->conf->relay.park_after > 0) {
		lim.park_ms = c->conf->relay.park_after * 1000;
		lim.park = cmd_park;
		lim.park_arg = c;
	}
	relay_run(c->env->pool, c->fd, c->target, c->pending, c->npending,
	    &lim, &res);
	c->npending = 0;
	c->rec->up = res.bytes[RELAY_UP];
	c->rec->down = res.bytes[RELAY_DOWN];
	c->rec->end = res.end;
	c->rec->parked = res.end == AUDIT_END_PARKED;
	if (res.end == AUDIT_END_ERROR)
		log_debug("relay %s: %s", c->rec->dst, strerror(res.err));
}
