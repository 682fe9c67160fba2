/* config_rules.c: compiles `clients` and `rules` into rule sets (rules.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"
#include "log.h"
#include "socks5.h"

/* Reads a list of CIDR strings into *out. */
static void
parse_cidrs(struct parse *p, const config_setting_t *r, const char *key,
    struct cidr **out, size_t *nout)
{
	config_setting_t *s = parse_get_list(p, r, "rule", key);
	int n;

	if (s == NULL)
		return;
	n = config_setting_length(s);
	*out = calloc((size_t)n + 1, sizeof(**out));
	if (*out == NULL)
		fatal("calloc");
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v == NULL || addr_parse_cidr(v, &(*out)[*nout]) == -1)
			perr(p, e, "%s: \"%s\" is not an address or address/prefix",
			    key, v ? v : "(not a string)");
		else
			(*nout)++;
	}
}

/* A "lo" or "lo-hi" string; false if it is neither (lo, hi unchecked). */
static bool
port_text(const char *v, long *lo, long *hi)
{
	char *end;

	errno = 0;
	*lo = *hi = strtol(v, &end, 10);
	if (end == v || (*end != '\0' && *end != '-'))
		return false;
	if (*end == '-' && (*hi = strtol(end + 1, &end, 10), *end != '\0'))
		return false;
	return errno == 0;
}

bool
parse_port(struct parse *p, const config_setting_t *e, struct port_range *out)
{
	const char *v = config_setting_get_string(e);
	char shown[64];
	long long n;
	long lo = -1, hi = -1;

	if (config_setting_type(e) == CONFIG_TYPE_INT ||
	    config_setting_type(e) == CONFIG_TYPE_INT64) {
		if (!config_number_get(p->nums, e, &n, shown, sizeof(shown)) ||
		    n < 1 || n > 65535) {
			perr(p, e, "ports: %s is out of range (1..65535)", shown);
			return false;
		}
		lo = hi = (long)n;
	} else if (v != NULL && !port_text(v, &lo, &hi)) {
		lo = -1;
	}
	if (lo < 1 || hi > 65535 || lo > hi) {
		perr(p, e, "ports: bad port or range (1..65535, or \"lo-hi\" with lo <= hi)");
		return false;
	}
	out->lo = (uint16_t)lo;
	out->hi = (uint16_t)hi;
	return true;
}

/* Ports are numbers or "lo-hi" strings. */
static void
parse_ports(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	config_setting_t *s = parse_get_list(p, r, "rule", "ports");
	int n;

	if (s == NULL)
		return;
	n = config_setting_length(s);
	rule->ports = calloc((size_t)n + 1, sizeof(*rule->ports));
	if (rule->ports == NULL)
		fatal("calloc");
	for (int i = 0; i < n; i++)
		if (parse_port(p, config_setting_get_elem(s, (unsigned)i),
		    &rule->ports[rule->nports]))
			rule->nports++;
}

static void
parse_commands(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	config_setting_t *s = parse_get_list(p, r, "rule", "commands");

	if (s == NULL)
		return;
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v != NULL && strcmp(v, "connect") == 0)
			rule->commands |= 1u << SOCKS5_CMD_CONNECT;
		else if (v != NULL && strcmp(v, "bind") == 0)
			rule->commands |= 1u << SOCKS5_CMD_BIND;
		else if (v != NULL && strcmp(v, "udp") == 0)
			rule->commands |= 1u << SOCKS5_CMD_UDP_ASSOCIATE;
		else
			perr(p, e, "unknown command \"%s\" (connect, bind, udp)",
			    v ? v : "(not a string)");
	}
}

/* clients: the methods a client may use (none, username). */
static void
parse_client_methods(struct parse *p, const config_setting_t *r,
    struct rule *rule)
{
	config_setting_t *s = parse_get_list(p, r, "client", "methods");

	if (s == NULL)
		return;
	if (config_setting_length(s) == 0)
		perr(p, s, "client methods is empty: no client could log in");
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v != NULL && strcmp(v, "none") == 0)
			rule->methods |= 1u << SOCKS5_METHOD_NONE;
		else if (v != NULL && strcmp(v, "username") == 0)
			rule->methods |= 1u << SOCKS5_METHOD_USERPASS;
		else
			perr(p, e, "unknown method \"%s\" (none, username)",
			    v ? v : "(not a string)");
	}
}

static void
parse_rule(struct parse *p, const config_setting_t *r, const char *list,
    struct rule *rule)
{
	static const char *const client_keys[] = { "action", "from", "methods",
	    NULL };
	static const char *const rule_keys[] = { "action", "from", "to",
	    "ports", "commands", CONFIG_LIMIT_KEYS, NULL };
	bool is_clients = strcmp(list, "clients") == 0;
	const char *action;

	rule->line = (int)config_setting_source_line(r);
	rule->action = RULE_BLOCK;
	if (config_setting_type(r) != CONFIG_TYPE_GROUP) {
		perr(p, r, "each entry of %s must be a group: { action = ...; }", list);
		return;
	}
	parse_check_keys(p, r, is_clients ? "client" : "rule",
	    is_clients ? client_keys : rule_keys);
	action = parse_get_string(p, r, list, "action");
	if (action == NULL && config_setting_get_member(r, "action") == NULL)
		perr(p, r, "%s entry has no action (\"pass\" or \"block\")", list);
	else if (action != NULL && strcmp(action, "pass") == 0)
		rule->action = RULE_PASS;
	else if (action != NULL && strcmp(action, "block") != 0)
		perr(p, config_setting_get_member(r, "action"),
		    "unknown action \"%s\" (pass, block)", action);
	parse_cidrs(p, r, "from", &rule->from, &rule->nfrom);
	if (is_clients) {
		parse_client_methods(p, r, rule);
		return;
	}
	parse_cidrs(p, r, "to", &rule->to, &rule->nto);
	parse_ports(p, r, rule);
	parse_commands(p, r, rule);
	parse_rule_limits(p, r, rule);
}

/* Compiles the list name into rs (present if the list is written). */
void
parse_rules(struct parse *p, const config_setting_t *root, const char *name,
    struct ruleset *rs)
{
	config_setting_t *s = parse_get_list(p, root, "", name);
	int n;

	rs->present = config_setting_get_member(root, name) != NULL;
	if (s == NULL)
		return;
	n = config_setting_length(s);
	rs->list = calloc((size_t)n + 1, sizeof(*rs->list));
	if (rs->list == NULL)
		fatal("calloc");
	rs->n = (size_t)n;
	for (int i = 0; i < n; i++)
		parse_rule(p, config_setting_get_elem(s, (unsigned)i), name,
		    &rs->list[i]);
}
