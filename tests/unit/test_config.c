/* test_config.c: unit tests for config_load (src/config.c): values, defaults, every error path. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "socks5.h"

/*
 * Fixture pieces. "nobody" exists on every Debian system; the default user
 * "socks5d" may not exist here, so every fixture names its user.
 */
#define USER_LINE "user = \"nobody\";\n"
#define LISTENER_LINE \
	"listeners = ( { address = \"127.0.0.1\"; port = 1080; } );\n"
#define POLICY_LINES \
	"clients = ( { action = \"pass\"; } );\n" \
	"rules = ( { action = \"pass\"; } );\n"
/* A valid file minus whatever the test puts on line 1. */
#define REST USER_LINE LISTENER_LINE POLICY_LINES
#define REST_NO_LISTENERS USER_LINE POLICY_LINES

/* One config_load of a temporary file: the result and everything it wrote. */
struct load {
	char path[64];
	struct config *conf;
	char *errs;
	size_t errslen;
};

/*
 * The temporary file of the load in progress. If config_load ends the
 * process (see include_directory_does_not_exit), load_done never runs:
 * an atexit handler still removes the file.
 */
static char pending_path[64];

static void
remove_pending(void)
{
	if (pending_path[0] != '\0')
		unlink(pending_path);
}

/* config_load, its diagnostics printed to errs as socks5d -t prints them. */
static struct config *
load_to(const char *path, FILE *errs)
{
	struct diag d = DIAG_INIT;
	struct config *conf = config_load(path, &d);

	diag_print(&d, errs);
	diag_free(&d);
	return conf;
}

