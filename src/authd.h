/* authd.h: the auth helper process: root, does nothing but answer
 * "authenticate" requests from workers with PAM (authpam.c). */
#ifndef SOCKS5D_AUTHD_H
#define SOCKS5D_AUTHD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdnoreturn.h>
#include <sys/types.h>

#include "authcache.h"

/* Shared with the master, one per helper: when the request in progress
 * began (monotonic ms; 0 while idle), so that a helper stuck in a PAM
 * module past auth.timeout is replaced. */
struct authd_slot {
	_Atomic int64_t busy_since;
};

struct authd {
	const char *service;		/* auth.pam_service */
	int chan;			/* the helpers' end of the shared channel */
	int index;
	uid_t worker_uid;		/* requests come from sockets of this uid */
	struct authd_slot *slot;
	pid_t master;
	struct auth_cache *cache;	/* shared by the helpers, or NULL */
	int cache_ttl;			/* seconds */
	bool hash_once;			/* auth.hash_once */
};

/* Runs in the child right after fork; never returns. */
noreturn void authd_main(struct authd *a);

#endif
