/* test_config_checks.c: unit tests for config_load's file checks: @include cycles and depth, integers beyond 32 bits, limits, and the diag records. */
#include <check.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"

#define VALID \
	"user = \"nobody\";\n" \
	"listeners = ( { address = \"127.0.0.1\"; port = 1080; } );\n" \
	"clients = ( { action = \"pass\"; } );\n" \
	"rules = ( { action = \"pass\"; } );\n"

/* A temporary directory of configuration files, removed by tmp_done. */
struct tmp {
	char dir[64];
	char names[16][32];
	int n;
};

static void
tmp_init(struct tmp *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/socks5d-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	ck_assert_int_eq(chmod(t->dir, 0755), 0);
}

/* Writes name in the directory; returns its path (static buffer). */
static const char *
tmp_file(struct tmp *t, const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_lt(t->n, 16);
	snprintf(t->names[t->n++], sizeof(t->names[0]), "%s", name);
	return path;
}

static void
tmp_done(struct tmp *t)
{
	char path[128];

	for (int i = 0; i < t->n; i++) {
		snprintf(path, sizeof(path), "%s/%s", t->dir, t->names[i]);
		unlink(path);
	}
	rmdir(t->dir);
}

/* One load: the result, the records and their printed text. */
struct result {
	struct config *conf;
	struct diag d;
	char *text;
	size_t len;
	double seconds;
};

static void
result_load(struct result *r, const char *path)
{
	struct timespec a, b;
	FILE *f;

	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &a);
	r->conf = config_load(path, &r->d);
	clock_gettime(CLOCK_MONOTONIC, &b);
	r->seconds = (double)(b.tv_sec - a.tv_sec) +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	f = open_memstream(&r->text, &r->len);
	ck_assert_ptr_nonnull(f);
	diag_print(&r->d, f);
	fclose(f);
}

static void
result_done(struct result *r)
{
	config_free(r->conf);
	diag_free(&r->d);
	free(r->text);
}

/* The one error of r is "file:line: message" with message starting with
 * want (file is in t's directory unless it starts with '/'). */
static void
assert_one_error(const struct result *r, const struct tmp *t,
    const char *file, int line, const char *want)
{
	char prefix[256];

	ck_assert_ptr_null(r->conf);
	ck_assert_msg(r->d.nerrors == 1 && r->d.n == 1,
	    "want one error, got %zu:\n%s", r->d.nerrors, r->text);
	snprintf(prefix, sizeof(prefix), "%s/%s:%d: %s", t->dir, file, line,
	    want);
	ck_assert_msg(strncmp(r->text, prefix, strlen(prefix)) == 0,
	    "want \"%s...\", got:\n%s", prefix, r->text);
}

/* ---- includes ------------------------------------------------------------ */

START_TEST(include_self)
{
	struct tmp t;
	struct result r;
	char want[256];

	tmp_init(&t);
	result_load(&r, tmp_file(&t, "main.conf",
	    VALID "@include \"main.conf\"\n"));
	snprintf(want, sizeof(want), "include cycle: %s/main.conf -> %s/main.conf",
	    t.dir, t.dir);
	assert_one_error(&r, &t, "main.conf", 5, want);
	result_done(&r);
	tmp_done(&t);
}
END_TEST

START_TEST(include_a_b_a)
{
	struct tmp t;
	struct result r;
	char want[256];

	tmp_init(&t);
	tmp_file(&t, "b.conf", "# b\n@include \"a.conf\"\n");
	result_load(&r, tmp_file(&t, "a.conf", "@include \"b.conf\"\n" VALID));
	snprintf(want, sizeof(want),
	    "include cycle: %s/a.conf -> %s/b.conf -> %s/a.conf", t.dir, t.dir,
	    t.dir);
	assert_one_error(&r, &t, "b.conf", 2, want);
	result_done(&r);
	tmp_done(&t);
}
END_TEST

/* Followed naively this is 3^10 reads and as many errors. */
START_TEST(include_self_three_times)
{
	struct tmp t;
	struct result r;

	tmp_init(&t);
	result_load(&r, tmp_file(&t, "loop.conf",
	    "@include \"loop.conf\"\n@include \"loop.conf\"\n@include \"loop.conf\"\n"));
	assert_one_error(&r, &t, "loop.conf", 1, "include cycle: ");
	ck_assert_msg(r.seconds < 0.5, "took %.3f s", r.seconds);
	result_done(&r);
	tmp_done(&t);
}
END_TEST

/* inc0 includes inc1 ... includes inc<n>; the main file includes inc0. */
static const char *
include_chain(struct tmp *t, int n)
{
	char name[32], text[64];

	tmp_file(t, "last.conf", "");
	for (int i = n - 1; i >= 0; i--) {
		snprintf(name, sizeof(name), "inc%d.conf", i);
		if (i == n - 1)
			snprintf(text, sizeof(text), "@include \"last.conf\"\n");
		else
			snprintf(text, sizeof(text), "@include \"inc%d.conf\"\n",
			    i + 1);
		tmp_file(t, name, text);
	}
	return tmp_file(t, "main.conf", VALID "@include \"inc0.conf\"\n");
}

