/* test_config_bind.c: unit tests for the `bind` group (src/config_bind.c):
 * defaults, values, and every error with its file:line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"

/* A valid file after the test's line 1. */
#define REST \
	"user = \"nobody\";\n" \
	"listeners = ( { address = \"127.0.0.1\"; port = 1080; } );\n" \
	"clients = ( { action = \"pass\"; } );\n" \
	"rules = ( { action = \"pass\"; } );\n"

/* One config_load of a temporary file: the result and what it printed. */
struct load {
	char path[64];
	struct config *conf;
	char *errs;
	size_t errslen;
};

static void
load_text(struct load *l, const char *text)
{
	struct diag d = DIAG_INIT;
	FILE *errs;
	int fd;

	memset(l, 0, sizeof(*l));
	snprintf(l->path, sizeof(l->path), "/tmp/socks5d-test-XXXXXX");
	fd = mkstemp(l->path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	errs = open_memstream(&l->errs, &l->errslen);
	ck_assert_ptr_nonnull(errs);
	l->conf = config_load(l->path, &d);
	diag_print(&d, errs);
	diag_free(&d);
	fclose(errs);
	unlink(l->path);
}

static void
load_done(struct load *l)
{
	config_free(l->conf);
	free(l->errs);
}

/* Whether errs holds "PATH:LINE: " followed by a message with needle, as
 * an error (warning false) or a warning (true). */
static bool
has_message(const struct load *l, int line, const char *needle, bool warning)
{
	char prefix[96];
	const char *s = l->errs;

	snprintf(prefix, sizeof(prefix), "%s:%d: %s", l->path, line,
	    warning ? "warning: " : "");
	while (s != NULL && (s = strstr(s, prefix)) != NULL) {
		const char *eol = strchr(s, '\n');
		size_t len = eol ? (size_t)(eol - s) : strlen(s);
		char text[512];

		snprintf(text, sizeof(text), "%.*s", (int)len, s);
		if ((warning || strstr(text, "warning: ") == NULL) &&
		    strstr(text, needle) != NULL)
			return true;
		s += len;
	}
	return false;
}

static void
assert_error(const char *text, int line, const char *needle)
{
	struct load l;

	load_text(&l, text);
	ck_assert_msg(l.conf == NULL, "config_load accepted:\n%s", text);
	ck_assert_msg(has_message(&l, line, needle, false),
	    "no error at line %d mentioning \"%s\"; got:\n%s", line, needle,
	    l.errs);
	load_done(&l);
}

START_TEST(defaults)
{
	struct load l;

	load_text(&l, REST);
	ck_assert_msg(l.conf != NULL, "%s", l.errs);
	ck_assert_int_eq(l.conf->bind.ports.lo, 0);
	ck_assert_int_eq(l.conf->bind.ports.hi, 0);
	ck_assert(!l.conf->bind.any_peer);
	ck_assert_int_eq(l.conf->timeouts.bind, 60);
	load_done(&l);
}
END_TEST

START_TEST(values)
{
	struct load l;

	load_text(&l, "bind = { ports = \"40000-40099\"; peer = \"any\"; };\n" REST);
	ck_assert_msg(l.conf != NULL, "%s", l.errs);
	ck_assert_int_eq(l.conf->bind.ports.lo, 40000);
	ck_assert_int_eq(l.conf->bind.ports.hi, 40099);
	ck_assert(l.conf->bind.any_peer);
	load_done(&l);
	load_text(&l, "bind = { ports = 40000; peer = \"dst\"; };\n" REST);
	ck_assert_msg(l.conf != NULL, "%s", l.errs);
	ck_assert_int_eq(l.conf->bind.ports.lo, 40000);
	ck_assert_int_eq(l.conf->bind.ports.hi, 40000);
	ck_assert(!l.conf->bind.any_peer);
	load_done(&l);
	load_text(&l, "bind = { };\n" REST);
	ck_assert_msg(l.conf != NULL, "%s", l.errs);
	ck_assert_int_eq(l.conf->bind.ports.lo, 0);
	load_done(&l);
}
END_TEST

START_TEST(low_ports_warn)
{
	struct load l;

	load_text(&l, "bind = { ports = \"1000-2000\"; };\n" REST);
	ck_assert_msg(l.conf != NULL, "%s", l.errs);
	ck_assert_msg(has_message(&l, 1, "below 1024", true), "%s", l.errs);
	load_done(&l);
}
END_TEST

START_TEST(errors)
{
	assert_error("bind = { porst = 4000; };\n" REST, 1, "bind.porst");
	assert_error("bind = { ports = \"9-3\"; };\n" REST, 1, "ports");
	assert_error("bind = { ports = 0; };\n" REST, 1, "ports");
	assert_error("bind = { ports = 65536; };\n" REST, 1, "ports");
	assert_error("bind = { ports = 4294967297; };\n" REST, 1, "ports");
	assert_error("bind = { ports = \"ftp\"; };\n" REST, 1, "ports");
	assert_error("bind = { ports = [ 4000 ]; };\n" REST, 1, "bind.ports");
	assert_error("bind = { ports = true; };\n" REST, 1, "bind.ports");
	assert_error("bind = { peer = \"strict\"; };\n" REST, 1, "bind.peer");
	assert_error("bind = { peer = 1; };\n" REST, 1, "peer");
	assert_error("bind = 5;\n" REST, 1, "bind");
	/* Later lines are checked too, each with its own line. */
	assert_error("bind = {\n ports = \"1-2-3\";\n peer = \"x\";\n};\n" REST,
	    2, "ports");
	assert_error("bind = {\n ports = \"1-2-3\";\n peer = \"x\";\n};\n" REST,
	    3, "peer");
}
END_TEST

static Suite *
config_bind_suite(void)
{
	Suite *s = suite_create("config_bind");
	TCase *tc = tcase_create("bind");

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, values);
	tcase_add_test(tc, low_ports_warn);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_bind_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
