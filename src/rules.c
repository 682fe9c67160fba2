/* rules.c: client and request rules: first match wins, no match refuses. */
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules.h"
#include "rules_index.h"

static const struct name_slot *name_set_find(const struct name_set *s,
    const char *name, size_t len, uint32_t hash);

/* ---- network sets --------------------------------------------------- */

static int
cmp_range4(const void *a, const void *b)
{
	const struct range4 *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int
cmp_range6(const void *a, const void *b)
{
	return memcmp(((const struct range6 *)a)->lo,
	    ((const struct range6 *)b)->lo, 16);
}

static uint32_t
v4_of(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
}

/* Whether c, written as IPv6, lies within ::ffff:0:0/96: then it is an
 * IPv4 network written in its mapped form. */
static bool
cidr_is_mapped(const struct cidr *c)
{
	static const uint8_t mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

	return c->family == AF_INET6 && c->prefix >= 96 &&
	    memcmp(c->addr, mapped, 12) == 0;
}

static void
range4_of(const uint8_t *addr, int prefix, struct range4 *r)
{
	uint32_t mask = prefix == 0 ? 0 : ~(uint32_t)0 << (32 - prefix);

	r->lo = v4_of(addr) & mask;
	r->hi = r->lo | ~mask;
}

static void
range6_of(const struct cidr *c, struct range6 *r)
{
	memcpy(r->lo, c->addr, 16);
	memcpy(r->hi, c->addr, 16);
	for (int bit = c->prefix; bit < 128; bit++)
		r->hi[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
}

static void
net_set_build(const struct cidr *list, size_t n, struct net_set *s)
{
	size_t k;

	memset(s, 0, sizeof(*s));
	if (n == 0)
		return;
	if ((s->v4 = calloc(n, sizeof(*s->v4))) == NULL ||
	    (s->v6 = calloc(n, sizeof(*s->v6))) == NULL)
		fatal("calloc");
	for (size_t i = 0; i < n; i++) {
		if (list[i].family == AF_INET)
			range4_of(list[i].addr, list[i].prefix, &s->v4[s->n4++]);
		else if (cidr_is_mapped(&list[i]))
			range4_of(list[i].addr + 12, list[i].prefix - 96,
			    &s->v4[s->n4++]);
		else
			range6_of(&list[i], &s->v6[s->n6++]);
	}
	qsort(s->v4, s->n4, sizeof(*s->v4), cmp_range4);
	qsort(s->v6, s->n6, sizeof(*s->v6), cmp_range6);
	/* Merge overlapping ranges so that a binary search finds one. */
	for (size_t i = k = 0; i < s->n4; i++)
		if (k > 0 && s->v4[i].lo <= s->v4[k - 1].hi) {
			if (s->v4[i].hi > s->v4[k - 1].hi)
				s->v4[k - 1].hi = s->v4[i].hi;
		} else {
			s->v4[k++] = s->v4[i];
		}
	s->n4 = k;
	for (size_t i = k = 0; i < s->n6; i++)
		if (k > 0 && memcmp(s->v6[i].lo, s->v6[k - 1].hi, 16) <= 0) {
			if (memcmp(s->v6[i].hi, s->v6[k - 1].hi, 16) > 0)
				memcpy(s->v6[k - 1].hi, s->v6[i].hi, 16);
		} else {
			s->v6[k++] = s->v6[i];
		}
	s->n6 = k;
}

static void
net_set_free(struct net_set *s)
{
	free(s->v4);
	free(s->v6);
	memset(s, 0, sizeof(*s));
}

static bool
has4(const struct net_set *s, uint32_t a)
{
	size_t lo = 0, hi = s->n4;

	/* The last range whose lo <= a. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v4[mid].lo <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && a <= s->v4[lo - 1].hi;
}

static bool
has6(const struct net_set *s, const uint8_t *a)
{
	size_t lo = 0, hi = s->n6;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(s->v6[mid].lo, a, 16) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && memcmp(a, s->v6[lo - 1].hi, 16) <= 0;
}

static bool
net_set_has(const struct net_set *s, const struct sockaddr *sa)
{
	const uint8_t *a;
	uint32_t v4;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET)
		return has4(s, ntohl(((const struct sockaddr_in *)sa)->
		    sin_addr.s_addr));
	if (sa->sa_family != AF_INET6)
		return false;
	a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (has6(s, a))
		return true;
	/* The embedded IPv4 address is where such an address leads. */
	return addr_embedded_v4(a, &v4) && has4(s, v4);
}

/* ---- name sets ------------------------------------------------------ */

static void
name_set_build(char *const *names, size_t n, struct name_set *s)
{
	memset(s, 0, sizeof(*s));
	if (n == 0)
		return;
	s->cap = 4;
	while (s->cap < 2 * n)
		s->cap *= 2;
	if ((s->slots = calloc(s->cap, sizeof(*s->slots))) == NULL)
		fatal("calloc");
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		uint32_t h = rules_name_hash(names[i], len);
		size_t at = h & (s->cap - 1);

		if (name_set_find(s, names[i], len, h) != NULL)
			continue;
		while (s->slots[at].name != NULL)
			at = (at + 1) & (s->cap - 1);
		s->slots[at] = (struct name_slot){ h, (uint32_t)len, names[i] };
	}
}

static const struct name_slot *
name_set_find(const struct name_set *s, const char *name, size_t len,
    uint32_t hash)
{
	if (s->cap == 0)
		return NULL;
	/* At most half full: a free slot ends every probe. */
	for (size_t at = hash & (s->cap - 1); s->slots[at].name != NULL;
	    at = (at + 1) & (s->cap - 1)) {
		const struct name_slot *e = &s->slots[at];

		if (e->hash == hash && e->len == len &&
		    memcmp(e->name, name, len) == 0)
			return e;
	}
	return NULL;
}

static void
query_name_init(struct query_name *qn, const char *name)
{
	size_t len = name == NULL ? 0 : strnlen(name, sizeof(qn->text));

	qn->len = 0;
	qn->nsuffix = 0;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(qn->text))
		return;
	for (size_t i = 0; i < len; i++)
		qn->text[i] = (char)tolower((unsigned char)name[i]);
	qn->text[len] = '\0';
	qn->len = len;
	for (size_t i = 0; i < len && qn->nsuffix < NAME_MAX_LABELS; i++)
		if (i == 0 || qn->text[i - 1] == '.') {
			qn->off[qn->nsuffix] = (uint8_t)i;
			qn->hash[qn->nsuffix++] = rules_name_hash(qn->text + i,
			    len - i);
		}
}

