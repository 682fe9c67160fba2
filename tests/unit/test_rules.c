/* test_rules.c: unit tests for the rule matcher (src/rules.c), built from rule structs, no config file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "rules.h"
#include "rules_index.h"
#include "socks5.h"

#define MAX_RULES 8
#define MAX_ITEMS 4

/* A rule set under construction (up to MAX_RULES rules, MAX_ITEMS of
 * each key), compiled before each query, freed by done(). */
struct fixture {
	struct ruleset rs;
};

static void
done(struct fixture *f)
{
	rules_free(&f->rs);
}
static struct sockaddr_storage addrs[8];
static int naddrs;

/* A sockaddr for "ip" and port (kept in a small static pool). */
static const struct sockaddr *
sa(const char *ip, uint16_t port)
{
	socklen_t len;
	struct sockaddr_storage *ss = &addrs[naddrs++ % 8];

	ck_assert_int_eq(addr_parse_ip(ip, port, ss, &len), 0);
	return (const struct sockaddr *)ss;
}

static struct rule *
add(struct fixture *f, enum rule_action action)
{
	struct rule *r;

	if (f->rs.list == NULL)
		ck_assert_ptr_nonnull(f->rs.list = calloc(MAX_RULES,
		    sizeof(struct rule)));
	ck_assert_uint_lt(f->rs.n, MAX_RULES);
	r = &f->rs.list[f->rs.n];
	r->action = action;
	r->line = (int)f->rs.n + 10;
	ck_assert_ptr_nonnull(r->from = calloc(MAX_ITEMS, sizeof(*r->from)));
	ck_assert_ptr_nonnull(r->to = calloc(MAX_ITEMS, sizeof(*r->to)));
	ck_assert_ptr_nonnull(r->ports = calloc(MAX_ITEMS, sizeof(*r->ports)));
	ck_assert_ptr_nonnull(r->users = calloc(MAX_ITEMS, sizeof(char *)));
	ck_assert_ptr_nonnull(r->hosts = calloc(MAX_ITEMS, sizeof(char *)));
	ck_assert_ptr_nonnull(r->domains = calloc(MAX_ITEMS, sizeof(char *)));
	ck_assert_ptr_nonnull(r->gids = calloc(MAX_ITEMS, sizeof(*r->gids)));
	f->rs.present = true;
	f->rs.n++;
	return r;
}

static void
add_from(struct rule *r, const char *cidr)
{
	ck_assert_uint_lt(r->nfrom, MAX_ITEMS);
	ck_assert_int_eq(addr_parse_cidr(cidr, &r->from[r->nfrom++]), 0);
}

static void
add_to(struct rule *r, const char *cidr)
{
	ck_assert_uint_lt(r->nto, MAX_ITEMS);
	ck_assert_int_eq(addr_parse_cidr(cidr, &r->to[r->nto++]), 0);
}

/* A host name, or a ".domain". */
static void
add_name(struct rule *r, const char *name)
{
	if (name[0] == '.') {
		ck_assert_uint_lt(r->ndomains, MAX_ITEMS);
		ck_assert_ptr_nonnull(r->domains[r->ndomains++] =
		    strdup(name + 1));
	} else {
		ck_assert_uint_lt(r->nhosts, MAX_ITEMS);
		ck_assert_ptr_nonnull(r->hosts[r->nhosts++] = strdup(name));
	}
}

static void
add_user(struct rule *r, const char *name)
{
	ck_assert_uint_lt(r->nusers, MAX_ITEMS);
	ck_assert_ptr_nonnull(r->users[r->nusers++] = strdup(name));
}

static void
add_gid(struct rule *r, uint32_t gid)
{
	ck_assert_uint_lt(r->ngids, MAX_ITEMS);
	r->gids[r->ngids++] = gid;
	r->has_groups = true;
}

static void
add_ports(struct rule *r, uint16_t lo, uint16_t hi)
{
	ck_assert_uint_lt(r->nports, MAX_ITEMS);
	r->ports[r->nports].lo = lo;
	r->ports[r->nports++].hi = hi;
}