static void
load_text(struct load *l, const char *text)
{
	static bool registered;
	FILE *errs;
	int fd;

	memset(l, 0, sizeof *l);
	snprintf(l->path, sizeof l->path, "/tmp/socks5d-test-XXXXXX");
	fd = mkstemp(l->path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(pending_path, sizeof pending_path, "%s", l->path);
	if (!registered)
		registered = atexit(remove_pending) == 0;
	errs = open_memstream(&l->errs, &l->errslen);
	ck_assert_ptr_nonnull(errs);
	l->conf = load_to(l->path, errs);
	fclose(errs);
}

static void
load_done(struct load *l)
{
	unlink(l->path);
	pending_path[0] = '\0';
	config_free(l->conf);
	free(l->errs);
}

/* Loads text that must be valid; shows what config_load said if it is not. */
static void
load_ok(struct load *l, const char *text)
{
	load_text(l, text);
	ck_assert_msg(l->conf != NULL, "config_load failed:\n%s", l->errs);
}

/*
 * Counts the error lines ("PATH:LINE: message", not warnings) in errs; with
 * line >= 0, only those on that line, and with needle, only those that
 * mention it.
 */
static int
count_errors(const struct load *l, int line, const char *needle)
{
	char prefix[96];
	size_t plen = strlen(l->path);
	int n = 0;

	for (const char *s = l->errs; s != NULL && *s != '\0';) {
		const char *eol = strchr(s, '\n');
		size_t len = eol ? (size_t)(eol - s) : strlen(s);
		char text[1024];

		snprintf(text, sizeof text, "%.*s", (int)len, s);
		s = eol ? eol + 1 : s + len;
		if (strncmp(text, l->path, plen) != 0 || text[plen] != ':')
			continue;
		if (strstr(text, ": warning: ") != NULL)
			continue;
		if (line >= 0) {
			snprintf(prefix, sizeof prefix, "%s:%d: ", l->path, line);
			if (strncmp(text, prefix, strlen(prefix)) != 0)
				continue;
		}
		if (needle != NULL && strstr(text, needle) == NULL)
			continue;
		n++;
	}
	return n;
}

/*
 * The common shape of an error test: the load fails, and errs holds a
 * "PATH:LINE: " line that mentions the setting (needle; and needle2 if any).
 */
static void
assert_error2(const char *text, int line, const char *needle,
    const char *needle2)
{
	struct load l;

	load_text(&l, text);
	ck_assert_msg(l.conf == NULL, "config_load accepted:\n%s", text);
	ck_assert_msg(count_errors(&l, line, needle) > 0,
	    "no error at line %d mentioning \"%s\"; got:\n%s", line, needle,
	    l.errs);
	if (needle2 != NULL)
		ck_assert_msg(count_errors(&l, line, needle2) > 0,
		    "no error at line %d mentioning \"%s\"; got:\n%s", line,
		    needle2, l.errs);
	load_done(&l);
}

static void
assert_error(const char *text, int line, const char *needle)
{
	assert_error2(text, line, needle, NULL);
}

static void
assert_cidr(const struct cidr *c, int family, const char *addr, int prefix)
{
	uint8_t want[16] = { 0 };

	ck_assert_int_eq(c->family, family);
	ck_assert_int_eq(c->prefix, prefix);
	ck_assert_int_eq(inet_pton(family, addr, want), 1);
	ck_assert_mem_eq(c->addr, want, family == AF_INET ? 4 : 16);
}

static void
assert_sockaddr(const struct sockaddr_storage *ss, const char *want)
{
	char buf[ADDR_STRLEN];

	ck_assert_str_eq(addr_format((const struct sockaddr *)ss, buf,
	    sizeof buf), want);
}

/* ---- valid files ------------------------------------------------------- */

START_TEST(minimal_defaults)
{
	struct passwd *pw = getpwnam("nobody");
	struct load l;
	const struct listener_conf *lc;

	ck_assert_ptr_nonnull(pw);
	load_ok(&l, USER_LINE LISTENER_LINE);
	ck_assert_str_eq(l.conf->path, l.path);
	ck_assert_str_eq(l.conf->user, "nobody");
	ck_assert_uint_eq(l.conf->uid, pw->pw_uid);
	ck_assert_uint_eq(l.conf->gid, pw->pw_gid);
	ck_assert_int_eq(l.conf->workers.min_spare, 4);
	ck_assert_int_eq(l.conf->workers.max_spare, 32);
	ck_assert_int_eq(l.conf->workers.max, 1024);
	ck_assert_int_eq(l.conf->workers.max_sessions, 10000);
	ck_assert_int_eq(l.conf->timeouts.negotiate, 10);
	ck_assert_int_eq(l.conf->timeouts.connect, 10);
	ck_assert_int_eq(l.conf->timeouts.idle, 3600);
	ck_assert_int_eq(l.conf->timeouts.shutdown, 10);
	ck_assert_int_eq(l.conf->log.facility, LOG_DAEMON);
	ck_assert_int_eq(l.conf->log.level, LOG_INFO);
	ck_assert_int_eq(l.conf->relay.mode, RELAY_SPLICE);
	ck_assert_int_eq(l.conf->relay.pipe_size, 65536);
	ck_assert_int_eq(l.conf->relay.buffer_size, 65536);
	ck_assert_int_eq(l.conf->relay.park_after, 30);
	ck_assert_int_eq(l.conf->relay.hubs, 1);
	ck_assert_uint_eq(l.conf->nlisteners, 1);
	lc = &l.conf->listeners[0];
	assert_sockaddr(&lc->addr, "127.0.0.1:1080");
	ck_assert_uint_eq(lc->addrlen, sizeof(struct sockaddr_in));
	ck_assert_int_eq(lc->backlog, 4096);
	ck_assert_int_eq(lc->nmethods, 1);
	ck_assert_uint_eq(lc->methods[0], SOCKS5_METHOD_NONE);
	ck_assert_int_eq(lc->line, 2);
	ck_assert(!l.conf->has_external4);
	ck_assert(!l.conf->has_external6);
	ck_assert(!l.conf->clients.present);
	ck_assert(!l.conf->rules.present);
	ck_assert_uint_eq(l.conf->clients.n, 0);
	ck_assert_uint_eq(l.conf->rules.n, 0);
	load_done(&l);
}
END_TEST

/* The documented full example. Note ports is a list ( ... ): libconfig
 * arrays [ ... ] cannot mix numbers and strings. */
static const char full_example[] =
    "user = \"nobody\";\n"
    "workers = { min_spare = 4; max_spare = 32; max = 1024; max_sessions = 10000; };\n"
    "timeouts = { negotiate = 10; connect = 10; idle = 3600; shutdown = 10; };\n"
    "log = { facility = \"daemon\"; level = \"info\"; };     # levels: debug info notice warning err\n"
    "relay = { mode = \"splice\"; pipe_size = 65536; buffer_size = 65536; };   # or \"copy\"\n"
    "listeners = (\n"
    "  { address = \"127.0.0.1\"; port = 1080; methods = [ \"none\" ]; },\n"
    "  { address = \"::1\"; port = 1080; methods = [ \"none\" ]; v6only = true; backlog = 128; }\n"
    ");\n"
    "external = [ \"127.0.0.1\", \"::1\" ];     # at most one IPv4 and one IPv6\n"
    "clients = ( { action = \"pass\"; from = [ \"127.0.0.0/8\", \"::1\" ]; } );\n"
    "rules = (\n"
    "  { action = \"block\"; to = [ \"169.254.0.0/16\" ]; ports = ( 25, \"6000-6063\" ); commands = [ \"connect\" ]; from = [ \"10.0.0.0/8\" ]; },\n"
    "  { action = \"pass\"; }\n"
    ");\n";

START_TEST(full_example_values)
{
	struct load l;
	const struct config *c;
	const struct rule *r;

	load_ok(&l, full_example);
	c = l.conf;
	ck_assert_str_eq(c->user, "nobody");
	ck_assert_int_eq(c->workers.min_spare, 4);
	ck_assert_int_eq(c->workers.max_spare, 32);
	ck_assert_int_eq(c->workers.max, 1024);
	ck_assert_int_eq(c->workers.max_sessions, 10000);
	ck_assert_int_eq(c->timeouts.negotiate, 10);
	ck_assert_int_eq(c->timeouts.connect, 10);
	ck_assert_int_eq(c->timeouts.idle, 3600);
	ck_assert_int_eq(c->timeouts.shutdown, 10);
	ck_assert_int_eq(c->log.facility, LOG_DAEMON);
	ck_assert_int_eq(c->log.level, LOG_INFO);
	ck_assert_int_eq(c->relay.mode, RELAY_SPLICE);
	ck_assert_int_eq(c->relay.pipe_size, 65536);
	ck_assert_int_eq(c->relay.buffer_size, 65536);

	ck_assert_uint_eq(c->nlisteners, 2);
	assert_sockaddr(&c->listeners[0].addr, "127.0.0.1:1080");
	ck_assert_int_eq(c->listeners[0].line, 7);
	assert_sockaddr(&c->listeners[1].addr, "[::1]:1080");
	ck_assert_uint_eq(c->listeners[1].addrlen, sizeof(struct sockaddr_in6));
	ck_assert(c->listeners[1].v6only);
	ck_assert_int_eq(c->listeners[1].backlog, 128);
	ck_assert_int_eq(c->listeners[1].nmethods, 1);
	ck_assert_uint_eq(c->listeners[1].methods[0], SOCKS5_METHOD_NONE);
	ck_assert_int_eq(c->listeners[1].line, 8);

	ck_assert(c->has_external4);
	ck_assert(c->has_external6);
	ck_assert_int_eq(c->external4.ss_family, AF_INET);
	ck_assert_int_eq(c->external6.ss_family, AF_INET6);
	assert_sockaddr(&c->external4, "127.0.0.1:0");
	assert_sockaddr(&c->external6, "[::1]:0");

	ck_assert(c->clients.present);
	ck_assert_uint_eq(c->clients.n, 1);
	ck_assert_int_eq(c->clients.list[0].action, RULE_PASS);
	ck_assert_int_eq(c->clients.list[0].line, 11);
	ck_assert_uint_eq(c->clients.list[0].nfrom, 2);
	assert_cidr(&c->clients.list[0].from[0], AF_INET, "127.0.0.0", 8);
	assert_cidr(&c->clients.list[0].from[1], AF_INET6, "::1", 128);

	ck_assert(c->rules.present);
	ck_assert_uint_eq(c->rules.n, 2);
	r = &c->rules.list[0];
	ck_assert_int_eq(r->action, RULE_BLOCK);
	ck_assert_int_eq(r->line, 13);
	ck_assert_uint_eq(r->nto, 1);
	assert_cidr(&r->to[0], AF_INET, "169.254.0.0", 16);
	ck_assert_uint_eq(r->nfrom, 1);
	assert_cidr(&r->from[0], AF_INET, "10.0.0.0", 8);
	ck_assert_uint_eq(r->nports, 2);
	ck_assert_uint_eq(r->ports[0].lo, 25);
	ck_assert_uint_eq(r->ports[0].hi, 25);
	ck_assert_uint_eq(r->ports[1].lo, 6000);
	ck_assert_uint_eq(r->ports[1].hi, 6063);
	ck_assert_uint_eq(r->commands, 1u << SOCKS5_CMD_CONNECT);
	r = &c->rules.list[1];
	ck_assert_int_eq(r->action, RULE_PASS);
	ck_assert_int_eq(r->line, 14);
	ck_assert_uint_eq(r->nfrom + r->nto + r->nports, 0);
	ck_assert_uint_eq(r->commands, 0);
	load_done(&l);
}
END_TEST

/* A full, valid file produces no error lines (warnings would be allowed). */
START_TEST(full_example_no_errors)
{
	struct load l;

	load_ok(&l, full_example);
	ck_assert_int_eq(count_errors(&l, -1, NULL), 0);
	load_done(&l);
}
END_TEST

START_TEST(other_values)
{
	struct load l;

	load_ok(&l, USER_LINE LISTENER_LINE
	    "workers = { min_spare = 1; max_spare = 1; max = 1; max_sessions = 0; };\n"
	    "timeouts = { negotiate = 5; connect = 30; idle = 60; shutdown = 0; };\n"
	    "log = { facility = \"local3\"; level = \"debug\"; };\n"
	    "relay = { mode = \"copy\"; pipe_size = 1048576; buffer_size = 16384; };\n");
	ck_assert_int_eq(l.conf->workers.min_spare, 1);
	ck_assert_int_eq(l.conf->workers.max, 1);
	ck_assert_int_eq(l.conf->workers.max_sessions, 0);
	ck_assert_int_eq(l.conf->timeouts.negotiate, 5);
	ck_assert_int_eq(l.conf->timeouts.connect, 30);
	ck_assert_int_eq(l.conf->timeouts.idle, 60);
	ck_assert_int_eq(l.conf->timeouts.shutdown, 0);
	ck_assert_int_eq(l.conf->log.facility, LOG_LOCAL3);
	ck_assert_int_eq(l.conf->log.level, LOG_DEBUG);
	ck_assert_int_eq(l.conf->relay.mode, RELAY_COPY);
	ck_assert_int_eq(l.conf->relay.pipe_size, 1048576);
	ck_assert_int_eq(l.conf->relay.buffer_size, 16384);
	load_done(&l);
}
END_TEST

/* v6only defaults to true for IPv6 listeners, and can be turned off. */
START_TEST(listener_v6only)
{
	struct load l;

	load_ok(&l, USER_LINE
	    "listeners = (\n"
	    "  { address = \"::\"; port = 1080; },\n"
	    "  { address = \"::1\"; port = 1081; v6only = false; },\n"
	    "  { address = \"0.0.0.0\"; port = 1080; }\n"
	    ");\n");
	ck_assert_uint_eq(l.conf->nlisteners, 3);
	ck_assert(l.conf->listeners[0].v6only);
	ck_assert(!l.conf->listeners[1].v6only);
	ck_assert_int_eq(l.conf->listeners[2].addr.ss_family, AF_INET);
	load_done(&l);
}
END_TEST

START_TEST(rule_forms)
{
	struct load l;
	const struct rule *r;

	load_ok(&l, USER_LINE LISTENER_LINE
	    "rules = (\n"
	    "  { action = \"pass\"; ports = [ 25, 80 ]; commands = [ \"connect\", \"bind\", \"udp\" ]; },\n"
	    "  { action = \"block\"; ports = [ \"1-1024\", \"65535\" ]; to = [ \"2001:db8::/32\" ]; }\n"
	    ");\n");
	ck_assert_uint_eq(l.conf->rules.n, 2);
	r = &l.conf->rules.list[0];
	ck_assert_uint_eq(r->nports, 2);
	ck_assert_uint_eq(r->ports[1].lo, 80);
	ck_assert_uint_eq(r->ports[1].hi, 80);
	ck_assert_uint_eq(r->commands, (1u << SOCKS5_CMD_CONNECT) |
	    (1u << SOCKS5_CMD_BIND) | (1u << SOCKS5_CMD_UDP_ASSOCIATE));
	r = &l.conf->rules.list[1];
	ck_assert_int_eq(r->action, RULE_BLOCK);
	ck_assert_uint_eq(r->nports, 2);
	ck_assert_uint_eq(r->ports[0].lo, 1);
	ck_assert_uint_eq(r->ports[0].hi, 1024);
	ck_assert_uint_eq(r->ports[1].lo, 65535);
	ck_assert_uint_eq(r->ports[1].hi, 65535);
	assert_cidr(&r->to[0], AF_INET6, "2001:db8::", 32);
	load_done(&l);
}
END_TEST

/* ---- file-level errors ------------------------------------------------- */

START_TEST(missing_file)
{
	char dir[] = "/tmp/socks5d-test-XXXXXX", path[64];
	struct config *conf;
	char *out = NULL;
	size_t outlen = 0;
	FILE *errs;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/missing.conf", dir);
	errs = open_memstream(&out, &outlen);
	conf = load_to(path, errs);
	fclose(errs);
	rmdir(dir);
	ck_assert_ptr_null(conf);
	ck_assert_msg(strstr(out, path) != NULL, "errs does not name %s: %s",
	    path, out);
	free(out);
}
END_TEST

/* A directory opens like a file on Linux, then fails to read. */
START_TEST(directory_not_file)
{
	char dir[] = "/tmp/socks5d-test-XXXXXX";
	struct config *conf;
	char *out = NULL;
	size_t outlen = 0;
	FILE *errs;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	errs = open_memstream(&out, &outlen);
	conf = load_to(dir, errs);
	fclose(errs);
	rmdir(dir);
	ck_assert_ptr_null(conf);
	ck_assert_msg(strstr(out, dir) != NULL, "errs does not name %s: %s",
	    dir, out);
	free(out);
}
END_TEST

/*
 * libconfig 1.5's scanner calls exit(2) ("input in flex scanner failed")
 * when an @include names a directory. config_load runs in the master on
 * SIGHUP, where a bad file must leave the running configuration in place:
 * it must come back with an error, not end the process.
 */
START_TEST(include_directory_does_not_exit)
{
	struct load l;

	/* /tmp: a directory that is always there and needs no cleanup. */
	load_text(&l, REST "@include \"/tmp\"\n");
	ck_assert_ptr_null(l.conf);
	ck_assert_msg(count_errors(&l, -1, NULL) > 0, "no error line in:\n%s",
	    l.errs);
	load_done(&l);
}
END_TEST

/* An empty file is valid libconfig but lacks the one required setting. */
START_TEST(empty_file)
{
	assert_error("", -1, "listeners");
	assert_error("# only a comment\n", -1, "listeners");
}
END_TEST

/* libconfig's own message, with libconfig's own line number. */
START_TEST(syntax_error)
{
	assert_error(USER_LINE LISTENER_LINE
	    "workers = { min_spare = ; };\n" POLICY_LINES, 3, NULL);
	assert_error(USER_LINE "listeners = ( { address = \"127.0.0.1\"; port 1080; } );\n",
	    2, NULL);
	assert_error(USER_LINE LISTENER_LINE "\n\nrules = ( { action = \"pass\"; } \n", 6,
	    NULL);
}
END_TEST

START_TEST(unknown_top_level)
{
	assert_error("bogus = 1;\n" REST, 1, "bogus");
	assert_error(REST "authentication = { pam_service = \"socks5d\"; };\n", 5, "authentication");
}
END_TEST

/* ---- unknown keys inside groups ---------------------------------------- */

START_TEST(unknown_key_workers)
{
	assert_error("workers = { min_spare = 4; max_sparez = 8; };\n" REST, 1,
	    "max_sparez");
}
END_TEST

START_TEST(unknown_key_timeouts)
{
	assert_error("timeouts = { negotiate = 10; bogus_timeout = 60; };\n" REST,
	    1, "bogus_timeout");
}
END_TEST

START_TEST(unknown_key_log)
{
	assert_error("log = { facility = \"daemon\"; file = \"/tmp/x\"; };\n" REST,
	    1, "file");
}
END_TEST

START_TEST(unknown_key_relay)
{
	assert_error("relay = { mode = \"copy\"; zerocopy = true; };\n" REST, 1,
	    "zerocopy");
}
END_TEST

START_TEST(unknown_key_listener)
{
	assert_error("listeners = ( { address = \"127.0.0.1\"; port = 1080; bogus_key = 1; } );\n"
	    REST_NO_LISTENERS, 1, "bogus_key");
}
END_TEST

START_TEST(unknown_key_rule)
{
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"pass\"; users = [ \"*\" ]; } );\n", 3, "users");
	assert_error(USER_LINE LISTENER_LINE
	    "clients = ( { action = \"pass\"; bogus_key = 1; } );\n", 3,
	    "bogus_key");
}
END_TEST

