/* config_listeners.c: compiles `listeners` and `external` into struct config. */
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"
#include "log.h"
#include "socks5.h"

static bool
method_listed(const struct listener_conf *lc, const char *name)
{
	uint8_t m = strcmp(name, "none") == 0 ? SOCKS5_METHOD_NONE :
	    SOCKS5_METHOD_USERPASS;

	for (int i = 0; i < lc->nmethods; i++)
		if (lc->methods[i] == m)
			return true;
	return false;
}

static void
parse_methods(struct parse *p, const config_setting_t *l,
    struct listener_conf *lc)
{
	config_setting_t *s = parse_get_list(p, l, "listener", "methods");
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
		else if (strcmp(v, "none") != 0 && strcmp(v, "username") != 0)
			perr(p, m, "unknown method \"%s\" (none, username)", v);
		else if (method_listed(lc, v))
			perr(p, m, "method \"%s\" is listed twice", v);
		else if (lc->nmethods < CONFIG_MAX_METHODS)
			lc->methods[lc->nmethods++] = strcmp(v, "none") == 0 ?
			    SOCKS5_METHOD_NONE : SOCKS5_METHOD_USERPASS;
	}
}

/* An optional name, by which rules' `listeners` may name it. */
static void
parse_listener_name(struct parse *p, const config_setting_t *l,
    struct listener_conf *lc)
{
	const char *v = parse_get_string(p, l, "listener", "name");

	if (v == NULL)
		return;
	if (!parse_name_valid(v))
		perr(p, config_setting_get_member(l, "name"),
		    "listener name \"%s\": 1 to %d letters, digits, '.', '_' or '-', starting with a letter",
		    v, RULE_NAME_LEN - 1);
	else if ((lc->name = strdup(v)) == NULL)
		fatal("strdup");
}

/* udp_announce: the address UDP ASSOCIATE replies name (NAT). */
static void
parse_announce(struct parse *p, const config_setting_t *l,
    struct listener_conf *lc)
{
	config_setting_t *s = config_setting_get_member(l, "udp_announce");
	const char *v;
	socklen_t len;

	if (s == NULL)
		return;
	v = config_setting_get_string(s);
	if (v == NULL || addr_parse_ip(v, 0, &lc->udp_announce, &len) == -1) {
		perr(p, s, "listener udp_announce \"%s\" is not a numeric IPv4 or IPv6 address",
		    v ? v : "(not a string)");
		lc->udp_announce.ss_family = 0;
	}
}

static void
parse_listener(struct parse *p, const config_setting_t *l,
    struct listener_conf *lc)
{
	static const char *const known[] = { "address", "port", "methods",
	    "v6only", "backlog", "name", "udp_announce", NULL };
	char buf[PATH_MAX];
	const char *address, *file;
	int port = -1;
	config_setting_t *s;

	lc->line = (int)config_setting_source_line(l);
	if ((file = parse_source_file(p, l, buf, sizeof(buf))) != NULL &&
	    (lc->file = strdup(file)) == NULL)
		fatal("strdup");
	lc->backlog = 4096;	/* a burst waits here while the pool grows */
	lc->methods[0] = SOCKS5_METHOD_NONE;
	lc->nmethods = 1;
	if (config_setting_type(l) != CONFIG_TYPE_GROUP) {
		perr(p, l, "each listener must be a group: { address = ...; port = ...; }");
		return;
	}
	parse_check_keys(p, l, "listener", known);
	address = parse_get_string(p, l, "listener", "address");
	if (address == NULL && config_setting_get_member(l, "address") == NULL)
		perr(p, l, "listener has no address");
	parse_get_int(p, l, "listener", "port", 1, 65535, &port);
	if (port == -1 && config_setting_get_member(l, "port") == NULL)
		perr(p, l, "listener has no port");
	parse_get_int(p, l, "listener", "backlog", 1, 65535, &lc->backlog);
	parse_methods(p, l, lc);
	parse_listener_name(p, l, lc);
	parse_announce(p, l, lc);
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
	if ((s = parse_get_bool(p, l, "listener", "v6only", &lc->v6only)) !=
	    NULL && lc->addr.ss_family != AF_INET6)
		perr(p, s, "listener.v6only applies to IPv6 addresses only");
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

void
parse_listeners(struct parse *p, const config_setting_t *root)
{
	config_setting_t *s = parse_get_list(p, root, "", "listeners");
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
		for (int j = 0; j < i; j++)
			if (c->listeners[i].name != NULL &&
			    c->listeners[j].name != NULL &&
			    strcmp(c->listeners[i].name, c->listeners[j].name) == 0)
				perr(p, config_setting_get_elem(s, (unsigned)i),
				    "listener name \"%s\" is taken by line %d",
				    c->listeners[i].name, c->listeners[j].line);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (i != j && dual_stack_overlap(&c->listeners[i],
			    &c->listeners[j]))
				perr(p, config_setting_get_elem(s, (unsigned)i),
				    "listener [::] with v6only = false takes IPv4 port %u too, which line %d binds",
				    addr_port((struct sockaddr *)&c->listeners[i].addr),
				    c->listeners[j].line);
}

void
parse_external(struct parse *p, const config_setting_t *root)
{
	config_setting_t *s = parse_get_list(p, root, "", "external");
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