/* The verdict of rules_match_request for client -> dst:port, command cmd. */
static struct verdict
request(struct fixture *f, const char *client, uint8_t cmd,
    const char *dst, uint16_t port)
{
	struct rules_query q = { .client = sa(client, 40000), .cmd = cmd,
	    .dst = sa(dst, port), .port = port };

	rules_compile(&f->rs);
	return rules_match_request(&f->rs, &q);
}

static struct verdict
may_pass(struct fixture *f, const char *client, uint8_t cmd,
    uint16_t port)
{
	struct rules_query q = { .client = sa(client, 40000), .cmd = cmd,
	    .port = port };

	rules_compile(&f->rs);
	return rules_may_pass(&f->rs, &q);
}

static struct verdict
client(struct fixture *f, const char *ip)
{
	struct rules_query q = { .client = sa(ip, 40000) };

	rules_compile(&f->rs);
	return rules_match_client(&f->rs, &q);
}

/* A request with every field: the session's and the destination. */
static struct verdict
ask(struct fixture *f, const struct rules_query *q, bool before)
{
	rules_compile(&f->rs);
	return before ? rules_may_pass(&f->rs, q) :
	    rules_match_request(&f->rs, q);
}

#define ck_verdict(v, want_pass, want_rule) do { \
	struct verdict v_ = (v); \
	ck_assert_msg(v_.pass == (want_pass) && v_.rule == (want_rule), \
	    "got pass=%d rule=%d, want pass=%d rule=%d", v_.pass, v_.rule, \
	    (want_pass), (want_rule)); \
} while (0)

START_TEST(empty_lists_refuse)
{
	struct fixture f = { 0 };

	ck_verdict(client(&f, "127.0.0.1"), false, 0);
	ck_verdict(request(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, "10.0.0.1", 80),
	    false, 0);
	ck_verdict(may_pass(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, 80), false, 0);
	f.rs.present = true;	/* written but empty: the same */
	ck_verdict(client(&f, "::1"), false, 0);
	ck_verdict(may_pass(&f, "::1", SOCKS5_CMD_CONNECT, 80), false, 0);
	done(&f);
}
END_TEST

START_TEST(rule_without_keys_matches_all)
{
	struct fixture f = { 0 };

	add(&f, RULE_PASS);
	ck_verdict(client(&f, "192.0.2.1"), true, 1);
	ck_verdict(client(&f, "2001:db8::1"), true, 1);
	ck_verdict(request(&f, "192.0.2.1", SOCKS5_CMD_CONNECT, "::1", 1),
	    true, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_UDP_ASSOCIATE, "10.1.2.3",
	    65535), true, 1);
	ck_verdict(may_pass(&f, "::1", SOCKS5_CMD_BIND, 22), true, 1);
	done(&f);
}
END_TEST

START_TEST(first_match_wins)
{
	struct fixture f = { 0 };

	add_to(add(&f, RULE_BLOCK), "10.0.0.0/8");
	add_to(add(&f, RULE_PASS), "10.1.0.0/16");	/* shadowed */
	add(&f, RULE_PASS);
	ck_verdict(request(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, "10.1.2.3", 80),
	    false, 1);
	ck_verdict(request(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, "11.1.2.3", 80),
	    true, 3);
	done(&f);
}
END_TEST

START_TEST(no_match_refuses)
{
	struct fixture f = { 0 };

	add_to(add(&f, RULE_PASS), "10.0.0.0/8");
	add_from(add(&f, RULE_PASS), "192.0.2.0/24");
	ck_verdict(request(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, "127.0.0.1", 9),
	    false, 0);
	ck_verdict(client(&f, "127.0.0.1"), true, 1);	/* client ignores to */
	done(&f);
}
END_TEST

START_TEST(networks_v4_v6)
{
	struct fixture f = { 0 };
	struct rule *r = add(&f, RULE_PASS);

	add_from(r, "127.0.0.0/8");
	add_from(r, "2001:db8::/32");
	add(&f, RULE_BLOCK);
	ck_verdict(client(&f, "127.255.0.1"), true, 1);
	ck_verdict(client(&f, "128.0.0.1"), false, 2);
	ck_verdict(client(&f, "2001:db8:ffff::1"), true, 1);
	ck_verdict(client(&f, "2001:db9::1"), false, 2);
	/* An IPv4-mapped client matches the IPv4 network. */
	ck_verdict(client(&f, "::ffff:127.0.0.1"), true, 1);
	done(&f);
}
END_TEST

