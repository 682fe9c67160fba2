/* fuzz_userpass.c: the RFC 1929 sub-negotiation (VER ULEN UNAME PLEN
 * PASSWD) as a worker reads it, and what the worker does with a good one:
 * an auth helper request (which the helper must accept) and the escaped
 * user name of the auth-fail line. */
#include <string.h>
#include <sys/socket.h>

#include "authmsg.h"
#include "fuzz.h"
#include "log.h"
#include "socks5.h"

static void
check_escape(const char *user, size_t len)
{
	char esc[AUTH_MAX_LEN * 4 + 1], small[17];

	log_escape(esc, sizeof(esc), user, len);
	/* Room for every byte escaped: nothing is cut. */
	FUZZ_CHECK(strlen(esc) >= len && strlen(esc) <= 4 * len);
	for (const char *p = esc; *p; p++)
		FUZZ_CHECK(*p > 0x20 && *p < 0x7f && *p != '"' && *p != '=');
	/* Too small a buffer: cut, but always terminated inside it. */
	log_escape(small, sizeof(small), user, len);
	FUZZ_CHECK(strnlen(small, sizeof(small)) < sizeof(small));
	FUZZ_CHECK(strncmp(small, esc, strlen(small)) == 0);
}

static void
check_helper_accepts(const struct socks5_userpass *up)
{
	struct auth_request r;
	struct sockaddr_storage client = { .ss_family = AF_INET };

	FUZZ_CHECK(auth_request_make(&r, up->user, up->ulen, up->pass,
	    up->plen, &client) == 0);
	FUZZ_CHECK(auth_request_check(&r, sizeof(r)) == NULL);
	FUZZ_CHECK(strcmp(r.user, up->user) == 0 &&
	    strcmp(r.pass, up->pass) == 0);
	auth_request_wipe(&r);
	FUZZ_CHECK(r.pass_len == 0 && r.pass[0] == '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct socks5_userpass up, again;
	size_t used = 0, used2 = 0;
	enum socks5_status st = socks5_parse_userpass(data, size, &up, &used);

	FUZZ_CHECK(socks5_status_str(st) != NULL);
	if (st == SOCKS5_BAD_VERSION) {
		FUZZ_CHECK(size >= 1 && data[0] != SOCKS5_AUTH_VERSION);
		return 0;
	}
	if (st == SOCKS5_BAD_LENGTH || st == SOCKS5_INCOMPLETE)
		return 0;
	FUZZ_CHECK(st == SOCKS5_OK);
	FUZZ_CHECK(up.ulen >= 1 && up.plen >= 1);
	FUZZ_CHECK(used == 3 + (size_t)up.ulen + up.plen && used <= size);
	FUZZ_CHECK(strlen(up.user) == up.ulen && strlen(up.pass) == up.plen);
	/* Re-encoded, the fields are the bytes read. */
	FUZZ_CHECK(data[0] == SOCKS5_AUTH_VERSION && data[1] == up.ulen);
	FUZZ_CHECK(memcmp(data + 2, up.user, up.ulen) == 0);
	FUZZ_CHECK(data[2 + up.ulen] == up.plen);
	FUZZ_CHECK(memcmp(data + 3 + up.ulen, up.pass, up.plen) == 0);
	FUZZ_CHECK(socks5_parse_userpass(data, used, &again, &used2) ==
	    SOCKS5_OK && used2 == used);
	for (size_t k = 0; k < used; k++)
		FUZZ_CHECK(socks5_parse_userpass(data, k, &again, &used2) ==
		    SOCKS5_INCOMPLETE);
	check_helper_accepts(&up);
	check_escape(up.user, up.ulen);
	return 0;
}