/* libconfig 1.5 takes 10 nested includes; the 11th is one error. */
START_TEST(include_depth_bound)
{
	struct tmp t;
	struct result r;

	tmp_init(&t);
	result_load(&r, include_chain(&t, 9));	/* last.conf at depth 10 */
	ck_assert_msg(r.conf != NULL, "depth 10 refused:\n%s", r.text);
	result_done(&r);
	tmp_done(&t);

	tmp_init(&t);
	result_load(&r, include_chain(&t, 10));	/* last.conf at depth 11 */
	assert_one_error(&r, &t, "inc9.conf", 1,
	    "includes nested deeper than 10: ");
	ck_assert_ptr_nonnull(strstr(r.text, "/last.conf\n"));
	result_done(&r);
	tmp_done(&t);
}
END_TEST

/* A file included twice (no cycle) is fine, and read once by the check. */
START_TEST(include_twice_not_a_cycle)
{
	struct tmp t;
	struct result r;

	tmp_init(&t);
	tmp_file(&t, "empty.conf", "# nothing\n");
	tmp_file(&t, "mid.conf", "@include \"empty.conf\"\n");
	result_load(&r, tmp_file(&t, "main.conf", "@include \"empty.conf\"\n"
	    "@include \"mid.conf\"\n" VALID));
	ck_assert_msg(r.conf != NULL, "refused:\n%s", r.text);
	result_done(&r);
	tmp_done(&t);
}
END_TEST

/* A warning from an included file names that file, not the main one. */
START_TEST(warning_names_included_file)
{
	struct tmp t;
	struct result r;
	char want[256];

	tmp_init(&t);
	tmp_file(&t, "policy.conf", "\nclients = ( );\n");
	result_load(&r, tmp_file(&t, "main.conf",
	    "user = \"nobody\";\n"
	    "listeners = ( { address = \"127.0.0.1\"; port = 1080; } );\n"
	    "rules = ( { action = \"pass\"; } );\n"
	    "@include \"policy.conf\"\n"));
	ck_assert_msg(r.conf != NULL, "refused:\n%s", r.text);
	snprintf(want, sizeof(want),
	    "%s/policy.conf:2: warning: empty clients list: every client is refused\n",
	    t.dir);
	ck_assert_str_eq(r.text, want);
	result_done(&r);
	tmp_done(&t);
}
END_TEST

/* libconfig's own syntax error in an included file names it by path. */
START_TEST(syntax_error_in_included_file)
{
	struct tmp t;
	struct result r;

	tmp_init(&t);
	tmp_file(&t, "bad.conf", "\n\nrelay = { mode = = \"copy\"; };\n");
	result_load(&r, tmp_file(&t, "main.conf", VALID "@include \"bad.conf\"\n"));
	assert_one_error(&r, &t, "bad.conf", 3, "syntax error");
	result_done(&r);
	tmp_done(&t);
}
END_TEST

/* ---- integers beyond 32 bits ---------------------------------------------- */

/* base then last (on line `line`) must give one error there saying want. */
static void
assert_last_line_error(const char *base, const char *last, int line,
    const char *want)
{
	struct tmp t;
	struct result r;
	char text[1024];

	tmp_init(&t);
	snprintf(text, sizeof(text), "%s%s\n", base, last);
	result_load(&r, tmp_file(&t, "n.conf", text));
	assert_one_error(&r, &t, "n.conf", line, want);
	result_done(&r);
	tmp_done(&t);
}

static void
assert_number_error(const char *line5, const char *want)
{
	assert_last_line_error(VALID, line5, 5, want);
}

/* VALID without its rules line: the test adds one as line 4. */
#define VALID_NO_RULES \
	"user = \"nobody\";\n" \
	"listeners = ( { address = \"127.0.0.1\"; port = 1080; } );\n" \
	"clients = ( { action = \"pass\"; } );\n"

static void
assert_rule_error(const char *line4, const char *want)
{
	assert_last_line_error(VALID_NO_RULES, line4, 4, want);
}