START_TEST(destination_networks)
{
	struct fixture f = { 0 };

	add_to(add(&f, RULE_PASS), "::1");
	add_to(add(&f, RULE_PASS), "192.0.2.128/25");
	ck_verdict(request(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, "::1", 80),
	    true, 1);
	ck_verdict(request(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, "::2", 80),
	    false, 0);
	ck_verdict(request(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, "192.0.2.200",
	    80), true, 2);
	ck_verdict(request(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, "192.0.2.127",
	    80), false, 0);
	done(&f);
}
END_TEST

START_TEST(ports_and_ranges)
{
	struct fixture f = { 0 };
	struct rule *r = add(&f, RULE_PASS);

	add_ports(r, 443, 443);
	add_ports(r, 8000, 8080);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "::1", 443), true, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "::1", 442), false, 0);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "::1", 444), false, 0);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "::1", 8000), true, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "::1", 8080), true, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "::1", 8081), false, 0);
	done(&f);
}
END_TEST

START_TEST(commands)
{
	struct fixture f = { 0 };

	add(&f, RULE_PASS)->commands = 1u << SOCKS5_CMD_CONNECT;
	add(&f, RULE_BLOCK)->commands = (1u << SOCKS5_CMD_BIND) |
	    (1u << SOCKS5_CMD_UDP_ASSOCIATE);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "::1", 80), true, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_BIND, "::1", 80), false, 2);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_UDP_ASSOCIATE, "::1", 80),
	    false, 2);
	ck_verdict(may_pass(&f, "::1", SOCKS5_CMD_CONNECT, 80), true, 1);
	ck_verdict(may_pass(&f, "::1", SOCKS5_CMD_BIND, 80), false, 2);
	done(&f);
}
END_TEST

/* A block rule for some destinations does not decide before the
 * destination is known; a block for all does, and so does any pass. */
START_TEST(may_pass_semantics)
{
	struct fixture f = { 0 };

	add_to(add(&f, RULE_BLOCK), "10.0.0.0/8");
	add_ports(add(&f, RULE_PASS), 443, 443);
	add_from(add(&f, RULE_BLOCK), "192.0.2.0/24");
	add_to(add(&f, RULE_PASS), "127.0.0.1");
	ck_verdict(may_pass(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, 443), true, 2);
	ck_verdict(may_pass(&f, "192.0.2.1", SOCKS5_CMD_CONNECT, 80), false, 3);
	/* Past the partial block: a pass for some destinations may pass. */
	ck_verdict(may_pass(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, 80), true, 4);
	/* The request itself then takes the block for 10/8. */
	ck_verdict(request(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, "10.0.0.1", 443),
	    false, 1);
	done(&f);
}
END_TEST

START_TEST(may_pass_no_match)
{
	struct fixture f = { 0 };

	add_to(add(&f, RULE_BLOCK), "10.0.0.0/8");	/* partial: no decision */
	add_ports(add(&f, RULE_PASS), 443, 443);
	ck_verdict(may_pass(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, 80), false, 0);
	done(&f);
}
END_TEST

/* Query fields (user, groups, method, listener, name) do not change the
 * verdict of a rule that has no key for them. */
START_TEST(unused_query_fields)
{
	struct fixture f = { 0 };
	static const uint32_t gids[] = { 50 };
	struct rules_query q = { .client = sa("127.0.0.1", 1), .listener = 3,
	    .method = SOCKS5_METHOD_NONE, .user = (const uint8_t *)"alice",
	    .user_len = 5, .gids = gids, .ngids = 1, .cmd = SOCKS5_CMD_CONNECT, .dst_name = "example.org",
	    .dst = sa("::1", 80), .port = 80 };

	add_ports(add(&f, RULE_PASS), 80, 80);
	rules_compile(&f.rs);
	ck_verdict(rules_match_request(&f.rs, &q), true, 1);
	ck_verdict(rules_may_pass(&f.rs, &q), true, 1);
	ck_verdict(rules_match_client(&f.rs, &q), true, 1);
	done(&f);
}
END_TEST

/* Every IPv6 form that embeds an IPv4 address is refused by a block of
 * that IPv4 network, whichever rule comes next. */
