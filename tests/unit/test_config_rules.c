/* test_config_rules.c: unit tests for the rule keys of the configuration (config_rules.c) and the -t diagnostics about rules. */
#include <check.h>
#include <stdbool.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "socks5.h"

#define HEAD \
	"user = \"nobody\";\n" \
	"listeners = ( { address = \"127.0.0.1\"; port = 1080; name = \"inside\"; },\n" \
	"  { address = \"::1\"; port = 1081; methods = [ \"username\" ]; } );\n" \
	"clients = ( { action = \"pass\"; } );\n"
/* The line of the first rule after HEAD and "rules = (\n". */
#define RULE_LINE 6

/* One config_load of a temporary file and what it said. */
struct load {
	char path[64];
	struct config *conf;
	struct diag d;
};

static void
load(struct load *l, const char *text)
{
	int fd;

	memset(l, 0, sizeof(*l));
	snprintf(l->path, sizeof(l->path), "/tmp/socks5d-test-XXXXXX");
	ck_assert_int_ge(fd = mkstemp(l->path), 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	l->conf = config_load(l->path, &l->d);
	unlink(l->path);
}

static void
load_rules(struct load *l, const char *rules)
{
	char text[4096];

	snprintf(text, sizeof(text), HEAD "rules = (\n%s\n);\n", rules);
	load(l, text);
}

static void
done(struct load *l)
{
	config_free(l->conf);
	diag_free(&l->d);
}

/* Records of severity sev on line (any line: -1) that mention needle. */
static int
count(const struct load *l, enum diag_severity sev, int line,
    const char *needle)
{
	int n = 0;

	for (size_t i = 0; i < l->d.n; i++) {
		const struct diag_record *r = &l->d.recs[i];

		if (r->severity == sev && (line < 0 || r->line == line) &&
		    strstr(r->message, needle) != NULL)
			n++;
	}
	return n;
}

static void
show(const struct load *l)
{
	diag_print(&l->d, stderr);
}

#define ck_diag(l, sev, line, needle) do { \
	if (count((l), (sev), (line), (needle)) == 0) \
		show(l); \
	ck_assert_msg(count((l), (sev), (line), (needle)) > 0, \
	    "no %s on line %d mentioning \"%s\"", \
	    (sev) == DIAG_ERROR ? "error" : "warning", (line), (needle)); \
} while (0)

static void
assert_error(const char *rules, int line, const char *needle)
{
	struct load l;

	load_rules(&l, rules);
	ck_assert_ptr_null(l.conf);
	ck_diag(&l, DIAG_ERROR, line, needle);
	done(&l);
}

static void
assert_warning(const char *rules, int line, const char *needle)
{
	struct load l;

	load_rules(&l, rules);
	if (l.conf == NULL)
		show(&l);
	ck_assert_ptr_nonnull(l.conf);
	ck_diag(&l, DIAG_WARNING, line, needle);
	done(&l);
}

static void
assert_clean(const char *rules)
{
	struct load l;

	load_rules(&l, rules);
	if (l.d.n != 0)
		show(&l);
	ck_assert_ptr_nonnull(l.conf);
	ck_assert_uint_eq(l.d.n, 0);
	done(&l);
}

START_TEST(every_key)
{
	struct load l;
	const struct rule *r;
	struct group *gr = getgrnam("root");

	ck_assert_ptr_nonnull(gr);
	load_rules(&l,
	    "{ action = \"block\"; name = \"no-meta\"; log = false;\n"
	    "  to = [ \"169.254.0.0/16\", \"WWW.Example.ORG.\", \".Example.COM\" ]; },\n"
	    "{ action = \"pass\"; from = [ \"127.0.0.0/8\" ];\n"
	    "  listeners = [ \"inside\", \"[::1]:1081\" ];\n"
	    "  methods = [ \"username\" ]; users = [ \"alice\", \"bob\" ];\n"
	    "  groups = [ \"root\" ]; commands = [ \"connect\" ];\n"
	    "  ports = ( 80, \"8000-8080\" ); }");
	if (l.conf == NULL || l.d.n != 0)
		show(&l);
	ck_assert_ptr_nonnull(l.conf);
	ck_assert_uint_eq(l.d.n, 0);
	ck_assert_uint_eq(l.conf->rules.n, 2);
	r = &l.conf->rules.list[0];
	ck_assert_str_eq(r->name, "no-meta");
	ck_assert(r->quiet);
	ck_assert_uint_eq(r->nto, 1);
	ck_assert_uint_eq(r->nhosts, 1);
	ck_assert_str_eq(r->hosts[0], "www.example.org");
	ck_assert_uint_eq(r->ndomains, 1);
	ck_assert_str_eq(r->domains[0], "example.com");
	r = &l.conf->rules.list[1];
	ck_assert_ptr_null(r->name);
	ck_assert(!r->quiet);
	ck_assert_uint_eq(r->listeners, 3);
	ck_assert_uint_eq(r->methods, 1u << SOCKS5_METHOD_USERPASS);
	ck_assert_uint_eq(r->nusers, 2);
	ck_assert(r->has_groups);
	ck_assert_uint_eq(r->ngids, 1);
	ck_assert_uint_eq(r->gids[0], gr->gr_gid);
	ck_assert_str_eq(l.conf->listeners[0].name, "inside");
	ck_assert_ptr_null(l.conf->listeners[1].name);
	done(&l);
}
END_TEST

