/* limits_session.c: a session's limits (limits_session.h): keys from the
 * client address or the user, the once-a-minute log lines, the hand-over
 * of the leases and rate caps to a hub. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "audit.h"
#include "io.h"
#include "limits_session.h"
#include "log.h"

enum { KIND_NEGOTIATING = 1, KIND_SESSIONS, KIND_RATE };

static struct {
	struct sb_slot *slot;		/* negotiating: this worker's */
	struct scoreboard *sb;
	uint64_t negotiating_key;
	struct sockaddr_storage peer;
	struct limits_hold holds[LIMITS_HOLDS];
	const struct rule *rule;	/* whose count holds[SESSIONS] is */
	struct rate_bucket rate[2];
	bool shared;			/* rate[] use holds[RATE]'s entry */
} cur;

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* The bytes a client address counts under: an IPv4 address (IPv4-mapped
 * IPv6 included), or an IPv6 /64 (one subscriber's prefix, which a host
 * can fill with addresses at will). Returns their length. */
static size_t
addr_key_bytes(const struct sockaddr *sa, uint8_t out[9])
{
	if (sa->sa_family == AF_INET) {
		out[0] = 4;
		memcpy(out + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 5;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, v4mapped, 12) == 0) {
			out[0] = 4;
			memcpy(out + 1, a + 12, 4);
			return 5;
		}
		out[0] = 6;
		memcpy(out + 1, a, 8);
		return 9;
	}
	out[0] = 0;
	return 1;
}

void
limits_session_begin(void)
{
	memset(&cur, 0, sizeof(cur));
}

/* No idle worker and no free slot (workers.max reached): the next client
 * waits. Slots are taken lowest first, so a free one is found at the top
 * at once unless the pool is (nearly) full. */
static bool
pool_full(const struct scoreboard *sb)
{
	if (atomic_load_explicit(&sb->idle, memory_order_relaxed) > 0)
		return false;
	for (size_t i = sb->nslots; i-- > 0;)
		if (atomic_load_explicit(&sb->slots[i].state,
		    memory_order_relaxed) == SB_FREE)
			return false;
	return true;
}

/* Sessions of key negotiating now, in every worker of the generation. */
static size_t
negotiating_count(const struct scoreboard *sb, uint64_t key)
{
	size_t n = 0;

	/* A dead worker's slot is free (its key left behind): not counted. */
	for (size_t i = 0; i < sb->nslots; i++)
		n += atomic_load_explicit(&sb->slots[i].state,
		    memory_order_relaxed) == SB_BUSY &&
		    atomic_load_explicit(&sb->slots[i].negotiating,
		    memory_order_relaxed) == key;
	return n;
}

static void
negotiate_log(const struct config *c)
{
	char who[ADDR_STRLEN];

	if (!limits_log_due(cur.negotiating_key, io_now_ms()))
		return;
	addr_format_ip((const struct sockaddr *)&cur.peer, who, sizeof(who));
	log_notice("limit-negotiating client=%s max=%d: closing its connections (logged once a minute)",
	    who, c->workers.max_negotiating);
}

int
limits_negotiate_begin(const struct config *c,
    const struct sockaddr_storage *peer, struct scoreboard *sb,
    struct sb_slot *slot)
{
	uint8_t kb[9];
	size_t n;

	if (c->workers.max_negotiating == 0)
		return 0;
	n = addr_key_bytes((const struct sockaddr *)peer, kb);
	cur.negotiating_key = limits_key(KIND_NEGOTIATING, 0, kb, n);
	cur.peer = *peer;
	if (pool_full(sb) && negotiating_count(sb, cur.negotiating_key) >=
	    (size_t)c->workers.max_negotiating) {
		negotiate_log(c);
		return -1;
	}
	cur.sb = sb;
	cur.slot = slot;
	atomic_store(&slot->negotiating, cur.negotiating_key);
	return 0;
}

void
limits_negotiate_end(void)
{
	if (cur.slot != NULL)
		atomic_store(&cur.slot->negotiating, 0);
	cur.slot = NULL;
}

int64_t
limits_negotiate_check_at(int64_t deadline)
{
	int64_t at;

	if (cur.slot == NULL)
		return deadline;
	at = io_now_ms() + LIMITS_NEGOTIATE_CHECK_MS;
	return at < deadline ? at : deadline;
}

bool
limits_negotiate_excess(const struct config *c, const struct scoreboard *sb)
{
	if (cur.slot == NULL || c->workers.max_negotiating == 0 ||
	    !pool_full(sb) || negotiating_count(sb, cur.negotiating_key) <=
	    (size_t)c->workers.max_negotiating)
		return false;
	limits_negotiate_end();
	negotiate_log(c);
	return true;
}

/* The key bytes of a rule's count or bucket for query q: the client's
 * address, the user (a session without login counts under its client
 * address), or nothing (the rule as a whole). */
static size_t
rule_key_bytes(int per, const struct rules_query *q, uint8_t *out, size_t cap)
{
	if (per == LIMITS_PER_RULE)
		return 0;
	if (per == LIMITS_PER_USER && q->user != NULL && q->user_len > 0) {
		size_t n = q->user_len < cap - 1 ? q->user_len : cap - 1;

		out[0] = 'u';
		memcpy(out + 1, q->user, n);
		return n + 1;
	}
	return addr_key_bytes(q->client, out);
}

