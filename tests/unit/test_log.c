/* test_log.c: unit tests for log_escape and the syslog name tables (src/log.c). */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

/*
 * The header promises \xHH without fixing the case of the hex digits: compare
 * exactly, except that a hex digit inside an escape may be either case.
 */
static bool
escaped_eq(const char *got, const char *want)
{
	size_t hex_left = 0;

	for (; *got != '\0' && *want != '\0'; got++, want++) {
		if (hex_left > 0) {
			if (tolower((unsigned char)*got) !=
			    tolower((unsigned char)*want))
				return false;
			hex_left--;
			continue;
		}
		if (*got != *want)
			return false;
		if (got[0] == '\\' && got[1] == 'x' && want[1] == 'x') {
			got++, want++;
			hex_left = 2;
		}
	}
	return *got == *want;
}

/* Escapes src (srclen bytes) into a roomy buffer and compares with want. */
static void
assert_escape(const void *src, size_t srclen, const char *want)
{
	char dst[1024];

	memset(dst, 'Z', sizeof dst);
	ck_assert_ptr_eq(log_escape(dst, sizeof dst, src, srclen), dst);
	ck_assert_msg(escaped_eq(dst, want), "escaped to \"%s\", want \"%s\"",
	    dst, want);
}

#define ESCAPE_LIT(lit, want) assert_escape(lit, sizeof(lit) - 1, want)

/* ---- what is escaped --------------------------------------------------- */

START_TEST(escape_plain_unchanged)
{
	ESCAPE_LIT("alice", "alice");
	ESCAPE_LIT("example.com", "example.com");
	ESCAPE_LIT("a-b_c.d@e:f/g?h&i~j!k", "a-b_c.d@e:f/g?h&i~j!k");
	ESCAPE_LIT("", "");
}
END_TEST

/* Every printable byte but the four specials passes through. */
START_TEST(escape_all_printable)
{
	char src[1], want[2] = { 0, 0 };

	for (int c = 0x21; c < 0x7f; c++) {
		if (c == '"' || c == '\\' || c == '=')
			continue;
		src[0] = (char)c;
		want[0] = (char)c;
		assert_escape(src, 1, want);
	}
}
END_TEST

/* These would let a client forge key=value pairs or break quoting. */
START_TEST(escape_specials)
{
	ESCAPE_LIT(" ", "\\x20");
	ESCAPE_LIT("\"", "\\x22");
	ESCAPE_LIT("\\", "\\x5c");
	ESCAPE_LIT("=", "\\x3d");
	ESCAPE_LIT("bob user=root", "bob\\x20user\\x3droot");
	ESCAPE_LIT("\\x41", "\\x5cx41");	/* an escape in the input is not trusted */
}
END_TEST

START_TEST(escape_control_bytes)
{
	ESCAPE_LIT("a\nb", "a\\x0ab");
	ESCAPE_LIT("\r\t\x1b", "\\x0d\\x09\\x1b");
	ESCAPE_LIT("\x01", "\\x01");
	ESCAPE_LIT("\x1f", "\\x1f");
	/* srclen, not a NUL, ends the input: embedded NULs are escaped. */
	ESCAPE_LIT("a\0b", "a\\x00b");
}
END_TEST

/* Bytes >= 0x80 must not be sign-extended ("\xffffffff"). */
START_TEST(escape_high_bytes)
{
	ESCAPE_LIT("\x7f", "\\x7f");
	ESCAPE_LIT("\x80", "\\x80");
	ESCAPE_LIT("\xff", "\\xff");
	ESCAPE_LIT("caf\xc3\xa9", "caf\\xc3\\xa9");
}
END_TEST

/* Every byte value: each comes out as itself or as exactly one \xHH. */
START_TEST(escape_every_byte)
{
	static const char hex[] = "0123456789abcdef";
	char src[1], want[5];

	for (int c = 0; c < 256; c++) {
		src[0] = (char)c;
		if (c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=') {
			want[0] = (char)c;
			want[1] = '\0';
		} else {
			want[0] = '\\';
			want[1] = 'x';
			want[2] = hex[c >> 4];
			want[3] = hex[c & 0xf];
			want[4] = '\0';
		}
		assert_escape(src, 1, want);
	}
}
END_TEST

/* ---- truncation -------------------------------------------------------- */

/* The position where each escape unit of s ends: a cut is only allowed there. */
static bool
at_unit_boundary(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n)
		i += (s[i] == '\\') ? 4 : 1;
	return i == n;
}

/*
 * For every dstlen from 1 to beyond the full length: the output is
 * NUL-terminated within dstlen, nothing is written past dstlen, it is a
 * prefix of the full escape that ends between two units, and it is the
 * longest such prefix that fits.
 */
static void
assert_truncations(const void *src, size_t srclen)
{
	char full[1024], dst[1024];
	size_t fulllen;

	log_escape(full, sizeof full, src, srclen);
	fulllen = strlen(full);
	for (size_t dstlen = 1; dstlen <= fulllen + 2; dstlen++) {
		size_t n, best = 0;

		memset(dst, 'Z', sizeof dst);
		log_escape(dst, dstlen, src, srclen);
		n = strnlen(dst, dstlen);
		ck_assert_msg(n < dstlen, "dstlen %zu: not NUL-terminated",
		    dstlen);
		ck_assert_msg(dst[dstlen] == 'Z', "dstlen %zu: wrote past end",
		    dstlen);
		ck_assert_msg(strncmp(dst, full, n) == 0,
		    "dstlen %zu: \"%s\" not a prefix of \"%s\"", dstlen, dst,
		    full);
		ck_assert_msg(at_unit_boundary(full, n),
		    "dstlen %zu: \"%s\" splits an escape", dstlen, dst);
		for (size_t k = 0; k < dstlen && k <= fulllen; k++)
			if (at_unit_boundary(full, k))
				best = k;
		ck_assert_msg(n == best, "dstlen %zu: kept %zu chars, %zu fit",
		    dstlen, n, best);
	}
}

