/* test_audit.c: unit tests for the audit record and its line (src/audit.c)
 * and the hub message checks (src/hubmsg.c). */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit.h"
#include "hubmsg.h"
#include "log.h"

static void
v4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
}

/* What audit_log writes, read back from stderr. */
static void
log_final(const struct audit_record *a, int64_t now)
{
	audit_log(a, now);
}

/* What fn logs of a at now. */
static char *
logged_by(void (*fn)(const struct audit_record *, int64_t),
    const struct audit_record *a, int64_t now)
{
	static char buf[8192];
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_ne(saved, -1);
	dup2(p[1], STDERR_FILENO);
	log_init("socks5d-test", LOG_DAEMON, LOG_INFO, 1);
	fn(a, now);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static char *
logged(const struct audit_record *a, int64_t now)
{
	return logged_by(log_final, a, now);
}

static void
log_update(const struct audit_record *a, int64_t now)
{
	audit_log_update(a, 5, 7, now);
}

static void
record(struct audit_record *a)
{
	struct sockaddr_storage c, l;

	v4(&c, "192.0.2.7", 51334);
	v4(&l, "127.0.0.1", 1080);
	audit_begin(a, &c, &l, 1000);
}

START_TEST(line_of_a_fresh_record)
{
	struct audit_record a;

	record(&a);
	ck_assert_int_eq(a.rule, -1);
	ck_assert_int_eq(a.rep, -1);
	ck_assert_int_eq(a.cmd, -1);
	ck_assert_ptr_nonnull(strstr(logged(&a, 1250),
	    "session sid=0 client=192.0.2.7:51334 listener=127.0.0.1:1080 method=- user=- "
	    "cmd=- dst=- addr=- rule=- rep=- up=0 down=0 secs=0.250 end=error\n"));
}
END_TEST

/* log.interim's line: the session's keys, the bytes so far, no end=;
 * log.session_start's: who, what, where, which rule. */
START_TEST(lines_of_an_open_session)
{
	struct audit_record a;

	record(&a);
	a.sid = 42;
	a.method = 0;
	a.cmd = 1;
	a.rule = 2;
	a.rep = 0;
	strcpy(a.dst, "example.org:443");
	ck_assert_ptr_nonnull(strstr(logged_by(log_update, &a, 3000),
	    "session-update sid=42 client=192.0.2.7:51334 listener=127.0.0.1:1080 "
	    "method=none user=- cmd=connect dst=example.org:443 addr=- rule=2 "
	    "rep=0 up=5 down=7 secs=2.000\n"));
	a.parked = true;
	ck_assert_ptr_nonnull(strstr(logged_by(log_update, &a, 3000),
	    " secs=2.000 parked=1\n"));
	ck_assert_ptr_nonnull(strstr(logged_by(audit_log_start, &a, 1500),
	    "session-start sid=42 client=192.0.2.7:51334 listener=127.0.0.1:1080 "
	    "method=none user=- cmd=connect dst=example.org:443 addr=- rule=2 "
	    "secs=0\n"));
}
END_TEST

START_TEST(line_of_a_whole_session)
{
	struct audit_record a;

	record(&a);
	a.cmd = 1;
	a.method = 2;
	memcpy(a.user, "alice", 5);
	a.user_len = 5;
	a.rule = 3;
	a.rep = 0;
	strcpy(a.dst, "example.com:443");
	v4(&a.target, "198.51.100.20", 443);
	a.up = 812;
	a.down = 51234;
	a.end = AUDIT_END_TARGET;
	ck_assert_ptr_nonnull(strstr(logged(&a, 4204),
	    "method=username user=alice cmd=connect dst=example.com:443 "
	    "addr=198.51.100.20:443 "
	    "rule=3 rep=0 up=812 down=51234 secs=3.204 end=target\n"));
	a.parked = true;
	ck_assert_ptr_nonnull(strstr(logged(&a, 4204), " end=target parked=1\n"));
}
END_TEST

/* A UDP association adds its counts after the common keys, which keep
 * their order; other commands do not show them. */
START_TEST(line_of_a_udp_association)
{
	struct audit_record a;

	record(&a);
	a.cmd = 3;
	a.method = 0;
	a.rule = 1;
	a.rep = 0;
	strcpy(a.dst, "0.0.0.0:0");
	a.up = 640;
	a.down = 1280;
	a.udp = (struct audit_udp){ .dgrams_up = 10, .dgrams_down = 20,
	    .dests = 2, .drop_stranger = 3, .drop_header = 4, .drop_frag = 5,
	    .drop_rule = 6, .drop_resolve = 7, .drop_source = 8,
	    .drop_send = 9, .drop_limit = 10 };
	a.end = AUDIT_END_CLIENT;
	ck_assert_ptr_nonnull(strstr(logged(&a, 2000),
	    "method=none user=- cmd=udp dst=0.0.0.0:0 addr=- rule=1 rep=0 "
	    "up=640 down=1280 secs=1.000 end=client dgrams_up=10 dgrams_down=20 "
	    "dests=2 drop_stranger=3 drop_header=4 drop_frag=5 drop_rule=6 "
	    "drop_resolve=7 drop_source=8 drop_send=9 drop_limit=10\n"));
	a.cmd = 1;
	ck_assert_ptr_nonnull(strstr(logged(&a, 2000), " end=client\n"));
	/* The largest counts fit the line too. */
	a.cmd = 3;
	memset(&a.udp, 0xff, sizeof(a.udp));
	ck_assert_ptr_nonnull(strstr(logged(&a, 2000),
	    " drop_limit=18446744073709551615\n"));
}
END_TEST

START_TEST(user_is_escaped)
{
	struct audit_record a;
	static const uint8_t user[] = "a b\n=\"\xff";

	record(&a);
	memcpy(a.user, user, sizeof(user) - 1);
	a.user_len = sizeof(user) - 1;
	ck_assert_ptr_nonnull(strstr(logged(&a, 1000),
	    " user=a\\x20b\\x0a\\x3d\\x22\\xff cmd="));
}
END_TEST

/* rule=NAME when the rule has a name; its bytes escaped however they came
 * (a hub gets the record from a worker) and never past its array. */
START_TEST(rule_name)
{
	struct audit_record a;

	record(&a);
	audit_set_rule(&a, 4, "office-web", false);
	ck_assert_ptr_nonnull(strstr(logged(&a, 1000), " rule=office-web rep="));
	audit_set_rule(&a, 4, NULL, false);
	ck_assert_ptr_nonnull(strstr(logged(&a, 1000), " rule=4 rep="));
	memset(a.rule_name, 'x', sizeof(a.rule_name));	/* no NUL */
	a.rule_name[0] = ' ';
	ck_assert_ptr_nonnull(strstr(logged(&a, 1000),
	    " rule=\\x20xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx rep="));
}
END_TEST

/* log = false: the line goes to debug level, not info. */
START_TEST(quiet_rule)
{
	struct audit_record a;

	record(&a);
	audit_set_rule(&a, 1, "health", true);
	ck_assert_str_eq(logged(&a, 1000), "");
	audit_set_rule(&a, 2, NULL, false);	/* quiet stays */
	ck_assert(a.quiet);
	ck_assert_str_eq(logged(&a, 1000), "");
}
END_TEST

START_TEST(longest_fields_fit_one_line)
{
	struct audit_record a;
	char *line;

	record(&a);
	memset(a.user, '\n', sizeof(a.user));
	a.user_len = AUDIT_USER_LEN;
	memset(a.dst, 'd', sizeof(a.dst) - 1);
	a.dst[sizeof(a.dst) - 1] = '\0';
	a.end = AUDIT_END_IDLE;
	line = logged(&a, 1000);
	ck_assert_ptr_nonnull(strstr(line, " end=idle\n"));
	ck_assert_ptr_eq(strchr(line, '\n'), line + strlen(line) - 1);
}
END_TEST

START_TEST(end_names)
{
	static const struct { enum audit_end e; const char *name; } t[] = {
		{ AUDIT_END_NONE, "error" }, { AUDIT_END_CLIENT, "client" },
		{ AUDIT_END_TARGET, "target" }, { AUDIT_END_IDLE, "idle" },
		{ AUDIT_END_ERROR, "error" }, { AUDIT_END_SHUTDOWN, "shutdown" },
		{ AUDIT_END_PARKED, "parked" }, { AUDIT_END_PROTOCOL, "protocol" },
		{ AUDIT_END_TIMEOUT, "timeout" }, { AUDIT_END_NOAUTH, "noauth" },
		{ AUDIT_END_REFUSED, "refused" }, { AUDIT_END_FAILED, "failed" },
		{ (enum audit_end)99, "error" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_str_eq(audit_end_name(t[i].e), t[i].name);
}
END_TEST

START_TEST(dst_forms)
{
	char dst[AUDIT_DST_LEN];

	ck_assert(audit_dst_valid("example.com:443", 16));
	ck_assert(audit_dst_valid("a\\x20b:1", 9));
	ck_assert(!audit_dst_valid("a b:1", 6));
	ck_assert(!audit_dst_valid("a=b:1", 6));
	ck_assert(!audit_dst_valid("a\"b:1", 6));
	ck_assert(!audit_dst_valid("a\nb:1", 6));
	ck_assert(!audit_dst_valid("\x7f", 2));
	memset(dst, 'x', sizeof(dst));
	ck_assert(!audit_dst_valid(dst, sizeof(dst)));	/* no NUL */
}
END_TEST

/* ---- hub_msg_check ----------------------------------------------------- */

static void
good_msg(struct hub_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->magic = HUB_MAGIC;
	m->version = HUB_VERSION;
	record(&m->rec);
	v4(&m->rec.target, "127.0.0.1", 7);
	strcpy(m->rec.dst, "127.0.0.1:7");
	m->first_eof = -1;
}

static int fds[2];

static void
open_fds(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
}

static void
close_fds(void)
{
	close(fds[0]);
	close(fds[1]);
}

#define CHECK(m, want) check_one(m, sizeof(*(m)), 0, 2, want)

static void
check_one(const struct hub_msg *m, ssize_t n, int flags, int nfds,
    const char *want)
{
	const char *why = hub_msg_check(m, n, flags, fds, nfds);

	if (want == NULL)
		ck_assert_msg(why == NULL, "refused: %s", why);
	else
		ck_assert_msg(why != NULL && strcmp(why, want) == 0,
		    "got \"%s\", want \"%s\"", why ? why : "(ok)", want);
}

START_TEST(msg_good)
{
	struct hub_msg m;

	good_msg(&m);
	CHECK(&m, NULL);
	m.done[0] = 1;
	m.first_eof = 0;
	CHECK(&m, NULL);
}
END_TEST

START_TEST(msg_frame)
{
	struct hub_msg m;

	good_msg(&m);
	check_one(&m, sizeof(m) - 1, 0, 2, "wrong size");
	check_one(&m, 0, 0, 2, "wrong size");
	check_one(&m, sizeof(m), MSG_TRUNC, 2, "truncated");
	check_one(&m, sizeof(m), MSG_CTRUNC, 2, "truncated");
	check_one(&m, sizeof(m), 0, 1, "not exactly two fds");
	check_one(&m, sizeof(m), 0, 0, "not exactly two fds");
	m.magic = 1;
	CHECK(&m, "wrong magic or version");
	good_msg(&m);
	m.version = 1;
	CHECK(&m, "wrong magic or version");
}
END_TEST

START_TEST(msg_fds_must_be_stream_sockets)
{
	struct hub_msg m;
	int p[2], d[2], keep = fds[1];

	good_msg(&m);
	ck_assert_int_eq(pipe(p), 0);
	fds[1] = p[0];
	CHECK(&m, "an fd is not a stream socket");
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, d), 0);
	fds[1] = d[0];
	CHECK(&m, "an fd is not a stream socket");
	fds[1] = keep;
	close(p[0]);
	close(p[1]);
	close(d[0]);
	close(d[1]);
}
END_TEST

START_TEST(msg_fields)
{
	struct hub_msg m;

	good_msg(&m);
	memset(m.rec.dst, 'x', sizeof(m.rec.dst));
	CHECK(&m, "dst not terminated");
	good_msg(&m);
	strcpy(m.rec.dst, "forged end=client\n");
	CHECK(&m, "dst not escaped");
	good_msg(&m);
	m.rec.target.ss_family = 0;
	CHECK(&m, "bad address");
	good_msg(&m);
	m.rec.client.ss_family = AF_UNIX;
	CHECK(&m, "bad address");
	good_msg(&m);
	m.rec.rule = -2;
	CHECK(&m, "bad number");
	good_msg(&m);
	m.rec.cmd = 256;
	CHECK(&m, "bad number");
	good_msg(&m);
	m.done[0] = m.done[1] = 1;
	CHECK(&m, "bad relay state");
	good_msg(&m);
	m.done[1] = 2;
	CHECK(&m, "bad relay state");
	good_msg(&m);
	m.first_eof = 2;
	CHECK(&m, "bad relay state");
}
END_TEST

START_TEST(tickets_count)
{
	struct hub_tickets *t = hub_tickets_create(2);

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(atomic_load(&t[0].count), 0);
	hub_tickets_set(&t[1], -5);
	ck_assert_int_eq(atomic_load(&t[1].count), 0);
	hub_tickets_set(&t[1], 3);
	hub_tickets_give(&t[1]);
	ck_assert_int_eq(atomic_load(&t[1].count), 4);
	hub_tickets_destroy(t, 2);
}
END_TEST

static Suite *
audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *line = tcase_create("line"), *msg = tcase_create("hubmsg");

	tcase_add_test(line, line_of_a_fresh_record);
	tcase_add_test(line, lines_of_an_open_session);
	tcase_add_test(line, line_of_a_whole_session);
	tcase_add_test(line, line_of_a_udp_association);
	tcase_add_test(line, user_is_escaped);
	tcase_add_test(line, rule_name);
	tcase_add_test(line, quiet_rule);
	tcase_add_test(line, longest_fields_fit_one_line);
	tcase_add_test(line, end_names);
	tcase_add_test(line, dst_forms);
	suite_add_tcase(s, line);
	tcase_add_checked_fixture(msg, open_fds, close_fds);
	tcase_add_test(msg, msg_good);
	tcase_add_test(msg, msg_frame);
	tcase_add_test(msg, msg_fds_must_be_stream_sockets);
	tcase_add_test(msg, msg_fields);
	tcase_add_test(msg, tickets_count);
	suite_add_tcase(s, msg);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(audit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
