/* limits_shm.c: the shared table of counted limits and the leases that say who
 * holds what (limits_shm.h). Open addressing by a keyed hash, linear probing;
 * an entry in use never moves (rate buckets are read through pointers),
 * so a key whose count falls to 0 leaves a tombstone, which becomes empty
 * again as soon as no probe chain runs through it. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "limits_shm.h"
#include "log.h"
#include "siphash.h"

enum { E_EMPTY = 0, E_LIVE, E_TOMB };
enum { L_FREE = 0, L_HELD, L_TRANSIT };

#define HEAL_PENDING 64		/* reaped pids waiting for the lock */
#define LIMITS_MAX_USED (LIMITS_ENTRIES / 4 * 3)

struct entry {
	uint64_t key;
	uint32_t count;
	uint32_t state;
	_Atomic int64_t bucket[2];	/* rate: theoretical arrival, ns */
};

struct lease {
	pid_t owner;
	uint32_t state;
	uint32_t entry;
	uint32_t gen;
};

struct shm {
	pthread_mutex_t lock;		/* process-shared, robust */
	uint8_t key[16];		/* of limits_key */
	uint32_t nleases;		/* leases ever used are below this */
	uint32_t next_lease;		/* where the search for a free one starts */
	uint32_t nused;			/* entries not empty (live, tombstones) */
	struct {
		_Atomic uint64_t key;
		_Atomic int64_t last_ms;
	} logs[LIMITS_LOG_SLOTS];
	struct entry entries[LIMITS_ENTRIES];
	struct lease leases[LIMITS_LEASES];
};

static struct shm *shm;
/* The master's own: pids it reaped and could not heal yet. */
static pid_t pending[HEAL_PENDING];
static size_t npending;