/* self: loopback, 0.0.0.0/8, ::, this host's and the listeners' own
 * addresses. */
START_TEST(self_expands)
{
	struct load l;
	const struct rule *r;
	struct sockaddr_storage ss;
	socklen_t len;
	static const char *const in_self[] = { "127.0.0.1", "127.9.9.9",
	    "0.0.0.0", "::", "::1" };

	load_rules(&l, "{ action = \"block\"; to = [ \"self\" ]; },\n"
	    "{ action = \"pass\"; }");
	ck_assert_ptr_nonnull(l.conf);
	r = &l.conf->rules.list[0];
	ck_assert_uint_ge(r->nto, 4);
	for (size_t i = 0; i < sizeof(in_self) / sizeof(in_self[0]); i++) {
		struct rules_query q = { .client = (struct sockaddr *)&ss,
		    .cmd = SOCKS5_CMD_CONNECT, .port = 80 };

		ck_assert_int_eq(addr_parse_ip(in_self[i], 80, &ss, &len), 0);
		q.dst = (struct sockaddr *)&ss;
		ck_assert_msg(!rules_match_request(&l.conf->rules, &q).pass,
		    "%s passed", in_self[i]);
	}
	done(&l);
}
END_TEST

START_TEST(bad_values)
{
	assert_error("{ action = \"pass\"; to = [ \"10.0.0.0/33\" ]; }",
	    RULE_LINE, "10.0.0.0/33");
	assert_error("{ action = \"pass\"; to = [ \"999.1.2.3\" ]; }",
	    RULE_LINE, "999.1.2.3");
	assert_error("{ action = \"pass\"; to = [ \"a..b\" ]; }", RULE_LINE,
	    "a..b");
	assert_error("{ action = \"pass\"; to = [ \".\" ]; }", RULE_LINE, "to");
	assert_error("{ action = \"pass\"; to = [ \"exa mple.com\" ]; }",
	    RULE_LINE, "to");
	assert_error("{ action = \"pass\"; ports = [ 70000 ]; }", RULE_LINE,
	    "port");
	assert_error("{ action = \"pass\"; ports = [ \"90-80\" ]; }", RULE_LINE,
	    "port");
	assert_error("{ action = \"pass\"; commands = [ \"ping\" ]; }",
	    RULE_LINE, "ping");
	assert_error("{ action = \"pass\"; methods = [ \"gssapi\" ]; }",
	    RULE_LINE, "gssapi");
	assert_error("{ action = \"pass\"; users = [ \"*\" ]; }", RULE_LINE,
	    "users");
	assert_error("{ action = \"pass\"; users = [ \"\" ]; }", RULE_LINE,
	    "users");
	assert_error("{ action = \"pass\"; listeners = [ \"outside\" ]; }",
	    RULE_LINE, "outside");
	assert_error("{ action = \"pass\"; listeners = [ \"127.0.0.1:9\" ]; }",
	    RULE_LINE, "127.0.0.1:9");
	assert_error("{ action = \"pass\"; name = \"7up\"; }", RULE_LINE,
	    "7up");
	assert_error("{ action = \"pass\"; name = \"a b\"; }", RULE_LINE,
	    "name");
	assert_error("{ action = \"pass\"; name = \"a\"; },\n"
	    "{ action = \"pass\"; name = \"a\"; }", RULE_LINE + 1, "taken");
	assert_error("{ action = \"pass\"; log = \"no\"; }", RULE_LINE, "log");
}
END_TEST

