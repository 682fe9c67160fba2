/* config_bind.c: compiles the `bind` group (the BIND command's listening
 * ports and which peers it accepts) into struct config. */
#include <string.h>

#include "config_parse.h"

/* bind.peer: "dst" (a peer must come from DST.ADDR when the client named
 * one) or "any" (the rules alone decide). */
static void
parse_bind_peer(struct parse *p, const config_setting_t *g)
{
	const char *v = parse_get_string(p, g, "bind", "peer");

	if (v == NULL)
		return;
	if (strcmp(v, "dst") == 0)
		p->conf->bind.any_peer = false;
	else if (strcmp(v, "any") == 0)
		p->conf->bind.any_peer = true;
	else
		perr(p, config_setting_get_member(g, "peer"),
		    "unknown bind.peer \"%s\" (dst, any)", v);
}

void
parse_bind(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "ports", "peer", NULL };
	config_setting_t *g = parse_get_group(p, root, "bind");
	config_setting_t *ports;

	if (g == NULL)
		return;
	parse_check_keys(p, g, "bind", known);
	parse_bind_peer(p, g);
	if ((ports = config_setting_get_member(g, "ports")) == NULL)
		return;
	if (config_setting_type(ports) != CONFIG_TYPE_INT &&
	    config_setting_type(ports) != CONFIG_TYPE_INT64 &&
	    config_setting_type(ports) != CONFIG_TYPE_STRING) {
		perr(p, ports, "bind.ports: a port (integer) or a range (\"lo-hi\")");
		return;
	}
	if (!parse_port(p, ports, &p->conf->bind.ports))
		memset(&p->conf->bind.ports, 0, sizeof(p->conf->bind.ports));
	else if (p->conf->bind.ports.lo < 1024)
		pwarn(p, ports, "bind.ports %u-%u reach below 1024: BIND runs "
		    "unprivileged and cannot listen there",
		    p->conf->bind.ports.lo, p->conf->bind.ports.hi);
}
