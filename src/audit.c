/* audit.c: the session record and its audit line. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "audit.h"
#include "log.h"
#include "socks5.h"

void
audit_begin(struct audit_record *a, const struct sockaddr_storage *client,
    const struct sockaddr_storage *listener, int64_t now_ms)
{
	memset(a, 0, sizeof(*a));
	a->client = *client;
	a->listener = *listener;
	a->method = -1;
	a->cmd = -1;
	a->rule = -1;
	a->rep = -1;
	a->start_ms = now_ms;
}

const char *
audit_end_name(enum audit_end end)
{
	static const char *const names[] = {
		[AUDIT_END_NONE] = "error",
		[AUDIT_END_CLIENT] = "client",
		[AUDIT_END_TARGET] = "target",
		[AUDIT_END_IDLE] = "idle",
		[AUDIT_END_ERROR] = "error",
		[AUDIT_END_SHUTDOWN] = "shutdown",
		[AUDIT_END_PARKED] = "parked",
		[AUDIT_END_PROTOCOL] = "protocol",
		[AUDIT_END_TIMEOUT] = "timeout",
		[AUDIT_END_NOAUTH] = "noauth",
		[AUDIT_END_REFUSED] = "refused",
		[AUDIT_END_FAILED] = "failed",
		[AUDIT_END_AUTH] = "auth",
		[AUDIT_END_LIMIT] = "limit",
	};

	if ((unsigned)end >= sizeof(names) / sizeof(names[0]))
		return "error";
	return names[end];
}

bool
audit_dst_valid(const char *dst, size_t cap)
{
	const unsigned char *p = (const unsigned char *)dst;

	if (memchr(dst, '\0', cap) == NULL)
		return false;
	/* log_escape keeps printable ASCII but space, '"' and '=' (a '\\'
	 * only starts an escape). */
	for (; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '=')
			return false;
	return true;
}

void
audit_set_rule(struct audit_record *a, int rule, const char *name,
    bool quiet)
{
	a->rule = rule;
	a->rule_name[0] = '\0';
	if (name != NULL)
		snprintf(a->rule_name, sizeof(a->rule_name), "%s", name);
	if (quiet)
		a->quiet = 1;
}

static void
format_int(char *buf, size_t len, long v)
{
	if (v >= 0)
		snprintf(buf, len, "%ld", v);
	else
		snprintf(buf, len, "-");
}

static const char *
audit_method_name(int method)
{
	switch (method) {
	case SOCKS5_METHOD_NONE:
		return "none";
	case SOCKS5_METHOD_USERPASS:
		return "username";
	default:
		return "-";
	}
}

/* The keys a UDP association adds to its line ("" for other commands). */
static void
format_udp(const struct audit_record *a, char *buf, size_t len)
{
	const struct audit_udp *u = &a->udp;

	buf[0] = '\0';
	if (a->cmd != SOCKS5_CMD_UDP_ASSOCIATE)
		return;
	snprintf(buf, len, " dgrams_up=%" PRIu64 " dgrams_down=%" PRIu64
	    " dests=%" PRIu32 " drop_stranger=%" PRIu64 " drop_header=%" PRIu64
	    " drop_frag=%" PRIu64 " drop_rule=%" PRIu64 " drop_resolve=%" PRIu64
	    " drop_source=%" PRIu64 " drop_send=%" PRIu64 " drop_limit=%" PRIu64,
	    u->dgrams_up, u->dgrams_down, u->dests, u->drop_stranger,
	    u->drop_header, u->drop_frag, u->drop_rule, u->drop_resolve,
	    u->drop_source, u->drop_send, u->drop_limit);
}

/* The fields every line of a session shares, formatted once. */
struct audit_text {
	char client[ADDR_STRLEN], listener[ADDR_STRLEN], target[ADDR_STRLEN];
	char user[AUDIT_USER_LEN * 4 + 1], rule[AUDIT_RULE_LEN * 4 + 1];
	char rep[16];
};

