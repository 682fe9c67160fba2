/* authmsg.c: building and checking the messages between workers and auth
 * helpers. Pure: no I/O. */
#include <string.h>

#include "authmsg.h"

static bool
field_ok(const char *s, size_t len)
{
	return len >= 1 && len <= AUTH_MAX_LEN && memchr(s, '\0', len) == NULL;
}

int
auth_request_make(struct auth_request *r, const char *user, size_t user_len,
    const char *pass, size_t pass_len, const struct sockaddr_storage *client)
{
	memset(r, 0, sizeof(*r));
	if (!field_ok(user, user_len) || !field_ok(pass, pass_len))
		return -1;
	r->magic = AUTH_MAGIC;
	r->version = AUTH_VERSION;
	r->user_len = (uint8_t)user_len;
	r->pass_len = (uint8_t)pass_len;
	memcpy(r->user, user, user_len);
	memcpy(r->pass, pass, pass_len);
	r->client = *client;
	return 0;
}

const char *
auth_request_check(const struct auth_request *r, ssize_t n)
{
	if (n != (ssize_t)sizeof(*r))
		return "wrong size";
	if (r->magic != AUTH_MAGIC || r->version != AUTH_VERSION)
		return "wrong magic or version";
	if (!field_ok(r->user, r->user_len) || r->user[r->user_len] != '\0')
		return "bad user";
	if (!field_ok(r->pass, r->pass_len) || r->pass[r->pass_len] != '\0')
		return "bad password";
	if (r->client.ss_family != AF_INET && r->client.ss_family != AF_INET6)
		return "bad address";
	return NULL;
}

const char *
auth_reply_check(const struct auth_reply *r, ssize_t n)
{
	if (n != (ssize_t)sizeof(*r))
		return "wrong size";
	if (r->magic != AUTH_MAGIC || r->version != AUTH_VERSION)
		return "wrong magic or version";
	if (r->result > AUTH_ERROR)
		return "bad result";
	if (r->ngroups > AUTH_MAX_GROUPS)
		return "bad group count";
	if (r->delay_ms > 60000)
		return "bad delay";
	return NULL;
}

void
auth_request_wipe(struct auth_request *r)
{
	explicit_bzero(r->pass, sizeof(r->pass));
	r->pass_len = 0;
}

const char *
auth_result_name(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return "ok";
	case AUTH_DENIED:
		return "password";
	case AUTH_ACCOUNT:
		return "account";
	case AUTH_ERROR:
		break;
	}
	return "error";
}