START_TEST(numbers_beyond_32_bits)
{
	assert_number_error("workers = { max_sessions = 4294967297; };",
	    "workers.max_sessions = 4294967297 is out of range (0..2000000000)");
	assert_number_error("timeouts = { idle = 4294967297; shutdown = 5; };",
	    "timeouts.idle = 4294967297 is out of range (1..604800)");
	assert_number_error("relay = { hubs = -4294967295; };",
	    "relay.hubs = -4294967295 is out of range (1..64)");
	assert_number_error("relay = { pipe_size = 0x100010000; };",
	    "relay.pipe_size = 4295032832 is out of range (4096..1048576)");
	assert_number_error("workers = { max = 99999999999999999999; };",
	    "workers.max = 99999999999999999999 is out of range (1..100000)");
	/* Longer than any buffer of the check: shown cut, still refused. */
	assert_number_error("workers = { max = 1"
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    "0000000000000000000000000000000000000000000000000000000000000000; };",
	    "workers.max = 1000000000000000000000000000000 is out of range (1..100000)");
	assert_number_error("workers = { max = 4294967297L; };",
	    "workers.max = 4294967297 is out of range (1..100000)");
}
END_TEST

START_TEST(listener_port_wraps_refused)
{
	struct tmp t;
	struct result r;

	tmp_init(&t);
	result_load(&r, tmp_file(&t, "p.conf",
	    "user = \"nobody\";\n"
	    "listeners = ( { address = \"127.0.0.1\"; backlog = 16; port = 4294999376; } );\n"
	    "clients = ( { action = \"pass\"; } );\n"
	    "rules = ( { action = \"pass\"; } );\n"));
	assert_one_error(&r, &t, "p.conf", 2,
	    "listener.port = 4294999376 is out of range (1..65535)");
	result_done(&r);
	tmp_done(&t);
}
END_TEST

START_TEST(rule_ports_wrap_refused)
{
	assert_rule_error("rules = ( { action = \"pass\"; ports = ( 4294967376 ); } );",
	    "ports: 4294967376 is out of range (1..65535)");
	assert_rule_error("rules = ( { action = \"pass\"; ports = [ 80, 0x10050 ]; } );",
	    "ports: 65616 is out of range (1..65535)");
	assert_rule_error("rules = ( { action = \"pass\"; ports = ( \"1-4294967376\" ); } );",
	    "ports: bad port or range");
	assert_rule_error("rules = ( { action = \"pass\"; ports = ( \"4294967297\" ); } );",
	    "ports: bad port or range");
}
END_TEST

/* Comments, strings and names holding digits do not shift the literals. */
START_TEST(numbers_found_among_other_tokens)
{
	struct tmp t;
	struct result r;

	tmp_init(&t);
	result_load(&r, tmp_file(&t, "c.conf",
	    "# port = 4294999376\n"
	    "user = \"nobody\"; /* 99999999999 */ // 12345678901\n"
	    "log = { facility = \"local7\"; };\n"
	    "listeners = ( { address = \"::1\"; port = 1081; },\n"
	    "  { address = \"127.0.0.1\"; port =\n"
	    "    1082; } );\n"
	    "clients = ( { action = \"pass\"; from = [ \"10.0.0.0/8\" ]; } );\n"
	    "rules = ( { action = \"pass\"; ports = ( 22, \"8000-8080\", 65535 ); } );\n"
	    "relay = { pipe_size = 65536; buffer_size = 0x4000; park_after = 1.5e0; };\n"));
	ck_assert_ptr_null(r.conf);	/* park_after is a float */
	ck_assert_msg(r.d.nerrors == 1 && strstr(r.text, "c.conf:9: relay.park_after must be an integer") != NULL,
	    "got:\n%s", r.text);
	result_done(&r);
	tmp_done(&t);
}
END_TEST

/* The literals of an included file are found in that file. */
START_TEST(numbers_in_included_file)
{
	struct tmp t;
	struct result r;

	tmp_init(&t);
	tmp_file(&t, "w.conf", "# workers\nworkers = { min_spare = 1; max = 4294967297; };\n");
	result_load(&r, tmp_file(&t, "main.conf", VALID "@include \"w.conf\"\n"));
	assert_one_error(&r, &t, "w.conf", 2,
	    "workers.max = 4294967297 is out of range (1..100000)");
	result_done(&r);
	tmp_done(&t);
}
END_TEST

START_TEST(numbers_in_range_kept)
{
	struct tmp t;
	struct result r;

	tmp_init(&t);
	result_load(&r, tmp_file(&t, "ok.conf", VALID
	    "workers = { max_sessions = 2000000000; max = 0x10; min_spare = +2; };\n"));
	ck_assert_msg(r.conf != NULL, "refused:\n%s", r.text);
	ck_assert_int_eq(r.conf->workers.max_sessions, 2000000000);
	ck_assert_int_eq(r.conf->workers.max, 16);
	ck_assert_int_eq(r.conf->workers.min_spare, 2);
	result_done(&r);
	tmp_done(&t);
}
END_TEST

/* ---- limits ---------------------------------------------------------------- */