/* One bit per suffix of the name, as rule_head.names has them. */
static uint64_t
query_bits(const struct query_name *qn)
{
	uint64_t bits = 0;

	for (size_t i = 0; i < qn->nsuffix; i++)
		bits |= (uint64_t)1 << (qn->hash[i] & 63);
	return bits;
}

static bool
name_matches(const struct rule *r, const struct query_name *qn)
{
	if (qn->len == 0)
		return false;
	if (name_set_find(&r->host_set, qn->text, qn->len, qn->hash[0]))
		return true;
	if (r->domain_set.cap == 0)
		return false;
	for (size_t i = 0; i < qn->nsuffix; i++)
		if (name_set_find(&r->domain_set, qn->text + qn->off[i],
		    qn->len - qn->off[i], qn->hash[i]))
			return true;
	return false;
}

/* ---- compiling ------------------------------------------------------ */

static int
cmp_gid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
rule_compiled_free(struct rule *r)
{
	net_set_free(&r->from_set);
	net_set_free(&r->to_set);
	free(r->host_set.slots);
	free(r->domain_set.slots);
	free(r->user_set.slots);
	memset(&r->host_set, 0, sizeof(r->host_set));
	memset(&r->domain_set, 0, sizeof(r->domain_set));
	memset(&r->user_set, 0, sizeof(r->user_set));
}

enum {
	HEAD_FROM = 1, HEAD_FROM6 = 2,	/* `from`; with IPv6 networks */
	HEAD_TO_NETS = 4, HEAD_TO6 = 8,	/* `to` networks; with IPv6 ones */
	HEAD_NAMES = 16,		/* `to` names */
	HEAD_LOGIN = 32,		/* users or groups: a login needed */
	HEAD_PASS = 64,			/* action pass */
};

static void
span_of(const struct net_set *s, uint32_t *lo, uint32_t *hi)
{
	*lo = 1;
	*hi = 0;
	if (s->n4 > 0) {
		*lo = s->v4[0].lo;
		*hi = s->v4[s->n4 - 1].hi;
	}
}

static uint64_t
name_bits(char *const *names, size_t n)
{
	uint64_t bits = 0;

	for (size_t i = 0; i < n; i++)
		bits |= (uint64_t)1 << (rules_name_hash(names[i],
		    strlen(names[i])) & 63);
	return bits;
}