/* An empty list would match nothing: an error, whichever key. */
START_TEST(empty_lists)
{
	static const char *const keys[] = { "from", "to", "ports", "commands",
	    "users", "groups", "listeners", "methods" };
	char text[256];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(text, sizeof(text),
		    "{ action = \"pass\"; %s = [ ]; }", keys[i]);
		assert_error(text, RULE_LINE, keys[i]);
	}
}
END_TEST

START_TEST(unknown_group_warns)
{
	assert_warning("{ action = \"pass\"; groups = [ \"no-such-group-x\" ]; }",
	    RULE_LINE, "no-such-group-x");
	assert_warning("{ action = \"pass\"; groups = [ \"no-such-group-x\" ]; }",
	    RULE_LINE, "never matches");
	/* One known group: it matches, no "never". */
	{
		struct load l;

		load_rules(&l, "{ action = \"pass\"; groups = [ \"no-such-group-x\", \"root\" ]; }");
		ck_assert_ptr_nonnull(l.conf);
		ck_assert_int_eq(count(&l, DIAG_WARNING, -1, "never"), 0);
		done(&l);
	}
}
END_TEST

START_TEST(never_matches)
{
	assert_warning("{ action = \"pass\"; methods = [ \"none\" ]; users = [ \"alice\" ]; }",
	    RULE_LINE, "never matches");
	assert_warning("{ action = \"pass\"; },\n"
	    "{ action = \"block\"; to = [ \"10.0.0.0/8\" ]; }", RULE_LINE + 1,
	    "matches everything");
	assert_warning("{ action = \"block\"; to = [ \"10.0.0.0/8\", \".example.com\" ]; },\n"
	    "{ action = \"pass\"; to = [ \"10.1.0.0/16\", \"www.example.com\" ]; ports = [ 80 ]; }",
	    RULE_LINE + 1, "line 6");
	assert_warning("{ action = \"pass\"; users = [ \"alice\", \"bob\" ]; },\n"
	    "{ action = \"block\"; users = [ \"bob\" ]; commands = [ \"bind\" ]; }",
	    RULE_LINE + 1, "never matches");
}
END_TEST

/* No false warnings: later rules that match something the earlier do not. */
START_TEST(not_shadowed)
{
	assert_clean("{ action = \"block\"; to = [ \"10.0.0.0/8\" ]; },\n"
	    "{ action = \"pass\"; to = [ \"10.0.0.0/7\" ]; },\n"
	    "{ action = \"pass\"; to = [ \".example.com\" ]; ports = [ 443 ]; },\n"
	    "{ action = \"pass\"; to = [ \"example.org\" ]; },\n"
	    "{ action = \"pass\"; users = [ \"alice\" ]; ports = ( 80, \"1000-2000\" ); },\n"
	    "{ action = \"pass\"; users = [ \"alice\" ]; ports = [ \"1000-2001\" ]; },\n"
	    "{ action = \"pass\"; listeners = [ \"inside\" ]; methods = [ \"none\" ]; },\n"
	    "{ action = \"pass\"; methods = [ \"username\" ]; groups = [ \"root\" ]; },\n"
	    "{ action = \"pass\"; commands = [ \"udp\" ]; },\n"
	    "{ action = \"pass\"; }");
}
END_TEST

START_TEST(clients_keys)
{
	struct load l;
	char text[1024];

	snprintf(text, sizeof(text), "user = \"nobody\";\n"
	    "listeners = ( { address = \"127.0.0.1\"; port = 1080; name = \"in\"; } );\n"
	    "clients = ( { action = \"pass\"; name = \"lan\"; listeners = [ \"in\" ];\n"
	    "  from = [ \"10.0.0.0/8\" ]; methods = [ \"none\" ]; log = false; },\n"
	    "  { action = \"pass\"; from = [ \"10.1.0.0/16\" ]; listeners = [ \"127.0.0.1:1080\" ]; },\n"
	    "  { action = \"pass\"; users = [ \"x\" ]; } );\n"
	    "rules = ( { action = \"pass\"; } );\n");
	load(&l, text);
	ck_assert_ptr_null(l.conf);
	ck_diag(&l, DIAG_ERROR, 6, "users");	/* not a client key */
	ck_diag(&l, DIAG_WARNING, 5, "never matches");
	done(&l);
}
END_TEST

START_TEST(listener_names)
{
	struct load l;

	load(&l, "user = \"nobody\";\n"
	    "listeners = ( { address = \"127.0.0.1\"; port = 1080; name = \"a\"; },\n"
	    "  { address = \"127.0.0.1\"; port = 1081; name = \"a\"; },\n"
	    "  { address = \"127.0.0.1\"; port = 1082; name = \"-x\"; } );\n"
	    "clients = ( { action = \"pass\"; } );\n"
	    "rules = ( { action = \"pass\"; } );\n");
	ck_assert_ptr_null(l.conf);
	ck_diag(&l, DIAG_ERROR, 3, "taken");
	ck_diag(&l, DIAG_ERROR, 4, "-x");
	done(&l);
}
END_TEST

