/* config_rules.c: compiles `clients` and `rules` into rule sets (rules.h). */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"
#include "log.h"
#include "socks5.h"

/* Member key of rule r as a non-empty list (NULL, after an error if it is
 * not a list or is empty: an empty key would match nothing). */
static config_setting_t *
rule_list(struct parse *p, const config_setting_t *r, const char *key)
{
	config_setting_t *s = parse_get_list(p, r, "rule", key);

	if (s != NULL && config_setting_length(s) == 0) {
		perr(p, s, "%s is empty: the rule could never match (leave the key out to match everything)",
		    key);
		return NULL;
	}
	return s;
}

static void *
alloc_elems(const config_setting_t *s, size_t size)
{
	void *v = calloc((size_t)config_setting_length(s) + 1, size);

	if (v == NULL)
		fatal("calloc");
	return v;
}

static char *
xstrdup(const char *v)
{
	char *d = strdup(v);

	if (d == NULL)
		fatal("strdup");
	return d;
}

/* Reads `from` into the rule's client networks. */
static void
parse_cidrs(struct parse *p, const config_setting_t *r, const char *key,
    struct cidr **out, size_t *nout)
{
	config_setting_t *s = rule_list(p, r, key);
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
	config_setting_t *s = rule_list(p, r, "ports");
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
	config_setting_t *s = rule_list(p, r, "commands");

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

/* clients: the methods a client may use; rules: the methods a session
 * must have used (none, username). */
static void
parse_methods(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	config_setting_t *s = parse_get_list(p, r, "rule", "methods");

	if (s == NULL)
		return;
	if (config_setting_length(s) == 0)
		perr(p, s, "methods is empty: no client could log in");
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

/* A rule or listener name: a letter, then letters, digits, '.', '_', '-'
 * (so that rule=NAME is never a number and needs no escape). */
bool
parse_name_valid(const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || len >= RULE_NAME_LEN || !isalpha((unsigned char)v[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '.' &&
		    v[i] != '_' && v[i] != '-')
			return false;
	return true;
}

static void
parse_name(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	const char *v = parse_get_string(p, r, "rule", "name");

	if (v == NULL)
		return;
	if (!parse_name_valid(v))
		perr(p, config_setting_get_member(r, "name"),
		    "rule name \"%s\": 1 to %d letters, digits, '.', '_' or '-', starting with a letter",
		    v, RULE_NAME_LEN - 1);
	else
		rule->name = xstrdup(v);
}

static void
parse_log(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	bool log = !rule->quiet;

	parse_get_bool(p, r, "rule", "log", &log);
	rule->quiet = !log;
}

/* A listener as a rule names it: its name, or its address as
 * "127.0.0.1:1080" or "[::1]:1080". -1 if none is. */
static int
listener_index(const struct config *c, const char *v)
{
	char text[ADDR_STRLEN];

	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct listener_conf *lc = &c->listeners[i];

		if (lc->name != NULL && strcmp(lc->name, v) == 0)
			return (int)i;
		if (lc->addrlen != 0 && strcmp(addr_format(
		    (const struct sockaddr *)&lc->addr, text, sizeof(text)),
		    v) == 0)
			return (int)i;
	}
	return -1;
}

static void
parse_rule_listeners(struct parse *p, const config_setting_t *r,
    struct rule *rule)
{
	config_setting_t *s = rule_list(p, r, "listeners");

	if (s == NULL)
		return;
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);
		int li = v == NULL ? -1 : listener_index(p->conf, v);

		if (li < 0)
			perr(p, e, "listeners: \"%s\" is no listener's name or address:port",
			    v ? v : "(not a string)");
		else
			rule->listeners |= (uint64_t)1 << li;
	}
}

/* users: exact names (RFC 1929 bytes), no wildcard. */
static void
parse_users(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	config_setting_t *s = rule_list(p, r, "users");

	if (s == NULL)
		return;
	rule->users = alloc_elems(s, sizeof(*rule->users));
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);
		bool ok = v != NULL && v[0] != '\0' && strlen(v) <= 255;

		for (const char *c = v; ok && *c; c++)
			if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '*')
				ok = false;
		if (!ok)
			perr(p, e, "users: \"%s\" is not a user name (exact names, no wildcard)",
			    v ? v : "(not a string)");
		else
			rule->users[rule->nusers++] = xstrdup(v);
	}
}