START_TEST(truncate_never_splits)
{
	assert_truncations("ab\x01" "cd", 5);
	assert_truncations("\xff\xfe\xfd", 3);
	assert_truncations("x y=z\"w\\v", 9);
	assert_truncations("plain-text-only", 15);
}
END_TEST

START_TEST(truncate_dstlen_one)
{
	char dst[4] = "ZZZ";

	log_escape(dst, 1, "abc", 3);
	ck_assert_str_eq(dst, "");
	ck_assert_int_eq(dst[1], 'Z');
	memcpy(dst, "ZZZ", 4);
	log_escape(dst, 1, "\x01", 1);
	ck_assert_str_eq(dst, "");
}
END_TEST

/* A full-length (255 byte) hostile user name in the smallest sane buffer. */
START_TEST(truncate_long_input)
{
	unsigned char src[255];
	char dst[64];

	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (unsigned char)(i * 37);
	memset(dst, 'Z', sizeof dst);
	log_escape(dst, sizeof dst, src, sizeof src);
	ck_assert_uint_lt(strnlen(dst, sizeof dst), sizeof dst);
	ck_assert(at_unit_boundary(dst, strlen(dst)));
}
END_TEST

/* ---- names ------------------------------------------------------------- */

START_TEST(facility_names)
{
	ck_assert_int_eq(log_facility_from_name("daemon"), LOG_DAEMON);
	ck_assert_int_eq(log_facility_from_name("local0"), LOG_LOCAL0);
	ck_assert_int_eq(log_facility_from_name("local7"), LOG_LOCAL7);
	ck_assert_int_eq(log_facility_from_name("user"), LOG_USER);
	ck_assert_int_ge(log_facility_from_name("auth"), 0);
	ck_assert_int_ge(log_facility_from_name("authpriv"), 0);
}
END_TEST

START_TEST(facility_unknown)
{
	ck_assert_int_eq(log_facility_from_name(""), -1);
	ck_assert_int_eq(log_facility_from_name("nosuch"), -1);
	ck_assert_int_eq(log_facility_from_name("local8"), -1);
	ck_assert_int_eq(log_facility_from_name("daemonx"), -1);
	ck_assert_int_eq(log_facility_from_name("daemo"), -1);
	ck_assert_int_eq(log_facility_from_name("info"), -1);
}
END_TEST

/* The five level names that socks5d.conf documents. */
START_TEST(level_names)
{
	ck_assert_int_eq(log_level_from_name("debug"), LOG_DEBUG);
	ck_assert_int_eq(log_level_from_name("info"), LOG_INFO);
	ck_assert_int_eq(log_level_from_name("notice"), LOG_NOTICE);
	ck_assert_int_eq(log_level_from_name("warning"), LOG_WARNING);
	ck_assert_int_eq(log_level_from_name("err"), LOG_ERR);
}
END_TEST

START_TEST(level_unknown)
{
	ck_assert_int_eq(log_level_from_name(""), -1);
	ck_assert_int_eq(log_level_from_name("verbose"), -1);
	ck_assert_int_eq(log_level_from_name("infox"), -1);
	ck_assert_int_eq(log_level_from_name("inf"), -1);
	ck_assert_int_eq(log_level_from_name("daemon"), -1);
}
END_TEST

/* ---- the log API ------------------------------------------------------- */

START_TEST(level_get_set)
{
	log_set_level(LOG_DEBUG);
	ck_assert_int_eq(log_get_level(), LOG_DEBUG);
	log_set_level(LOG_ERR);
	ck_assert_int_eq(log_get_level(), LOG_ERR);
}
END_TEST

/* Callers log and then test errno (log_warn; return -1): it must survive. */
START_TEST(errno_preserved)
{
	log_set_level(LOG_DEBUG);
	errno = ECONNRESET;
	log_warn("test %d", 1);
	ck_assert_int_eq(errno, ECONNRESET);
	errno = EPIPE;
	log_debug("test %s", "two");
	ck_assert_int_eq(errno, EPIPE);
	log_set_level(LOG_ERR);
	errno = EAGAIN;
	log_info("filtered");
	ck_assert_int_eq(errno, EAGAIN);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc;

	tc = tcase_create("escape");
	tcase_add_test(tc, escape_plain_unchanged);
	tcase_add_test(tc, escape_all_printable);
	tcase_add_test(tc, escape_specials);
	tcase_add_test(tc, escape_control_bytes);
	tcase_add_test(tc, escape_high_bytes);
	tcase_add_test(tc, escape_every_byte);
	suite_add_tcase(s, tc);

	tc = tcase_create("truncate");
	tcase_add_test(tc, truncate_never_splits);
	tcase_add_test(tc, truncate_dstlen_one);
	tcase_add_test(tc, truncate_long_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, facility_names);
	tcase_add_test(tc, facility_unknown);
	tcase_add_test(tc, level_names);
	tcase_add_test(tc, level_unknown);
	suite_add_tcase(s, tc);

	tc = tcase_create("api");
	tcase_add_test(tc, level_get_set);
	tcase_add_test(tc, errno_preserved);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