int
limits_create(void)
{
	pthread_mutexattr_t a;
	int rc;

	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		shm = NULL;
		return -1;
	}
	if (getrandom(shm->key, sizeof(shm->key), 0) != sizeof(shm->key))
		fatal("getrandom");
	if ((rc = pthread_mutexattr_init(&a)) != 0)
		fatalx("pthread_mutexattr_init: %s", strerror(rc));
	if ((rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
	    (rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
		rc = pthread_mutex_init(&shm->lock, &a);
	pthread_mutexattr_destroy(&a);
	if (rc != 0)
		fatalx("pthread_mutex_init: %s", strerror(rc));
	npending = 0;
	return 0;
}

void
limits_destroy(void)
{
	if (shm != NULL && munmap(shm, sizeof(*shm)) == -1)
		log_warn("munmap limits");
	shm = NULL;
}

void *
limits_shm_addr(void)
{
	return shm;
}

size_t
limits_shm_bytes(void)
{
	return sizeof(*shm);
}

/* A holder killed with the lock held leaves the table as its last store
 * left it: every update below keeps it usable at each store (a count one
 * off heals when its lease is given back). */
static void
shm_lock(void)
{
	if (pthread_mutex_lock(&shm->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&shm->lock);
}

static bool
shm_trylock(void)
{
	int rc = pthread_mutex_trylock(&shm->lock);

	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(&shm->lock);
	return rc == 0 || rc == EOWNERDEAD;
}

static void
shm_unlock(void)
{
	pthread_mutex_unlock(&shm->lock);
}

uint64_t
limits_key(uint32_t kind, uint64_t rule_id, const void *data, size_t len)
{
	uint8_t buf[12 + 256];
	uint64_t k;

	if (len > 256)
		len = 256;
	memcpy(buf, &kind, 4);
	memcpy(buf + 4, &rule_id, 8);
	memcpy(buf + 12, data, len);
	k = siphash24(shm != NULL ? shm->key : (const uint8_t *)"socks5d-limits!!",
	    buf, 12 + len);
	return k != 0 ? k : 1;
}

/* The entry of key (LIVE, or a tombstone of the same key), or -1; *free_at
 * gets where it would go (the first tombstone or empty slot on its way),
 * -1 when the table is full. */
static long
entry_find(uint64_t key, long *free_at)
{
	size_t mask = LIMITS_ENTRIES - 1, i = (size_t)key & mask;

	*free_at = -1;
	for (size_t n = 0; n < LIMITS_ENTRIES; n++, i = (i + 1) & mask) {
		struct entry *e = &shm->entries[i];

		if (e->state == E_EMPTY) {
			if (*free_at == -1)
				*free_at = (long)i;
			return -1;
		}
		if (e->state == E_TOMB && *free_at == -1)
			*free_at = (long)i;
		if (e->state == E_LIVE && e->key == key)
			return (long)i;
	}
	return -1;
}

/* Tombstones right before an empty slot end no chain: empty them. */
static void
entry_sweep(size_t i)
{
	size_t mask = LIMITS_ENTRIES - 1;

	if (shm->entries[(i + 1) & mask].state != E_EMPTY)
		return;
	for (size_t n = 0; n < LIMITS_ENTRIES &&
	    shm->entries[i].state == E_TOMB; n++, i = (i - 1) & mask) {
		shm->entries[i].state = E_EMPTY;
		if (shm->nused > 0)
			shm->nused--;
	}
}

/* idx comes from a lease that any worker could have written: checked,
 * since the master runs this too. */
static void
entry_put(uint32_t idx)
{
	struct entry *e;

	if (idx >= LIMITS_ENTRIES)
		return;
	e = &shm->entries[idx];
	if (e->state != E_LIVE || e->count == 0)
		return;
	if (--e->count == 0) {
		e->state = E_TOMB;
		entry_sweep(idx);
	}
}

/* A free lease: its index, or -1. */
static long
lease_find_free(void)
{
	for (uint32_t n = 0; n < LIMITS_LEASES; n++) {
		uint32_t i = (shm->next_lease + n) % LIMITS_LEASES;

		if (shm->leases[i].state == L_FREE) {
			shm->next_lease = (i + 1) % LIMITS_LEASES;
			if (i >= shm->nleases)
				shm->nleases = i + 1;
			return (long)i;
		}
	}
	return -1;
}

static int
take_locked(uint64_t key, uint32_t max, pid_t owner, struct limits_hold *h)
{
	long free_at, idx = entry_find(key, &free_at), li;
	struct entry *e;
	struct lease *l;

	if (idx != -1 && max != 0 && shm->entries[idx].count >= max) {
		errno = EAGAIN;
		return -1;
	}
	/* A new key in an empty slot only while a quarter stays empty: probe
	 * chains stay short. */
	if (idx == -1 && free_at != -1 &&
	    shm->entries[free_at].state == E_EMPTY &&
	    shm->nused >= LIMITS_MAX_USED)
		free_at = -1;
	if ((idx == -1 && free_at == -1) || (li = lease_find_free()) == -1) {
		errno = ENOSPC;
		return -1;
	}
	if (idx == -1) {
		idx = free_at;
		e = &shm->entries[idx];
		if (e->state == E_EMPTY)
			shm->nused++;
		e->key = key;
		e->count = 0;
		atomic_store(&e->bucket[0], 0);
		atomic_store(&e->bucket[1], 0);
		e->state = E_LIVE;
	}
	e = &shm->entries[idx];
	l = &shm->leases[li];
	l->owner = owner;
	l->entry = (uint32_t)idx;
	l->gen++;
	e->count++;
	l->state = L_HELD;
	h->lease = (uint32_t)li + 1;
	h->gen = l->gen;
	return 0;
}

int
limits_take(uint64_t key, uint32_t max, pid_t owner, struct limits_hold *h)
{
	int rc;

	h->lease = 0;
	if (shm == NULL) {
		errno = ENOSPC;
		return -1;
	}
	shm_lock();
	rc = take_locked(key, max, owner, h);
	shm_unlock();
	return rc;
}

/* The lease h names, if it is still the one h took; NULL if not. */
static struct lease *
hold_lease(const struct limits_hold *h)
{
	struct lease *l;

	if (shm == NULL || h->lease == 0 || h->lease > LIMITS_LEASES)
		return NULL;
	l = &shm->leases[h->lease - 1];
	if (l->state == L_FREE || l->gen != h->gen ||
	    l->entry >= LIMITS_ENTRIES)
		return NULL;
	return l;
}

static void
lease_free(struct lease *l)
{
	entry_put(l->entry);
	l->state = L_FREE;
	l->owner = 0;
}

void
limits_release(struct limits_hold *h)
{
	struct lease *l;

	if (shm == NULL || h->lease == 0)
		return;
	shm_lock();
	if ((l = hold_lease(h)) != NULL)
		lease_free(l);
	shm_unlock();
	h->lease = 0;
}

uint32_t
limits_count(uint64_t key)
{
	long free_at, idx;
	uint32_t n;

	if (shm == NULL)
		return 0;
	shm_lock();
	idx = entry_find(key, &free_at);
	n = idx == -1 ? 0 : shm->entries[idx].count;
	shm_unlock();
	return n;
}

void
limits_transit(struct limits_hold *h, bool in_transit)
{
	struct lease *l;

	if (shm == NULL || h->lease == 0)
		return;
	shm_lock();
	if ((l = hold_lease(h)) != NULL)
		l->state = in_transit ? L_TRANSIT : L_HELD;
	shm_unlock();
}

void
limits_adopt(struct limits_hold *h, pid_t owner)
{
	struct lease *l;

	if (shm == NULL || h->lease == 0)
		return;
	shm_lock();
	if ((l = hold_lease(h)) != NULL && l->state == L_TRANSIT) {
		l->owner = owner;
		l->state = L_HELD;
	} else {
		h->lease = 0;
	}
	shm_unlock();
}

_Atomic int64_t *
limits_bucket(const struct limits_hold *h)
{
	struct lease *l = hold_lease(h);

	return l != NULL ? shm->entries[l->entry].bucket : NULL;
}

static void
heal_locked(pid_t pid)
{
	size_t freed = 0;

	for (uint32_t i = 0; i < shm->nleases && i < LIMITS_LEASES; i++) {
		struct lease *l = &shm->leases[i];

		if (l->state == L_HELD && l->owner == pid) {
			lease_free(l);
			freed++;
		}
	}
	if (freed > 0)
		log_info("limits-heal pid=%ld released=%zu", (long)pid, freed);
}

void
limits_heal_pending(void)
{
	if (shm == NULL || npending == 0 || !shm_trylock())
		return;
	for (size_t i = 0; i < npending; i++)
		heal_locked(pending[i]);
	npending = 0;
	shm_unlock();
}

void
limits_heal(pid_t pid)
{
	if (shm == NULL)
		return;
	if (npending == HEAL_PENDING) {
		/* The lock has been held through 64 exits: wait for it. */
		shm_lock();
		for (size_t i = 0; i < npending; i++)
			heal_locked(pending[i]);
		npending = 0;
		shm_unlock();
	}
	pending[npending++] = pid;
	limits_heal_pending();
}

bool
limits_log_due(uint64_t key, int64_t now_ms)
{
	size_t i = (size_t)(key >> 32) % LIMITS_LOG_SLOTS;
	uint64_t had;
	int64_t last;

	if (shm == NULL)
		return true;
	had = atomic_exchange(&shm->logs[i].key, key);
	last = atomic_load(&shm->logs[i].last_ms);
	if (had == key && last != 0 && now_ms - last < LIMITS_LOG_MS)
		return false;
	return atomic_compare_exchange_strong(&shm->logs[i].last_ms, &last,
	    now_ms);
}
