/* config_control.c: the `control` group (the control socket), and finding
 * the socket's path for the client commands even in a file that no longer
 * loads (`socks5d reload` must report a broken file, not fail to find the
 * daemon). */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "config_parse.h"
#include "log.h"

#define CONTROL_DEFAULT RUNSTATEDIR "/socks5d/control"

const char *
config_control_default(void)
{
	return CONTROL_DEFAULT;
}

void
parse_control(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "socket", NULL };
	config_setting_t *g = parse_get_group(p, root, "control");
	struct sockaddr_un sun;
	const char *v;
	char *copy;

	if (g == NULL)
		return;
	parse_check_keys(p, g, "control", known);
	if ((v = parse_get_string(p, g, "control", "socket")) == NULL)
		return;
	if (v[0] != '\0' && v[0] != '/') {
		perr(p, config_setting_get_member(g, "socket"),
		    "control.socket \"%s\" must be an absolute path (or \"\" for none)",
		    v);
		return;
	}
	if (strlen(v) >= sizeof(sun.sun_path)) {
		perr(p, config_setting_get_member(g, "socket"),
		    "control.socket is longer than a socket path can be (%zu bytes)",
		    sizeof(sun.sun_path) - 1);
		return;
	}
	if ((copy = strdup(v)) == NULL)
		fatal("strdup");
	free(p->conf->control_socket);
	p->conf->control_socket = copy;
}

/* The include tree is checked first, as config_load does: libconfig's
 * scanner ends the process on an @include of a directory (and would wait
 * on a FIFO). Relative includes are taken from the file's directory. */
char *
config_control_socket(const char *path)
{
	struct diag d = DIAG_INIT;
	struct parse p = { path, NULL, &d, NULL, NULL };
	const char *v = NULL;
	char *dir = strdup(path), *out;
	config_t cfg;

	if (dir == NULL)
		fatal("strdup");
	config_init(&cfg);
	config_set_include_dir(&cfg, dirname(dir));
	p.dir = config_get_include_dir(&cfg);
	if (config_include_check(&p) &&
	    config_read_file(&cfg, path) == CONFIG_TRUE)
		(void)config_lookup_string(&cfg, "control.socket", &v);
	out = strdup(v != NULL ? v : CONTROL_DEFAULT);
	config_destroy(&cfg);
	diag_free(&d);
	free(dir);
	if (out == NULL)
		fatal("strdup");
	return out;
}