static void
head_build(const struct rule *r, struct rule_head *h)
{
	memset(h, 0, sizeof(*h));
	h->listeners = r->listeners;
	h->methods = r->methods;
	h->commands = r->commands;
	span_of(&r->from_set, &h->from_lo, &h->from_hi);
	span_of(&r->to_set, &h->to_lo, &h->to_hi);
	h->names = name_bits(r->hosts, r->nhosts) |
	    name_bits(r->domains, r->ndomains);
	h->port_lo = 0;
	h->port_hi = 65535;
	if (r->nports > 0) {
		h->port_lo = 65535;
		h->port_hi = 0;
	}
	for (size_t i = 0; i < r->nports; i++) {
		if (r->ports[i].lo < h->port_lo)
			h->port_lo = r->ports[i].lo;
		if (r->ports[i].hi > h->port_hi)
			h->port_hi = r->ports[i].hi;
	}
	h->flags = (r->nfrom > 0 ? HEAD_FROM : 0) |
	    (r->from_set.n6 > 0 ? HEAD_FROM6 : 0) |
	    (r->nto > 0 ? HEAD_TO_NETS : 0) |
	    (r->to_set.n6 > 0 ? HEAD_TO6 : 0) |
	    (r->nhosts + r->ndomains > 0 ? HEAD_NAMES : 0) |
	    (r->nusers > 0 || r->has_groups ? HEAD_LOGIN : 0) |
	    (r->action == RULE_PASS ? HEAD_PASS : 0);
}

void
rules_compile(struct ruleset *rs)
{
	free(rs->heads);
	rs->heads = NULL;
	if (rs->n > 0 && (rs->heads = calloc(rs->n, sizeof(*rs->heads))) == NULL)
		fatal("calloc");
	for (size_t i = 0; i < rs->n; i++) {
		struct rule *r = &rs->list[i];

		rule_compiled_free(r);
		net_set_build(r->from, r->nfrom, &r->from_set);
		net_set_build(r->to, r->nto, &r->to_set);
		name_set_build(r->hosts, r->nhosts, &r->host_set);
		name_set_build(r->domains, r->ndomains, &r->domain_set);
		name_set_build(r->users, r->nusers, &r->user_set);
		if (r->ngids > 1)
			qsort(r->gids, r->ngids, sizeof(*r->gids), cmp_gid);
		head_build(r, &rs->heads[i]);
	}
	rules_index_free(rs->index);
	rs->index = rules_index_build(rs);
}

/* ---- matching ------------------------------------------------------- */

static bool
any_port(const struct port_range *list, size_t n, uint16_t port)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (port >= list[i].lo && port <= list[i].hi)
			return true;
	return false;
}

static bool
bit_in(unsigned mask, unsigned bit)
{
	return mask == 0 || (bit < 32 && (mask & (1u << bit)));
}

static bool
from_matches(const struct rule *r, const struct rules_query *q)
{
	return (r->nfrom == 0 || net_set_has(&r->from_set, q->client)) &&
	    (r->listeners == 0 || (q->listener >= 0 && q->listener < 64 &&
	    (r->listeners & ((uint64_t)1 << q->listener))));
}

static bool
has_gid(const struct rule *r, const uint32_t *gids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (bsearch(&gids[i], r->gids, r->ngids, sizeof(*r->gids),
		    cmp_gid) != NULL)
			return true;
	return false;
}

/* Every key of a request rule but the destination. */
static bool
session_matches(const struct rule *r, const struct rules_query *q)
{
	if (!from_matches(r, q) || !bit_in(r->methods, q->method) ||
	    !bit_in(r->commands, q->cmd) ||
	    !any_port(r->ports, r->nports, q->port))
		return false;
	if (r->nusers > 0 && (q->user == NULL || name_set_find(&r->user_set,
	    (const char *)q->user, q->user_len,
	    rules_name_hash((const char *)q->user, q->user_len)) == NULL))
		return false;
	return !r->has_groups || has_gid(r, q->gids, q->ngids);
}

/* Whether sa may lie in networks whose IPv4 span is lo..hi (and which
 * hold IPv6 networks if has6). */
static bool
in_span(uint32_t lo, uint32_t hi, bool has6, const struct sockaddr *sa)
{
	uint32_t v4;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		v4 = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return lo <= v4 && v4 <= hi;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	return has6 || (addr_embedded_v4(((const struct sockaddr_in6 *)sa)->
	    sin6_addr.s6_addr, &v4) && lo <= v4 && v4 <= hi);
}

static bool
head_from(const struct rule_head *h, const struct rules_query *q)
{
	return (!(h->flags & HEAD_FROM) || in_span(h->from_lo, h->from_hi,
	    h->flags & HEAD_FROM6, q->client)) &&
	    (h->listeners == 0 || (q->listener >= 0 && q->listener < 64 &&
	    (h->listeners & ((uint64_t)1 << q->listener))));
}

