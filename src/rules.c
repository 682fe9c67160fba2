/* rules.c: client and request rules: first match wins, no match refuses. */
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

static struct verdict
first_match(const struct rule *rules, size_t n, const struct sockaddr *client,
    uint8_t cmd, const struct sockaddr *dst)
{
	struct verdict v = { false, 0 };

	for (size_t i = 0; i < n; i++) {
		const struct rule *r = &rules[i];

		if (!any_cidr(r->from, r->nfrom, client))
			continue;
		if (dst != NULL) {
			if (r->commands != 0 && !(r->commands & (1u << cmd)))
				continue;
			if (!any_cidr(r->to, r->nto, dst) ||
			    !any_port(r->ports, r->nports, addr_port(dst)))
				continue;
		}
		v.pass = r->action == RULE_PASS;
		v.rule = (int)i + 1;
		return v;
	}
	return v;
}

struct verdict
rules_may_pass(const struct config *conf, const struct sockaddr *client,
    uint8_t cmd, uint16_t port)
{
	struct verdict v = { false, 0 };

	for (size_t i = 0; i < conf->nrules; i++) {
		const struct rule *r = &conf->rules[i];

		if (!any_cidr(r->from, r->nfrom, client) ||
		    (r->commands != 0 && !(r->commands & (1u << cmd))) ||
		    !any_port(r->ports, r->nports, port))
			continue;
		/* A rule for every destination decides; one for some
		 * destinations decides only if it lets them pass. */
		if (r->nto == 0 || r->action == RULE_PASS) {
			v.pass = r->action == RULE_PASS;
			v.rule = (int)i + 1;
			return v;
		}
	}
	return v;
}

struct verdict
rules_match_client(const struct config *conf, const struct sockaddr *client)
{
	return first_match(conf->clients, conf->nclients, client, 0, NULL);
}

struct verdict
rules_match_request(const struct config *conf, const struct sockaddr *client,
    uint8_t cmd, const struct sockaddr *dst)
{
	return first_match(conf->rules, conf->nrules, client, cmd, dst);
}
