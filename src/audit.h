/* audit.h: the session record and its audit line, the only code that
 * formats "session ..." lines. Workers fill it for their sessions, hubs
 * for the ones they took over; later commands (BIND, UDP) fill it too. */
#ifndef SOCKS5D_AUDIT_H
#define SOCKS5D_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUDIT_DST_LEN	(255 * 4 + 16)	/* an escaped name, ':', a port */
#define AUDIT_USER_LEN	255		/* RFC 1929 ULEN at most */
#define AUDIT_RULE_LEN	32		/* a rule's name, NUL included */

/* Why a session ended: the `end=` key. */
enum audit_end {
	AUDIT_END_NONE = 0,		/* not ended (logged as "error") */
	AUDIT_END_CLIENT,		/* the client closed (or reset) first */
	AUDIT_END_TARGET,		/* the target closed (or reset) first */
	AUDIT_END_IDLE,			/* nothing moved for timeouts.idle */
	AUDIT_END_ERROR,		/* an I/O error other than a close */
	AUDIT_END_SHUTDOWN,		/* the daemon stopped, the grace ran out */
	AUDIT_END_PARKED,		/* handed to a hub, which logs it */
	AUDIT_END_PROTOCOL,		/* not SOCKS5, or a malformed message */
	AUDIT_END_TIMEOUT,		/* negotiation deadline */
	AUDIT_END_NOAUTH,		/* no acceptable method */
	AUDIT_END_REFUSED,		/* refused by a rule */
	AUDIT_END_FAILED,		/* the command failed (connect, ...) */
	AUDIT_END_AUTH,			/* the login failed (see its auth-fail line) */
	AUDIT_END_LIMIT,		/* over a limit (max_sessions, max_negotiating) */
};

/* What a UDP ASSOCIATE relayed and dropped: the line's extra keys, written
 * only for cmd=udp (up and down are its payload bytes). */
struct audit_udp {
	uint64_t dgrams_up, dgrams_down;	/* datagrams relayed each way */
	uint32_t dests;			/* distinct destinations sent to */
	uint64_t drop_stranger;		/* from another address than the client */
	uint64_t drop_header;		/* malformed header (truncated, RSV, ATYP) */
	uint64_t drop_frag;		/* FRAG not 0 */
	uint64_t drop_rule;		/* target refused by the rules */
	uint64_t drop_resolve;		/* name that did not resolve */
	uint64_t drop_source;		/* reply from a source not sent to */
	uint64_t drop_send;		/* could not be sent (buffer full, too big,
					 * unreachable, destination table full) */
	uint64_t drop_limit;		/* over the rule's max_sessions or rate */
};

/* One session, as its audit line tells it. Strings are raw bytes as the
 * client sent them (user) or already escaped (dst); the line escapes what
 * needs it. */
struct audit_record {
	struct sockaddr_storage client;
	struct sockaddr_storage listener;
	struct sockaddr_storage target;	/* family 0: none */
	char dst[AUDIT_DST_LEN];	/* escaped destination; "": none */
	uint8_t user[AUDIT_USER_LEN];	/* raw; user_len 0: none */
	uint8_t user_len;
	uint16_t ngroups;		/* the user's groups, for the rules */
	int16_t method;			/* SOCKS5 method chosen, -1: none */
	int16_t cmd;			/* SOCKS5 command, -1: none */
	int32_t rule;			/* rule number, -1: none consulted */
	char rule_name[AUDIT_RULE_LEN];	/* the rule's name, "": unnamed
					 * (escaped when logged) */
	uint8_t quiet;			/* 1: a rule said log = false */
	int16_t rep;			/* reply code sent, -1: none */
	bool parked;
	enum audit_end end;
	int64_t start_ms;		/* accepted (monotonic ms) */
	uint64_t up, down;		/* bytes delivered each way */
	struct audit_udp udp;		/* cmd=udp only */
	uint64_t sid;			/* session id (sid=), unique since start */
};

/* A fresh record for a client accepted now. */
void audit_begin(struct audit_record *a, const struct sockaddr_storage *client,
    const struct sockaddr_storage *listener, int64_t now_ms);
/* Records the rule that decided (its number and name, NULL: none) and
 * whether it asks for quiet (log = false): once quiet, a record stays so. */
void audit_set_rule(struct audit_record *a, int rule, const char *name,
    bool quiet);
/* Logs "session client=... end=REASON" at info level (debug when quiet);
 * now_ms ends it. rule= is the rule's name if it has one, else its
 * number. */
void audit_log(const struct audit_record *a, int64_t now_ms);
/* Logs "auth-fail client=... user=... reason=WHY" for a failed login
 * (user: the raw bytes the client sent). */
/* "session-update sid=... up=... down=... secs=..." for a session still
 * open (log.interim): the session line's keys without end=, with the
 * bytes so far. */
void audit_log_update(const struct audit_record *a, uint64_t up,
    uint64_t down, int64_t now_ms);
/* "session-start sid=... rule=..." once the command is set up
 * (log.session_start). */
void audit_log_start(const struct audit_record *a, int64_t now_ms);
void audit_log_auth_fail(uint64_t sid, const struct sockaddr_storage *client,
    const uint8_t *user, size_t user_len, const char *why);
/* The `end=` word of a reason. */
const char *audit_end_name(enum audit_end end);
/* Whether dst is in the form audit records keep (what log_escape writes,
 * NUL-terminated within AUDIT_DST_LEN): a record from another process is
 * checked with this, so that no byte of it can forge a log line. */
bool audit_dst_valid(const char *dst, size_t cap);

#endif
