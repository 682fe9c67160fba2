/* rules.h: client and request rules: first match wins, no match refuses. */
#ifndef SOCKS5D_RULES_H
#define SOCKS5D_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

enum rule_action { RULE_PASS, RULE_BLOCK };

/* A rule's name: what session lines log as rule=NAME (with the NUL). */
#define RULE_NAME_LEN 32

struct rules_index;

struct port_range {
	uint16_t lo, hi;		/* inclusive; lo <= hi */
};

/* A set of networks, compiled: sorted, merged, disjoint ranges, IPv4 in
 * host order, IPv6 as 16 bytes compared with memcmp. */
struct range4 {
	uint32_t lo, hi;
};
struct range6 {
	uint8_t lo[16], hi[16];
};
struct net_set {
	struct range4 *v4;
	size_t n4;
	struct range6 *v6;
	size_t n6;
};

/* A set of names (lowercase, exact bytes), compiled into an open hash
 * table of cap slots (a power of two, or 0 when empty). */
struct name_slot {
	uint32_t hash;
	uint32_t len;
	const char *name;		/* NULL: a free slot */
};
struct name_set {
	struct name_slot *slots;
	size_t cap;
};

/*
 * One entry of a rule set. The config (or a test) fills the written keys;
 * rules_compile builds the matchers from them. A key the entry does not
 * have (count or mask 0, has_groups false) matches everything.
 */
struct rule {
	enum rule_action action;
	int line;			/* where it is in the configuration file */
	char *name;			/* rule=NAME on session lines; NULL: rule=N */
	bool quiet;			/* log = false: sessions it decides are
					 * logged at debug level only */
	struct cidr *from;		/* client networks */
	size_t nfrom;
	uint64_t listeners;		/* bit per listener index; 0 = all */
	unsigned methods;		/* bit (1 << SOCKS5_METHOD_x). clients:
					 * the methods the client may use;
					 * rules: the session's method */
	char **users;			/* exact user names */
	size_t nusers;
	uint32_t *gids;			/* groups (gids resolved at load) */
	size_t ngids;
	bool has_groups;		/* groups written (maybe none known) */
	unsigned commands;		/* bit (1 << SOCKS5_CMD_x); 0 = all */
	struct cidr *to;		/* destination networks (self expanded) */
	size_t nto;
	char **hosts;			/* exact destination names, lowercase */
	size_t nhosts;
	char **domains;			/* ".example.com": the name and below,
					 * kept lowercase without the dot */
	size_t ndomains;
	struct port_range *ports;	/* destination ports */
	size_t nports;
	/* limits (config_limits.c, limits_session.c) */
	uint64_t limit_id;		/* the rule's identity across reloads */
	uint32_t max_sessions;		/* at once per key; 0: no cap */
	uint8_t sessions_per;		/* the key: LIMITS_PER_CLIENT, _USER,
					 * _RULE (limits_session.h) */
	uint64_t rate[2];		/* bytes/s [0] up, [1] down; 0: none */
	bool rate_per_user;		/* one bucket for a user's sessions */
	/* compiled by rules_compile */
	struct net_set from_set, to_set;
	struct name_set host_set, domain_set, user_set;
};

/* A rule's first and cheap test, kept apart from the rule in one array so
 * that the many rules a query skips are read from a few cache lines: the
 * rule's masks, the spans (lowest to highest) of its IPv4 networks and
 * ports, and one bit per name (hash % 64). Passing it says only that the
 * rule may match. */
struct rule_head {
	uint64_t listeners;
	uint64_t names;
	uint32_t methods, commands;
	uint32_t from_lo, from_hi;	/* lo > hi: no IPv4 network */
	uint32_t to_lo, to_hi;
	uint16_t port_lo, port_hi;
	uint8_t flags;			/* HEAD_x */
};

/* An ordered list of rules (`clients` or `rules` in the file). present
 * says whether the list was written at all; an absent or empty list
 * matches nothing, so it refuses everything. heads and index: built by
 * rules_compile (heads: one per rule). */
struct ruleset {
	struct rule *list;
	size_t n;
	bool present;
	struct rule_head *heads;
	struct rules_index *index;	/* candidates per key (rules_index.c),
					 * or NULL: every rule is tried */
};

/* What is known of a client or request when a rule set is asked. */
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
 * entry of `rules` is 1 too), which session lines log as rule=N, or its
 * name when it has one. 0 means no entry matched, which refuses (fail
 * closed).
 */
struct verdict {
	bool pass;
	int rule;
	unsigned methods;		/* the rule's methods (clients); 0 = all */
	const char *name;		/* the rule's name, or NULL */
	bool quiet;			/* the rule has log = false */
};

/* Builds the matchers of every rule of rs from its written keys (again
 * if called again). Must be called before matching. */
void rules_compile(struct ruleset *rs);

/* The first client rule whose `from` and `listeners` hold q->client and
 * q->listener. */
struct verdict rules_match_client(const struct ruleset *rs,
    const struct rules_query *q);
/* Whether any destination could pass for q's session, command, port and
 * name (q->dst_name, or NULL), before any address is known (q->dst is not
 * used). When none could (so a name need not be resolved at all), pass is
 * false and rule names the rule that refuses (0: no match). */
struct verdict rules_may_pass(const struct ruleset *rs,
    const struct rules_query *q);
/* The first request rule that matches q's session, command, q->dst (NULL
 * matches no network) or q->dst_name (NULL matches no name), and q->port.
 * A destination key matches when the address or the name is in it. */
struct verdict rules_match_request(const struct ruleset *rs,
    const struct rules_query *q);
/* Frees the rules of rs and empties it. */
void rules_free(struct ruleset *rs);

/* For socks5d -t. */
/* Whether rule r can never match a request (or, for a client list, a
 * client); *why says why. */
bool rules_never_matches(const struct rule *r, bool is_clients,
    const char **why);
/* The index of the first rule before i that matches everything rule i
 * matches, so that rule i never decides anything; -1 if none is known
 * (the check is conservative: it may miss some, never invents one). */
long rules_shadowed_by(const struct ruleset *rs, size_t i, bool is_clients);

#endif