START_TEST(embedded_v4_blocked)
{
	struct fixture f = { 0 };
	static const char *const forms[] = { "::ffff:127.0.0.1",
	    "::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::",
	    "2002:7f00:1:ffff::1", "64:ff9b::127.1.2.3" };

	add_to(add(&f, RULE_BLOCK), "127.0.0.0/8");
	add(&f, RULE_PASS);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, forms[i], 80),
		    false, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "64:ff9b::808:808",
	    80), true, 2);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "2002:808:808::",
	    80), true, 2);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "::1", 80), true, 2);
	done(&f);
}
END_TEST

/* An IPv4 network written in its mapped form is an IPv4 network. */
START_TEST(mapped_network_is_v4)
{
	struct fixture f = { 0 };

	add_to(add(&f, RULE_BLOCK), "::ffff:10.0.0.0/104");
	add(&f, RULE_PASS);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "10.1.2.3", 80),
	    false, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "::ffff:10.1.2.3",
	    80), false, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "11.1.2.3", 80),
	    true, 2);
	done(&f);
}
END_TEST

/* Overlapping and nested networks in one rule, in any order. */
START_TEST(overlapping_networks)
{
	struct fixture f = { 0 };
	struct rule *r = add(&f, RULE_PASS);

	add_to(r, "10.1.0.0/16");
	add_to(r, "10.0.0.0/8");
	add_to(r, "10.200.0.0/16");
	add_to(r, "192.0.2.7");
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "10.255.255.255", 1),
	    true, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "10.0.0.0", 1),
	    true, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "192.0.2.7", 1),
	    true, 1);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "192.0.2.8", 1),
	    false, 0);
	ck_verdict(request(&f, "::1", SOCKS5_CMD_CONNECT, "9.255.255.255", 1),
	    false, 0);
	done(&f);
}
END_TEST

static struct rules_query
named(const char *name, const char *dst)
{
	return (struct rules_query){ .client = sa("127.0.0.1", 1),
	    .cmd = SOCKS5_CMD_CONNECT, .dst_name = name,
	    .dst = dst ? sa(dst, 80) : NULL, .port = 80 };
}

/* Exact names, ".domain" (the name and below), any case, final dot. */
START_TEST(destination_names)
{
	struct fixture f = { 0 };
	struct rule *r = add(&f, RULE_PASS);
	struct rules_query q;

	add_name(r, "www.example.org");
	add_name(r, ".example.com");
	q = named("www.example.org", "192.0.2.1");
	ck_verdict(ask(&f, &q, false), true, 1);
	q = named("WWW.Example.ORG.", "192.0.2.1");
	ck_verdict(ask(&f, &q, false), true, 1);
	q = named("a.www.example.org", "192.0.2.1");
	ck_verdict(ask(&f, &q, false), false, 0);
	q = named("example.com", "192.0.2.1");
	ck_verdict(ask(&f, &q, false), true, 1);
	q = named("a.b.example.com", "192.0.2.1");
	ck_verdict(ask(&f, &q, false), true, 1);
	q = named("badexample.com", "192.0.2.1");
	ck_verdict(ask(&f, &q, false), false, 0);
	q = named("example.com.evil", "192.0.2.1");
	ck_verdict(ask(&f, &q, false), false, 0);
	q = named(NULL, "192.0.2.1");	/* a literal address has no name */
	ck_verdict(ask(&f, &q, false), false, 0);
	done(&f);
}
END_TEST

/* A name resolving into a blocked network is blocked: the address is
 * matched after the name. Before resolution, a block by address does not
 * decide, a block by name does. */