/* "client=ADDR", "user=NAME" or "rule" for a refusal's log line. */
static void
rule_key_text(int per, const struct rules_query *q, char *buf, size_t len)
{
	char tmp[AUDIT_USER_LEN * 4 + 1];

	if (per == LIMITS_PER_RULE) {
		snprintf(buf, len, "key=rule");
	} else if (per == LIMITS_PER_USER && q->user != NULL && q->user_len > 0) {
		log_escape(tmp, sizeof(tmp), q->user, q->user_len);
		snprintf(buf, len, "user=%s", tmp);
	} else {
		addr_format_ip(q->client, tmp, sizeof(tmp));
		snprintf(buf, len, "client=%s", tmp);
	}
}

static int
take_sessions(const struct rule *r, int number, const struct rules_query *q)
{
	uint8_t kb[AUDIT_USER_LEN + 1];
	size_t n = rule_key_bytes(r->sessions_per, q, kb, sizeof(kb));
	uint64_t key = limits_key(KIND_SESSIONS, r->limit_id, kb, n);
	char who[AUDIT_USER_LEN * 4 + 16];

	if (limits_take(key, r->max_sessions, getpid(),
	    &cur.holds[LIMITS_HOLD_SESSIONS]) == 0)
		return 0;
	if (limits_log_due(key, io_now_ms())) {
		rule_key_text(r->sessions_per, q, who, sizeof(who));
		log_notice("limit-sessions rule=%d %s max=%u: %s", number, who,
		    r->max_sessions, errno == ENOSPC ?
		    "the limits table is full" :
		    "refusing its new requests (logged once a minute)");
	}
	return -1;
}

/* The rate caps: per session, or one bucket for the user's sessions of
 * the rule (when the table has no room, per session after all). */
static void
take_rates(const struct rule *r, const struct rules_query *q)
{
	uint8_t kb[AUDIT_USER_LEN + 1];
	_Atomic int64_t *shared = NULL;

	if (r->rate[0] == 0 && r->rate[1] == 0)
		return;
	if (r->rate_per_user) {
		size_t n = rule_key_bytes(LIMITS_PER_USER, q, kb, sizeof(kb));

		if (limits_take(limits_key(KIND_RATE, r->limit_id, kb, n), 0,
		    getpid(), &cur.holds[LIMITS_HOLD_RATE]) == 0)
			shared = limits_bucket(&cur.holds[LIMITS_HOLD_RATE]);
	}
	cur.shared = shared != NULL;
	for (int i = 0; i < 2; i++)
		rate_init(&cur.rate[i], r->rate[i], shared != NULL ?
		    &shared[i] : NULL);
}

/* What the passing rule's verdict took: counts and rate caps. */
static void
rule_release(void)
{
	for (int i = 0; i < LIMITS_HOLDS; i++)
		limits_release(&cur.holds[i]);
	memset(cur.rate, 0, sizeof(cur.rate));
	cur.rule = NULL;
	cur.shared = false;
}

int
limits_take_verdict(const struct config *c, const struct verdict *v,
    const struct rules_query *q)
{
	const struct rule *r;

	if (!v->pass || v->rule < 1 || (size_t)v->rule > c->rules.n)
		return 0;
	r = &c->rules.list[v->rule - 1];
	if (cur.rule == r)
		return 0;
	rule_release();
	cur.rule = r;
	if (r->max_sessions > 0 && take_sessions(r, v->rule, q) == -1)
		return -1;
	take_rates(r, q);
	return 0;
}

void
limits_session_rates(struct rate_bucket *out[2])
{
	for (int i = 0; i < 2; i++)
		out[i] = cur.rate[i].rate != 0 ? &cur.rate[i] : NULL;
}

void
limits_park_fill(struct limits_msg *m)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < LIMITS_HOLDS; i++) {
		m->holds[i] = cur.holds[i];
		limits_transit(&cur.holds[i], true);
	}
	for (int i = 0; i < 2; i++) {
		m->rate[i] = cur.rate[i].rate;
		m->tat[i] = atomic_load(&cur.rate[i].own);
	}
	m->shared = cur.shared;
}

void
limits_park_done(bool sent)
{
	for (int i = 0; i < LIMITS_HOLDS; i++) {
		if (!sent)
			limits_transit(&cur.holds[i], false);
		else
			cur.holds[i].lease = 0;	/* the hub's now */
	}
}

void
limits_session_end(void)
{
	limits_negotiate_end();
	rule_release();
}

void
limits_parked_start(struct limits_parked *lp, const struct limits_msg *m,
    int64_t now_ns)
{
	_Atomic int64_t *shared = NULL;

	for (int i = 0; i < LIMITS_HOLDS; i++) {
		lp->holds[i] = m->holds[i];
		limits_adopt(&lp->holds[i], getpid());
	}
	if (m->shared)
		shared = limits_bucket(&lp->holds[LIMITS_HOLD_RATE]);
	for (int i = 0; i < 2; i++) {
		uint64_t rate = m->rate[i] > LIMITS_RATE_MAX ? LIMITS_RATE_MAX :
		    m->rate[i];
		/* From another process: no later than one second ahead. */
		int64_t tat = m->tat[i] > now_ns + 1000000000LL ?
		    now_ns + 1000000000LL : m->tat[i];

		rate_init(&lp->rate[i], rate, shared != NULL ? &shared[i] :
		    NULL);
		atomic_store(&lp->rate[i].own, tat);
	}
}

void
limits_parked_end(struct limits_parked *lp)
{
	for (int i = 0; i < LIMITS_HOLDS; i++)
		limits_release(&lp->holds[i]);
}
