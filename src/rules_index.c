/* rules_index.c: the candidate rules of a query, from bitsets compiled
 * once per load, so that a query checks a few rules instead of all. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules_index.h"

/* The whole index of one rule set stays under this; a larger one is not
 * built and the rules are tried in order. */
#define INDEX_MAX_BYTES ((size_t)32 << 20)
/* Shorter lists are tried in order: their heads cost less than building
 * a query's candidates (measured with bench/rulescost.c). */
#define INDEX_MIN_RULES 8

/*
 * One key of the rules over 32-bit values (IPv4 addresses in host order,
 * or ports): the values cut into elementary intervals at every edge of
 * every rule's ranges, interval k being starts[k] .. starts[k + 1] - 1,
 * each with a row of the rules whose ranges hold it. Rules without the
 * key are in the row free, rules with IPv6 networks in it in v6.
 */
struct axis {
	uint32_t *starts;
	size_t n;
	uint64_t *rows;			/* n rows, one per interval */
	uint64_t *free, *v6;
};

/* Names of one kind (hosts or domains) of every rule, each with the row
 * of the rules that have it: an open hash table at most half full. */
struct name_entry {
	uint32_t hash, len;
	const char *name;		/* NULL: a free slot */
	uint64_t *row;
};
struct name_index {
	struct name_entry *slots;
	size_t cap;
	uint64_t *rows;
};

struct rules_index {
	size_t words;			/* 64-bit words per row */
	size_t bytes;			/* allocated in rows so far */
	struct axis from, to, port;
	uint64_t *names;		/* rules with destination names */
	uint64_t *pass_nets;		/* pass rules with destination networks */
	uint64_t *pass_to;		/* pass rules with any destination */
	uint64_t *cmd[4];		/* rules that match command c */
	uint64_t *no_login;		/* rules that need no login */
	struct name_index hosts, domains;
};

enum axis_key { AX_FROM, AX_TO, AX_PORT };

uint32_t
rules_name_hash(const char *name, size_t len)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	return h;
}

/* n zeroed rows, or NULL when the index would grow past its cap. */
static uint64_t *
rows_new(struct rules_index *ix, size_t n)
{
	size_t bytes = n * ix->words * sizeof(uint64_t);
	uint64_t *rows;

	if (n > INDEX_MAX_BYTES || bytes > INDEX_MAX_BYTES - ix->bytes)
		return NULL;
	if ((rows = calloc(n > 0 ? n : 1, ix->words * sizeof(uint64_t))) == NULL)
		fatal("calloc");
	ix->bytes += bytes;
	return rows;
}

static void
set_bit(uint64_t *row, size_t i)
{
	row[i / 64] |= (uint64_t)1 << (i % 64);
}

/* ---- intervals ------------------------------------------------------ */

static bool
has_to(const struct rule *r)
{
	return r->nto > 0 || r->nhosts > 0 || r->ndomains > 0;
}

/* Whether r has the key at all, and how many 32-bit ranges it has. */
static bool
axis_keyed(const struct rule *r, enum axis_key key, size_t *n)
{
	switch (key) {
	case AX_FROM:
		*n = r->from_set.n4;
		return r->nfrom > 0;
	case AX_TO:
		*n = r->to_set.n4;
		return has_to(r);
	default:
		*n = r->nports;
		return r->nports > 0;
	}
}