START_TEST(name_then_address)
{
	struct fixture f = { 0 };
	struct rules_query q;

	add_to(add(&f, RULE_BLOCK), "127.0.0.0/8");
	add_name(add(&f, RULE_BLOCK), ".blocked.test");
	add_name(add(&f, RULE_PASS), ".example.com");
	q = named("www.example.com", NULL);
	ck_verdict(ask(&f, &q, true), true, 3);
	q = named("www.example.com", "127.0.0.1");
	ck_verdict(ask(&f, &q, false), false, 1);
	q = named("www.example.com", "64:ff9b::7f00:1");
	ck_verdict(ask(&f, &q, false), false, 1);
	q = named("www.example.com", "192.0.2.1");
	ck_verdict(ask(&f, &q, false), true, 3);
	q = named("x.blocked.test", NULL);
	ck_verdict(ask(&f, &q, true), false, 2);
	q = named("other.test", NULL);	/* no pass could match it */
	ck_verdict(ask(&f, &q, true), false, 0);
	/* Without a name (a literal address, or any destination of a UDP
	 * association) the pass by name may pass; the address decides. */
	q = named(NULL, NULL);
	ck_verdict(ask(&f, &q, true), true, 3);
	q = named(NULL, "192.0.2.1");
	ck_verdict(ask(&f, &q, false), false, 0);
	done(&f);
}
END_TEST

START_TEST(users_groups_methods)
{
	struct fixture f = { 0 };
	static const uint32_t alice_gids[] = { 100, 27 }, bob_gids[] = { 5 };
	struct rules_query q = named(NULL, "192.0.2.1");
	struct rule *r;

	add_user(add(&f, RULE_BLOCK), "mallory");
	add_user(r = add(&f, RULE_PASS), "alice");
	add_to(r, "192.0.2.0/24");
	add_gid(r = add(&f, RULE_PASS), 27);
	add_gid(r, 30);
	add_ports(r, 443, 443);
	(r = add(&f, RULE_PASS))->methods = 1u << SOCKS5_METHOD_NONE;
	add_ports(r, 22, 22);
	q.method = SOCKS5_METHOD_USERPASS;
	q.user = (const uint8_t *)"alice";
	q.user_len = 5;
	q.gids = alice_gids;
	q.ngids = 2;
	ck_verdict(ask(&f, &q, false), true, 2);
	q.user = (const uint8_t *)"alicex";	/* exact, with its length */
	q.user_len = 5;
	ck_verdict(ask(&f, &q, false), true, 2);
	q.user_len = 6;
	ck_verdict(ask(&f, &q, false), false, 0);
	q.port = 443;
	ck_verdict(ask(&f, &q, false), true, 3);	/* by group 27 */
	q.gids = bob_gids;
	q.ngids = 1;
	ck_verdict(ask(&f, &q, false), false, 0);
	q.user = (const uint8_t *)"mallory";
	q.user_len = 7;
	ck_verdict(ask(&f, &q, false), false, 1);
	q.user = NULL;
	q.user_len = 0;
	q.ngids = 0;
	q.port = 22;
	ck_verdict(ask(&f, &q, false), false, 0);	/* method is username */
	q.method = SOCKS5_METHOD_NONE;
	ck_verdict(ask(&f, &q, false), true, 4);
	done(&f);
}
END_TEST

START_TEST(listeners_key)
{
	struct fixture f = { 0 };
	struct rules_query q = { .client = sa("127.0.0.1", 1) };

	add(&f, RULE_BLOCK)->listeners = 1u << 2;
	add(&f, RULE_PASS)->listeners = 1u << 0;
	add(&f, RULE_PASS)->listeners = (uint64_t)1 << 63;
	rules_compile(&f.rs);
	q.listener = 2;
	ck_verdict(rules_match_client(&f.rs, &q), false, 1);
	q.listener = 0;
	ck_verdict(rules_match_client(&f.rs, &q), true, 2);
	q.listener = 63;
	ck_verdict(rules_match_client(&f.rs, &q), true, 3);
	q.listener = 1;
	ck_verdict(rules_match_client(&f.rs, &q), false, 0);
	done(&f);
}
END_TEST

/* The verdict carries the rule's name and log switch. */
START_TEST(verdict_name_quiet)
{
	struct fixture f = { 0 };
	struct rule *r = add(&f, RULE_PASS);
	struct verdict v;

	r->name = strdup("office");
	r->quiet = true;
	add_from(r, "10.0.0.0/8");
	v = client(&f, "10.1.1.1");
	ck_assert_str_eq(v.name, "office");
	ck_assert(v.quiet);
	v = client(&f, "11.1.1.1");
	ck_assert_ptr_null(v.name);
	ck_assert(!v.quiet);
	done(&f);
}
END_TEST