/* ---- wrong types ------------------------------------------------------- */

START_TEST(type_string_for_int)
{
	assert_error("workers = { max = \"ten\"; };\n" REST, 1, "max");
	assert_error("timeouts = { idle = \"1h\"; };\n" REST, 1, "idle");
	assert_error("listeners = ( { address = \"127.0.0.1\"; port = \"1080\"; } );\n"
	    REST_NO_LISTENERS, 1, "port");
}
END_TEST

START_TEST(type_int_for_string)
{
	assert_error("user = 5;\n" LISTENER_LINE POLICY_LINES, 1, "user");
	assert_error("log = { level = 3; };\n" REST, 1, "level");
	assert_error("relay = { mode = 1; };\n" REST, 1, "mode");
	assert_error("listeners = ( { address = 127; port = 1080; } );\n"
	    REST_NO_LISTENERS, 1, "address");
}
END_TEST

START_TEST(type_group_for_list)
{
	assert_error("clients = { action = \"pass\"; };\n" USER_LINE LISTENER_LINE,
	    1, "clients");
	assert_error("listeners = { address = \"127.0.0.1\"; port = 1080; };\n"
	    REST_NO_LISTENERS, 1, "listeners");
	assert_error("external = { a = \"127.0.0.1\"; };\n" REST, 1, "external");
}
END_TEST