static void
axis_range(const struct rule *r, enum axis_key key, size_t j, uint32_t *lo,
    uint32_t *hi)
{
	const struct range4 *v = key == AX_FROM ? r->from_set.v4 :
	    r->to_set.v4;

	if (key == AX_PORT) {
		*lo = r->ports[j].lo;
		*hi = r->ports[j].hi;
	} else {
		*lo = v[j].lo;
		*hi = v[j].hi;
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The interval that holds a: the last start <= a (starts[0] is 0). */
static size_t
axis_find(const struct axis *ax, uint32_t a)
{
	size_t lo = 0, hi = ax->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ax->starts[mid] <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

/* Every edge: 0, and each range's lo and hi + 1; sorted, unique. */
static void
axis_edges(const struct ruleset *rs, enum axis_key key, struct axis *ax)
{
	size_t n = 1, k;

	for (size_t i = 0; i < rs->n; i++)
		if (axis_keyed(&rs->list[i], key, &k))
			n += 2 * k;
	if ((ax->starts = calloc(n, sizeof(*ax->starts))) == NULL)
		fatal("calloc");
	ax->n = 1;
	for (size_t i = 0; i < rs->n; i++) {
		if (!axis_keyed(&rs->list[i], key, &k))
			continue;
		for (size_t j = 0; j < k; j++) {
			uint32_t lo, hi;

			axis_range(&rs->list[i], key, j, &lo, &hi);
			ax->starts[ax->n++] = lo;
			if (hi != UINT32_MAX)
				ax->starts[ax->n++] = hi + 1;
		}
	}
	qsort(ax->starts, ax->n, sizeof(*ax->starts), cmp_u32);
	for (size_t i = k = 1; i < ax->n; i++)
		if (ax->starts[i] != ax->starts[k - 1])
			ax->starts[k++] = ax->starts[i];
	ax->n = k;
}

static bool
axis_build(struct rules_index *ix, const struct ruleset *rs,
    enum axis_key key, struct axis *ax)
{
	size_t k;

	axis_edges(rs, key, ax);
	if ((ax->rows = rows_new(ix, ax->n)) == NULL ||
	    (ax->free = rows_new(ix, 1)) == NULL ||
	    (ax->v6 = rows_new(ix, 1)) == NULL)
		return false;
	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->list[i];

		if (!axis_keyed(r, key, &k)) {
			set_bit(ax->free, i);
			continue;
		}
		if ((key == AX_FROM && r->from_set.n6 > 0) ||
		    (key == AX_TO && r->to_set.n6 > 0))
			set_bit(ax->v6, i);
		for (size_t j = 0; j < k; j++) {
			uint32_t lo, hi;

			axis_range(r, key, j, &lo, &hi);
			for (size_t at = axis_find(ax, lo);
			    at < ax->n && ax->starts[at] <= hi; at++)
				set_bit(ax->rows + at * ix->words, i);
		}
	}
	return true;
}

static void
axis_free(struct axis *ax)
{
	free(ax->starts);
	free(ax->rows);
	free(ax->free);
	free(ax->v6);
}

/* ---- names ---------------------------------------------------------- */

static uint64_t *
name_find(const struct name_index *ni, const char *name, size_t len,
    uint32_t hash)
{
	if (ni->cap == 0)
		return NULL;
	for (size_t at = hash & (ni->cap - 1); ni->slots[at].name != NULL;
	    at = (at + 1) & (ni->cap - 1)) {
		const struct name_entry *e = &ni->slots[at];

		if (e->hash == hash && e->len == len &&
		    memcmp(e->name, name, len) == 0)
			return e->row;
	}
	return NULL;
}

static void
name_add(struct rules_index *ix, struct name_index *ni, size_t *used,
    const char *name, size_t i)
{
	size_t len = strlen(name);
	uint32_t h = rules_name_hash(name, len);
	uint64_t *row = name_find(ni, name, len, h);
	size_t at = h & (ni->cap - 1);

	if (row == NULL) {
		while (ni->slots[at].name != NULL)
			at = (at + 1) & (ni->cap - 1);
		row = ni->rows + (*used)++ * ix->words;
		ni->slots[at] = (struct name_entry){ h, (uint32_t)len, name,
		    row };
	}
	set_bit(row, i);
}

/* The hosts (domains false) or domains of every rule. */
static bool
names_build(struct rules_index *ix, const struct ruleset *rs, bool domains,
    struct name_index *ni)
{
	size_t total = 0, used = 0;

	for (size_t i = 0; i < rs->n; i++)
		total += domains ? rs->list[i].ndomains : rs->list[i].nhosts;
	if (total == 0)
		return true;
	for (ni->cap = 4; ni->cap < 2 * total; ni->cap *= 2)
		;
	if ((ni->slots = calloc(ni->cap, sizeof(*ni->slots))) == NULL)
		fatal("calloc");
	if ((ni->rows = rows_new(ix, total)) == NULL)
		return false;
	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->list[i];
		size_t n = domains ? r->ndomains : r->nhosts;

		for (size_t j = 0; j < n; j++)
			name_add(ix, ni, &used, domains ? r->domains[j] :
			    r->hosts[j], i);
	}
	return true;
}

/* ---- building ------------------------------------------------------- */

/* The rows of the keys that take no interval. */
static bool
flags_build(struct rules_index *ix, const struct ruleset *rs)
{
	if ((ix->names = rows_new(ix, 1)) == NULL ||
	    (ix->pass_nets = rows_new(ix, 1)) == NULL ||
	    (ix->pass_to = rows_new(ix, 1)) == NULL ||
	    (ix->no_login = rows_new(ix, 1)) == NULL)
		return false;
	for (size_t c = 0; c < 4; c++)
		if ((ix->cmd[c] = rows_new(ix, 1)) == NULL)
			return false;
	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->list[i];
		bool pass = r->action == RULE_PASS;

		if (r->nhosts + r->ndomains > 0)
			set_bit(ix->names, i);
		if (pass && r->nto > 0)
			set_bit(ix->pass_nets, i);
		if (pass && has_to(r))
			set_bit(ix->pass_to, i);
		if (r->nusers == 0 && !r->has_groups)
			set_bit(ix->no_login, i);
		for (unsigned c = 0; c < 4; c++)
			if (r->commands == 0 || (r->commands & (1u << c)))
				set_bit(ix->cmd[c], i);
	}
	return true;
}

struct rules_index *
rules_index_build(const struct ruleset *rs)
{
	struct rules_index *ix;

	if (rs->n < INDEX_MIN_RULES)
		return NULL;
	if ((ix = calloc(1, sizeof(*ix))) == NULL)
		fatal("calloc");
	ix->words = (rs->n + 63) / 64;
	if (!axis_build(ix, rs, AX_FROM, &ix->from) ||
	    !axis_build(ix, rs, AX_TO, &ix->to) ||
	    !axis_build(ix, rs, AX_PORT, &ix->port) || !flags_build(ix, rs) ||
	    !names_build(ix, rs, false, &ix->hosts) ||
	    !names_build(ix, rs, true, &ix->domains)) {
		rules_index_free(ix);	/* too large: same verdicts without */
		return NULL;
	}
	return ix;
}

