/* test_addr.c: unit tests for address parsing, formatting and CIDR matching (src/addr.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "addr.h"
#include "portbind.h"

/* Parses text that the test knows is a valid address; fails the test if not. */
static struct sockaddr_storage
ip(const char *text, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;

	ck_assert_msg(addr_parse_ip(text, port, &ss, &len) == 0,
	    "addr_parse_ip(\"%s\") failed", text);
	return ss;
}

static struct cidr
cidr(const char *text)
{
	struct cidr c;

	ck_assert_msg(addr_parse_cidr(text, &c) == 0,
	    "addr_parse_cidr(\"%s\") failed", text);
	return c;
}

static bool
in(const char *addr, const char *range)
{
	struct sockaddr_storage ss = ip(addr, 0);
	struct cidr c = cidr(range);

	return addr_in_cidr((struct sockaddr *)&ss, &c);
}

/* ---- addr_parse_ip ----------------------------------------------------- */

START_TEST(parse_ipv4)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	socklen_t len = 0;

	ck_assert_int_eq(addr_parse_ip("192.0.2.7", 1080, &ss, &len), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert_uint_eq(ntohl(s4->sin_addr.s_addr), 0xc0000207);
	ck_assert_uint_eq(ntohs(s4->sin_port), 1080);
	ck_assert_uint_eq(addr_port((struct sockaddr *)&ss), 1080);
	ck_assert_uint_eq(addr_len((struct sockaddr *)&ss),
	    sizeof(struct sockaddr_in));
}
END_TEST