START_TEST(type_scalar_for_group)
{
	assert_error("workers = 5;\n" REST, 1, "workers");
	assert_error("log = \"daemon\";\n" REST, 1, "log");
}
END_TEST

/* ---- listeners --------------------------------------------------------- */

START_TEST(listener_bad_address)
{
	assert_error("listeners = ( { address = \"localhost\"; port = 1080; } );\n"
	    REST_NO_LISTENERS, 1, "address");
	assert_error("listeners = ( { address = \"127.0.0.1:1080\"; port = 1080; } );\n"
	    REST_NO_LISTENERS, 1, "address");
	assert_error("listeners = ( { address = \"\"; port = 1080; } );\n"
	    REST_NO_LISTENERS, 1, "address");
}
END_TEST

START_TEST(listener_bad_port)
{
	assert_error("listeners = ( { address = \"127.0.0.1\"; port = 0; } );\n"
	    REST_NO_LISTENERS, 1, "port");
	assert_error("listeners = ( { address = \"127.0.0.1\"; port = 70000; } );\n"
	    REST_NO_LISTENERS, 1, "port");
	assert_error("listeners = ( { address = \"127.0.0.1\"; port = -1; } );\n"
	    REST_NO_LISTENERS, 1, "port");
	/* The line is the offending listener's, not the list's. */
	assert_error(REST_NO_LISTENERS
	    "listeners = (\n"
	    "  { address = \"127.0.0.1\"; port = 1080; },\n"
	    "  { address = \"::1\"; port = 70000; }\n"
	    ");\n", 6, "port");
}
END_TEST

