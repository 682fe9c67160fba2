/* rules.h: client and request rules: first match wins, no match refuses. */
#ifndef SOCKS5D_RULES_H
#define SOCKS5D_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

enum rule_action { RULE_PASS, RULE_BLOCK };

struct port_range {
	uint16_t lo, hi;		/* inclusive; lo <= hi */
};

/* One entry of a rule set. A key the entry does not have (nfrom, nto,
 * nports or commands 0) matches everything. */
struct rule {
	enum rule_action action;
	int line;			/* where it is in the configuration file */
	char *name;			/* reserved for named rules; NULL today */
	struct cidr *from;		/* client networks */
	size_t nfrom;
	struct cidr *to;		/* destination networks */
	size_t nto;
	struct port_range *ports;	/* destination ports */
	size_t nports;
	unsigned commands;		/* bit (1 << SOCKS5_CMD_x); 0 = all */
	unsigned methods;		/* clients: bit (1 << SOCKS5_METHOD_x)
					 * the client may use; 0 = all */
	/* limits (config_limits.c, limits_session.c) */
	uint64_t limit_id;		/* the rule's identity across reloads */
	uint32_t max_sessions;		/* at once per key; 0: no cap */
	uint8_t sessions_per;		/* the key: LIMITS_PER_CLIENT, _USER,
					 * _RULE (limits_session.h) */
	uint64_t rate[2];		/* bytes/s [0] up, [1] down; 0: none */
	bool rate_per_user;		/* one bucket for a user's sessions */
};

/* An ordered list of rules (`clients` or `rules` in the file). present
 * says whether the list was written at all; an absent or empty list
 * matches nothing, so it refuses everything. */
struct ruleset {
	struct rule *list;
	size_t n;
	bool present;
};

/* What is known of a client or request when a rule set is asked. The
 * listener, method, user, groups and destination name are carried for
 * rules that will match on them; no rule key uses them yet. */
struct rules_query {
	const struct sockaddr *client;	/* the client's address */
	int listener;			/* index of the listener it came in on */
	uint8_t method;			/* negotiated SOCKS5_METHOD_x */
	const uint8_t *user;		/* authenticated user (raw RFC 1929
					 * bytes), or NULL */
	size_t user_len;
	const uint32_t *gids;		/* the user's groups (ngids may be 0) */
	size_t ngids;
	uint8_t cmd;			/* SOCKS5_CMD_x of the request */
	const char *dst_name;		/* the name asked for, or NULL */
	const struct sockaddr *dst;	/* a resolved or literal destination */
	uint16_t port;			/* the destination port */
};

/*
 * The verdict and the number of the rule that gave it: the rule's 1-based
 * position in its own list (the first entry of `clients` is 1, the first
 * entry of `rules` is 1 too), which session lines log as rule=N. 0 means no
 * entry matched, which refuses (fail closed).
 */
struct verdict {
	bool pass;
	int rule;
	unsigned methods;		/* the rule's methods (clients); 0 = all */
};

/* The first client rule whose `from` holds q->client. */
struct verdict rules_match_client(const struct ruleset *rs,
    const struct rules_query *q);
/* Whether any destination could pass for q's client, command and port,
 * before the destination is known (q->dst is not used). When none could
 * (so a name need not be resolved at all), pass is false and rule names
 * the rule that refuses every destination (0: no match). */
struct verdict rules_may_pass(const struct ruleset *rs,
    const struct rules_query *q);
/* The first request rule that matches q's client, command, q->dst (which
 * must not be NULL) and q->port. */
struct verdict rules_match_request(const struct ruleset *rs,
    const struct rules_query *q);
/* Frees the rules of rs and empties it. */
void rules_free(struct ruleset *rs);

#endif
