/* config.c: reads and validates the libconfig file into a struct config. */
#include <errno.h>
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "socks5.h"

/* The parse of one file: where errors go and how many there were. */
struct parse {
	const char *path;
	FILE *errs;
	int nerrors;
	struct config *conf;
};

static void __attribute__((format(printf, 3, 4)))
perr(struct parse *p, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;
	const char *file = NULL;
	int line = 0;

	if (s != NULL) {
		file = config_setting_source_file(s);
		line = (int)config_setting_source_line(s);
	}
	if (line > 0)
		fprintf(p->errs, "%s:%d: ", file ? file : p->path, line);
	else
		fprintf(p->errs, "%s: ", p->path);
	va_start(ap, fmt);
	vfprintf(p->errs, fmt, ap);
	va_end(ap);
	fputc('\n', p->errs);
	p->nerrors++;
}

static void __attribute__((format(printf, 3, 4)))
pwarn(struct parse *p, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	if (s != NULL)
		fprintf(p->errs, "%s:%d: warning: ", p->path,
		    (int)config_setting_source_line(s));
	else
		fprintf(p->errs, "%s: warning: ", p->path);
	va_start(ap, fmt);
	vfprintf(p->errs, fmt, ap);
	va_end(ap);
	fputc('\n', p->errs);
}

/* Reports every member of group g whose name is not in known (NULL-ended). */
static void
check_keys(struct parse *p, const config_setting_t *g, const char *where,
    const char *const *known)
{
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		const char *const *k;

		for (k = known; *k != NULL; k++)
			if (strcmp(*k, name) == 0)
				break;
		if (*k == NULL)
			perr(p, m, "unknown setting \"%s%s%s\"", where,
			    *where ? "." : "", name);
	}
}

/* Looks up a member expected to be a group; NULL if absent or wrong. */
static config_setting_t *
get_group(struct parse *p, const config_setting_t *parent, const char *name)
{
	config_setting_t *s = config_setting_get_member(parent, name);

	if (s == NULL)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		perr(p, s, "\"%s\" must be a group: %s = { ... };", name, name);
		return NULL;
	}
	return s;
}

static void
get_int(struct parse *p, const config_setting_t *g, const char *where,
    const char *name, long min, long max, int *out)
{
	config_setting_t *s;
	long long v;

	if (g == NULL || (s = config_setting_get_member(g, name)) == NULL)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		perr(p, s, "%s.%s must be an integer", where, name);
		return;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		perr(p, s, "%s.%s = %lld is out of range (%ld..%ld)", where,
		    name, v, min, max);
		return;
	}
	*out = (int)v;
}

/* Returns the string value of member name, NULL if absent or not a string. */
static const char *
get_string(struct parse *p, const config_setting_t *g, const char *where,
    const char *name)
{
	config_setting_t *s;

	if (g == NULL || (s = config_setting_get_member(g, name)) == NULL)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		perr(p, s, "%s%s%s must be a string", where, *where ? "." : "",
		    name);
		return NULL;
	}
	return config_setting_get_string(s);
}

/* A member that must be a list or array: [ ... ] or ( ... ). */
static config_setting_t *
get_list(struct parse *p, const config_setting_t *g, const char *where,
    const char *name)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return NULL;
	if (!config_setting_is_aggregate(s) ||
	    config_setting_type(s) == CONFIG_TYPE_GROUP) {
		perr(p, s, "%s%s%s must be a list: [ ... ]", where,
		    *where ? "." : "", name);
		return NULL;
	}
	return s;
}

static void
parse_user(struct parse *p, const config_setting_t *root)
{
	const char *name = get_string(p, root, "", "user");
	config_setting_t *s = config_setting_get_member(root, "user");
	struct passwd *pw;

	if (s != NULL && name == NULL)
		return;
	if (name == NULL)
		name = "socks5d";
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		perr(p, s, "user \"%s\" does not exist%s", name,
		    s ? "" : " (the default; set user = \"...\";)");
		return;
	}
	p->conf->user = strdup(name);
	p->conf->uid = pw->pw_uid;
	p->conf->gid = pw->pw_gid;
	if (geteuid() == 0 && (pw->pw_uid == 0 || pw->pw_gid == 0))
		perr(p, s, "user \"%s\" is root or in group root: workers must run unprivileged",
		    name);
}