START_TEST(listener_missing_port)
{
	assert_error("listeners = ( { address = \"127.0.0.1\"; } );\n"
	    REST_NO_LISTENERS, 1, "port");
}
END_TEST

START_TEST(listener_missing_address)
{
	assert_error("listeners = ( { port = 1080; } );\n" REST_NO_LISTENERS, 1,
	    "address");
}
END_TEST

START_TEST(no_listeners)
{
	assert_error(REST_NO_LISTENERS, -1, "listeners");
	assert_error("listeners = ( );\n" REST_NO_LISTENERS, -1, "listeners");
}
END_TEST

START_TEST(listener_bad_methods)
{
	assert_error2("listeners = ( { address = \"127.0.0.1\"; port = 1080; methods = [ \"gssapi\" ]; } );\n"
	    REST_NO_LISTENERS, 1, "method", "gssapi");
	assert_error("listeners = ( { address = \"127.0.0.1\"; port = 1080; methods = [ ]; } );\n"
	    REST_NO_LISTENERS, 1, "methods");
	assert_error2("listeners = ( { address = \"127.0.0.1\"; port = 1080; methods = [ \"username\", \"username\" ]; } );\n"
	    REST_NO_LISTENERS, 1, "username", "twice");
}
END_TEST

START_TEST(listener_methods_in_order)
{
	struct load l;

	load_text(&l, "listeners = ( { address = \"127.0.0.1\"; port = 1080; methods = [ \"username\", \"none\" ]; } );\n"
	    REST_NO_LISTENERS);
	ck_assert_msg(l.conf != NULL, "%s", l.errs);
	ck_assert_int_eq(l.conf->listeners[0].nmethods, 2);
	ck_assert_int_eq(l.conf->listeners[0].methods[0], SOCKS5_METHOD_USERPASS);
	ck_assert_int_eq(l.conf->listeners[0].methods[1], SOCKS5_METHOD_NONE);
	load_done(&l);
}
END_TEST