/* The checks of socks5d -t: shadowed rules and rules that never match. */
START_TEST(shadowed_rules)
{
	struct fixture f = { 0 };
	struct rule *r;
	const char *why;

	add_to(add(&f, RULE_BLOCK), "10.0.0.0/8");		/* 1 */
	add_to(add(&f, RULE_PASS), "10.1.0.0/16");		/* 2: by 1 */
	add_to(r = add(&f, RULE_PASS), "10.1.0.0/16");		/* 3: no */
	add_to(r, "11.0.0.0/8");
	add_ports(r = add(&f, RULE_PASS), 1, 1024);		/* 4 */
	add_name(r, ".example.com");
	add_ports(r = add(&f, RULE_PASS), 80, 80);		/* 5: by 4 */
	add_name(r, "www.example.com");
	add_name(r, ".a.example.com");
	add_ports(r = add(&f, RULE_PASS), 80, 2000);		/* 6: no */
	add_name(r, "www.example.com");
	add(&f, RULE_PASS);					/* 7 */
	add_user(add(&f, RULE_PASS), "alice");			/* 8: by 7 */
	rules_compile(&f.rs);
	ck_assert_int_eq(rules_shadowed_by(&f.rs, 0, false), -1);
	ck_assert_int_eq(rules_shadowed_by(&f.rs, 1, false), 0);
	ck_assert_int_eq(rules_shadowed_by(&f.rs, 2, false), -1);
	ck_assert_int_eq(rules_shadowed_by(&f.rs, 3, false), -1);
	ck_assert_int_eq(rules_shadowed_by(&f.rs, 4, false), 3);
	ck_assert_int_eq(rules_shadowed_by(&f.rs, 5, false), -1);
	ck_assert_int_eq(rules_shadowed_by(&f.rs, 7, false), 6);
	ck_assert(!rules_never_matches(&f.rs.list[7], false, &why));
	f.rs.list[7].methods = 1u << SOCKS5_METHOD_NONE;
	ck_assert(rules_never_matches(&f.rs.list[7], false, &why));
	f.rs.list[6].has_groups = true;			/* none known */
	ck_assert(rules_never_matches(&f.rs.list[6], false, &why));
	done(&f);
}
END_TEST

START_TEST(free_empties)
{
	struct ruleset rs = { calloc(2, sizeof(struct rule)), 2, true, NULL, NULL };

	ck_assert_ptr_nonnull(rs.list);
	rs.list[0].from = calloc(1, sizeof(struct cidr));
	rs.list[1].ports = calloc(1, sizeof(struct port_range));
	rules_free(&rs);
	ck_assert_ptr_null(rs.list);
	ck_assert_uint_eq(rs.n, 0);
	ck_assert(!rs.present);
	rules_free(&rs);	/* twice is harmless */
}
END_TEST

/* ---- the index against the rules tried in order --------------------- */

#define RAND_RULES 150		/* three words of candidates */
#define RAND_QUERIES 4000

static uint64_t rand_state;
static unsigned rand_density;	/* 1 to 4: how many rules have a key */

/* xorshift64: the same rules and queries on every run. */
static unsigned
rnd(unsigned n)
{
	rand_state ^= rand_state << 13;
	rand_state ^= rand_state >> 7;
	rand_state ^= rand_state << 17;
	return (unsigned)(rand_state % n);
}

/* Few values of each kind, so that rules and queries meet often. */
static const char *const rand_v4[] = { "10.0.0.0/8", "10.1.0.0/16",
    "10.1.2.0/24", "10.1.2.3/32", "192.168.0.0/16", "0.0.0.0/0",
    "127.0.0.0/8", "10.1.2.128/25" };
static const char *const rand_v6[] = { "fd00::/8", "fd00:1::/32", "::1/128",
    "::ffff:10.1.0.0/112", "2001:db8::/32", "::/0" };
static const char *const rand_names[] = { "a.example", "b.example",
    ".example", ".a.example", "localhost", ".test", "x.y.test" };
static const char *const rand_users[] = { "ann", "bob" };
static const char *const rand_ips[] = { "10.1.2.3", "10.1.2.200", "10.9.9.9",
    "192.168.1.1", "127.0.0.1", "8.8.8.8", "fd00:1::5", "fd77::1", "::1",
    "::ffff:10.1.2.3", "64:ff9b::a01:203", "2002:a01:203::1", "::a01:203",
    "2001:db8::1", "2a00::1", "0.0.0.0" };