static void
parse_workers(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "min_spare", "max_spare", "max",
	    "max_sessions", NULL };
	config_setting_t *g = get_group(p, root, "workers");
	struct config *c = p->conf;
	int before;

	if (g == NULL)
		return;
	check_keys(p, g, "workers", known);
	before = p->nerrors;
	get_int(p, g, "workers", "min_spare", 1, 100000, &c->workers.min_spare);
	get_int(p, g, "workers", "max_spare", 1, 100000, &c->workers.max_spare);
	get_int(p, g, "workers", "max", 1, 100000, &c->workers.max);
	get_int(p, g, "workers", "max_sessions", 0, 2000000000,
	    &c->workers.max_sessions);
	if (p->nerrors != before)
		return;
	if (c->workers.min_spare > c->workers.max_spare)
		perr(p, g, "workers.min_spare (%d) is above workers.max_spare (%d)",
		    c->workers.min_spare, c->workers.max_spare);
	if (c->workers.min_spare > c->workers.max)
		perr(p, g, "workers.min_spare (%d) is above workers.max (%d)",
		    c->workers.min_spare, c->workers.max);
}

static void
parse_timeouts(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "negotiate", "connect", "idle",
	    "shutdown", NULL };
	config_setting_t *g = get_group(p, root, "timeouts");
	struct config *c = p->conf;

	if (g == NULL)
		return;
	check_keys(p, g, "timeouts", known);
	get_int(p, g, "timeouts", "negotiate", 1, 3600, &c->timeouts.negotiate);
	get_int(p, g, "timeouts", "connect", 1, 3600, &c->timeouts.connect);
	get_int(p, g, "timeouts", "idle", 1, 7 * 86400, &c->timeouts.idle);
	get_int(p, g, "timeouts", "shutdown", 0, 86400, &c->timeouts.shutdown);
}

static void
parse_log(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "facility", "level", NULL };
	config_setting_t *g = get_group(p, root, "log");
	const char *v;

	if (g == NULL)
		return;
	check_keys(p, g, "log", known);
	if ((v = get_string(p, g, "log", "facility")) != NULL &&
	    (p->conf->log.facility = log_facility_from_name(v)) == -1)
		perr(p, config_setting_get_member(g, "facility"),
		    "unknown log.facility \"%s\" (daemon, user, auth, authpriv, local0..local7)",
		    v);
	if ((v = get_string(p, g, "log", "level")) != NULL &&
	    (p->conf->log.level = log_level_from_name(v)) == -1)
		perr(p, config_setting_get_member(g, "level"),
		    "unknown log.level \"%s\" (debug, info, notice, warning, err)",
		    v);
}

static void
parse_relay(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "mode", "pipe_size",
	    "buffer_size", "park_after", "hubs", NULL };
	config_setting_t *g = get_group(p, root, "relay");
	const char *v;

	if (g == NULL)
		return;
	check_keys(p, g, "relay", known);
	if ((v = get_string(p, g, "relay", "mode")) != NULL) {
		if (strcmp(v, "splice") == 0)
			p->conf->relay.mode = RELAY_SPLICE;
		else if (strcmp(v, "copy") == 0)
			p->conf->relay.mode = RELAY_COPY;
		else
			perr(p, config_setting_get_member(g, "mode"),
			    "unknown relay.mode \"%s\" (splice, copy)", v);
	}
	get_int(p, g, "relay", "pipe_size", 4096, 1 << 20,
	    &p->conf->relay.pipe_size);
	get_int(p, g, "relay", "buffer_size", 1024, 1 << 20,
	    &p->conf->relay.buffer_size);
	get_int(p, g, "relay", "park_after", 0, 86400,
	    &p->conf->relay.park_after);
	get_int(p, g, "relay", "hubs", 1, 64, &p->conf->relay.hubs);
}

static void
parse_methods(struct parse *p, const config_setting_t *l,
    struct listener_conf *lc)
{
	config_setting_t *s = get_list(p, l, "listener", "methods");
	int n;

