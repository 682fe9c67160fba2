/* authcache.c: the credential cache the auth helpers share. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authcache.h"
#include "io.h"
#include "log.h"
#include "siphash.h"

#define PROBE 4			/* slots a user may be stored in */

struct entry {
	uint64_t user_hash;		/* 0: empty */
	uint64_t tag;			/* SipHash of user, NUL, password */
	uint64_t watch_stamp;		/* the watched files when stored */
	int64_t expires_ms;
	uint32_t ngroups;
	uint32_t gids[AUTH_MAX_GROUPS];
};

struct auth_cache {
	pthread_mutex_t lock;		/* process-shared, robust */
	uint8_t key[16];
	size_t nslots, nwatch;
	char watch[AUTH_CACHE_MAX_WATCH][256];
	size_t bytes;			/* of the mapping */
	struct entry e[];
};

static int
cache_lock_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc;

	if ((rc = pthread_mutexattr_init(&a)) != 0)
		return rc;
	if ((rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
	    (rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
		rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return rc;
}

struct auth_cache *
authcache_create(size_t slots, const char *const *watch, size_t nwatch,
    size_t *bytes)
{
	struct auth_cache *c;

	*bytes = sizeof(struct auth_cache) + slots * sizeof(struct entry);
	c = mmap(NULL, *bytes, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return NULL;
	c->bytes = *bytes;
	c->nslots = slots;
	for (size_t i = 0; i < nwatch && i < AUTH_CACHE_MAX_WATCH; i++) {
		snprintf(c->watch[i], sizeof(c->watch[i]), "%s", watch[i]);
		c->nwatch++;
	}
	if (getrandom(c->key, sizeof(c->key), 0) != (ssize_t)sizeof(c->key) ||
	    cache_lock_init(&c->lock) != 0) {
		log_warn("credential cache: no key or lock: not caching");
		authcache_destroy(c);
		return NULL;
	}
	return c;
}

void
authcache_destroy(struct auth_cache *c)
{
	if (c != NULL) {
		explicit_bzero(c->key, sizeof(c->key));
		munmap(c, c->bytes);
	}
}

/* What the watched files look like now: a missing file counts too. */
static uint64_t
stat_stamp(const struct auth_cache *c)
{
	struct {
		uint64_t dev, ino, size;
		int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
	} f[AUTH_CACHE_MAX_WATCH];
	struct stat st;

	memset(f, 0, sizeof(f));
	for (size_t i = 0; i < c->nwatch; i++) {
		if (stat(c->watch[i], &st) == -1)
			continue;
		f[i].dev = st.st_dev;
		f[i].ino = st.st_ino;
		f[i].size = (uint64_t)st.st_size;
		f[i].mtime_s = st.st_mtim.tv_sec;
		f[i].mtime_ns = st.st_mtim.tv_nsec;
		f[i].ctime_s = st.st_ctim.tv_sec;
		f[i].ctime_ns = st.st_ctim.tv_nsec;
	}
	return siphash24(c->key, f, sizeof(f));
}

/* This helper's own view of the watched files (not shared: each helper
 * has its own inotify instance, made at its first lookup): the stamp is
 * taken again only after inotify reported a change to a watched file or
 * to the directory it is in, instead of three stat(2) per login. The
 * event is queued before the call that changed the file returns, so a
 * login that starts after a password change sees it. Without inotify
 * (no instance left), every lookup takes the stamp. */
static struct {
	int fd;			/* -1: not made yet, or none */
	bool tried, valid;
	uint64_t stamp;
} watch = { .fd = -1 };

#define WATCH_FILE_EVENTS (IN_ATTRIB | IN_MODIFY | IN_CLOSE_WRITE | \
	IN_MOVE_SELF | IN_DELETE_SELF)
#define WATCH_DIR_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)

/* (Re)arms the watches: a file replaced by rename(2) is a new inode. A
 * missing file is watched through its directory; a directory that cannot
 * be watched leaves inotify off. */
static bool
watch_arm(const struct auth_cache *c)
{
	for (size_t i = 0; i < c->nwatch; i++) {
		char dir[sizeof(c->watch[i])];

		memcpy(dir, c->watch[i], sizeof(dir));
		if (inotify_add_watch(watch.fd, dirname(dir), WATCH_DIR_EVENTS) == -1)
			return false;
		if (inotify_add_watch(watch.fd, c->watch[i], WATCH_FILE_EVENTS) == -1 &&
		    errno != ENOENT)
			return false;
	}
	return true;
}

/* Whether inotify reported anything since the last call (all read). */
static bool
watch_changed(void)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;

	for (int i = 0; i < 64 && read(watch.fd, buf, sizeof(buf)) > 0; i++)
		changed = true;
	return changed;
}

static void
watch_off(void)
{
	if (watch.fd != -1)
		close(watch.fd);
	watch.fd = -1;
}

static uint64_t
watch_stamp(const struct auth_cache *c)
{
	if (!watch.tried) {
		watch.tried = true;
		watch.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (watch.fd != -1 && !watch_arm(c))
			watch_off();
	}
	if (watch.fd == -1)
		return stat_stamp(c);
	if (watch_changed() || !watch.valid) {
		if (!watch_arm(c)) {
			watch_off();
			return stat_stamp(c);
		}
		watch.stamp = stat_stamp(c);
		watch.valid = true;
	}
	return watch.stamp;
}

static void
hashes(const struct auth_cache *c, const struct auth_request *req,
    uint64_t *user_hash, uint64_t *tag)
{
	uint8_t buf[2 * (AUTH_MAX_LEN + 1)];

	*user_hash = siphash24(c->key, req->user, req->user_len) | 1;
	memcpy(buf, req->user, req->user_len);
	buf[req->user_len] = '\0';
	memcpy(buf + req->user_len + 1, req->pass, req->pass_len);
	*tag = siphash24(c->key, buf, req->user_len + 1u + req->pass_len);
	explicit_bzero(buf, sizeof(buf));
}

static void
cache_lock(struct auth_cache *c)
{
	/* A helper killed while it held the lock left the table as it was:
	 * every entry is whole or checked by its hashes, so go on. */
	if (pthread_mutex_lock(&c->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&c->lock);
}

bool
authcache_lookup(struct auth_cache *c, const struct auth_request *req,
    struct auth_reply *out)
{
	uint64_t uh, tag, stamp = watch_stamp(c);
	int64_t now = io_now_ms();
	bool hit = false;

	hashes(c, req, &uh, &tag);
	cache_lock(c);
	for (size_t i = 0; i < PROBE && !hit; i++) {
		struct entry *e = &c->e[(uh + i) % c->nslots];

		if (e->user_hash != uh)
			continue;
		if (e->tag == tag && e->watch_stamp == stamp &&
		    now < e->expires_ms) {
			out->result = AUTH_OK;
			out->cached = 1;
			out->ngroups = e->ngroups;
			memcpy(out->gids, e->gids, sizeof(out->gids));
			hit = true;
		} else if (e->watch_stamp != stamp || now >= e->expires_ms) {
			memset(e, 0, sizeof(*e));
		}
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void
authcache_store(struct auth_cache *c, const struct auth_request *req,
    const struct auth_reply *rep, int ttl)
{
	uint64_t uh, tag, stamp = watch_stamp(c);
	int64_t now = io_now_ms();
	struct entry *slot = NULL;

	hashes(c, req, &uh, &tag);
	cache_lock(c);
	for (size_t i = 0; i < PROBE; i++) {
		struct entry *e = &c->e[(uh + i) % c->nslots];

		/* The user's own entry, else an empty or the oldest one. */
		if (e->user_hash == uh) {
			slot = e;
			break;
		}
		if (slot == NULL || e->user_hash == 0 ||
		    (slot->user_hash != 0 && e->expires_ms < slot->expires_ms))
			slot = e;
	}
	slot->user_hash = uh;
	slot->tag = tag;
	slot->watch_stamp = stamp;
	slot->expires_ms = now + (int64_t)ttl * 1000;
	slot->ngroups = rep->ngroups;
	memcpy(slot->gids, rep->gids, sizeof(slot->gids));
	pthread_mutex_unlock(&c->lock);
}
