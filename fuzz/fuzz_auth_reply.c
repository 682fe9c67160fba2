/* fuzz_auth_reply.c: the auth helper's reply as the worker checks it
 * (auth_reply_check, after recv of n bytes). One it accepts has a known
 * result with a name, a group count the gid array holds and a bounded
 * delay. Input: the reply as received (its length is n). */
#include <string.h>

#include "authmsg.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_reply r;
	uint32_t gids[AUTH_MAX_GROUPS];	/* as session.c keeps them */

	memset(&r, 0, sizeof(r));
	memcpy(&r, data, size < sizeof(r) ? size : sizeof(r));
	if (auth_reply_check(&r, (ssize_t)size) != NULL)
		return 0;
	FUZZ_CHECK(size == sizeof(r));
	FUZZ_CHECK(r.magic == AUTH_MAGIC && r.version == AUTH_VERSION);
	FUZZ_CHECK(r.result <= AUTH_ERROR);
	FUZZ_CHECK(auth_result_name((enum auth_result)r.result) != NULL);
	FUZZ_CHECK(r.ngroups <= AUTH_MAX_GROUPS && r.delay_ms <= 60000);
	/* The worker copies the groups as session.c does: inside both arrays. */
	memcpy(gids, r.gids, r.ngroups * sizeof(r.gids[0]));
	FUZZ_CHECK(r.ngroups == 0 || gids[r.ngroups - 1] == r.gids[r.ngroups - 1]);
	return 0;
}