	if (s == NULL)
		return;
	n = config_setting_length(s);
	if (n == 0) {
		perr(p, s, "listener methods is empty");
		return;
	}
	lc->nmethods = 0;
	for (int i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(m);

		if (v == NULL)
			perr(p, m, "listener methods must be strings");
		else if (strcmp(v, "username") == 0)
			perr(p, m, "method \"username\" is not supported yet by this version");
		else if (strcmp(v, "none") != 0)
			perr(p, m, "unknown method \"%s\" (none)", v);
		else if (lc->nmethods < CONFIG_MAX_METHODS)
			lc->methods[lc->nmethods++] = SOCKS5_METHOD_NONE;
	}
}

static void
parse_listener(struct parse *p, const config_setting_t *l,
    struct listener_conf *lc)
{
	static const char *const known[] = { "address", "port", "methods",
	    "v6only", "backlog", NULL };
	const char *address;
	int port = -1, v6only;
	config_setting_t *s;

	lc->line = (int)config_setting_source_line(l);
	lc->backlog = 4096;	/* a burst waits here while the pool grows */
	lc->methods[0] = SOCKS5_METHOD_NONE;
	lc->nmethods = 1;
	if (config_setting_type(l) != CONFIG_TYPE_GROUP) {
		perr(p, l, "each listener must be a group: { address = ...; port = ...; }");
		return;
	}
	check_keys(p, l, "listener", known);
	address = get_string(p, l, "listener", "address");
	if (address == NULL && config_setting_get_member(l, "address") == NULL)
		perr(p, l, "listener has no address");
	get_int(p, l, "listener", "port", 1, 65535, &port);
	if (port == -1 && config_setting_get_member(l, "port") == NULL)
		perr(p, l, "listener has no port");
	get_int(p, l, "listener", "backlog", 1, 65535, &lc->backlog);
	parse_methods(p, l, lc);
	if (address == NULL)
		return;
	if (addr_parse_ip(address, port == -1 ? 0 : (uint16_t)port, &lc->addr,
	    &lc->addrlen) == -1) {
		perr(p, config_setting_get_member(l, "address"),
		    "listener address \"%s\" is not a numeric IPv4 or IPv6 address",
		    address);
		return;
	}
	lc->v6only = lc->addr.ss_family == AF_INET6;
	if ((s = config_setting_get_member(l, "v6only")) != NULL) {
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			perr(p, s, "listener.v6only must be true or false");
		else if (lc->addr.ss_family != AF_INET6)
			perr(p, s, "listener.v6only applies to IPv6 addresses only");
		v6only = config_setting_get_bool(s);
		lc->v6only = v6only != 0;
	}
	if (port == -1)
		lc->addrlen = 0;	/* not a usable address: skip duplicate checks */
}

/* A v6only = false listener on [::] also binds the IPv4 port, so an IPv4
 * listener on the same port cannot bind: say so before start does. */
static bool
dual_stack_overlap(const struct listener_conf *v6, const struct listener_conf *v4)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&v6->addr;

	return v6->addrlen != 0 && v4->addrlen != 0 &&
	    v6->addr.ss_family == AF_INET6 && v4->addr.ss_family == AF_INET &&
	    !v6->v6only && IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr) &&
	    addr_port((const struct sockaddr *)&v6->addr) ==
	    addr_port((const struct sockaddr *)&v4->addr);
}

static void
parse_listeners(struct parse *p, const config_setting_t *root)
{
	config_setting_t *s = get_list(p, root, "", "listeners");
	struct config *c = p->conf;
	int n;

	if (s == NULL) {
		if (config_setting_get_member(root, "listeners") == NULL)
			perr(p, NULL, "no listeners: add listeners = ( { address = \"127.0.0.1\"; port = 1080; } );");
		return;
	}
	n = config_setting_length(s);
	if (n == 0 || n > CONFIG_MAX_LISTENERS) {
		perr(p, s, "listeners must hold 1 to %d entries", CONFIG_MAX_LISTENERS);
		return;
	}
	c->listeners = calloc((size_t)n, sizeof(*c->listeners));
	if (c->listeners == NULL)
		fatal("calloc");
	c->nlisteners = (size_t)n;
	for (int i = 0; i < n; i++)
		parse_listener(p, config_setting_get_elem(s, (unsigned)i),
		    &c->listeners[i]);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++)
			if (c->listeners[i].addrlen != 0 &&
			    c->listeners[i].addrlen == c->listeners[j].addrlen &&
			    memcmp(&c->listeners[i].addr, &c->listeners[j].addr,
			    c->listeners[i].addrlen) == 0)
				perr(p, config_setting_get_elem(s, (unsigned)i),
				    "listener repeats the address and port of line %d",
				    c->listeners[j].line);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (i != j && dual_stack_overlap(&c->listeners[i],
			    &c->listeners[j]))
				perr(p, config_setting_get_elem(s, (unsigned)i),
				    "listener [::] with v6only = false takes IPv4 port %u too, which line %d binds",
				    addr_port((struct sockaddr *)&c->listeners[i].addr),
				    c->listeners[j].line);
}