START_TEST(auth_settings)
{
	struct load l;

	load_text(&l, "auth = { pam_service = \"proxy-login\"; helpers = 3; timeout = 5; cache_ttl = 60; hash_once = false; };\n" REST);
	ck_assert_msg(l.conf != NULL, "%s", l.errs);
	ck_assert_str_eq(l.conf->auth.pam_service, "proxy-login");
	ck_assert_int_eq(l.conf->auth.helpers, 3);
	ck_assert_int_eq(l.conf->auth.timeout, 5);
	ck_assert_int_eq(l.conf->auth.cache_ttl, 60);
	ck_assert(!l.conf->auth.hash_once);
	/* Naming the service keeps the default watched files (it used to
	 * drop them, so a changed password never emptied the cache). */
	ck_assert_uint_eq(l.conf->auth.ncache_watch, 3);
	ck_assert_str_eq(l.conf->auth.cache_watch[0], "/etc/shadow");
	load_done(&l);
	load_text(&l, REST);
	ck_assert_msg(l.conf != NULL, "%s", l.errs);
	ck_assert_str_eq(l.conf->auth.pam_service, "socks5d");
	ck_assert_int_ge(l.conf->auth.helpers, 1);
	ck_assert_int_eq(l.conf->auth.timeout, 10);
	ck_assert_int_eq(l.conf->auth.cache_ttl, 0);
	ck_assert(l.conf->auth.hash_once);
	load_done(&l);
	assert_error("auth = { hash_once = 1; };\n" REST, 1, "auth.hash_once must be true or false");
	assert_error("auth = { pam_service = \"../shadow\"; };\n" REST, 1, "pam_service");
	assert_error("auth = { pam_service = \"\"; };\n" REST, 1, "pam_service");
	assert_error("auth = { helpers = 0; };\n" REST, 1, "helpers");
	assert_error("auth = { timeout = 0; };\n" REST, 1, "timeout");
	assert_error("auth = { cache_ttl = -1; };\n" REST, 1, "cache_ttl");
	assert_error("auth = { password = \"x\"; };\n" REST, 1, "auth.password");
}
END_TEST

