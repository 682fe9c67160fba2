/* test_socks5.c: unit tests for the pure SOCKS5 wire codec (src/socks5.c). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "socks5.h"

/* Written before every parse: a parser must leave *used alone unless OK. */
#define USED_SENTINEL ((size_t)0xdeadbeef)
/* The output struct is filled with this first, so that a missing NUL
 * terminator shows instead of hiding in zeroed stack memory. */
#define OUT_GARBAGE 0xa5

/*
 * Every parse reads from a copy placed at the very end of a heap block, so
 * that ASan reports any read past the last byte the "peer" sent. One block
 * is reused: a malloc per parse makes the random loops slow under ASan.
 */
enum { ARENA_SIZE = 1024 };

static const uint8_t *
at_end(const uint8_t *buf, size_t len)
{
	static uint8_t *arena;

	/* Plain ifs: a ck_assert here would cost a pipe write per parse. */
	if (arena == NULL && (arena = malloc(ARENA_SIZE)) == NULL)
		ck_abort_msg("out of memory");
	if (len > ARENA_SIZE)
		ck_abort_msg("message of %zu bytes too long", len);
	if (len > 0)
		memmove(arena + ARENA_SIZE - len, buf, len);
	return arena + ARENA_SIZE - len;
}

static enum socks5_status
greeting(const uint8_t *buf, size_t len, struct socks5_greeting *out,
    size_t *used)
{
	memset(out, OUT_GARBAGE, sizeof *out);
	*used = USED_SENTINEL;
	return socks5_parse_greeting(at_end(buf, len), len, out, used);
}

static enum socks5_status
request(const uint8_t *buf, size_t len, struct socks5_request *out,
    size_t *used)
{
	memset(out, OUT_GARBAGE, sizeof *out);
	*used = USED_SENTINEL;
	return socks5_parse_request(at_end(buf, len), len, out, used);
}

static enum socks5_status
userpass(const uint8_t *buf, size_t len, struct socks5_userpass *out,
    size_t *used)
{
	memset(out, OUT_GARBAGE, sizeof *out);
	*used = USED_SENTINEL;
	return socks5_parse_userpass(at_end(buf, len), len, out, used);
}

/* Every proper prefix of a complete message is INCOMPLETE and consumes nothing. */
static void
assert_greeting_prefixes_incomplete(const uint8_t *buf, size_t len)
{
	struct socks5_greeting g;
	size_t used;

	for (size_t n = 0; n < len; n++) {
		ck_assert_msg(greeting(buf, n, &g, &used) == SOCKS5_INCOMPLETE,
		    "greeting prefix of %zu/%zu bytes not INCOMPLETE", n, len);
		ck_assert_msg(used == USED_SENTINEL, "used set on INCOMPLETE");
	}
}

static void
assert_request_prefixes_incomplete(const uint8_t *buf, size_t len)
{
	struct socks5_request r;
	size_t used;

	for (size_t n = 0; n < len; n++) {
		ck_assert_msg(request(buf, n, &r, &used) == SOCKS5_INCOMPLETE,
		    "request prefix of %zu/%zu bytes not INCOMPLETE", n, len);
		ck_assert_msg(used == USED_SENTINEL, "used set on INCOMPLETE");
	}
}

static void
assert_userpass_prefixes_incomplete(const uint8_t *buf, size_t len)
{
	struct socks5_userpass up;
	size_t used;

	for (size_t n = 0; n < len; n++) {
		ck_assert_msg(userpass(buf, n, &up, &used) == SOCKS5_INCOMPLETE,
		    "userpass prefix of %zu/%zu bytes not INCOMPLETE", n, len);
		ck_assert_msg(used == USED_SENTINEL, "used set on INCOMPLETE");
	}
}

/* Builds VER 05 | CMD | RSV 00 | ATYP 03 | len | name | port into buf. */
static size_t
build_domain_request(uint8_t *buf, uint8_t cmd, const char *name, size_t nlen,
    uint16_t port)
{
	size_t n = 0;

	buf[n++] = 0x05;
	buf[n++] = cmd;
	buf[n++] = 0x00;
	buf[n++] = SOCKS5_ATYP_DOMAIN;
	buf[n++] = (uint8_t)nlen;
	memcpy(buf + n, name, nlen);
	n += nlen;
	buf[n++] = (uint8_t)(port >> 8);
	buf[n++] = (uint8_t)port;
	return n;
}

/* ---- greeting ---------------------------------------------------------- */

