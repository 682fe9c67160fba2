/* fuzz_auth_request.c: the worker-to-auth-helper request as the helper
 * checks it (auth_request_check, after recv of n bytes). One it accepts
 * holds two terminated fields of their stated lengths, is rebuilt by
 * auth_request_make to the same fields, and its user name escapes to one
 * log word. Input: the message as received (its length is n). */
#include <string.h>

#include "authmsg.h"
#include "fuzz.h"
#include "log.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_request r, again;
	char esc[AUTH_MAX_LEN * 4 + 1];

	memset(&r, 0, sizeof(r));
	memcpy(&r, data, size < sizeof(r) ? size : sizeof(r));
	if (auth_request_check(&r, (ssize_t)size) != NULL)
		return 0;
	FUZZ_CHECK(size == sizeof(r));
	FUZZ_CHECK(r.magic == AUTH_MAGIC && r.version == AUTH_VERSION);
	FUZZ_CHECK(r.user_len >= 1 && strlen(r.user) == r.user_len);
	FUZZ_CHECK(r.pass_len >= 1 && strlen(r.pass) == r.pass_len);
	FUZZ_CHECK(r.client.ss_family == AF_INET ||
	    r.client.ss_family == AF_INET6);
	FUZZ_CHECK(auth_request_make(&again, r.user, r.user_len, r.pass,
	    r.pass_len, &r.client) == 0);
	FUZZ_CHECK(auth_request_check(&again, sizeof(again)) == NULL);
	FUZZ_CHECK(strcmp(again.user, r.user) == 0 &&
	    strcmp(again.pass, r.pass) == 0);
	log_escape(esc, sizeof(esc), r.user, r.user_len);
	for (const char *p = esc; *p; p++)
		FUZZ_CHECK(*p > 0x20 && *p < 0x7f && *p != '"' && *p != '=');
	auth_request_wipe(&r);
	auth_request_wipe(&again);
	return 0;
}
