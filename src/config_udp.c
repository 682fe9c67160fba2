/* config_udp.c: compiles the `udp` group (UDP ASSOCIATE) into struct config. */
#include <string.h>

#include "config_parse.h"

void
parse_udp(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "ports", "replies", "batch",
	    NULL };
	config_setting_t *g = parse_get_group(p, root, "udp");
	config_setting_t *s;
	struct config *c = p->conf;
	const char *v;

	if (g == NULL)
		return;
	parse_check_keys(p, g, "udp", known);
	if ((s = config_setting_get_member(g, "ports")) != NULL &&
	    !parse_port(p, s, &c->udp.ports))
		c->udp.ports.lo = c->udp.ports.hi = 0;
	if ((v = parse_get_string(p, g, "udp", "replies")) != NULL) {
		if (strcmp(v, "sent-to") == 0)
			c->udp.replies_any = false;
		else if (strcmp(v, "any") == 0)
			c->udp.replies_any = true;
		else
			perr(p, config_setting_get_member(g, "replies"),
			    "unknown udp.replies \"%s\" (sent-to, any)", v);
	}
	parse_get_int(p, g, "udp", "batch", 1, CONFIG_UDP_MAX_BATCH, &c->udp.batch);
}