/* groups: names, resolved to gids now (a reload resolves them again). */
static void
parse_groups(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	config_setting_t *s = rule_list(p, r, "groups");

	if (s == NULL)
		return;
	rule->has_groups = true;
	rule->gids = alloc_elems(s, sizeof(*rule->gids));
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);
		struct group *gr;

		if (v == NULL || v[0] == '\0') {
			perr(p, e, "groups: group names must be non-empty strings");
			continue;
		}
		errno = 0;
		if ((gr = getgrnam(v)) == NULL)
			pwarn(p, e, "groups: no group \"%s\" on this system: it matches nothing",
			    v);
		else
			rule->gids[rule->ngids++] = (uint32_t)gr->gr_gid;
	}
}

/* The networks `self` stands for: every address of this host now (a
 * reload looks again), loopback, "this network" 0.0.0.0/8 and ::, and the
 * listeners' own addresses. */
static void
add_self(struct parse *p, const config_setting_t *e, struct rule *rule,
    size_t *cap)
{
	static const char *const fixed[] = { "127.0.0.0/8", "::1", "0.0.0.0/8",
	    "::" };
	const struct config *c = p->conf;
	struct cidr *host;
	size_t nhost, need;

	if (addr_host_cidrs(&host, &nhost) == -1) {
		perr(p, e, "to: self: cannot list this host's addresses: %s",
		    strerror(errno));
		return;
	}
	need = rule->nto + 4 + nhost + c->nlisteners;
	if (need > *cap) {
		struct cidr *to = realloc(rule->to, need * sizeof(*to));

		if (to == NULL)
			fatal("realloc");
		rule->to = to;
		*cap = need;
	}
	for (size_t i = 0; i < 4; i++)
		(void)addr_parse_cidr(fixed[i], &rule->to[rule->nto++]);
	for (size_t i = 0; i < nhost; i++)
		rule->to[rule->nto++] = host[i];
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)
		    &c->listeners[i].addr;
		char ip[ADDR_STRLEN];

		if (c->listeners[i].addrlen != 0 &&
		    addr_parse_cidr(addr_format_ip(sa, ip, sizeof(ip)),
		    &rule->to[rule->nto]) == 0)
			rule->nto++;
	}
	free(host);
}

/* A host name as `to` takes it: letters, digits, '-', '_' and dots
 * between non-empty labels, not all digits (a bad address, then). */
static bool
host_name_valid(const char *v)
{
	size_t len = strlen(v), label = 0;
	bool letter = false;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch == '.') {
			if (label == 0 && !(i == len - 1 && i > 0))
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return false;
		if (!isdigit(ch))
			letter = true;
		if (++label > 63)
			return false;
	}
	return letter;
}

static char *
lower_name(const char *v)
{
	char *d = xstrdup(v);
	size_t len = strlen(d);

	for (size_t i = 0; i < len; i++)
		d[i] = (char)tolower((unsigned char)d[i]);
	if (len > 0 && d[len - 1] == '.')
		d[len - 1] = '\0';
	return d;
}

/* to: networks, host names, ".domain" suffixes and `self`. */
static void
parse_to(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	config_setting_t *s = rule_list(p, r, "to");
	size_t cap;

	if (s == NULL)
		return;
	cap = (size_t)config_setting_length(s) + 1;
	rule->to = alloc_elems(s, sizeof(*rule->to));
	rule->hosts = alloc_elems(s, sizeof(*rule->hosts));
	rule->domains = alloc_elems(s, sizeof(*rule->domains));
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v == NULL)
			perr(p, e, "to: entries must be strings");
		else if (strcmp(v, "self") == 0)
			add_self(p, e, rule, &cap);
		else if (addr_parse_cidr(v, &rule->to[rule->nto]) == 0)
			rule->nto++;
		else if (v[0] == '.' && host_name_valid(v + 1))
			rule->domains[rule->ndomains++] = lower_name(v + 1);
		else if (v[0] != '.' && host_name_valid(v))
			rule->hosts[rule->nhosts++] = lower_name(v);
		else
			perr(p, e, "to: \"%s\" is not an address, address/prefix, host name, .domain or self",
			    v);
	}
}