START_TEST(max_spare_above_max_warns)
{
	struct tmp t;
	struct result r;

	tmp_init(&t);
	result_load(&r, tmp_file(&t, "w.conf", VALID
	    "workers = { min_spare = 1; max_spare = 8; max = 4; };\n"));
	ck_assert_msg(r.conf != NULL, "refused:\n%s", r.text);
	ck_assert_ptr_nonnull(strstr(r.text,
	    "w.conf:5: warning: workers.max_spare (8) is above workers.max (4)"));
	result_done(&r);
	tmp_done(&t);
}
END_TEST

/* Runs in its own process (check forks): drops root to be held to
 * RLIMIT_NPROC, as a daemon started by a user is. */
START_TEST(nproc_limit)
{
	struct tmp t;
	struct result r;
	struct rlimit rl, was;
	struct passwd *pw = getpwnam("nobody");
	char path[128];

	tmp_init(&t);
	tmp_file(&t, "low.conf", VALID
	    "workers = { min_spare = 7; max_spare = 8; max = 100; };\n");
	tmp_file(&t, "high.conf", VALID
	    "workers = { min_spare = 2; max_spare = 4; max = 100; };\n");
	ck_assert_ptr_nonnull(pw);
	if (geteuid() == 0)
		ck_assert_int_eq(chown(t.dir, pw->pw_uid, pw->pw_gid) == 0 &&
		    setgid(pw->pw_gid) == 0 &&
		    setuid(pw->pw_uid) == 0, 1);
	ck_assert_int_eq(getrlimit(RLIMIT_NPROC, &was), 0);
	rl.rlim_cur = 8;
	rl.rlim_max = was.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NPROC, &rl), 0);
	snprintf(path, sizeof(path), "%s/low.conf", t.dir);
	result_load(&r, path);
	ck_assert_ptr_null(r.conf);
	ck_assert_msg(strstr(r.text, "low.conf:5: workers.min_spare (7) with the master and 1 hubs is more processes than RLIMIT_NPROC (8) allows") != NULL,
	    "got:\n%s", r.text);
	result_done(&r);
	snprintf(path, sizeof(path), "%s/high.conf", t.dir);
	result_load(&r, path);
	ck_assert_msg(r.conf != NULL, "refused:\n%s", r.text);
	ck_assert_msg(strstr(r.text, "high.conf:5: warning: workers.max (100) with the master and 1 hubs is more processes than RLIMIT_NPROC (8) allows") != NULL,
	    "got:\n%s", r.text);
	result_done(&r);
	/* LeakSanitizer needs a thread at exit. */
	ck_assert_int_eq(setrlimit(RLIMIT_NPROC, &was), 0);
	tmp_done(&t);
}
END_TEST

/* ---- diag ------------------------------------------------------------------ */

START_TEST(diag_sort_print)
{
	struct diag d = DIAG_INIT;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	diag_add(&d, DIAG_ERROR, "main.conf", 9, "nine");
	diag_add(&d, DIAG_WARNING, "inc.conf", 2, "inc %d", 2);
	diag_add(&d, DIAG_ERROR, "main.conf", 3, "three");
	diag_add(&d, DIAG_WARNING, "main.conf", 0, "whole file");
	diag_add(&d, DIAG_ERROR, "main.conf", 3, "three again");
	diag_add(&d, DIAG_ERROR, "inc.conf", 1, "inc 1");
	ck_assert_uint_eq(d.nerrors, 4);
	diag_sort(&d);
	f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	diag_print(&d, f);
	fclose(f);
	ck_assert_str_eq(text,
	    "main.conf: warning: whole file\n"
	    "main.conf:3: three\n"
	    "main.conf:3: three again\n"
	    "main.conf:9: nine\n"
	    "inc.conf:1: inc 1\n"
	    "inc.conf:2: warning: inc 2\n");
	free(text);
	diag_free(&d);
	ck_assert_uint_eq(d.n, 0);
	diag_free(&d);
}
END_TEST

static Suite *
checks_suite(void)
{
	Suite *s = suite_create("config_checks");
	TCase *tc = tcase_create("include");

	tcase_add_test(tc, include_self);
	tcase_add_test(tc, include_a_b_a);
	tcase_add_test(tc, include_self_three_times);
	tcase_add_test(tc, include_depth_bound);
	tcase_add_test(tc, include_twice_not_a_cycle);
	tcase_add_test(tc, warning_names_included_file);
	tcase_add_test(tc, syntax_error_in_included_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("numbers");
	tcase_add_test(tc, numbers_beyond_32_bits);
	tcase_add_test(tc, listener_port_wraps_refused);
	tcase_add_test(tc, rule_ports_wrap_refused);
	tcase_add_test(tc, numbers_found_among_other_tokens);
	tcase_add_test(tc, numbers_in_included_file);
	tcase_add_test(tc, numbers_in_range_kept);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, max_spare_above_max_warns);
	tcase_add_test(tc, nproc_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("diag");
	tcase_add_test(tc, diag_sort_print);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(checks_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