/* The head's test of a request: may the rule match (with_dst), or may it
 * decide before the address is known (!with_dst: rules_may_pass)? */
static bool
head_request(const struct rule_head *h, const struct rules_query *q,
    uint64_t qbits, bool with_dst)
{
	bool by_name = (h->flags & HEAD_NAMES) && (h->names & qbits);

	if (!head_from(h, q) || !bit_in(h->methods, q->method) ||
	    !bit_in(h->commands, q->cmd) || q->port < h->port_lo ||
	    q->port > h->port_hi || ((h->flags & HEAD_LOGIN) && q->user == NULL))
		return false;
	if (!(h->flags & (HEAD_TO_NETS | HEAD_NAMES)))
		return true;
	if (!with_dst)
		return by_name || ((h->flags & HEAD_PASS) &&
		    ((h->flags & HEAD_TO_NETS) || qbits == 0));
	return by_name || ((h->flags & HEAD_TO_NETS) && in_span(h->to_lo,
	    h->to_hi, h->flags & HEAD_TO6, q->dst));
}

static bool
has_to(const struct rule *r)
{
	return r->nto > 0 || r->nhosts > 0 || r->ndomains > 0;
}

static struct verdict
verdict_of(const struct rule *r, size_t i)
{
	return (struct verdict){ r->action == RULE_PASS, (int)i + 1,
	    r->methods, r->name, r->quiet };
}

struct verdict
rules_match_client(const struct ruleset *rs, const struct rules_query *q)
{
	struct rules_iter it;
	size_t i;

	rules_iter_begin(&it, rs, q, NULL, RQ_CLIENT);
	while (rules_iter_next(&it, &i))
		if ((rs->heads == NULL || head_from(&rs->heads[i], q)) &&
		    from_matches(&rs->list[i], q))
			return verdict_of(&rs->list[i], i);
	return (struct verdict){ false, 0, 0, NULL, false };
}

struct verdict
rules_may_pass(const struct ruleset *rs, const struct rules_query *q)
{
	struct query_name qn;
	struct rules_iter it;
	uint64_t qbits;
	size_t i;

	query_name_init(&qn, q->dst_name);
	qbits = query_bits(&qn);
	rules_iter_begin(&it, rs, q, &qn, RQ_MAY_PASS);
	while (rules_iter_next(&it, &i)) {
		const struct rule *r = &rs->list[i];

		if ((rs->heads != NULL && !head_request(&rs->heads[i], q, qbits,
		    false)) || !session_matches(r, q))
			continue;
		/* A rule that matches whatever the address decides; one for
		 * some addresses decides only if it lets them pass. Without a
		 * name (an address, or any destination of an association) a
		 * pass for some names may pass too. */
		if (!has_to(r) || name_matches(r, &qn) ||
		    (r->action == RULE_PASS && (r->nto > 0 || qn.len == 0)))
			return verdict_of(r, i);
	}
	return (struct verdict){ false, 0, 0, NULL, false };
}

struct verdict
rules_match_request(const struct ruleset *rs, const struct rules_query *q)
{
	struct query_name qn;
	struct rules_iter it;
	uint64_t qbits;
	size_t i;

	query_name_init(&qn, q->dst_name);
	qbits = query_bits(&qn);
	rules_iter_begin(&it, rs, q, &qn, RQ_REQUEST);
	while (rules_iter_next(&it, &i)) {
		const struct rule *r = &rs->list[i];

		if (rs->heads != NULL && !head_request(&rs->heads[i], q, qbits,
		    true))
			continue;
		if (session_matches(r, q) && (!has_to(r) ||
		    (r->nto > 0 && net_set_has(&r->to_set, q->dst)) ||
		    name_matches(r, &qn)))
			return verdict_of(r, i);
	}
	return (struct verdict){ false, 0, 0, NULL, false };
}

/* ---- checks for socks5d -t ----------------------------------------- */

bool
rules_never_matches(const struct rule *r, bool is_clients, const char **why)
{
	if (r->has_groups && r->ngids == 0) {
		*why = "none of its groups exists";
		return true;
	}
	if (!is_clients && (r->nusers > 0 || r->has_groups) &&
	    r->methods == (1u << 0)) {	/* SOCKS5_METHOD_NONE only */
		*why = "users and groups need a login, but its methods are only \"none\"";
		return true;
	}
	return false;
}