/* ---- workers, timeouts, log, relay ------------------------------------- */

START_TEST(workers_limits)
{
	assert_error("workers = { min_spare = 8; max_spare = 4; };\n" REST, 1,
	    "min_spare");
	assert_error("workers = { min_spare = 8; max_spare = 16; max = 4; };\n"
	    REST, 1, "max");
	assert_error("workers = { max = 0; };\n" REST, 1, "max");
	assert_error("workers = { min_spare = -1; };\n" REST, 1, "min_spare");
}
END_TEST

START_TEST(negative_timeouts)
{
	assert_error("timeouts = { negotiate = -1; };\n" REST, 1, "negotiate");
	assert_error("timeouts = { connect = -1; };\n" REST, 1, "connect");
	assert_error("timeouts = { idle = -1; };\n" REST, 1, "idle");
	assert_error("timeouts = { shutdown = -1; };\n" REST, 1, "shutdown");
}
END_TEST

START_TEST(log_bad_names)
{
	assert_error("log = { facility = \"nosuch\"; };\n" REST, 1, "facility");
	assert_error("log = { level = \"verbose\"; };\n" REST, 1, "level");
}
END_TEST

START_TEST(relay_bad_mode)
{
	assert_error("relay = { mode = \"zerocopy\"; };\n" REST, 1, "mode");
}
END_TEST

START_TEST(relay_park_limits)
{
	struct load l;

	assert_error("relay = { park_after = 86401; };\n" REST, 1, "park_after");
	assert_error("relay = { park_after = -1; };\n" REST, 1, "park_after");
	assert_error("relay = { hubs = 0; };\n" REST, 1, "hubs");
	assert_error("relay = { hubs = 65; };\n" REST, 1, "hubs");
	load_text(&l, "relay = { park_after = 0; hubs = 64; };\n" REST);
	ck_assert_msg(l.conf != NULL, "rejected: %s", l.errs);
	ck_assert_int_eq(l.conf->relay.park_after, 0);
	ck_assert_int_eq(l.conf->relay.hubs, 64);
	load_done(&l);
}
END_TEST

/* ---- user, external ---------------------------------------------------- */

START_TEST(user_missing)
{
	assert_error("user = \"no_such_user_socks5d\";\n" LISTENER_LINE
	    POLICY_LINES, 1, "no_such_user_socks5d");
}
END_TEST

/* Workers must drop privileges: running them as root defeats the design. */
START_TEST(user_root)
{
	if (geteuid() != 0)
		return;		/* only meaningful when started as root */
	assert_error("user = \"root\";\n" LISTENER_LINE POLICY_LINES, 1, "root");
}
END_TEST

START_TEST(external_errors)
{
	assert_error("external = [ \"127.0.0.1\", \"127.0.0.2\" ];\n" REST, 1,
	    "external");
	assert_error("external = [ \"::1\", \"::2\" ];\n" REST, 1, "external");
	assert_error("external = [ \"example.com\" ];\n" REST, 1, "external");
}
END_TEST

/* ---- clients and rules ------------------------------------------------- */

START_TEST(bad_cidr)
{
	assert_error(USER_LINE LISTENER_LINE
	    "clients = ( { action = \"pass\"; from = [ \"10.0.0.0/33\" ]; } );\n",
	    3, "from");
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"pass\"; to = [ \"x/8\" ]; } );\n", 3, "x/8");
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"pass\"; from = [ \"1.2.3.4/-1\" ]; } );\n",
	    3, "from");
}
END_TEST

START_TEST(bad_action)
{
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"allow\"; } );\n", 3, "action");
	assert_error(USER_LINE LISTENER_LINE
	    "clients = ( { action = \"deny\"; } );\n", 3, "action");
	/* An entry without an action must not default to anything. */
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { to = [ \"10.0.0.0/8\" ]; } );\n", 3, "action");
}
END_TEST

