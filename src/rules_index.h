/* rules_index.h: the candidate rules of a query, from bitsets compiled
 * once per load (rules.c's helper; nothing else uses it). */
#ifndef SOCKS5D_RULES_INDEX_H
#define SOCKS5D_RULES_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

/* A destination name as the rules see it: lowercase, without a final dot,
 * with the hash of every suffix that starts a label ("a.b.c", "b.c",
 * "c"), computed once per query whatever the number of rules. */
#define NAME_MAX_LABELS 128

struct query_name {
	char text[256];
	size_t len;
	size_t nsuffix;
	uint8_t off[NAME_MAX_LABELS];
	uint32_t hash[NAME_MAX_LABELS];
};

/* The question being asked (rules.h): rules_match_client,
 * rules_may_pass or rules_match_request. */
enum rules_question { RQ_CLIENT, RQ_MAY_PASS, RQ_REQUEST };

/* Up to this many bitset rows are ORed per key of a query. */
#define CAND_ROWS 8
#define CAND_KEYS 5

/*
 * The candidates of one query, as rows of bits (bit i: rule i may match):
 * for each key, the OR of its rows; across keys, the AND. Built on the
 * stack by rules_index_query; read word by word with rules_cand_word.
 */
struct rules_cand {
	size_t words;			/* 64-bit words per row */
	size_t nkeys;
	struct {
		const uint64_t *row[CAND_ROWS];
		size_t n;
	} key[CAND_KEYS];
};

/* FNV-1a of name[0..len), as the name sets and rule heads hash it. */
uint32_t rules_name_hash(const char *name, size_t len);

/* The index of rs (compiled: every rule's sets built), or NULL when rs
 * is short (under 8 rules) or the index would be larger than its cap
 * (32 MB): then the rules are tried in order. */
struct rules_index *rules_index_build(const struct ruleset *rs);
void rules_index_free(struct rules_index *ix);

/* The candidate rules of q for question which; qn is q->dst_name as the
 * rules see it (len 0: none). Every rule that can match is a candidate;
 * a candidate still has to be checked. */
void rules_index_query(const struct rules_index *ix,
    const struct rules_query *q, const struct query_name *qn,
    enum rules_question which, struct rules_cand *c);

/* Walks the candidates of q in order: rules_iter_next gives each one's
 * position in rs->list until it returns false. Without an index every
 * rule is a candidate. */
struct rules_iter {
	struct rules_cand cand;
	bool indexed;
	size_t n;			/* rules in the set */
	size_t w;			/* the word of bits, or the next rule */
	uint64_t bits;			/* candidates of word w not yet given */
};

/* The indexed part of rules_iter_begin and rules_iter_next. */
void rules_iter_index(struct rules_iter *it, const struct ruleset *rs,
    const struct rules_query *q, const struct query_name *qn,
    enum rules_question which);
bool rules_iter_index_next(struct rules_iter *it, size_t *i);

static inline void
rules_iter_begin(struct rules_iter *it, const struct ruleset *rs,
    const struct rules_query *q, const struct query_name *qn,
    enum rules_question which)
{
	it->indexed = rs->index != NULL;
	it->n = rs->n;
	it->w = 0;
	it->bits = 0;
	if (it->indexed)
		rules_iter_index(it, rs, q, qn, which);
}

static inline bool
rules_iter_next(struct rules_iter *it, size_t *i)
{
	if (it->indexed)
		return rules_iter_index_next(it, i);
	if (it->w >= it->n)
		return false;
	*i = it->w++;
	return true;
}

#endif