START_TEST(greeting_one_method)
{
	static const uint8_t msg[] = { 0x05, 0x01, 0x00 };
	struct socks5_greeting g;
	size_t used;

	ck_assert_int_eq(greeting(msg, sizeof msg, &g, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, 3);
	ck_assert_uint_eq(g.nmethods, 1);
	ck_assert_uint_eq(g.methods[0], SOCKS5_METHOD_NONE);
}
END_TEST

START_TEST(greeting_three_methods)
{
	static const uint8_t msg[] = { 0x05, 0x03, 0x00, 0x01, 0x02 };
	struct socks5_greeting g;
	size_t used;

	ck_assert_int_eq(greeting(msg, sizeof msg, &g, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, 5);
	ck_assert_uint_eq(g.nmethods, 3);
	ck_assert_mem_eq(g.methods, msg + 2, 3);
}
END_TEST

START_TEST(greeting_255_methods)
{
	uint8_t msg[2 + 255];
	struct socks5_greeting g;
	size_t used;

	msg[0] = 0x05;
	msg[1] = 255;
	for (int i = 0; i < 255; i++)
		msg[2 + i] = (uint8_t)i;
	ck_assert_uint_eq(sizeof msg, SOCKS5_MAX_GREETING);
	ck_assert_int_eq(greeting(msg, sizeof msg, &g, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, sizeof msg);
	ck_assert_uint_eq(g.nmethods, 255);
	ck_assert_mem_eq(g.methods, msg + 2, 255);
}
END_TEST

/* NMETHODS 0 is a complete, well-formed greeting: the server answers FF. */
START_TEST(greeting_zero_methods)
{
	static const uint8_t msg[] = { 0x05, 0x00 };
	struct socks5_greeting g;
	size_t used;

	ck_assert_int_eq(greeting(msg, sizeof msg, &g, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, 2);
	ck_assert_uint_eq(g.nmethods, 0);
}
END_TEST

START_TEST(greeting_truncations)
{
	static const uint8_t one[] = { 0x05, 0x01, 0x00 };
	static const uint8_t three[] = { 0x05, 0x03, 0x00, 0x01, 0x02 };
	uint8_t full[2 + 255];

	full[0] = 0x05;
	full[1] = 255;
	memset(full + 2, 0x80, 255);
	assert_greeting_prefixes_incomplete(one, sizeof one);
	assert_greeting_prefixes_incomplete(three, sizeof three);
	assert_greeting_prefixes_incomplete(full, sizeof full);
}
END_TEST

/* A SOCKS4 client (VER 04) is recognised from its first byte alone. */
START_TEST(greeting_bad_version)
{
	static const uint8_t socks4[] = { 0x04, 0x01, 0x00, 0x50, 1, 2, 3, 4, 0 };
	static const uint8_t zero[] = { 0x00, 0x01, 0x00 };
	struct socks5_greeting g;
	size_t used;

	ck_assert_int_eq(greeting(socks4, sizeof socks4, &g, &used),
	    SOCKS5_BAD_VERSION);
	ck_assert_int_eq(greeting(socks4, 1, &g, &used), SOCKS5_BAD_VERSION);
	ck_assert_int_eq(greeting(zero, sizeof zero, &g, &used),
	    SOCKS5_BAD_VERSION);
	ck_assert_uint_eq(used, USED_SENTINEL);
}
END_TEST

/* Pipelined bytes after the greeting belong to the next message. */
START_TEST(greeting_trailing_bytes)
{
	static const uint8_t msg[] = { 0x05, 0x02, 0x00, 0x02,
	    0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0, 80 };
	struct socks5_greeting g;
	size_t used;

	ck_assert_int_eq(greeting(msg, sizeof msg, &g, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, 4);
	ck_assert_uint_eq(g.nmethods, 2);
	ck_assert_uint_eq(g.methods[1], SOCKS5_METHOD_USERPASS);
}
END_TEST

/* ---- request ----------------------------------------------------------- */

static const uint8_t req_v4[] = { 0x05, 0x01, 0x00, 0x01, 192, 0, 2, 7,
    0x01, 0xbb };
static const uint8_t req_v6[] = { 0x05, 0x01, 0x00, 0x04,
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    0x04, 0x38 };

START_TEST(request_ipv4)
{
	struct socks5_request r;
	size_t used;

	ck_assert_int_eq(request(req_v4, sizeof req_v4, &r, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, 10);
	ck_assert_uint_eq(r.cmd, SOCKS5_CMD_CONNECT);
	ck_assert_uint_eq(r.dst.atyp, SOCKS5_ATYP_IPV4);
	ck_assert_mem_eq(r.dst.u.ipv4, req_v4 + 4, 4);
	ck_assert_uint_eq(r.dst.port, 443);
}
END_TEST

START_TEST(request_ipv6)
{
	struct socks5_request r;
	size_t used;

	ck_assert_int_eq(request(req_v6, sizeof req_v6, &r, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, 22);
	ck_assert_uint_eq(r.dst.atyp, SOCKS5_ATYP_IPV6);
	ck_assert_mem_eq(r.dst.u.ipv6, req_v6 + 4, 16);
	ck_assert_uint_eq(r.dst.port, 1080);
}
END_TEST

START_TEST(request_domain)
{
	uint8_t msg[SOCKS5_MAX_REQUEST];
	struct socks5_request r;
	size_t used, n;

	n = build_domain_request(msg, SOCKS5_CMD_CONNECT, "example.com", 11, 80);
	ck_assert_int_eq(request(msg, n, &r, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(r.dst.atyp, SOCKS5_ATYP_DOMAIN);
	ck_assert_uint_eq(r.dst.u.domain.len, 11);
	ck_assert_str_eq(r.dst.u.domain.name, "example.com");
	ck_assert_uint_eq(r.dst.port, 80);
}
END_TEST

/* The longest domain (255 bytes) fits, NUL-terminated, in the struct. */
START_TEST(request_domain_255)
{
	uint8_t msg[SOCKS5_MAX_REQUEST];
	char name[255];
	struct socks5_request r;
	size_t used, n;

	memset(name, 'a', sizeof name);
	n = build_domain_request(msg, SOCKS5_CMD_CONNECT, name, sizeof name, 1);
	ck_assert_uint_eq(n, SOCKS5_MAX_REQUEST);
	ck_assert_int_eq(request(msg, n, &r, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(r.dst.u.domain.len, 255);
	ck_assert_uint_eq(strlen(r.dst.u.domain.name), 255);
	ck_assert_mem_eq(r.dst.u.domain.name, name, 255);
}
END_TEST

START_TEST(request_commands)
{
	static const uint8_t cmds[] = { SOCKS5_CMD_CONNECT, SOCKS5_CMD_BIND,
	    SOCKS5_CMD_UDP_ASSOCIATE };
	uint8_t msg[sizeof req_v4];
	struct socks5_request r;
	size_t used;

	for (size_t i = 0; i < sizeof cmds; i++) {
		memcpy(msg, req_v4, sizeof msg);
		msg[1] = cmds[i];
		ck_assert_int_eq(request(msg, sizeof msg, &r, &used), SOCKS5_OK);
		ck_assert_uint_eq(r.cmd, cmds[i]);
	}
}
END_TEST

START_TEST(request_truncations)
{
	uint8_t msg[SOCKS5_MAX_REQUEST];
	char name[255];
	size_t n;

	assert_request_prefixes_incomplete(req_v4, sizeof req_v4);
	assert_request_prefixes_incomplete(req_v6, sizeof req_v6);
	n = build_domain_request(msg, SOCKS5_CMD_CONNECT, "example.com", 11, 80);
	assert_request_prefixes_incomplete(msg, n);
	memset(name, 'z', sizeof name);
	n = build_domain_request(msg, SOCKS5_CMD_BIND, name, sizeof name, 80);
	assert_request_prefixes_incomplete(msg, n);
}
END_TEST

START_TEST(request_bad_version)
{
	uint8_t msg[sizeof req_v4];
	struct socks5_request r;
	size_t used;

	memcpy(msg, req_v4, sizeof msg);
	msg[0] = 0x04;
	ck_assert_int_eq(request(msg, sizeof msg, &r, &used), SOCKS5_BAD_VERSION);
	ck_assert_uint_eq(used, USED_SENTINEL);
}
END_TEST

START_TEST(request_bad_rsv)
{
	uint8_t msg[sizeof req_v4];
	struct socks5_request r;
	size_t used;

	memcpy(msg, req_v4, sizeof msg);
	msg[2] = 0x01;
	ck_assert_int_eq(request(msg, sizeof msg, &r, &used), SOCKS5_BAD_RSV);
	msg[2] = 0xff;
	ck_assert_int_eq(request(msg, sizeof msg, &r, &used), SOCKS5_BAD_RSV);
	ck_assert_uint_eq(used, USED_SENTINEL);
}
END_TEST

/* ATYP 02 (unassigned) and 05 must be answered 08, not read as something else. */
START_TEST(request_bad_atyp)
{
	static const uint8_t bad[] = { 0x00, 0x02, 0x05, 0xff };
	uint8_t msg[sizeof req_v4];
	struct socks5_request r;
	size_t used;

	for (size_t i = 0; i < sizeof bad; i++) {
		memcpy(msg, req_v4, sizeof msg);
		msg[3] = bad[i];
		ck_assert_msg(request(msg, sizeof msg, &r, &used) ==
		    SOCKS5_BAD_ATYP, "ATYP %02x not BAD_ATYP", bad[i]);
		ck_assert_uint_eq(used, USED_SENTINEL);
	}
}
END_TEST

START_TEST(request_domain_empty)
{
	uint8_t msg[SOCKS5_MAX_REQUEST];
	struct socks5_request r;
	size_t used, n;

	n = build_domain_request(msg, SOCKS5_CMD_CONNECT, "", 0, 80);
	ck_assert_int_eq(request(msg, n, &r, &used), SOCKS5_BAD_DOMAIN);
	ck_assert_uint_eq(used, USED_SENTINEL);
}
END_TEST

/* A NUL would cut the name short in every later use (resolver, rules, log). */
START_TEST(request_domain_nul)
{
	uint8_t msg[SOCKS5_MAX_REQUEST];
	struct socks5_request r;
	size_t used, n;

	n = build_domain_request(msg, SOCKS5_CMD_CONNECT, "evil\0.com", 9, 80);
	ck_assert_int_eq(request(msg, n, &r, &used), SOCKS5_BAD_DOMAIN);
	n = build_domain_request(msg, SOCKS5_CMD_CONNECT, "\0", 1, 80);
	ck_assert_int_eq(request(msg, n, &r, &used), SOCKS5_BAD_DOMAIN);
	n = build_domain_request(msg, SOCKS5_CMD_CONNECT, "example.com\0", 12, 80);
	ck_assert_int_eq(request(msg, n, &r, &used), SOCKS5_BAD_DOMAIN);
	ck_assert_uint_eq(used, USED_SENTINEL);
}
END_TEST

/*
 * An unknown command is answered 07 only once the whole request is in:
 * replying early would leave the rest of the request in the stream.
 */
START_TEST(request_bad_cmd_only_when_complete)
{
	uint8_t msg[SOCKS5_MAX_REQUEST];
	struct socks5_request r;
	size_t used, n;

	memcpy(msg, req_v4, sizeof req_v4);
	msg[1] = 0x09;
	assert_request_prefixes_incomplete(msg, sizeof req_v4);
	ck_assert_int_eq(request(msg, sizeof req_v4, &r, &used), SOCKS5_BAD_CMD);

	n = build_domain_request(msg, 0x00, "example.com", 11, 80);
	assert_request_prefixes_incomplete(msg, n);
	ck_assert_int_eq(request(msg, n, &r, &used), SOCKS5_BAD_CMD);

	memcpy(msg, req_v6, sizeof req_v6);
	msg[1] = 0x04;
	ck_assert_int_eq(request(msg, sizeof req_v6, &r, &used), SOCKS5_BAD_CMD);
	ck_assert_uint_eq(used, USED_SENTINEL);
}
END_TEST

/* DST.PORT is big-endian: 0x1234 is 4660, and both bytes matter. */
START_TEST(request_port_byte_order)
{
	static const struct { uint8_t hi, lo; uint16_t port; } cases[] = {
		{ 0x12, 0x34, 0x1234 }, { 0x00, 0x50, 80 }, { 0x50, 0x00, 20480 },
		{ 0xff, 0xff, 65535 }, { 0x00, 0x00, 0 }, { 0x01, 0x00, 256 },
	};
	uint8_t msg[sizeof req_v4];
	struct socks5_request r;
	size_t used;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(msg, req_v4, sizeof msg);
		msg[8] = cases[i].hi;
		msg[9] = cases[i].lo;
		ck_assert_int_eq(request(msg, sizeof msg, &r, &used), SOCKS5_OK);
		ck_assert_uint_eq(r.dst.port, cases[i].port);
	}
}
END_TEST

/* Data pipelined after the request must not be swallowed by the parser. */
START_TEST(request_trailing_bytes)
{
	uint8_t msg[sizeof req_v6 + 5];
	struct socks5_request r;
	size_t used;

	memcpy(msg, req_v6, sizeof req_v6);
	memcpy(msg + sizeof req_v6, "GET /", 5);
	ck_assert_int_eq(request(msg, sizeof msg, &r, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, sizeof req_v6);
}
END_TEST

/* ---- RFC 1929 username/password ---------------------------------------- */

static size_t
build_userpass(uint8_t *buf, uint8_t ver, const char *user, size_t ulen,
    const char *pass, size_t plen)
{
	size_t n = 0;

	buf[n++] = ver;
	buf[n++] = (uint8_t)ulen;
	memcpy(buf + n, user, ulen);
	n += ulen;
	buf[n++] = (uint8_t)plen;
	memcpy(buf + n, pass, plen);
	n += plen;
	return n;
}

START_TEST(userpass_ok)
{
	uint8_t msg[SOCKS5_MAX_USERPASS + 4];
	struct socks5_userpass up;
	size_t used, n;

	n = build_userpass(msg, 0x01, "alice", 5, "s3cret", 6);
	memcpy(msg + n, "\x05\x01\x00", 3);	/* the request, pipelined */
	ck_assert_int_eq(userpass(msg, n + 3, &up, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(up.ulen, 5);
	ck_assert_str_eq(up.user, "alice");
	ck_assert_uint_eq(up.plen, 6);
	ck_assert_str_eq(up.pass, "s3cret");
}
END_TEST

START_TEST(userpass_max_lengths)
{
	uint8_t msg[SOCKS5_MAX_USERPASS];
	char user[255], pass[255];
	struct socks5_userpass up;
	size_t used, n;

	memset(user, 'u', sizeof user);
	memset(pass, 0xff, sizeof pass);	/* any byte but NUL is allowed */
	n = build_userpass(msg, 0x01, user, 255, pass, 255);
	ck_assert_uint_eq(n, SOCKS5_MAX_USERPASS);
	ck_assert_int_eq(userpass(msg, n, &up, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(up.ulen, 255);
	ck_assert_uint_eq(up.plen, 255);
	ck_assert_uint_eq(strlen(up.user), 255);
	ck_assert_uint_eq(strlen(up.pass), 255);
	ck_assert_mem_eq(up.pass, pass, 255);
}
END_TEST

/* The sub-negotiation is version 01; a client sending 05 here is broken. */
START_TEST(userpass_bad_version)
{
	static const uint8_t vers[] = { 0x00, 0x02, 0x05 };
	uint8_t msg[64];
	struct socks5_userpass up;
	size_t used, n;

	for (size_t i = 0; i < sizeof vers; i++) {
		n = build_userpass(msg, vers[i], "alice", 5, "pw", 2);
		ck_assert_int_eq(userpass(msg, n, &up, &used), SOCKS5_BAD_VERSION);
		ck_assert_int_eq(userpass(msg, 1, &up, &used), SOCKS5_BAD_VERSION);
		ck_assert_uint_eq(used, USED_SENTINEL);
	}
}
END_TEST

START_TEST(userpass_zero_lengths)
{
	uint8_t msg[64];
	struct socks5_userpass up;
	size_t used, n;

	n = build_userpass(msg, 0x01, "", 0, "pw", 2);
	ck_assert_int_eq(userpass(msg, n, &up, &used), SOCKS5_BAD_LENGTH);
	n = build_userpass(msg, 0x01, "alice", 5, "", 0);
	ck_assert_int_eq(userpass(msg, n, &up, &used), SOCKS5_BAD_LENGTH);
	n = build_userpass(msg, 0x01, "", 0, "", 0);
	ck_assert_int_eq(userpass(msg, n, &up, &used), SOCKS5_BAD_LENGTH);
	ck_assert_uint_eq(used, USED_SENTINEL);
}
END_TEST

/* user[] and pass[] are C strings: an embedded NUL would truncate them. */
START_TEST(userpass_nul_rejected)
{
	uint8_t msg[64];
	struct socks5_userpass up;
	size_t used, n;

	n = build_userpass(msg, 0x01, "al\0ce", 5, "pw", 2);
	ck_assert_int_ne(userpass(msg, n, &up, &used), SOCKS5_OK);
	n = build_userpass(msg, 0x01, "alice", 5, "p\0", 2);
	ck_assert_int_ne(userpass(msg, n, &up, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, USED_SENTINEL);
}
END_TEST

START_TEST(userpass_truncations)
{
	uint8_t msg[SOCKS5_MAX_USERPASS];
	char big[255];
	size_t n;

	n = build_userpass(msg, 0x01, "alice", 5, "s3cret", 6);
	assert_userpass_prefixes_incomplete(msg, n);
	n = build_userpass(msg, 0x01, "a", 1, "b", 1);
	assert_userpass_prefixes_incomplete(msg, n);
	memset(big, 'x', sizeof big);
	n = build_userpass(msg, 0x01, big, 255, big, 255);
	assert_userpass_prefixes_incomplete(msg, n);
}
END_TEST

/* ---- method selection -------------------------------------------------- */

static struct socks5_greeting
make_greeting(const uint8_t *methods, size_t n)
{
	struct socks5_greeting g;

	memset(&g, 0, sizeof g);
	g.nmethods = (uint8_t)n;
	if (n > 0)
		memcpy(g.methods, methods, n);
	return g;
}

/* The listener's preference decides, not the order the client listed. */
START_TEST(select_preference_wins)
{
	static const uint8_t offered[] = { 0x00, 0x02 };
	static const uint8_t prefer_userpass[] = { 0x02, 0x00 };
	static const uint8_t prefer_none[] = { 0x00, 0x02 };
	struct socks5_greeting g = make_greeting(offered, sizeof offered);

	ck_assert_uint_eq(socks5_select_method(prefer_userpass, 2, &g),
	    SOCKS5_METHOD_USERPASS);
	ck_assert_uint_eq(socks5_select_method(prefer_none, 2, &g),
	    SOCKS5_METHOD_NONE);
}
END_TEST

/* A listener that requires a password never falls back to 00. */
START_TEST(select_userpass_only)
{
	static const uint8_t offered[] = { 0x00, 0x01 };
	static const uint8_t prefs[] = { 0x02 };
	struct socks5_greeting g = make_greeting(offered, sizeof offered);

	ck_assert_uint_eq(socks5_select_method(prefs, 1, &g),
	    SOCKS5_METHOD_NO_ACCEPTABLE);
}
END_TEST

START_TEST(select_no_methods)
{
	static const uint8_t prefs[] = { 0x00, 0x02 };
	struct socks5_greeting g = make_greeting(NULL, 0);

	ck_assert_uint_eq(socks5_select_method(prefs, 2, &g),
	    SOCKS5_METHOD_NO_ACCEPTABLE);
	/* Also when the unused tail of methods[] happens to hold a match. */
	g.methods[0] = 0x00;
	ck_assert_uint_eq(socks5_select_method(prefs, 2, &g),
	    SOCKS5_METHOD_NO_ACCEPTABLE);
	ck_assert_uint_eq(socks5_select_method(prefs, 0, &g),
	    SOCKS5_METHOD_NO_ACCEPTABLE);
}
END_TEST

START_TEST(select_many_offered)
{
	uint8_t all[255];
	static const uint8_t prefs[] = { 0x02 };
	struct socks5_greeting g;

	for (int i = 0; i < 255; i++)
		all[i] = (uint8_t)(254 - i);	/* 0x02 comes near the end */
	g = make_greeting(all, sizeof all);
	ck_assert_uint_eq(socks5_select_method(prefs, 1, &g), 0x02);
}
END_TEST

/* ---- writers ----------------------------------------------------------- */

START_TEST(write_method_and_status)
{
	uint8_t out[2];

	ck_assert_uint_eq(socks5_write_method(out, SOCKS5_METHOD_NO_ACCEPTABLE), 2);
	ck_assert_mem_eq(out, "\x05\xff", 2);
	ck_assert_uint_eq(socks5_write_method(out, SOCKS5_METHOD_NONE), 2);
	ck_assert_mem_eq(out, "\x05\x00", 2);
	/* The RFC 1929 status reply carries version 01, not 05. */
	ck_assert_uint_eq(socks5_write_auth_status(out, 0), 2);
	ck_assert_mem_eq(out, "\x01\x00", 2);
	ck_assert_uint_eq(socks5_write_auth_status(out, 1), 2);
	ck_assert_mem_eq(out, "\x01\x01", 2);
}
END_TEST

START_TEST(write_reply_ipv4)
{
	static const uint8_t want[] = { 0x05, 0x00, 0x00, 0x01, 192, 0, 2, 1,
	    0x04, 0x38 };
	struct sockaddr_in sin;
	uint8_t out[SOCKS5_MAX_REPLY];

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(1080);
	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	ck_assert_uint_eq(socks5_write_reply(out, SOCKS5_REP_SUCCEEDED,
	    (struct sockaddr *)&sin), sizeof want);
	ck_assert_mem_eq(out, want, sizeof want);
}
END_TEST

START_TEST(write_reply_ipv6)
{
	static const uint8_t want[] = { 0x05, 0x05, 0x00, 0x04,
	    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd,
	    0xc3, 0x50 };
	struct sockaddr_in6 sin6;
	uint8_t out[SOCKS5_MAX_REPLY];

	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(50000);
	inet_pton(AF_INET6, "2001:db8::abcd", &sin6.sin6_addr);
	ck_assert_uint_eq(sizeof want, SOCKS5_MAX_REPLY);
	ck_assert_uint_eq(socks5_write_reply(out, SOCKS5_REP_REFUSED,
	    (struct sockaddr *)&sin6), sizeof want);
	ck_assert_mem_eq(out, want, sizeof want);
}
END_TEST

START_TEST(write_reply_null)
{
	static const uint8_t want[] = { 0x05, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0 };
	uint8_t out[SOCKS5_MAX_REPLY];

	memset(out, 0xaa, sizeof out);
	ck_assert_uint_eq(socks5_write_reply(out, SOCKS5_REP_NOT_ALLOWED, NULL),
	    sizeof want);
	ck_assert_mem_eq(out, want, sizeof want);
}
END_TEST

/* Any other family cannot be encoded: it must fall back to all-zero IPv4. */
START_TEST(write_reply_other_family)
{
	static const uint8_t want[] = { 0x05, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0 };
	struct sockaddr_un sun;
	uint8_t out[SOCKS5_MAX_REPLY];

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	ck_assert_uint_eq(socks5_write_reply(out, SOCKS5_REP_GENERAL_FAILURE,
	    (struct sockaddr *)&sun), sizeof want);
	ck_assert_mem_eq(out, want, sizeof want);
}
END_TEST

/* The reply round-trips through the request parser (same layout after byte 1). */
START_TEST(write_reply_roundtrip)
{
	struct sockaddr_in sin;
	struct socks5_request r;
	uint8_t out[SOCKS5_MAX_REPLY];
	size_t n, used;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(0xbeef);
	sin.sin_addr.s_addr = htonl(0x0a000001);
	n = socks5_write_reply(out, SOCKS5_REP_SUCCEEDED, (struct sockaddr *)&sin);
	out[1] = SOCKS5_CMD_CONNECT;
	ck_assert_int_eq(request(out, n, &r, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(r.dst.port, 0xbeef);
	ck_assert_mem_eq(r.dst.u.ipv4, "\x0a\x00\x00\x01", 4);
}
END_TEST

/* ---- reply codes ------------------------------------------------------- */

START_TEST(rep_from_errno)
{
	ck_assert_uint_eq(socks5_rep_from_errno(ECONNREFUSED), 0x05);
	ck_assert_uint_eq(socks5_rep_from_errno(ENETUNREACH), 0x03);
	ck_assert_uint_eq(socks5_rep_from_errno(EHOSTUNREACH), 0x04);
	ck_assert_uint_eq(socks5_rep_from_errno(ETIMEDOUT), 0x06);
	ck_assert_uint_eq(socks5_rep_from_errno(ENOENT), 0x04);
	ck_assert_uint_eq(socks5_rep_from_errno(ENOMEM), 0x01);
	ck_assert_uint_eq(socks5_rep_from_errno(EMFILE), 0x01);
	ck_assert_uint_eq(socks5_rep_from_errno(EINVAL), 0x01);
	ck_assert_uint_eq(socks5_rep_from_errno(-1), 0x01);
	ck_assert_uint_eq(socks5_rep_from_errno(99999), 0x01);
}
END_TEST

START_TEST(rep_from_status)
{
	ck_assert_uint_eq(socks5_rep_from_status(SOCKS5_BAD_CMD),
	    SOCKS5_REP_CMD_NOT_SUPPORTED);
	ck_assert_uint_eq(socks5_rep_from_status(SOCKS5_BAD_ATYP),
	    SOCKS5_REP_ATYP_NOT_SUPPORTED);
	ck_assert_uint_eq(socks5_rep_from_status(SOCKS5_BAD_RSV),
	    SOCKS5_REP_GENERAL_FAILURE);
	ck_assert_uint_eq(socks5_rep_from_status(SOCKS5_BAD_DOMAIN),
	    SOCKS5_REP_GENERAL_FAILURE);
	ck_assert_uint_eq(socks5_rep_from_status(SOCKS5_BAD_VERSION),
	    SOCKS5_REP_GENERAL_FAILURE);
}
END_TEST

/* Names are used in log lines: each status and command has its own. */
START_TEST(names)
{
	ck_assert_str_eq(socks5_cmd_name(SOCKS5_CMD_CONNECT), "connect");
	ck_assert_str_eq(socks5_cmd_name(SOCKS5_CMD_BIND), "bind");
	ck_assert_str_eq(socks5_cmd_name(SOCKS5_CMD_UDP_ASSOCIATE), "udp");
	ck_assert_ptr_nonnull(socks5_cmd_name(0x09));
	for (int a = SOCKS5_OK; a <= SOCKS5_BAD_FRAG; a++) {
		ck_assert_ptr_nonnull(socks5_status_str(a));
		for (int b = a + 1; b <= SOCKS5_BAD_FRAG; b++)
			ck_assert_str_ne(socks5_status_str(a),
			    socks5_status_str(b));
	}
}
END_TEST

/* ---- robustness -------------------------------------------------------- */

/* xorshift64: deterministic on every libc, unlike rand(). */
static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Random bytes, biased towards valid headers so that the deep paths (domain
 * lengths, ATYPs, RFC 1929 lengths) are reached, not just the version check.
 */
static size_t
random_message(uint64_t *s, uint8_t *buf, size_t cap, uint8_t ver)
{
	size_t len = next_rand(s) % cap;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)next_rand(s);
	if (len > 0 && next_rand(s) % 8 != 0)
		buf[0] = ver;
	if (len > 2 && next_rand(s) % 4 != 0)
		buf[2] = 0;			/* request RSV */
	if (len > 3 && next_rand(s) % 4 != 0)
		buf[3] = (uint8_t[]){ 1, 3, 4 }[next_rand(s) % 3];
	if (len > 4 && buf[3] == 3 && next_rand(s) % 2)
		buf[4] = (uint8_t)(next_rand(s) % 24);	/* short domains */
	if (len > 1 && next_rand(s) % 2)
		buf[1] = (uint8_t)(next_rand(s) % 16);	/* short NMETHODS/ULEN */
	return len;
}

/*
 * Failures are checked with plain ifs: every ck_assert records a checkpoint
 * through a pipe, which would make this loop take seconds.
 */
START_TEST(random_input)
{
	enum { ITERATIONS = 200000, CAP = 600 };
	uint64_t seed = 0x5eed5eed12345678ULL;
	uint8_t buf[CAP];
	struct socks5_greeting g;
	struct socks5_request r;
	struct socks5_userpass up;
	size_t len, used;
	enum socks5_status st;

	for (int i = 0; i < ITERATIONS; i++) {
		len = random_message(&seed, buf, CAP, 0x05);
		st = greeting(buf, len, &g, &used);
		if (st == SOCKS5_OK ? used > len || used != 2u + g.nmethods :
		    used != USED_SENTINEL)
			ck_abort_msg("iteration %d: greeting status %d used %zu "
			    "of %zu", i, st, used, len);

		st = request(buf, len, &r, &used);
		if (st == SOCKS5_OK ? used > len || used < 8 :
		    used != USED_SENTINEL)
			ck_abort_msg("iteration %d: request status %d used %zu "
			    "of %zu", i, st, used, len);

		len = random_message(&seed, buf, CAP, 0x01);
		st = userpass(buf, len, &up, &used);
		if (st == SOCKS5_OK ? used > len ||
		    used != 3u + up.ulen + up.plen ||
		    strlen(up.user) != up.ulen || strlen(up.pass) != up.plen :
		    used != USED_SENTINEL)
			ck_abort_msg("iteration %d: userpass status %d used %zu "
			    "of %zu", i, st, used, len);
	}
}
END_TEST

/*
 * Split-read consistency: feeding a message byte by byte must give
 * INCOMPLETE until the exact moment the one-shot parse says OK.
 */
START_TEST(random_prefix_consistency)
{
	enum { ITERATIONS = 20000, CAP = 300 };
	uint64_t seed = 42;
	uint8_t buf[CAP];
	struct socks5_request r;
	size_t len, used, full_used;
	int complete = 0;

	for (int i = 0; i < ITERATIONS; i++) {
		len = random_message(&seed, buf, CAP, 0x05);
		if (request(buf, len, &r, &full_used) != SOCKS5_OK)
			continue;
		complete++;
		for (size_t n = 0; n < full_used; n++)
			if (request(buf, n, &r, &used) != SOCKS5_INCOMPLETE)
				ck_abort_msg("iteration %d: prefix %zu of %zu "
				    "not INCOMPLETE", i, n, full_used);
		if (request(buf, full_used, &r, &used) != SOCKS5_OK ||
		    used != full_used)
			ck_abort_msg("iteration %d: exact length not OK", i);
	}
	/* Guards the generator: the loop must actually reach complete requests. */
	ck_assert_int_gt(complete, 100);
}
END_TEST


/* ---- UDP ASSOCIATE datagram header ---- */

static enum socks5_status
udp_header(const uint8_t *buf, size_t len, struct socks5_addr *out,
    size_t *used)
{
	memset(out, OUT_GARBAGE, sizeof *out);
	*used = USED_SENTINEL;
	return socks5_parse_udp_header(at_end(buf, len), len, out, used);
}

START_TEST(udp_header_ipv4)
{
	static const uint8_t d[] = { 0, 0, 0, 1, 192, 0, 2, 7, 0x12, 0x34,
	    'h', 'i' };
	struct socks5_addr a;
	size_t used;

	ck_assert_int_eq(udp_header(d, sizeof(d), &a, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, 10);
	ck_assert_uint_eq(a.atyp, SOCKS5_ATYP_IPV4);
	ck_assert_mem_eq(a.u.ipv4, d + 4, 4);
	ck_assert_uint_eq(a.port, 0x1234);
}
END_TEST

START_TEST(udp_header_ipv6_and_domain)
{
	uint8_t d6[22 + 3] = { 0, 0, 0, 4 };
	static const uint8_t dn[] = { 0, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 53,
	    'q' };
	struct socks5_addr a;
	size_t used;

	d6[19] = 1;			/* ::1 */
	d6[20] = 0x01;
	d6[21] = 0xbb;
	ck_assert_int_eq(udp_header(d6, sizeof(d6), &a, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, 22);
	ck_assert_uint_eq(a.atyp, SOCKS5_ATYP_IPV6);
	ck_assert_uint_eq(a.u.ipv6[15], 1);
	ck_assert_uint_eq(a.port, 443);
	ck_assert_int_eq(udp_header(dn, sizeof(dn), &a, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, 11);
	ck_assert_str_eq(a.u.domain.name, "host");
	ck_assert_uint_eq(a.port, 53);
}
END_TEST

/* Every prefix of a valid header is truncated; the whole header with no
 * payload is a valid (empty) datagram. */
START_TEST(udp_header_truncated)
{
	static const uint8_t d4[] = { 0, 0, 0, 1, 10, 0, 0, 1, 0, 53 };
	static const uint8_t dn[] = { 0, 0, 0, 3, 3, 'a', 'b', 'c', 0, 53 };
	struct socks5_addr a;
	size_t used;

	for (size_t n = 0; n < sizeof(d4); n++) {
		ck_assert_int_eq(udp_header(d4, n, &a, &used), SOCKS5_INCOMPLETE);
		ck_assert_uint_eq(used, USED_SENTINEL);
	}
	for (size_t n = 0; n < sizeof(dn); n++)
		ck_assert_int_eq(udp_header(dn, n, &a, &used), SOCKS5_INCOMPLETE);
	ck_assert_int_eq(udp_header(d4, sizeof(d4), &a, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, sizeof(d4));
}
END_TEST

START_TEST(udp_header_bad)
{
	static const uint8_t rsv0[] = { 1, 0, 0, 1, 10, 0, 0, 1, 0, 53, 'x' };
	static const uint8_t rsv1[] = { 0, 1, 0, 1, 10, 0, 0, 1, 0, 53, 'x' };
	static const uint8_t frag[] = { 0, 0, 1, 1, 10, 0, 0, 1, 0, 53, 'x' };
	static const uint8_t atyp2[] = { 0, 0, 0, 2, 10, 0, 0, 1, 0, 53, 'x' };
	static const uint8_t empty[] = { 0, 0, 0, 3, 0, 0, 53, 'x' };
	static const uint8_t nul[] = { 0, 0, 0, 3, 2, 'a', 0, 0, 53 };
	/* A length of 200 in a datagram of 12 bytes. */
	static const uint8_t longer[] = { 0, 0, 0, 3, 200, 'a', 'b', 'c', 'd',
	    'e', 0, 53 };
	struct socks5_addr a;
	size_t used;

	ck_assert_int_eq(udp_header(rsv0, sizeof(rsv0), &a, &used), SOCKS5_BAD_RSV);
	ck_assert_int_eq(udp_header(rsv1, sizeof(rsv1), &a, &used), SOCKS5_BAD_RSV);
	ck_assert_int_eq(udp_header(frag, sizeof(frag), &a, &used), SOCKS5_BAD_FRAG);
	ck_assert_int_eq(udp_header(atyp2, sizeof(atyp2), &a, &used),
	    SOCKS5_BAD_ATYP);
	ck_assert_int_eq(udp_header(empty, sizeof(empty), &a, &used),
	    SOCKS5_BAD_DOMAIN);
	ck_assert_int_eq(udp_header(nul, sizeof(nul), &a, &used),
	    SOCKS5_BAD_DOMAIN);
	ck_assert_int_eq(udp_header(longer, sizeof(longer), &a, &used),
	    SOCKS5_INCOMPLETE);
	ck_assert_uint_eq(used, USED_SENTINEL);
}
END_TEST

/* The largest UDP payload over IPv6 (65527 bytes), read from the end of a
 * heap block so that ASan sees any read past it; a 255-byte name. */
START_TEST(udp_header_maximum_datagram)
{
	enum { MAX = 65527 };
	uint8_t *d = malloc(MAX);
	struct socks5_addr a;
	size_t used;

	ck_assert_ptr_nonnull(d);
	memset(d, 'n', MAX);
	d[0] = d[1] = d[2] = 0;
	d[3] = SOCKS5_ATYP_DOMAIN;
	d[4] = 255;
	d[260] = 0x30;
	d[261] = 0x39;
	ck_assert_int_eq(socks5_parse_udp_header(d, MAX, &a, &used), SOCKS5_OK);
	ck_assert_uint_eq(used, SOCKS5_MAX_UDP_HEADER);
	ck_assert_uint_eq(a.u.domain.len, 255);
	ck_assert_uint_eq(strlen(a.u.domain.name), 255);
	ck_assert_uint_eq(a.port, 12345);
	free(d);
}
END_TEST

START_TEST(udp_header_write)
{
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(53) };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6,
	    .sin6_port = htons(443) };
	struct sockaddr_un su = { .sun_family = AF_UNIX };
	uint8_t out[SOCKS5_MAX_UDP_REPLY_HEADER];
	static const uint8_t want4[] = { 0, 0, 0, 1, 192, 0, 2, 9, 0, 53 };
	static const uint8_t want_mapped[] = { 0, 0, 0, 1, 127, 0, 0, 1, 1, 0xbb };
	struct socks5_addr a;
	size_t used;

	inet_pton(AF_INET, "192.0.2.9", &s4.sin_addr);
	ck_assert_uint_eq(socks5_write_udp_header(out, (struct sockaddr *)&s4), 10);
	ck_assert_mem_eq(out, want4, 10);
	inet_pton(AF_INET6, "2001:db8::5", &s6.sin6_addr);
	ck_assert_uint_eq(socks5_write_udp_header(out, (struct sockaddr *)&s6), 22);
	ck_assert_int_eq(socks5_parse_udp_header(out, 22, &a, &used), SOCKS5_OK);
	ck_assert_uint_eq(a.atyp, SOCKS5_ATYP_IPV6);
	ck_assert_mem_eq(a.u.ipv6, s6.sin6_addr.s6_addr, 16);
	ck_assert_uint_eq(a.port, 443);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
	ck_assert_uint_eq(socks5_write_udp_header(out, (struct sockaddr *)&s6), 10);
	ck_assert_mem_eq(out, want_mapped, 10);
	ck_assert_uint_eq(socks5_write_udp_header(out, (struct sockaddr *)&su), 0);
}
END_TEST

/* Random datagrams: never a read past the end, used within the length. */
START_TEST(udp_header_random)
{
	enum { ITERATIONS = 100000, CAP = 300 };
	uint64_t seed = 0x0dd5eed5;
	uint8_t buf[CAP];
	struct socks5_addr a;
	size_t len, used;
	enum socks5_status st;

	for (int i = 0; i < ITERATIONS; i++) {
		len = random_message(&seed, buf, CAP, 0x00);
		if (len > 1)
			buf[1] = 0;
		if (len > 2 && (i & 1))
			buf[2] = 0;
		st = udp_header(buf, len, &a, &used);
		if (st == SOCKS5_OK ? used > len || used < 8 :
		    used != USED_SENTINEL)
			ck_abort_msg("iteration %d: udp status %d used %zu of %zu",
			    i, st, used, len);
	}
}
END_TEST

/* socks5_addr_is_zero: 0.0.0.0 and :: only; a name never. */
START_TEST(addr_zero)
{
	struct socks5_addr a;

	memset(&a, 0, sizeof(a));
	a.atyp = SOCKS5_ATYP_IPV4;
	ck_assert(socks5_addr_is_zero(&a));
	a.u.ipv4[3] = 1;
	ck_assert(!socks5_addr_is_zero(&a));
	memset(&a, 0, sizeof(a));
	a.atyp = SOCKS5_ATYP_IPV6;
	ck_assert(socks5_addr_is_zero(&a));
	a.u.ipv6[15] = 1;
	ck_assert(!socks5_addr_is_zero(&a));
	memset(&a, 0, sizeof(a));
	a.atyp = SOCKS5_ATYP_DOMAIN;
	ck_assert(!socks5_addr_is_zero(&a));
}
END_TEST

static Suite *
socks5_suite(void)
{
	Suite *s = suite_create("socks5");
	TCase *tc;

	tc = tcase_create("addr");
	tcase_add_test(tc, addr_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("greeting");
	tcase_add_test(tc, greeting_one_method);
	tcase_add_test(tc, greeting_three_methods);
	tcase_add_test(tc, greeting_255_methods);
	tcase_add_test(tc, greeting_zero_methods);
	tcase_add_test(tc, greeting_truncations);
	tcase_add_test(tc, greeting_bad_version);
	tcase_add_test(tc, greeting_trailing_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("request");
	tcase_add_test(tc, request_ipv4);
	tcase_add_test(tc, request_ipv6);
	tcase_add_test(tc, request_domain);
	tcase_add_test(tc, request_domain_255);
	tcase_add_test(tc, request_commands);
	tcase_add_test(tc, request_truncations);
	tcase_add_test(tc, request_bad_version);
	tcase_add_test(tc, request_bad_rsv);
	tcase_add_test(tc, request_bad_atyp);
	tcase_add_test(tc, request_domain_empty);
	tcase_add_test(tc, request_domain_nul);
	tcase_add_test(tc, request_bad_cmd_only_when_complete);
	tcase_add_test(tc, request_port_byte_order);
	tcase_add_test(tc, request_trailing_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("userpass");
	tcase_add_test(tc, userpass_ok);
	tcase_add_test(tc, userpass_max_lengths);
	tcase_add_test(tc, userpass_bad_version);
	tcase_add_test(tc, userpass_zero_lengths);
	tcase_add_test(tc, userpass_nul_rejected);
	tcase_add_test(tc, userpass_truncations);
	suite_add_tcase(s, tc);

	tc = tcase_create("select_method");
	tcase_add_test(tc, select_preference_wins);
	tcase_add_test(tc, select_userpass_only);
	tcase_add_test(tc, select_no_methods);
	tcase_add_test(tc, select_many_offered);
	suite_add_tcase(s, tc);

	tc = tcase_create("writers");
	tcase_add_test(tc, write_method_and_status);
	tcase_add_test(tc, write_reply_ipv4);
	tcase_add_test(tc, write_reply_ipv6);
	tcase_add_test(tc, write_reply_null);
	tcase_add_test(tc, write_reply_other_family);
	tcase_add_test(tc, write_reply_roundtrip);
	suite_add_tcase(s, tc);

	tc = tcase_create("reply_codes");
	tcase_add_test(tc, rep_from_errno);
	tcase_add_test(tc, rep_from_status);
	tcase_add_test(tc, names);
	suite_add_tcase(s, tc);

	tc = tcase_create("udp_header");
	tcase_add_test(tc, udp_header_ipv4);
	tcase_add_test(tc, udp_header_ipv6_and_domain);
	tcase_add_test(tc, udp_header_truncated);
	tcase_add_test(tc, udp_header_bad);
	tcase_add_test(tc, udp_header_maximum_datagram);
	tcase_add_test(tc, udp_header_write);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, udp_header_random);
	suite_add_tcase(s, tc);

	tc = tcase_create("robustness");
	/* Sanitizer builds are several times slower than check's 4 s default. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, random_input);
	tcase_add_test(tc, random_prefix_consistency);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(socks5_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