/* The packaged file, with a user every system has instead of "socks5d". */
static char *
packaged_text(void)
{
	FILE *f = fopen(TOP_SRCDIR "/etc/socks5d.conf", "r");
	static char text[65536];
	size_t n;
	char *at;

	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	at = strstr(text, "user = \"socks5d\";");
	ck_assert_ptr_nonnull(at);
	memcpy(at, "user = \"nobody\"; ", 17);
	return text;
}

static bool
refuses(const struct config *c, const char *dst, uint8_t method)
{
	struct sockaddr_storage cl, ss;
	socklen_t len;
	struct rules_query q = { .client = (struct sockaddr *)&cl,
	    .method = method, .cmd = SOCKS5_CMD_CONNECT,
	    .dst = (struct sockaddr *)&ss, .port = 443 };

	ck_assert_int_eq(addr_parse_ip("127.0.0.1", 5, &cl, &len), 0);
	ck_assert_int_eq(addr_parse_ip(dst, 443, &ss, &len), 0);
	return !rules_match_request(&c->rules, &q).pass;
}

/* The packaged default passes -t with no error and no warning, and
 * refuses what it promises to refuse. */
START_TEST(packaged_default)
{
	static const char *const refused[] = { "127.0.0.1", "::1", "0.0.0.0",
	    "::", "169.254.169.254", "fe80::1", "10.1.2.3", "172.16.0.1",
	    "192.168.1.1", "100.64.0.1", "fd00::1", "::ffff:127.0.0.1",
	    "::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::",
	    "64:ff9b::a9fe:a9fe", "2002:c0a8:101::", "::ffff:10.0.0.1",
	    "::ffff:169.254.169.254" };
	static const char *const passed[] = { "192.0.2.1", "2001:db8::1",
	    "8.8.8.8", "64:ff9b::808:808" };
	struct load l;

	load(&l, packaged_text());
	if (l.conf == NULL || l.d.n != 0)
		show(&l);
	ck_assert_ptr_nonnull(l.conf);
	ck_assert_uint_eq(l.d.n, 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ck_assert_msg(refuses(l.conf, refused[i], SOCKS5_METHOD_USERPASS),
		    "%s passed", refused[i]);
	for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
		ck_assert_msg(!refuses(l.conf, passed[i], SOCKS5_METHOD_USERPASS),
		    "%s refused", passed[i]);
	done(&l);
}
END_TEST

/* Its commented-out rule for private networks, once uncommented, lets
 * them through, and still nothing of this host or link-local. */
START_TEST(packaged_private_rule)
{
	char *text = packaged_text(), *at = strstr(text, "#  { action = \"pass\"; name = \"private\"");
	struct load l;

	ck_assert_ptr_nonnull(at);
	at[0] = ' ';
	load(&l, text);
	if (l.conf == NULL || l.d.n != 0)
		show(&l);
	ck_assert_ptr_nonnull(l.conf);
	ck_assert(!refuses(l.conf, "10.1.2.3", SOCKS5_METHOD_USERPASS));
	ck_assert(!refuses(l.conf, "fd00::1", SOCKS5_METHOD_USERPASS));
	ck_assert(refuses(l.conf, "127.0.0.1", SOCKS5_METHOD_USERPASS));
	ck_assert(refuses(l.conf, "169.254.169.254", SOCKS5_METHOD_USERPASS));
	ck_assert(refuses(l.conf, "64:ff9b::7f00:1", SOCKS5_METHOD_USERPASS));
	done(&l);
}
END_TEST

static Suite *
config_rules_suite(void)
{
	Suite *s = suite_create("config_rules");
	TCase *tc = tcase_create("keys");

	tcase_add_test(tc, every_key);
	tcase_add_test(tc, self_expands);
	tcase_add_test(tc, bad_values);
	tcase_add_test(tc, empty_lists);
	tcase_add_test(tc, unknown_group_warns);
	tcase_add_test(tc, never_matches);
	tcase_add_test(tc, not_shadowed);
	tcase_add_test(tc, clients_keys);
	tcase_add_test(tc, listener_names);
	tcase_add_test(tc, packaged_default);
	tcase_add_test(tc, packaged_private_rule);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_rules_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