static void
audit_text(const struct audit_record *a, struct audit_text *t)
{
	addr_format((const struct sockaddr *)&a->client, t->client,
	    sizeof(t->client));
	addr_format((const struct sockaddr *)&a->listener, t->listener,
	    sizeof(t->listener));
	if (a->target.ss_family != 0)
		addr_format((const struct sockaddr *)&a->target, t->target,
		    sizeof(t->target));
	else
		strcpy(t->target, "-");
	if (a->user_len > 0)
		log_escape(t->user, sizeof(t->user), a->user, a->user_len);
	else
		strcpy(t->user, "-");
	/* A hub gets the record from a worker: the name is escaped here,
	 * bounded by its array, whatever bytes it holds. */
	if (a->rule_name[0] != '\0' && a->rule >= 0)
		log_escape(t->rule, sizeof(t->rule), a->rule_name,
		    strnlen(a->rule_name, sizeof(a->rule_name)));
	else
		format_int(t->rule, sizeof(t->rule), a->rule);
	format_int(t->rep, sizeof(t->rep), a->rep);
}

/* "TAG sid= client= ... up= down= secs=" then tail: the session line
 * (tail: end= and what follows) and the interim line (tail: ""). */
static void
audit_line(const struct audit_record *a, const char *tag, uint64_t up,
    uint64_t down, int64_t now_ms, const char *tail)
{
	struct audit_text t;
	int64_t ms = now_ms - a->start_ms;
	int level = a->quiet ? LOG_DEBUG : LOG_INFO;

	if (log_get_level() < level)
		return;
	if (ms < 0)
		ms = 0;
	audit_text(a, &t);
	(level == LOG_DEBUG ? log_debug : log_info)(
	    "%s sid=%" PRIu64 " client=%s listener=%s method=%s user=%s cmd=%s "
	    "dst=%s addr=%s rule=%s rep=%s up=%" PRIu64 " down=%" PRIu64
	    " secs=%" PRId64 ".%03d%s", tag, a->sid, t.client, t.listener,
	    audit_method_name(a->method), t.user,
	    a->cmd >= 0 ? socks5_cmd_name((uint8_t)a->cmd) : "-",
	    a->dst[0] ? a->dst : "-", t.target, t.rule, t.rep, up, down,
	    ms / 1000, (int)(ms % 1000), tail);
}

void
audit_log(const struct audit_record *a, int64_t now_ms)
{
	char udp[512], tail[600];

	format_udp(a, udp, sizeof(udp));
	snprintf(tail, sizeof(tail), " end=%s%s%s", audit_end_name(a->end),
	    a->parked ? " parked=1" : "", udp);
	audit_line(a, "session", a->up, a->down, now_ms, tail);
}

void
audit_log_update(const struct audit_record *a, uint64_t up, uint64_t down,
    int64_t now_ms)
{
	audit_line(a, "session-update", up, down, now_ms,
	    a->parked ? " parked=1" : "");
}

void
audit_log_start(const struct audit_record *a, int64_t now_ms)
{
	struct audit_text t;

	if (log_get_level() < (a->quiet ? LOG_DEBUG : LOG_INFO))
		return;
	audit_text(a, &t);
	(a->quiet ? log_debug : log_info)("session-start sid=%" PRIu64
	    " client=%s listener=%s method=%s user=%s cmd=%s dst=%s addr=%s "
	    "rule=%s secs=%" PRId64, a->sid, t.client, t.listener,
	    audit_method_name(a->method), t.user,
	    a->cmd >= 0 ? socks5_cmd_name((uint8_t)a->cmd) : "-",
	    a->dst[0] ? a->dst : "-", t.target, t.rule,
	    (now_ms - a->start_ms) / 1000);
}

void
audit_log_auth_fail(uint64_t sid, const struct sockaddr_storage *client,
    const uint8_t *user, size_t user_len, const char *why)
{
	char addr[ADDR_STRLEN], name[AUDIT_USER_LEN * 4 + 1];

	addr_format((const struct sockaddr *)client, addr, sizeof(addr));
	if (user_len > 0)
		log_escape(name, sizeof(name), user, user_len);
	else
		strcpy(name, "-");
	log_notice("auth-fail sid=%" PRIu64 " client=%s user=%s reason=%s", sid,
	    addr, name, why);
}