static void
parse_external(struct parse *p, const config_setting_t *root)
{
	config_setting_t *s = get_list(p, root, "", "external");
	struct config *c = p->conf;
	struct sockaddr_storage ss;
	socklen_t len;

	if (s == NULL)
		return;
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v == NULL || addr_parse_ip(v, 0, &ss, &len) == -1) {
			perr(p, e, "external address \"%s\" is not a numeric IPv4 or IPv6 address",
			    v ? v : "(not a string)");
		} else if (ss.ss_family == AF_INET) {
			if (c->has_external4)
				perr(p, e, "external holds more than one IPv4 address");
			c->external4 = ss;
			c->has_external4 = true;
		} else if (IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr)) {
			perr(p, e, "external address \"%s\" is IPv4-mapped: write the IPv4 address",
			    v);
		} else {
			if (c->has_external6)
				perr(p, e, "external holds more than one IPv6 address");
			c->external6 = ss;
			c->has_external6 = true;
		}
	}
}

/* Reads a list of CIDR strings into *out. */
static void
parse_cidrs(struct parse *p, const config_setting_t *r, const char *key,
    struct cidr **out, size_t *nout)
{
	config_setting_t *s = get_list(p, r, "rule", key);
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

/* Ports are numbers or "lo-hi" strings. */
static void
parse_ports(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	config_setting_t *s = get_list(p, r, "rule", "ports");
	int n;

	if (s == NULL)
		return;
	n = config_setting_length(s);
	rule->ports = calloc((size_t)n + 1, sizeof(*rule->ports));
	if (rule->ports == NULL)
		fatal("calloc");
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);
		long lo, hi;
		char *end;

		if (config_setting_type(e) == CONFIG_TYPE_INT ||
		    config_setting_type(e) == CONFIG_TYPE_INT64) {
			long long v = config_setting_get_int64(e);
			lo = hi = v < 0 || v > 65535 ? -1 : (long)v;
		} else if (v != NULL) {
			lo = strtol(v, &end, 10);
			hi = lo;
			if (end == v || (*end != '\0' && *end != '-'))
				lo = -1;
			else if (*end == '-' &&
			    (hi = strtol(end + 1, &end, 10), *end != '\0'))
				lo = -1;
		} else {
			lo = hi = -1;
		}
		if (lo < 1 || hi > 65535 || lo > hi) {
			perr(p, e, "ports: bad port or range (1..65535, or \"lo-hi\" with lo <= hi)");
			continue;
		}
		rule->ports[rule->nports].lo = (uint16_t)lo;
		rule->ports[rule->nports].hi = (uint16_t)hi;
		rule->nports++;
	}
}