static const char *const rand_qnames[] = { "a.example", "A.Example.",
    "c.a.example", "example", "b.example", "localhost", "x.y.test",
    "z.test", "other.org", "" };

/* Whether a rule gets a key: in rand_density of 5 rules. */
static bool
often(void)
{
	return rnd(5) < rand_density;
}

static void
rand_key_nets(struct rule *r, bool to)
{
	unsigned n = rnd(3) + 1;

	for (unsigned i = 0; i < n; i++) {
		const char *c = rnd(3) == 0 ? rand_v6[rnd(6)] : rand_v4[rnd(8)];

		if (to)
			add_to(r, c);
		else
			add_from(r, c);
	}
}

static void
rand_rule(struct fixture *f)
{
	struct rule *r = add(f, rnd(2) ? RULE_PASS : RULE_BLOCK);

	if (often())
		rand_key_nets(r, false);
	if (often())
		rand_key_nets(r, true);
	for (unsigned n = often() ? rnd(3) + 1 : 0; n > 0; n--)
		add_name(r, rand_names[rnd(7)]);
	if (often()) {
		uint16_t lo = (uint16_t)rnd(100);

		add_ports(r, lo, (uint16_t)(lo + rnd(20)));
	}
	if (rnd(6) == 0)
		add_ports(r, 40000, 65535);
	if (rnd(4) == 0)
		r->commands = 1u << (rnd(3) + 1);
	if (rnd(6) == 0)
		r->methods = 1u << (rnd(2) * 2);	/* none or username */
	if (rnd(6) == 0)
		add_user(r, rand_users[rnd(2)]);
	if (rnd(8) == 0)
		add_gid(r, 100 + rnd(2));
	if (rnd(8) == 0)
		r->listeners = 1u << rnd(2);
}

static void
rand_query(struct rules_query *q, uint32_t *gid)
{
	memset(q, 0, sizeof(*q));
	q->client = sa(rand_ips[rnd(16)], 40000);
	q->listener = (int)rnd(3);
	q->method = (uint8_t)(rnd(2) * 2);
	if (rnd(2)) {
		q->user = (const uint8_t *)rand_users[rnd(2)];
		q->user_len = 3;
		*gid = 100 + rnd(3);
		q->gids = gid;
		q->ngids = 1;
	}
	q->cmd = (uint8_t)rnd(5);
	if (rnd(2))
		q->dst_name = rand_qnames[rnd(10)];
	if (rnd(8) != 0)
		q->dst = sa(rand_ips[rnd(16)], 0);
	q->port = rnd(2) ? (uint16_t)rnd(130) : (uint16_t)(39990 + rnd(20));
}

static void
same_verdict(struct verdict a, struct verdict b)
{
	ck_assert(a.pass == b.pass);
	ck_assert_int_eq(a.rule, b.rule);
	ck_assert_uint_eq(a.methods, b.methods);
	ck_assert_ptr_eq(a.name, b.name);
	ck_assert(a.quiet == b.quiet);
}

/* The three questions with the index and without it (every rule tried
 * in order, as before the index) give the same verdicts. */
START_TEST(index_same_verdicts)
{
	struct fixture f = { 0 };
	struct rule *list;
	struct rules_index *ix;
	size_t nrules = RAND_RULES;

	rand_state = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
	rand_density = 1 + (unsigned)_i % 4;
	ck_assert_ptr_nonnull(list = calloc(nrules, sizeof(*list)));
	f.rs.list = list;	/* add() takes the first MAX_RULES only */
	for (size_t i = 0; i < nrules; i++) {
		struct fixture one = { 0 };

		rand_rule(&one);
		list[i] = one.rs.list[0];
		free(one.rs.list);
		f.rs.n = i + 1;
	}
	f.rs.present = true;
	rules_compile(&f.rs);
	ck_assert_ptr_nonnull(ix = f.rs.index);
	for (int n = 0; n < RAND_QUERIES; n++) {
		struct rules_query q;
		struct verdict v[3];
		uint32_t gid;

		rand_query(&q, &gid);
		v[0] = rules_match_client(&f.rs, &q);
		v[1] = rules_may_pass(&f.rs, &q);
		v[2] = rules_match_request(&f.rs, &q);
		f.rs.index = NULL;
		same_verdict(v[0], rules_match_client(&f.rs, &q));
		same_verdict(v[1], rules_may_pass(&f.rs, &q));
		same_verdict(v[2], rules_match_request(&f.rs, &q));
		f.rs.index = ix;
	}
	done(&f);
}
END_TEST

