/* test_rules.c: unit tests for the rule matcher (src/rules.c), built from rule structs, no config file. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "rules.h"
#include "socks5.h"

#define MAX_RULES 8
#define MAX_ITEMS 4

/* A rule set under construction: storage for up to MAX_RULES rules. */
struct fixture {
	struct rule rules[MAX_RULES];
	struct cidr from[MAX_RULES][MAX_ITEMS], to[MAX_RULES][MAX_ITEMS];
	struct port_range ports[MAX_RULES][MAX_ITEMS];
	struct ruleset rs;
};

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

	ck_assert_uint_lt(f->rs.n, MAX_RULES);
	r = &f->rules[f->rs.n];
	memset(r, 0, sizeof(*r));
	r->action = action;
	r->line = (int)f->rs.n + 10;
	r->from = f->from[f->rs.n];
	r->to = f->to[f->rs.n];
	r->ports = f->ports[f->rs.n];
	f->rs.list = f->rules;
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

static void
add_ports(struct rule *r, uint16_t lo, uint16_t hi)
{
	ck_assert_uint_lt(r->nports, MAX_ITEMS);
	r->ports[r->nports].lo = lo;
	r->ports[r->nports++].hi = hi;
}

/* The verdict of rules_match_request for client -> dst:port, command cmd. */
static struct verdict
request(const struct fixture *f, const char *client, uint8_t cmd,
    const char *dst, uint16_t port)
{
	struct rules_query q = { .client = sa(client, 40000), .cmd = cmd,
	    .dst = sa(dst, port), .port = port };

	return rules_match_request(&f->rs, &q);
}

static struct verdict
may_pass(const struct fixture *f, const char *client, uint8_t cmd,
    uint16_t port)
{
	struct rules_query q = { .client = sa(client, 40000), .cmd = cmd,
	    .port = port };

	return rules_may_pass(&f->rs, &q);
}

static struct verdict
client(const struct fixture *f, const char *ip)
{
	struct rules_query q = { .client = sa(ip, 40000) };

	return rules_match_client(&f->rs, &q);
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
}
END_TEST

START_TEST(may_pass_no_match)
{
	struct fixture f = { 0 };

	add_to(add(&f, RULE_BLOCK), "10.0.0.0/8");	/* partial: no decision */
	add_ports(add(&f, RULE_PASS), 443, 443);
	ck_verdict(may_pass(&f, "127.0.0.1", SOCKS5_CMD_CONNECT, 80), false, 0);
}
END_TEST

/* Keys not matched on yet (user, groups, method, listener, name) do not
 * change the verdict of a rule that has none of them. */
START_TEST(unused_query_fields)
{
	struct fixture f = { 0 };
	static const uint32_t gids[] = { 50 };
	struct rules_query q = { .client = sa("127.0.0.1", 1), .listener = 3,
	    .method = SOCKS5_METHOD_NONE, .user = (const uint8_t *)"alice",
	    .user_len = 5, .gids = gids, .ngids = 1, .cmd = SOCKS5_CMD_CONNECT, .dst_name = "example.org",
	    .dst = sa("::1", 80), .port = 80 };

	add_ports(add(&f, RULE_PASS), 80, 80);
	ck_verdict(rules_match_request(&f.rs, &q), true, 1);
	ck_verdict(rules_may_pass(&f.rs, &q), true, 1);
	ck_verdict(rules_match_client(&f.rs, &q), true, 1);
}
END_TEST

START_TEST(free_empties)
{
	struct ruleset rs = { calloc(2, sizeof(struct rule)), 2, true };

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
	tcase_add_test(tc, free_empties);
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
