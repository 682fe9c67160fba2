/* authmsg.h: the worker-to-auth-helper protocol: one verb, authenticate.
 * A worker sends one fixed-size request on the helpers' shared channel
 * with one fd by SCM_RIGHTS: the helper's end of the worker's reply socket
 * pair, on which the helper sends the one fixed-size reply with that same
 * fd back (the worker keeps the pair from one login to the next). The
 * peer credentials of that socket name the worker. */
#ifndef SOCKS5D_AUTHMSG_H
#define SOCKS5D_AUTHMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define AUTH_MAGIC	0x73356175u	/* "s5au" */
#define AUTH_VERSION	1
#define AUTH_MAX_GROUPS	64		/* group ids a reply carries */
#define AUTH_MAX_LEN	255		/* RFC 1929 ULEN and PLEN */

struct auth_request {
	uint32_t magic;
	uint32_t version;
	uint8_t user_len, pass_len;	/* 1..255 */
	char user[AUTH_MAX_LEN + 1];	/* NUL-terminated, no NUL inside */
	char pass[AUTH_MAX_LEN + 1];
	struct sockaddr_storage client;	/* for PAM_RHOST */
};

enum auth_result {
	AUTH_OK = 0,			/* authenticated, account valid */
	AUTH_DENIED = 1,		/* wrong password or unknown user */
	AUTH_ACCOUNT = 2,		/* account expired, locked, not allowed */
	AUTH_ERROR = 3,			/* PAM or system error */
};

struct auth_reply {
	uint32_t magic;
	uint32_t version;
	uint32_t result;		/* enum auth_result */
	uint32_t delay_ms;		/* PAM's failure delay, for the worker */
	uint32_t cached;		/* answered from the credential cache */
	uint32_t ngroups;		/* of gids, at most AUTH_MAX_GROUPS */
	uint32_t gids[AUTH_MAX_GROUPS];
};

/* Fills a request; fails (-1) on a length out of 1..255 or a NUL. */
int auth_request_make(struct auth_request *r, const char *user,
    size_t user_len, const char *pass, size_t pass_len,
    const struct sockaddr_storage *client);
/* Why a received request is malformed (NULL: well-formed). */
const char *auth_request_check(const struct auth_request *r, ssize_t n);
/* Why a received reply is malformed (NULL: well-formed). */
const char *auth_reply_check(const struct auth_reply *r, ssize_t n);
/* Wipes what a request holds of the password. */
void auth_request_wipe(struct auth_request *r);
/* The reason= word of a result. */
const char *auth_result_name(enum auth_result r);

#endif