START_TEST(parse_ipv6)
{
	static const uint8_t want[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x01 };
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = 0;

	ck_assert_int_eq(addr_parse_ip("2001:db8::1", 65535, &ss, &len), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
	ck_assert_mem_eq(s6->sin6_addr.s6_addr, want, 16);
	ck_assert_uint_eq(ntohs(s6->sin6_port), 65535);
	ck_assert_uint_eq(addr_port((struct sockaddr *)&ss), 65535);
	ck_assert_uint_eq(addr_len((struct sockaddr *)&ss),
	    sizeof(struct sockaddr_in6));
}
END_TEST

START_TEST(parse_ip_special)
{
	struct sockaddr_storage ss = ip("::", 0);

	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ss = ip("0.0.0.0", 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ss = ip("::ffff:10.1.2.3", 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ss = ip("255.255.255.255", 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
}
END_TEST

/* Names are never resolved here, and a port must come from its own setting. */
START_TEST(parse_ip_rejects)
{
	static const char *const bad[] = {
		"", " ", "garbage", "localhost", "1.2.3", "1.2.3.4.5",
		"256.1.1.1", "1.2.3.4:80", "[::1]", "[::1]:80", "::1::2",
		"1.2.3.4/8", " 1.2.3.4", "1.2.3.4 ", "::g", "fe80::1%lo",
	};
	struct sockaddr_storage ss;
	socklen_t len;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(addr_parse_ip(bad[i], 80, &ss, &len) == -1,
		    "addr_parse_ip accepted \"%s\"", bad[i]);
}
END_TEST

/* ---- addr_parse_cidr --------------------------------------------------- */

START_TEST(parse_cidr_ipv4)
{
	struct cidr c = cidr("10.0.0.0/8");

	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_int_eq(c.prefix, 8);
	ck_assert_mem_eq(c.addr, "\x0a\x00\x00\x00", 4);
	c = cidr("192.0.2.1");
	ck_assert_int_eq(c.prefix, 32);
	ck_assert_mem_eq(c.addr, "\xc0\x00\x02\x01", 4);
	c = cidr("0.0.0.0/0");
	ck_assert_int_eq(c.prefix, 0);
	c = cidr("1.2.3.4/32");
	ck_assert_int_eq(c.prefix, 32);
}
END_TEST

START_TEST(parse_cidr_ipv6)
{
	static const uint8_t loop[16] = { [15] = 1 };
	static const uint8_t zero[16];
	struct cidr c = cidr("::1");

	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_int_eq(c.prefix, 128);
	ck_assert_mem_eq(c.addr, loop, 16);
	c = cidr("::/0");
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_int_eq(c.prefix, 0);
	ck_assert_mem_eq(c.addr, zero, 16);
	c = cidr("2001:db8::/32");
	ck_assert_int_eq(c.prefix, 32);
	c = cidr("::1/128");
	ck_assert_int_eq(c.prefix, 128);
}
END_TEST

/* Stored host bits would make every later comparison depend on them. */
START_TEST(parse_cidr_clears_host_bits)
{
	static const uint8_t want6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0x80 };
	struct cidr c = cidr("10.1.2.3/8");

	ck_assert_mem_eq(c.addr, "\x0a\x00\x00\x00", 4);
	c = cidr("192.168.255.255/20");
	ck_assert_mem_eq(c.addr, "\xc0\xa8\xf0\x00", 4);
	c = cidr("255.255.255.255/0");
	ck_assert_mem_eq(c.addr, "\x00\x00\x00\x00", 4);
	c = cidr("2001:db8:ffff:ffff::1/41");
	ck_assert_mem_eq(c.addr, want6, 16);
}
END_TEST

START_TEST(parse_cidr_rejects)
{
	static const char *const bad[] = {
		"", "/8", "1.2.3.4/33", "1.2.3.4/-1", "/-1", "x/8", "1.2.3.4/",
		"1.2.3.4/8x", "1.2.3.4/8/8", "1.2.3.4/ 8", "1.2.3.4/+8",
		"::/129", "::1/-1", "10.0.0.0/99999999999999999999", "10/8",
		"1.2.3.4:80", "garbage",
		"aaaa:bbbb:cccc:dddd:eeee:ffff:0000:1111:2222:3333:4444:5555/8",
	};
	struct cidr c;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(addr_parse_cidr(bad[i], &c) == -1,
		    "addr_parse_cidr accepted \"%s\"", bad[i]);
}
END_TEST

/* ---- addr_in_cidr ------------------------------------------------------ */

START_TEST(in_cidr_ipv4)
{
	ck_assert(in("10.1.2.3", "10.0.0.0/8"));
	ck_assert(in("10.255.255.255", "10.0.0.0/8"));
	ck_assert(!in("11.0.0.0", "10.0.0.0/8"));
	ck_assert(!in("9.255.255.255", "10.0.0.0/8"));
	ck_assert(in("192.168.15.1", "192.168.0.0/20"));
	ck_assert(!in("192.168.16.1", "192.168.0.0/20"));
	ck_assert(in("1.2.3.4", "1.2.3.4"));
	ck_assert(!in("1.2.3.5", "1.2.3.4"));
	ck_assert(!in("1.2.3.5", "1.2.3.4/32"));
	ck_assert(in("1.2.3.5", "1.2.3.4/31"));
}
END_TEST

START_TEST(in_cidr_ipv6)
{
	ck_assert(in("::1", "::1"));
	ck_assert(!in("::2", "::1"));
	ck_assert(in("2001:db8:1::5", "2001:db8::/32"));
	ck_assert(!in("2001:db9::5", "2001:db8::/32"));
	ck_assert(in("fe80::1234", "fe80::/10"));
	ck_assert(in("febf::1", "fe80::/10"));
	ck_assert(!in("fec0::1", "fe80::/10"));
}
END_TEST

/* Prefix 0 matches the whole family, and only that family. */
START_TEST(in_cidr_prefix_zero)
{
	ck_assert(in("1.2.3.4", "0.0.0.0/0"));
	ck_assert(in("255.255.255.255", "0.0.0.0/0"));
	ck_assert(in("::1", "::/0"));
	ck_assert(in("2001:db8::1", "::/0"));
	ck_assert(!in("1.2.3.4", "::/0"));
	ck_assert(!in("2001:db8::1", "0.0.0.0/0"));
}
END_TEST

START_TEST(in_cidr_cross_family)
{
	ck_assert(!in("10.0.0.1", "::/96"));
	ck_assert(!in("2001:db8::a00:1", "10.0.0.0/8"));
	ck_assert(!in("64:ff9c::a00:1", "10.0.0.0/8"));	/* not the NAT64 prefix */
	ck_assert(!in("2003:a00:1::", "10.0.0.0/8"));	/* not 6to4 */
}
END_TEST

/* IPv6 forms that carry an IPv4 address match IPv4 ranges as that address,
 * and IPv6 ranges as themselves. */
START_TEST(in_cidr_embedded_v4)
{
	/* IPv4-compatible ::a.b.c.d */
	ck_assert(in("::127.0.0.1", "127.0.0.0/8"));
	ck_assert(in("::a00:1", "10.0.0.0/8"));
	ck_assert(!in("::a00:1", "11.0.0.0/8"));
	/* NAT64 well-known prefix 64:ff9b::/96 */
	ck_assert(in("64:ff9b::7f00:1", "127.0.0.0/8"));
	ck_assert(in("64:ff9b::169.254.169.254", "169.254.0.0/16"));
	ck_assert(!in("64:ff9b::8.8.8.8", "127.0.0.0/8"));
	/* 6to4 2002:AABB:CCDD::/48 */
	ck_assert(in("2002:7f00:1::", "127.0.0.0/8"));
	ck_assert(in("2002:a9fe:a9fe:1::5", "169.254.169.254"));
	ck_assert(!in("2002:808:808::", "127.0.0.0/8"));
	/* and still their own IPv6 ranges */
	ck_assert(in("2002:7f00:1::", "2002::/16"));
	ck_assert(in("64:ff9b::7f00:1", "64:ff9b::/96"));
}
END_TEST

/* :: and ::1 are the unspecified and loopback addresses, not compatible
 * forms of 0.0.0.0 and 0.0.0.1. */
START_TEST(embedded_v4_forms)
{
	struct sockaddr_storage ss;
	socklen_t len;
	uint32_t v4 = 0;
	static const struct { const char *ip; bool embeds; uint32_t v4; } t[] = {
		{ "::ffff:1.2.3.4", true, 0x01020304 },
		{ "::1.2.3.4", true, 0x01020304 },
		{ "::2", true, 2 },
		{ "::", false, 0 },
		{ "::1", false, 0 },
		{ "64:ff9b::1.2.3.4", true, 0x01020304 },
		{ "64:ff9b:1::1.2.3.4", false, 0 },
		{ "2002:102:304::", true, 0x01020304 },
		{ "2001:db8::1", false, 0 },
		{ "fe80::1", false, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ck_assert_int_eq(addr_parse_ip(t[i].ip, 0, &ss, &len), 0);
		ck_assert_msg(addr_embedded_v4(((struct sockaddr_in6 *)&ss)->
		    sin6_addr.s6_addr, &v4) == t[i].embeds, "%s", t[i].ip);
		if (t[i].embeds)
			ck_assert_uint_eq(v4, t[i].v4);
	}
}
END_TEST

/* getifaddrs lists at least lo's 127.0.0.1. */
START_TEST(host_cidrs_have_loopback)
{
	struct cidr *list;
	size_t n;
	bool lo = false;

	ck_assert_int_eq(addr_host_cidrs(&list, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (list[i].family == AF_INET && list[i].prefix == 32 &&
		    memcmp(list[i].addr, "\x7f\0\0\1", 4) == 0)
			lo = true;
	free(list);
	ck_assert(lo);
}
END_TEST

/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: IPv4 rules apply. */
START_TEST(in_cidr_v4_mapped)
{
	ck_assert(in("::ffff:10.1.2.3", "10.0.0.0/8"));
	ck_assert(!in("::ffff:11.1.2.3", "10.0.0.0/8"));
	ck_assert(in("::ffff:127.0.0.1", "127.0.0.0/8"));
	ck_assert(in("::ffff:1.2.3.4", "0.0.0.0/0"));
	ck_assert(in("::ffff:10.1.2.3", "::ffff:10.0.0.0/104"));
}
END_TEST

START_TEST(in_cidr_other_family)
{
	struct sockaddr_storage ss;
	struct cidr c = cidr("0.0.0.0/0");

	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNIX;
	ck_assert(!addr_in_cidr((struct sockaddr *)&ss, &c));
}
END_TEST

/* ---- formatting -------------------------------------------------------- */

static void
assert_format(const char *text, uint16_t port, const char *want,
    const char *want_ip)
{
	struct sockaddr_storage ss = ip(text, port);
	char buf[ADDR_STRLEN];

	ck_assert_ptr_eq(addr_format((struct sockaddr *)&ss, buf, sizeof buf), buf);
	ck_assert_str_eq(buf, want);
	ck_assert_ptr_eq(addr_format_ip((struct sockaddr *)&ss, buf, sizeof buf),
	    buf);
	ck_assert_str_eq(buf, want_ip);
}

START_TEST(format_ipv4)
{
	assert_format("1.2.3.4", 80, "1.2.3.4:80", "1.2.3.4");
	assert_format("0.0.0.0", 0, "0.0.0.0:0", "0.0.0.0");
	assert_format("255.255.255.255", 65535, "255.255.255.255:65535",
	    "255.255.255.255");
}
END_TEST

START_TEST(format_ipv6)
{
	assert_format("::1", 1080, "[::1]:1080", "::1");
	assert_format("2001:DB8:0:0:0:0:0:1", 443, "[2001:db8::1]:443",
	    "2001:db8::1");
	assert_format("::ffff:10.1.2.3", 80, "[::ffff:10.1.2.3]:80",
	    "::ffff:10.1.2.3");
}
END_TEST

/* ADDR_STRLEN is documented as the longest text addr_format writes. */
START_TEST(format_longest_fits)
{
	static const char *const longest =
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
	struct sockaddr_storage ss = ip(longest, 65535);
	char buf[ADDR_STRLEN];

	addr_format((struct sockaddr *)&ss, buf, sizeof buf);
	ck_assert_str_eq(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	ss = ip("1111:2222:3333:4444:5555:6666:7777:8888", 65535);
	addr_format((struct sockaddr *)&ss, buf, sizeof buf);
	ck_assert_str_eq(buf, "[1111:2222:3333:4444:5555:6666:7777:8888]:65535");
}
END_TEST

/* A short buffer must still come back NUL-terminated and within bounds. */
START_TEST(format_short_buffer)
{
	struct sockaddr_storage ss = ip("2001:db8::1", 443);
	char buf[32];

	memset(buf, 'Z', sizeof buf);
	addr_format((struct sockaddr *)&ss, buf, 8);
	ck_assert_uint_lt(strnlen(buf, 8), 8);
	ck_assert_int_eq(buf[8], 'Z');
	memset(buf, 'Z', sizeof buf);
	addr_format_ip((struct sockaddr *)&ss, buf, 4);
	ck_assert_uint_lt(strnlen(buf, 4), 4);
	ck_assert_int_eq(buf[4], 'Z');
}
END_TEST

/* portbind: a port of the range, EADDRINUSE when every one is taken. */
static int
bound_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

START_TEST(portbind_range)
{
	struct sockaddr_in lo = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fds[2] = { socket(AF_INET, SOCK_DGRAM, 0),
	    socket(AF_INET, SOCK_DGRAM, 0) };
	struct port_range r;

	/* A free port, found by the kernel, as a range of one. */
	ck_assert_int_eq(portbind(fds[0], (struct sockaddr *)&lo, NULL), 0);
	r.lo = r.hi = (uint16_t)bound_port(fds[0]);
	ck_assert_int_eq(portbind(fds[1], (struct sockaddr *)&lo, &r),
	    EADDRINUSE);
	close(fds[0]);
	fds[0] = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_eq(portbind(fds[0], (struct sockaddr *)&lo, &r), 0);
	ck_assert_int_eq(bound_port(fds[0]), r.lo);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* addr_unmap: ::ffff:a.b.c.d becomes a.b.c.d with its port; other
 * IPv6 addresses and IPv4 stay. */
START_TEST(unmap_forms)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(4242);
	inet_pton(AF_INET6, "::ffff:192.0.2.9", &s6->sin6_addr);
	addr_unmap(&ss);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_int_eq(ntohs(s4->sin_port), 4242);
	ck_assert_uint_eq(ntohl(s4->sin_addr.s_addr), 0xc0000209);
	addr_unmap(&ss);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::9", &s6->sin6_addr);
	addr_unmap(&ss);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
}
END_TEST

static Suite *
addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc;

	tc = tcase_create("parse_ip");
	tcase_add_test(tc, parse_ipv4);
	tcase_add_test(tc, parse_ipv6);
	tcase_add_test(tc, parse_ip_special);
	tcase_add_test(tc, parse_ip_rejects);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse_cidr");
	tcase_add_test(tc, parse_cidr_ipv4);
	tcase_add_test(tc, parse_cidr_ipv6);
	tcase_add_test(tc, parse_cidr_clears_host_bits);
	tcase_add_test(tc, parse_cidr_rejects);
	suite_add_tcase(s, tc);

	tc = tcase_create("in_cidr");
	tcase_add_test(tc, in_cidr_ipv4);
	tcase_add_test(tc, in_cidr_ipv6);
	tcase_add_test(tc, in_cidr_prefix_zero);
	tcase_add_test(tc, in_cidr_cross_family);
	tcase_add_test(tc, in_cidr_embedded_v4);
	tcase_add_test(tc, embedded_v4_forms);
	tcase_add_test(tc, host_cidrs_have_loopback);
	tcase_add_test(tc, in_cidr_v4_mapped);
	tcase_add_test(tc, in_cidr_other_family);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, format_ipv4);
	tcase_add_test(tc, format_ipv6);
	tcase_add_test(tc, format_longest_fits);
	tcase_add_test(tc, format_short_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("unmap");
	tcase_add_test(tc, unmap_forms);
	suite_add_tcase(s, tc);

	tc = tcase_create("portbind");
	tcase_add_test(tc, portbind_range);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(addr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
