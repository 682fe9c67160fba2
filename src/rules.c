/* rules.c: client and request rules: first match wins, no match refuses. */
#include <stdlib.h>

#include "rules.h"

static bool
any_cidr(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (addr_in_cidr(sa, &list[i]))
			return true;
	return false;
}

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
has_command(const struct rule *r, uint8_t cmd)
{
	return r->commands == 0 || (cmd < 32 && (r->commands & (1u << cmd)));
}

static struct verdict
verdict_of(const struct rule *r, size_t i)
{
	struct verdict v = { r->action == RULE_PASS, (int)i + 1, r->methods };

	return v;
}

struct verdict
rules_match_client(const struct ruleset *rs, const struct rules_query *q)
{
	struct verdict none = { false, 0, 0 };

	for (size_t i = 0; i < rs->n; i++)
		if (any_cidr(rs->list[i].from, rs->list[i].nfrom, q->client))
			return verdict_of(&rs->list[i], i);
	return none;
}

struct verdict
rules_may_pass(const struct ruleset *rs, const struct rules_query *q)
{
	struct verdict none = { false, 0, 0 };

	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->list[i];

		if (!any_cidr(r->from, r->nfrom, q->client) ||
		    !has_command(r, q->cmd) ||
		    !any_port(r->ports, r->nports, q->port))
			continue;
		/* A rule for every destination decides; one for some
		 * destinations decides only if it lets them pass. */
		if (r->nto == 0 || r->action == RULE_PASS)
			return verdict_of(r, i);
	}
	return none;
}

struct verdict
rules_match_request(const struct ruleset *rs, const struct rules_query *q)
{
	struct verdict none = { false, 0, 0 };

	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->list[i];

		if (any_cidr(r->from, r->nfrom, q->client) &&
		    has_command(r, q->cmd) &&
		    any_cidr(r->to, r->nto, q->dst) &&
		    any_port(r->ports, r->nports, q->port))
			return verdict_of(r, i);
	}
	return none;
}

void
rules_free(struct ruleset *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->list[i].name);
		free(rs->list[i].from);
		free(rs->list[i].to);
		free(rs->list[i].ports);
	}
	free(rs->list);
	rs->list = NULL;
	rs->n = 0;
	rs->present = false;
}