static void
parse_action(struct parse *p, const config_setting_t *r, const char *list,
    struct rule *rule)
{
	const char *action = parse_get_string(p, r, list, "action");

	if (action == NULL && config_setting_get_member(r, "action") == NULL)
		perr(p, r, "%s entry has no action (\"pass\" or \"block\")", list);
	else if (action != NULL && strcmp(action, "pass") == 0)
		rule->action = RULE_PASS;
	else if (action != NULL && strcmp(action, "block") != 0)
		perr(p, config_setting_get_member(r, "action"),
		    "unknown action \"%s\" (pass, block)", action);
}

/* One entry: one function per key. */
static void
parse_rule(struct parse *p, const config_setting_t *r, const char *list,
    struct rule *rule)
{
	static const char *const client_keys[] = { "action", "name", "log",
	    "from", "listeners", "methods", NULL };
	static const char *const rule_keys[] = { "action", "name", "log",
	    "from", "listeners", "methods", "users", "groups", "commands",
	    "to", "ports", CONFIG_LIMIT_KEYS, NULL };
	bool is_clients = strcmp(list, "clients") == 0;

	rule->line = (int)config_setting_source_line(r);
	rule->action = RULE_BLOCK;
	if (config_setting_type(r) != CONFIG_TYPE_GROUP) {
		perr(p, r, "each entry of %s must be a group: { action = ...; }", list);
		return;
	}
	parse_check_keys(p, r, is_clients ? "client" : "rule",
	    is_clients ? client_keys : rule_keys);
	parse_action(p, r, list, rule);
	parse_name(p, r, rule);
	parse_log(p, r, rule);
	parse_cidrs(p, r, "from", &rule->from, &rule->nfrom);
	parse_rule_listeners(p, r, rule);
	parse_methods(p, r, rule);
	if (is_clients)
		return;
	parse_users(p, r, rule);
	parse_groups(p, r, rule);
	parse_commands(p, r, rule);
	parse_to(p, r, rule);
	parse_ports(p, r, rule);
	parse_rule_limits(p, r, rule);
}

static bool
rule_has_keys(const struct rule *r, bool is_clients)
{
	bool client_keys = r->nfrom > 0 || r->listeners != 0;

	if (is_clients)
		return client_keys;
	return client_keys || r->methods != 0 || r->nusers > 0 ||
	    r->has_groups || r->commands != 0 || r->nto > 0 ||
	    r->nhosts > 0 || r->ndomains > 0 || r->nports > 0;
}

/* Warns about entries that can never decide anything, and refuses a name
 * given twice in one list. */
static void
check_rules(struct parse *p, const config_setting_t *s, const char *name,
    const struct ruleset *rs)
{
	bool is_clients = strcmp(name, "clients") == 0;

	for (size_t i = 0; i < rs->n; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
		    (unsigned)i);
		const struct rule *r = &rs->list[i], *by;
		const char *why;
		long j;

		for (size_t k = 0; r->name != NULL && k < i; k++)
			if (rs->list[k].name != NULL &&
			    strcmp(rs->list[k].name, r->name) == 0)
				perr(p, e, "%s entry %zu: name \"%s\" is taken by entry %zu (line %d)",
				    name, i + 1, r->name, k + 1, rs->list[k].line);
		if (rules_never_matches(r, is_clients, &why)) {
			pwarn(p, e, "%s entry %zu never matches: %s", name,
			    i + 1, why);
			continue;
		}
		if ((j = rules_shadowed_by(rs, i, is_clients)) < 0)
			continue;
		by = &rs->list[j];
		if (!rule_has_keys(by, is_clients))
			pwarn(p, e, "%s entry %zu never matches: entry %ld (line %d) before it matches everything",
			    name, i + 1, j + 1, by->line);
		else
			pwarn(p, e, "%s entry %zu never matches: entry %ld (line %d) before it matches all it does",
			    name, i + 1, j + 1, by->line);
	}
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
	rules_compile(rs);
	check_rules(p, s, name, rs);
}