static void
parse_commands(struct parse *p, const config_setting_t *r, struct rule *rule)
{
	config_setting_t *s = get_list(p, r, "rule", "commands");

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

static void
parse_rule(struct parse *p, const config_setting_t *r, const char *list,
    struct rule *rule)
{
	static const char *const client_keys[] = { "action", "from", NULL };
	static const char *const rule_keys[] = { "action", "from", "to",
	    "ports", "commands", NULL };
	bool is_clients = strcmp(list, "clients") == 0;
	const char *action;

	rule->line = (int)config_setting_source_line(r);
	rule->action = RULE_BLOCK;
	if (config_setting_type(r) != CONFIG_TYPE_GROUP) {
		perr(p, r, "each entry of %s must be a group: { action = ...; }", list);
		return;
	}
	check_keys(p, r, is_clients ? "client" : "rule",
	    is_clients ? client_keys : rule_keys);
	action = get_string(p, r, list, "action");
	if (action == NULL && config_setting_get_member(r, "action") == NULL)
		perr(p, r, "%s entry has no action (\"pass\" or \"block\")", list);
	else if (action != NULL && strcmp(action, "pass") == 0)
		rule->action = RULE_PASS;
	else if (action != NULL && strcmp(action, "block") != 0)
		perr(p, config_setting_get_member(r, "action"),
		    "unknown action \"%s\" (pass, block)", action);
	parse_cidrs(p, r, "from", &rule->from, &rule->nfrom);
	if (is_clients)
		return;
	parse_cidrs(p, r, "to", &rule->to, &rule->nto);
	parse_ports(p, r, rule);
	parse_commands(p, r, rule);
}

/* Compiles the list name into rs (present if the list is written). */
static void
parse_rules(struct parse *p, const config_setting_t *root, const char *name,
    struct ruleset *rs)
{
	config_setting_t *s = get_list(p, root, "", name);
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

static void
set_defaults(struct config *c)
{
	c->workers.min_spare = 4;
	c->workers.max_spare = 32;
	c->workers.max = 1024;
	c->workers.max_sessions = 10000;
	c->timeouts.negotiate = 10;
	c->timeouts.connect = 10;
	c->timeouts.idle = 3600;
	c->timeouts.shutdown = 10;
	c->log.facility = LOG_DAEMON;
	c->log.level = LOG_INFO;
	c->relay.mode = RELAY_SPLICE;
	c->relay.pipe_size = 65536;
	c->relay.buffer_size = 65536;
	c->relay.park_after = 30;
	c->relay.hubs = 1;
}

static void
parse_root(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "user", "workers", "timeouts",
	    "log", "relay", "listeners", "external", "clients", "rules", NULL };
	struct config *c = p->conf;

	check_keys(p, root, "", known);
	parse_user(p, root);
	parse_workers(p, root);
	parse_timeouts(p, root);
	parse_log(p, root);
	parse_relay(p, root);
	parse_listeners(p, root);
	parse_external(p, root);
	parse_rules(p, root, "clients", &c->clients);
	parse_rules(p, root, "rules", &c->rules);
	if (!c->clients.present)
		pwarn(p, NULL, "no clients list: every client is refused");
	else if (c->clients.n == 0)
		pwarn(p, config_setting_get_member(root, "clients"),
		    "empty clients list: every client is refused");
	if (!c->rules.present)
		pwarn(p, NULL, "no rules list: every request is refused");
	else if (c->rules.n == 0)
		pwarn(p, config_setting_get_member(root, "rules"),
		    "empty rules list: every request is refused");
}

#define MAX_INCLUDE_DEPTH 10

/* The path an @include names: relative ones are taken from dir. */
static void
include_path(const char *dir, const char *name, char *out, size_t len)
{
	if (name[0] == '/')
		snprintf(out, len, "%s", name);
	else
		snprintf(out, len, "%s/%s", dir, name);
}

/* The name inside `@include "name"` on this line, or NULL. */
static char *
include_name(char *line)
{
	char *p = line + strspn(line, " \t"), *end;

	if (strncmp(p, "@include", 8) != 0 || (p = strchr(p + 8, '"')) == NULL ||
	    (end = strchr(p + 1, '"')) == NULL)
		return NULL;
	*end = '\0';
	return p + 1;
}

/* libconfig's scanner ends the whole process when it cannot read a file
 * (a directory, a FIFO): check the file and each @include before parsing.
 * from/line say where path was named (NULL for the main file). */
static void
check_readable(struct parse *p, const char *dir, const char *path,
    const char *from, int line, int depth)
{
	char buf[4096], inc[PATH_MAX];
	struct stat st;
	const char *why = NULL;
	FILE *f = NULL;
	int n = 0;

	if (stat(path, &st) == -1)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (depth > MAX_INCLUDE_DEPTH)
		why = "includes nested too deeply";
	else if ((f = fopen(path, "r")) == NULL)
		why = strerror(errno);
	if (why != NULL) {
		if (from != NULL)
			fprintf(p->errs, "%s:%d: @include \"%s\": %s\n", from,
			    line, path, why);
		else
			fprintf(p->errs, "%s: cannot read: %s\n", path, why);
		p->nerrors++;
		return;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		int this_line = n + 1;
		char *name;

		n += strchr(buf, '\n') != NULL;
		if ((name = include_name(buf)) == NULL)
			continue;
		include_path(dir, name, inc, sizeof(inc));
		check_readable(p, dir, inc, path, this_line, depth + 1);
	}
	fclose(f);
}

/* Where a message points: its file (by order of first appearance) and
 * line, from "file:N: ..." (line 0 when there is none). */
struct message_key {
	size_t file;
	long line;
};

static struct message_key
message_key(const char *msg, const char **files, size_t *nfiles)
{
	struct message_key k = { 0, 0 };
	size_t flen = strcspn(msg, ":\n");
	size_t i;

	for (i = 0; i < *nfiles; i++)
		if (strncmp(files[i], msg, flen) == 0 && files[i][flen] == ':')
			break;
	if (i == *nfiles)
		files[(*nfiles)++] = msg;
	k.file = i;
	if (msg[flen] == ':' && msg[flen + 1] >= '0' && msg[flen + 1] <= '9')
		k.line = strtol(msg + flen + 1, NULL, 10);
	return k;
}

static bool
key_after(struct message_key a, struct message_key b)
{
	return a.file > b.file || (a.file == b.file && a.line > b.line);
}

/* Writes the collected messages to out in file order (stable). */
static void
write_sorted(const char *text, FILE *out)
{
	size_t n = 0, nfiles = 0;
	const char **lines, **files;
	struct message_key *keys;
	const char *l;

	for (l = text; *l != '\0'; l++)
		n += *l == '\n';
	lines = calloc(n + 1, sizeof(*lines));
	files = calloc(n + 1, sizeof(*files));
	keys = calloc(n + 1, sizeof(*keys));
	if (lines == NULL || files == NULL || keys == NULL)
		fatal("calloc");
	n = 0;
	for (l = text; *l != '\0'; l = strchr(l, '\n') + 1) {
		keys[n] = message_key(l, files, &nfiles);
		lines[n++] = l;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && key_after(keys[j - 1], keys[j]); j--) {
			struct message_key tk = keys[j];
			const char *tl = lines[j];
			keys[j] = keys[j - 1];
			lines[j] = lines[j - 1];
			keys[j - 1] = tk;
			lines[j - 1] = tl;
		}
	for (size_t i = 0; i < n; i++)
		fwrite(lines[i], 1, (size_t)(strchr(lines[i], '\n') - lines[i]) + 1,
		    out);
	free(keys);
	free(files);
	free(lines);
}

struct config *
config_load(const char *path, FILE *out)
{
	char *text = NULL;
	size_t len = 0;
	FILE *errs = open_memstream(&text, &len);
	struct parse p = { path, errs, 0, NULL };
	config_t cfg;
	char *dir;

	if (errs == NULL)
		fatal("open_memstream");

	p.conf = calloc(1, sizeof(*p.conf));
	if (p.conf == NULL)
		fatal("calloc");
	set_defaults(p.conf);
	p.conf->path = strdup(path);
	dir = strdup(path);
	if (p.conf->path == NULL || dir == NULL)
		fatal("strdup");
	config_init(&cfg);
	/* Relative @include paths are taken from the file's own directory. */
	config_set_include_dir(&cfg, dirname(dir));
	check_readable(&p, config_get_include_dir(&cfg), path, NULL, 0, 0);
	if (p.nerrors > 0) {
		/* Not handed to libconfig. */
	} else if (config_read_file(&cfg, path) == CONFIG_FALSE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			fprintf(errs, "%s: cannot read: %s\n", path,
			    strerror(errno ? errno : EIO));
		else
			fprintf(errs, "%s:%d: %s\n",
			    config_error_file(&cfg) ? config_error_file(&cfg) : path,
			    config_error_line(&cfg), config_error_text(&cfg));
		p.nerrors++;
	} else {
		parse_root(&p, config_root_setting(&cfg));
	}
	config_destroy(&cfg);
	free(dir);
	fclose(errs);
	write_sorted(text, out);
	free(text);
	if (p.nerrors > 0) {
		config_free(p.conf);
		return NULL;
	}
	return p.conf;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	rules_free(&c->clients);
	rules_free(&c->rules);
	free(c->listeners);
	free(c->user);
	free(c->path);
	free(c);
}