void
rules_index_free(struct rules_index *ix)
{
	if (ix == NULL)
		return;
	axis_free(&ix->from);
	axis_free(&ix->to);
	axis_free(&ix->port);
	free(ix->names);
	free(ix->pass_nets);
	free(ix->pass_to);
	free(ix->no_login);
	for (size_t c = 0; c < 4; c++)
		free(ix->cmd[c]);
	free(ix->hosts.slots);
	free(ix->hosts.rows);
	free(ix->domains.slots);
	free(ix->domains.rows);
	free(ix);
}

/* ---- querying ------------------------------------------------------- */

static void
cand_key(struct rules_cand *c)
{
	c->key[c->nkeys++].n = 0;
}

static void
cand_row(struct rules_cand *c, const uint64_t *row)
{
	c->key[c->nkeys - 1].row[c->key[c->nkeys - 1].n++] = row;
}

/* The rows of an address in ax (at most 3): rules without the key, and
 * those whose networks may hold it (an IPv6 address: every rule with
 * IPv6 networks, and the interval of the IPv4 address it embeds). */
static void
cand_addr(struct rules_cand *c, const struct rules_index *ix,
    const struct axis *ax, const struct sockaddr *sa)
{
	uint32_t v4;

	cand_row(c, ax->free);
	if (sa != NULL && sa->sa_family == AF_INET) {
		v4 = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		cand_row(c, ax->rows + axis_find(ax, v4) * ix->words);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		cand_row(c, ax->v6);
		if (addr_embedded_v4(((const struct sockaddr_in6 *)sa)->
		    sin6_addr.s6_addr, &v4))
			cand_row(c, ax->rows + axis_find(ax, v4) * ix->words);
	}
}

/* The rules whose names match qn (at most 5 rows, else every rule with
 * names): its host, and each of its suffixes as a domain. */
static void
cand_names(struct rules_cand *c, const struct rules_index *ix,
    const struct query_name *qn)
{
	const uint64_t *found[5], *row;
	size_t n = 0;

	if ((row = name_find(&ix->hosts, qn->text, qn->len, qn->hash[0])))
		found[n++] = row;
	for (size_t i = 0; i < qn->nsuffix; i++) {
		row = name_find(&ix->domains, qn->text + qn->off[i],
		    qn->len - qn->off[i], qn->hash[i]);
		if (row == NULL)
			continue;
		if (n == 5) {
			cand_row(c, ix->names);
			return;
		}
		found[n++] = row;
	}
	for (size_t i = 0; i < n; i++)
		cand_row(c, found[i]);
}

void
rules_index_query(const struct rules_index *ix, const struct rules_query *q,
    const struct query_name *qn, enum rules_question which,
    struct rules_cand *c)
{
	c->words = ix->words;
	c->nkeys = 0;
	cand_key(c);
	cand_addr(c, ix, &ix->from, q->client);
	if (which == RQ_CLIENT)
		return;
	/* The destination: see rules_may_pass and rules_match_request. */
	cand_key(c);
	if (which == RQ_REQUEST) {
		cand_addr(c, ix, &ix->to, q->dst);
	} else {
		cand_row(c, ix->to.free);
		cand_row(c, qn->len > 0 ? ix->pass_nets : ix->pass_to);
	}
	if (qn->len > 0)
		cand_names(c, ix, qn);
	cand_key(c);
	cand_row(c, ix->port.free);
	cand_row(c, ix->port.rows + axis_find(&ix->port, q->port) * ix->words);
	if (q->cmd < 4) {
		cand_key(c);
		cand_row(c, ix->cmd[q->cmd]);
	}
	if (q->user == NULL) {
		cand_key(c);
		cand_row(c, ix->no_login);
	}
}

static uint64_t
cand_word(const struct rules_cand *c, size_t w)
{
	uint64_t all = ~(uint64_t)0;

	for (size_t k = 0; k < c->nkeys; k++) {
		uint64_t any = 0;

		for (size_t j = 0; j < c->key[k].n; j++)
			any |= c->key[k].row[j][w];
		all &= any;
	}
	return all;
}

void
rules_iter_index(struct rules_iter *it, const struct ruleset *rs,
    const struct rules_query *q, const struct query_name *qn,
    enum rules_question which)
{
	rules_index_query(rs->index, q, qn, which, &it->cand);
	it->bits = cand_word(&it->cand, 0);
}

bool
rules_iter_index_next(struct rules_iter *it, size_t *i)
{
	while (it->bits == 0) {
		if (++it->w >= it->cand.words)
			return false;
		it->bits = cand_word(&it->cand, it->w);
	}
	*i = it->w * 64 + (size_t)__builtin_ctzll(it->bits);
	it->bits &= it->bits - 1;
	return true;
}