START_TEST(bad_ports)
{
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"pass\"; ports = [ \"9-3\" ]; } );\n", 3,
	    "port");
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"pass\"; ports = [ 0 ]; } );\n", 3, "port");
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"pass\"; ports = [ 65536 ]; } );\n", 3, "port");
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"pass\"; ports = [ \"http\" ]; } );\n", 3,
	    "port");
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"pass\"; ports = [ \"1-\" ]; } );\n", 3, "port");
}
END_TEST

START_TEST(bad_command)
{
	assert_error(USER_LINE LISTENER_LINE
	    "rules = ( { action = \"pass\"; commands = [ \"ping\" ]; } );\n", 3,
	    "command");
}
END_TEST

/* ---- several errors ---------------------------------------------------- */

/* Like sshd -t: one run shows every mistake, each on its own line. */
START_TEST(all_errors_reported)
{
	static const int lines[] = { 2, 3, 4, 5, 7, 8, 10, 11 };
	struct load l;

	load_text(&l,
	    "user = \"nobody\";\n"				/* 1 */
	    "bogus = 1;\n"					/* 2 */
	    "workers = { max = \"ten\"; };\n"			/* 3 */
	    "timeouts = { idle = -5; };\n"			/* 4 */
	    "log = { level = \"verbose\"; };\n"		/* 5 */
	    "listeners = (\n"					/* 6 */
	    "  { address = \"127.0.0.1\"; port = 0; },\n"	/* 7 */
	    "  { address = \"nonsense\"; port = 1080; }\n"	/* 8 */
	    ");\n"						/* 9 */
	    "clients = ( { action = \"pass\"; from = [ \"1.2.3.4/40\" ]; } );\n" /* 10 */
	    "rules = ( { action = \"allow\"; } );\n");		/* 11 */
	ck_assert_ptr_null(l.conf);
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
		ck_assert_msg(count_errors(&l, lines[i], NULL) == 1,
		    "expected one error on line %d; got:\n%s", lines[i], l.errs);
	ck_assert_msg(count_errors(&l, -1, NULL) == 8,
	    "expected 8 error lines; got:\n%s", l.errs);
	load_done(&l);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_test(tc, minimal_defaults);
	tcase_add_test(tc, full_example_values);
	tcase_add_test(tc, full_example_no_errors);
	tcase_add_test(tc, other_values);
	tcase_add_test(tc, listener_v6only);
	tcase_add_test(tc, rule_forms);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, directory_not_file);
	tcase_add_test(tc, empty_file);
	tcase_add_test(tc, include_directory_does_not_exit);
	tcase_add_test(tc, syntax_error);
	tcase_add_test(tc, unknown_top_level);
	tcase_add_test(tc, all_errors_reported);
	suite_add_tcase(s, tc);

	tc = tcase_create("unknown_keys");
	tcase_add_test(tc, unknown_key_workers);
	tcase_add_test(tc, unknown_key_timeouts);
	tcase_add_test(tc, unknown_key_log);
	tcase_add_test(tc, unknown_key_relay);
	tcase_add_test(tc, unknown_key_listener);
	tcase_add_test(tc, unknown_key_rule);
	suite_add_tcase(s, tc);

	tc = tcase_create("types");
	tcase_add_test(tc, type_string_for_int);
	tcase_add_test(tc, type_int_for_string);
	tcase_add_test(tc, type_group_for_list);
	tcase_add_test(tc, type_scalar_for_group);
	suite_add_tcase(s, tc);

	tc = tcase_create("listeners");
	tcase_add_test(tc, listener_bad_address);
	tcase_add_test(tc, listener_bad_port);
	tcase_add_test(tc, listener_missing_port);
	tcase_add_test(tc, listener_missing_address);
	tcase_add_test(tc, no_listeners);
	tcase_add_test(tc, listener_bad_methods);
	tcase_add_test(tc, listener_methods_in_order);
	tcase_add_test(tc, auth_settings);
	suite_add_tcase(s, tc);

	tc = tcase_create("settings");
	tcase_add_test(tc, workers_limits);
	tcase_add_test(tc, negative_timeouts);
	tcase_add_test(tc, log_bad_names);
	tcase_add_test(tc, relay_bad_mode);
	tcase_add_test(tc, relay_park_limits);
	tcase_add_test(tc, user_missing);
	tcase_add_test(tc, user_root);
	tcase_add_test(tc, external_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("policy");
	tcase_add_test(tc, bad_cidr);
	tcase_add_test(tc, bad_action);
	tcase_add_test(tc, bad_ports);
	tcase_add_test(tc, bad_command);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
