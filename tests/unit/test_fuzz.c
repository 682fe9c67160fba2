/* test_fuzz.c: regressions found by the fuzz targets (fuzz/): each test
 * holds the input that failed, as the target fed it, and checks the
 * codec's answer now. The inputs are in fuzz/corpus/ too. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"

/* A private directory with the main file (and inc.conf when given), as
 * fuzz_config writes them. */
struct files {
	char dir[64];
	char main[PATH_MAX];
	char inc[PATH_MAX];
};

static void
put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(close(fd), 0);
}

static void
files_make(struct files *f, const char *main_text, const char *inc_text)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/socks5d-test-fuzz-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->main, sizeof(f->main), "%s/socks5d.conf", f->dir);
	snprintf(f->inc, sizeof(f->inc), "%s/inc.conf", f->dir);
	put(f->main, main_text);
	if (inc_text != NULL)
		put(f->inc, inc_text);
}

static void
files_remove(struct files *f)
{
	unlink(f->main);
	unlink(f->inc);
	rmdir(f->dir);
}

/* config_control_socket(path) in a child: its exit status and, when it
 * returned, what it returned (in out). The bug ended the process. */
static int
control_socket_in_child(const char *path, char *out, size_t len)
{
	int pfd[2], status;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *s = config_control_socket(path);

		close(pfd[0]);
		if (write(pfd[1], s, strlen(s)) != (ssize_t)strlen(s))
			_exit(3);
		free(s);
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], out, len - 1);
	out[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/*
 * fuzz_config, seed include-directory: `socks5d status` and `socks5d
 * reload` find the control socket with config_control_socket, which gave
 * the file to libconfig without the include check config_load makes:
 * libconfig's scanner read the directory and ended the process ("input
 * in flex scanner failed", exit 2). Now the file is checked first and the
 * default socket is used.
 */
START_TEST(control_socket_include_directory)
{
	static const char input[] =
	    "user = \"nobody\";\n"
	    "listeners = ( { address = \"127.0.0.1\"; port = 1080; } );\n"
	    "clients = ( { action = \"pass\"; } );\n"
	    "rules = ( { action = \"pass\"; } );\n"
	    "@include \"/tmp\"\n";
	struct files f;
	char got[PATH_MAX];
	int status;

	files_make(&f, input, NULL);
	status = control_socket_in_child(f.main, got, sizeof(got));
	files_remove(&f);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "config_control_socket ended the process (status %#x)", status);
	ck_assert_str_eq(got, config_control_default());
}
END_TEST

/* Found with the fix above: a relative @include was taken from the
 * current directory, not the file's, so a control.socket set in an
 * include was missed when the command ran elsewhere. */
START_TEST(control_socket_relative_include)
{
	struct files f;
	char got[PATH_MAX], cwd[PATH_MAX];
	int status;

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	files_make(&f, "@include \"inc.conf\"\n",
	    "control = { socket = \"/run/socks5d-fuzz/ctl\"; };\n");
	ck_assert_int_eq(chdir("/"), 0);
	status = control_socket_in_child(f.main, got, sizeof(got));
	ck_assert_int_eq(chdir(cwd), 0);
	files_remove(&f);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_str_eq(got, "/run/socks5d-fuzz/ctl");
}
END_TEST

/*
 * fuzz_config, crash-12d16322: a value echoed in an error message kept
 * its control bytes, so a string with a raw newline (or libconfig's "\n")
 * made a record of two lines: socks5d -t printed, and a reload logged,
 * a second line that looked like another record. Now each record is one
 * line, the byte shown as \xHH. (Shortened from the fuzzer's input.)
 */
START_TEST(diag_record_is_one_line)
{
	static const char input[] =
	    "user = \"nobody\";\n"
	    "listeners = ( { address = \"127.0.0.1\"; port = 1080; },"
	    " { address = \"8};\n\xff\xff" "6.0...2\"; port = 1080; },"
	    " { address = \"1\\n2\"; port = 1080; } );\n"
	    "clients = ( { action = \"pass\"; } );\n"
	    "rules = ( { action = \"pass\"; } );\n";
	struct diag d = DIAG_INIT;
	struct files f;
	struct config *conf;
	size_t found = 0;

	files_make(&f, input, NULL);
	conf = config_load(f.main, &d);
	files_remove(&f);
	ck_assert_ptr_null(conf);
	ck_assert_uint_ge(d.n, 2);
	for (size_t i = 0; i < d.n; i++) {
		ck_assert_msg(strchr(d.recs[i].message, '\n') == NULL,
		    "record %zu has a newline: %s", i, d.recs[i].message);
		found += strstr(d.recs[i].message, "\"8};\\x0a\xff\xff" "6.0") != NULL;
		found += strstr(d.recs[i].message, "\"1\\x0a2\"") != NULL;
	}
	ck_assert_uint_eq(found, 2);
	diag_free(&d);
}
END_TEST

static Suite *
fuzz_suite(void)
{
	Suite *s = suite_create("fuzz");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, control_socket_include_directory);
	tcase_add_test(tc, control_socket_relative_include);
	tcase_add_test(tc, diag_record_is_one_line);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fuzz_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
