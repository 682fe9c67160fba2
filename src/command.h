/* command.h: what a SOCKS5 command module (connect, later bind and udp)
 * gets from the session that dispatched it: the client, the deadline, the
 * audit record to fill, the reply and the relay. session.c owns the
 * session and the table of commands; command modules include this, never
 * session.h. */
#ifndef SOCKS5D_COMMAND_H
#define SOCKS5D_COMMAND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "audit.h"
#include "config.h"
#include "hubmsg.h"
#include "relay.h"
#include "rules.h"
#include "socks5.h"

/* The worker's resources a session may use, set up once per worker. */
struct cmd_env {
	struct relay_pool *pool;
	int hub_fd;			/* channel to the worker's hub, or -1 */
	struct hub_tickets *hub_tickets;
	int auth_fd;			/* the auth helpers' channel, or -1 */
	_Atomic uint64_t *progress[2];	/* the scoreboard's byte counts */
};

struct cmd_ctx {
	const struct config *conf;
	const struct listener_conf *lc;
	const struct cmd_env *env;
	int fd;				/* the client (non-blocking) */
	int target;			/* opened by the command, or -1 */
	int64_t deadline;		/* negotiation and set-up */
	struct audit_record *rec;	/* fill as the command goes */
	const uint8_t *pending;		/* client bytes after the request */
	size_t npending;
	size_t listener;		/* index of lc in conf->listeners */
	const uint32_t *gids;		/* the logged-in user's groups */
	size_t ngids;
};

/* A command: runs to the end of the session, filling c->rec (rep, end,
 * target, bytes). The session logs the record and closes the sockets. */
typedef void (*cmd_run_fn)(struct cmd_ctx *c, const struct socks5_request *req);

/* What the rules know of this session for a request of cmd: client,
 * listener, method, user and groups. The command adds the destination
 * (dst_name, dst, port) before it asks. */
struct rules_query cmd_query(const struct cmd_ctx *c, uint8_t cmd);
/* Records the verdict's rule (number, name, log = false) in c->rec: call
 * it after each rules_may_pass / rules_match_request. */
void cmd_verdict(struct cmd_ctx *c, const struct verdict *v);

/* Sends bytes to the client within the deadline: 0, or -1 with rec->end
 * set (client, timeout or shutdown). */
int cmd_send(struct cmd_ctx *c, const uint8_t *buf, size_t len);
/* Sends a reply (BND from bnd, NULL for zeros) and records its code:
 * 0, or -1 with rec->end set. */
int cmd_reply(struct cmd_ctx *c, uint8_t rep, const struct sockaddr *bnd);
/* Sends the reply for a failure (rep) with rec->end = end. */
void cmd_fail(struct cmd_ctx *c, uint8_t rep, enum audit_end end);
/* The command is set up (its success reply sent): the session-start line
 * when log.session_start asks for it. */
void cmd_started(struct cmd_ctx *c);
/* Relays between the client and c->target until the session ends (or it
 * is parked in a hub), filling the record's bytes and end. */
void cmd_relay(struct cmd_ctx *c);

#endif