static bool
net_subset(const struct net_set *a, const struct net_set *b)
{
	for (size_t i = 0; i < a->n4; i++) {
		size_t lo = 0, hi = b->n4;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (b->v4[mid].lo <= a->v4[i].lo)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == 0 || a->v4[i].hi > b->v4[lo - 1].hi)
			return false;
	}
	for (size_t i = 0; i < a->n6; i++) {
		size_t lo = 0, hi = b->n6;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (memcmp(b->v6[mid].lo, a->v6[i].lo, 16) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == 0 || memcmp(a->v6[i].hi, b->v6[lo - 1].hi, 16) > 0)
			return false;
	}
	return true;
}

/* Whether every name that name (a host, or a domain and its subdomains)
 * stands for is matched by r's names. */
static bool
name_covered(const struct rule *r, const char *name, bool domain)
{
	struct query_name qn;

	query_name_init(&qn, name);
	if (qn.len == 0)
		return false;	/* no name a query can have: hash[] unset */
	if (!domain && name_set_find(&r->host_set, qn.text, qn.len,
	    qn.hash[0]))
		return true;
	for (size_t i = 0; i < qn.nsuffix; i++)
		if (name_set_find(&r->domain_set, qn.text + qn.off[i],
		    qn.len - qn.off[i], qn.hash[i]))
			return true;
	return false;
}

static bool
mask_subset(unsigned long long later, unsigned long long earlier)
{
	return earlier == 0 || (later != 0 && (later & ~earlier) == 0);
}

/* Whether every destination r matches, e matches too. */
static bool
to_superset(const struct rule *e, const struct rule *r)
{
	if (!has_to(e))
		return true;
	if (!has_to(r) || !net_subset(&r->to_set, &e->to_set))
		return false;
	for (size_t i = 0; i < r->nhosts; i++)
		if (!name_covered(e, r->hosts[i], false))
			return false;
	for (size_t i = 0; i < r->ndomains; i++)
		if (!name_covered(e, r->domains[i], true))
			return false;
	return true;
}

static bool
ports_superset(const struct rule *e, const struct rule *r)
{
	if (e->nports == 0)
		return true;
	if (r->nports == 0)
		return false;
	for (size_t i = 0; i < r->nports; i++) {
		size_t j;

		for (j = 0; j < e->nports; j++)
			if (e->ports[j].lo <= r->ports[i].lo &&
			    r->ports[i].hi <= e->ports[j].hi)
				break;
		if (j == e->nports)
			return false;
	}
	return true;
}

static bool
users_superset(const struct rule *e, const struct rule *r)
{
	if (e->nusers == 0)
		return true;
	if (r->nusers == 0)
		return false;
	for (size_t i = 0; i < r->nusers; i++) {
		size_t len = strlen(r->users[i]);

		if (!name_set_find(&e->user_set, r->users[i], len,
		    rules_name_hash(r->users[i], len)))
			return false;
	}
	return true;
}

static bool
groups_superset(const struct rule *e, const struct rule *r)
{
	if (!e->has_groups)
		return true;
	if (!r->has_groups)
		return false;
	for (size_t i = 0; i < r->ngids; i++)
		if (bsearch(&r->gids[i], e->gids, e->ngids, sizeof(*e->gids),
		    cmp_gid) == NULL)
			return false;
	return true;
}

/* Whether e (earlier) matches everything r matches. */
static bool
rule_superset(const struct rule *e, const struct rule *r, bool is_clients)
{
	if ((e->nfrom > 0 && (r->nfrom == 0 ||
	    !net_subset(&r->from_set, &e->from_set))) ||
	    !mask_subset(r->listeners, e->listeners))
		return false;
	if (is_clients)
		return true;
	return mask_subset(r->methods, e->methods) &&
	    mask_subset(r->commands, e->commands) &&
	    users_superset(e, r) && groups_superset(e, r) &&
	    ports_superset(e, r) && to_superset(e, r);
}

long
rules_shadowed_by(const struct ruleset *rs, size_t i, bool is_clients)
{
	for (size_t j = 0; j < i && j < rs->n; j++)
		if (rule_superset(&rs->list[j], &rs->list[i], is_clients))
			return (long)j;
	return -1;
}

static void
free_strings(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void
rules_free(struct ruleset *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct rule *r = &rs->list[i];

		rule_compiled_free(r);
		free(r->name);
		free(r->from);
		free_strings(r->users, r->nusers);
		free(r->gids);
		free(r->to);
		free_strings(r->hosts, r->nhosts);
		free_strings(r->domains, r->ndomains);
		free(r->ports);
	}
	free(rs->list);
	free(rs->heads);
	rules_index_free(rs->index);
	rs->list = NULL;
	rs->heads = NULL;
	rs->index = NULL;
	rs->n = 0;
	rs->present = false;
}
