/* authcache.h: the credential cache the auth helpers share (auth.cache_ttl):
 * a keyed hash (SipHash-2-4, key random per start) of user and password,
 * never the password, with the user's groups and an expiry. An entry is
 * good only while the files PAM's answers depend on (auth.cache_watch)
 * are unchanged, so a changed password stops matching at once. */
#ifndef SOCKS5D_AUTHCACHE_H
#define SOCKS5D_AUTHCACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "authmsg.h"

#define AUTH_CACHE_MAX_WATCH 8

struct auth_cache;

/* A shared anonymous mapping (inherited over fork by the helpers; every
 * other role unmaps it) of slots entries, keyed afresh from getrandom(2),
 * watching the files watch[0..nwatch) (at most AUTH_CACHE_MAX_WATCH).
 * *bytes: the mapping's size. NULL when it cannot be made. */
struct auth_cache *authcache_create(size_t slots, const char *const *watch,
    size_t nwatch, size_t *bytes);
void authcache_destroy(struct auth_cache *c);
/* Whether req's user and password are cached as good: then out holds the
 * result and groups. */
bool authcache_lookup(struct auth_cache *c, const struct auth_request *req,
    struct auth_reply *out);
/* Records a successful login for ttl seconds. */
void authcache_store(struct auth_cache *c, const struct auth_request *req,
    const struct auth_reply *rep, int ttl);

#endif