/* How many candidates the index gives q for the request question. */
static size_t
candidates(const struct ruleset *rs, const struct rules_query *q)
{
	struct query_name qn = { .len = 0 };
	struct rules_iter it;
	size_t i, n = 0;

	if (q->dst_name != NULL) {	/* a lowercase name of one label */
		qn.len = strlen(q->dst_name);
		memcpy(qn.text, q->dst_name, qn.len + 1);
		qn.nsuffix = 1;
		qn.hash[0] = rules_name_hash(qn.text, qn.len);
	}
	rules_iter_begin(&it, rs, q, &qn, RQ_REQUEST);
	while (rules_iter_next(&it, &i))
		n++;
	return n;
}

/* 200 rules, each with its own /24 or its own host: an address or a
 * name has one candidate, whatever the number of rules. */
START_TEST(index_selects)
{
	struct fixture f = { 0 };
	struct rule *list;
	char text[32];
	struct rules_query q = { .cmd = SOCKS5_CMD_CONNECT, .port = 80 };

	ck_assert_ptr_nonnull(list = calloc(200, sizeof(*list)));
	f.rs.list = list;
	for (size_t i = 0; i < 200; i++) {
		struct fixture one = { 0 };
		struct rule *r = add(&one, RULE_BLOCK);

		snprintf(text, sizeof(text), i % 2 ? "10.0.%zu.0/24" : "h%zu",
		    i);
		if (i % 2)
			add_to(r, text);
		else
			add_name(r, text);
		list[i] = *r;
		free(one.rs.list);
		f.rs.n = i + 1;
	}
	rules_compile(&f.rs);
	q.client = sa("127.0.0.1", 40000);
	q.dst = sa("10.0.77.9", 80);
	ck_assert_uint_eq(candidates(&f.rs, &q), 1);
	ck_assert_int_eq(rules_match_request(&f.rs, &q).rule, 78);
	q.dst = sa("10.0.78.9", 80);	/* no rule has 10.0.78.0/24 */
	ck_assert_uint_eq(candidates(&f.rs, &q), 0);
	q.dst_name = "h78";
	ck_assert_uint_eq(candidates(&f.rs, &q), 1);
	ck_assert_int_eq(rules_match_request(&f.rs, &q).rule, 79);
	done(&f);
}
END_TEST

static Suite *
rules_suite(void)
{
	Suite *s = suite_create("rules");
	TCase *tc = tcase_create("match");

	tcase_add_test(tc, empty_lists_refuse);
	tcase_add_test(tc, rule_without_keys_matches_all);
	tcase_add_test(tc, first_match_wins);
	tcase_add_test(tc, no_match_refuses);
	tcase_add_test(tc, networks_v4_v6);
	tcase_add_test(tc, destination_networks);
	tcase_add_test(tc, ports_and_ranges);
	tcase_add_test(tc, commands);
	tcase_add_test(tc, may_pass_semantics);
	tcase_add_test(tc, may_pass_no_match);
	tcase_add_test(tc, unused_query_fields);
	tcase_add_test(tc, embedded_v4_blocked);
	tcase_add_test(tc, mapped_network_is_v4);
	tcase_add_test(tc, overlapping_networks);
	tcase_add_test(tc, destination_names);
	tcase_add_test(tc, name_then_address);
	tcase_add_test(tc, users_groups_methods);
	tcase_add_test(tc, listeners_key);
	tcase_add_test(tc, verdict_name_quiet);
	tcase_add_test(tc, shadowed_rules);
	tcase_add_test(tc, free_empties);
	suite_add_tcase(s, tc);
	tc = tcase_create("index");
	tcase_add_loop_test(tc, index_same_verdicts, 0, 8);
	tcase_add_test(tc, index_selects);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(rules_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
