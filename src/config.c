/* config.c: reads the libconfig file: the load, the scalar settings, shared helpers. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <sys/resource.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_parse.h"
#include "log.h"
#include "sandbox.h"

const char *
parse_source_file(const struct parse *p, const config_setting_t *s, char *buf,
    size_t len)
{
	const char *file = s ? config_setting_source_file(s) : NULL;

	if (file == NULL || file[0] == '/' || strcmp(file, p->path) == 0)
		return file;
	snprintf(buf, len, "%s/%s", p->dir, file);
	return buf;
}

/* Where setting s is (the main file, line 0, when s is NULL). */
static const char *
parse_where(const struct parse *p, const config_setting_t *s, char *buf,
    size_t len, int *line)
{
	const char *file = parse_source_file(p, s, buf, len);

	*line = s ? (int)config_setting_source_line(s) : 0;
	if (file == NULL || *line <= 0) {
		*line = 0;
		return p->path;
	}
	return file;
}

void
perr(struct parse *p, const config_setting_t *s, const char *fmt, ...)
{
	char buf[PATH_MAX];
	const char *file;
	int line;
	va_list ap;

	file = parse_where(p, s, buf, sizeof(buf), &line);
	va_start(ap, fmt);
	diag_vadd(p->d, DIAG_ERROR, file, line, fmt, ap);
	va_end(ap);
}

void
pwarn(struct parse *p, const config_setting_t *s, const char *fmt, ...)
{
	char buf[PATH_MAX];
	const char *file;
	int line;
	va_list ap;

	file = parse_where(p, s, buf, sizeof(buf), &line);
	va_start(ap, fmt);
	diag_vadd(p->d, DIAG_WARNING, file, line, fmt, ap);
	va_end(ap);
}

void
parse_check_keys(struct parse *p, const config_setting_t *g, const char *where,
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

config_setting_t *
parse_get_group(struct parse *p, const config_setting_t *parent, const char *name)
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

void
parse_get_int(struct parse *p, const config_setting_t *g, const char *where,
    const char *name, long min, long max, int *out)
{
	config_setting_t *s;
	char shown[64];
	long long v;

	if (g == NULL || (s = config_setting_get_member(g, name)) == NULL)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		perr(p, s, "%s.%s must be an integer", where, name);
		return;
	}
	if (!config_number_get(p->nums, s, &v, shown, sizeof(shown)) ||
	    v < min || v > max) {
		perr(p, s, "%s.%s = %s is out of range (%ld..%ld)", where,
		    name, shown, min, max);
		return;
	}
	*out = (int)v;
}

config_setting_t *
parse_get_bool(struct parse *p, const config_setting_t *g, const char *where,
    const char *name, bool *out)
{
	config_setting_t *s;

	if (g == NULL || (s = config_setting_get_member(g, name)) == NULL)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		perr(p, s, "%s%s%s must be true or false", where ? where : "",
		    where ? "." : "", name);
	else
		*out = config_setting_get_bool(s) != 0;
	return s;
}

const char *
parse_get_string(struct parse *p, const config_setting_t *g, const char *where,
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

config_setting_t *
parse_get_list(struct parse *p, const config_setting_t *g, const char *where,
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
	const char *name = parse_get_string(p, root, "", "user");
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
	    "max_sessions", "max_negotiating", NULL };
	config_setting_t *g = parse_get_group(p, root, "workers");
	struct config *c = p->conf;
	size_t before;

	if (g == NULL)
		return;
	parse_check_keys(p, g, "workers", known);
	before = p->d->nerrors;
	parse_get_int(p, g, "workers", "min_spare", 1, 100000, &c->workers.min_spare);
	parse_get_int(p, g, "workers", "max_spare", 1, 100000, &c->workers.max_spare);
	parse_get_int(p, g, "workers", "max", 1, 100000, &c->workers.max);
	parse_get_int(p, g, "workers", "max_sessions", 0, 2000000000,
	    &c->workers.max_sessions);
	parse_get_int(p, g, "workers", "max_negotiating", 0, 100000,
	    &c->workers.max_negotiating);
	if (p->d->nerrors != before)
		return;
	if (c->workers.min_spare > c->workers.max_spare)
		perr(p, g, "workers.min_spare (%d) is above workers.max_spare (%d)",
		    c->workers.min_spare, c->workers.max_spare);
	if (c->workers.min_spare > c->workers.max)
		perr(p, g, "workers.min_spare (%d) is above workers.max (%d)",
		    c->workers.min_spare, c->workers.max);
}

/*
 * Limits start cannot meet. Without root, fork fails once the user's
 * processes reach RLIMIT_NPROC (root is not held to it): the master, its
 * hubs and min_spare workers must fit, or the pool never reaches its
 * floor (an error); max workers that do not fit only warn, as the pool
 * may never need them. RLIMIT_NOFILE is not checked: a process's
 * descriptors grow with its sessions (parked ones in hubs), not with a
 * setting.
 */
static void
check_limits(struct parse *p, const config_setting_t *root)
{
	const config_setting_t *g = config_setting_get_member(root, "workers");
	const struct config *c = p->conf;
	long long base = 1 + c->relay.hubs;
	struct rlimit rl;

	if (c->workers.max_spare > c->workers.max)
		pwarn(p, g, "workers.max_spare (%d) is above workers.max (%d): at most %d workers run",
		    c->workers.max_spare, c->workers.max, c->workers.max);
	if (geteuid() == 0 || getrlimit(RLIMIT_NPROC, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY)
		return;
	if (base + c->workers.min_spare > (long long)rl.rlim_cur)
		perr(p, g, "workers.min_spare (%d) with the master and %d hubs is more processes than RLIMIT_NPROC (%llu) allows",
		    c->workers.min_spare, c->relay.hubs,
		    (unsigned long long)rl.rlim_cur);
	else if (base + c->workers.max > (long long)rl.rlim_cur)
		pwarn(p, g, "workers.max (%d) with the master and %d hubs is more processes than RLIMIT_NPROC (%llu) allows: the pool stops short",
		    c->workers.max, c->relay.hubs,
		    (unsigned long long)rl.rlim_cur);
}

static void
parse_timeouts(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "negotiate", "connect", "idle",
	    "shutdown", "bind", "udp", NULL };
	config_setting_t *g = parse_get_group(p, root, "timeouts");
	struct config *c = p->conf;

	if (g == NULL)
		return;
	parse_check_keys(p, g, "timeouts", known);
	parse_get_int(p, g, "timeouts", "negotiate", 1, 3600, &c->timeouts.negotiate);
	parse_get_int(p, g, "timeouts", "connect", 1, 3600, &c->timeouts.connect);
	parse_get_int(p, g, "timeouts", "idle", 1, 7 * 86400, &c->timeouts.idle);
	parse_get_int(p, g, "timeouts", "shutdown", 0, 86400, &c->timeouts.shutdown);
	parse_get_int(p, g, "timeouts", "bind", 1, 3600, &c->timeouts.bind);
	parse_get_int(p, g, "timeouts", "udp", 1, 7 * 86400, &c->timeouts.udp);
}

static void
parse_log(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "facility", "level", "interim",
	    "session_start", NULL };
	config_setting_t *g = parse_get_group(p, root, "log");
	const char *v;

	if (g == NULL)
		return;
	parse_check_keys(p, g, "log", known);
	if ((v = parse_get_string(p, g, "log", "facility")) != NULL &&
	    (p->conf->log.facility = log_facility_from_name(v)) == -1)
		perr(p, config_setting_get_member(g, "facility"),
		    "unknown log.facility \"%s\" (daemon, user, auth, authpriv, local0..local7)",
		    v);
	if ((v = parse_get_string(p, g, "log", "level")) != NULL &&
	    (p->conf->log.level = log_level_from_name(v)) == -1)
		perr(p, config_setting_get_member(g, "level"),
		    "unknown log.level \"%s\" (debug, info, notice, warning, err)",
		    v);
	parse_get_int(p, g, "log", "interim", 0, 7 * 86400,
	    &p->conf->log.interim);
	parse_get_bool(p, g, "log", "session_start", &p->conf->log.session_start);
}

static void
parse_relay(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "mode", "pipe_size",
	    "buffer_size", "park_after", "hubs", NULL };
	config_setting_t *g = parse_get_group(p, root, "relay");
	const char *v;

	if (g == NULL)
		return;
	parse_check_keys(p, g, "relay", known);
	if ((v = parse_get_string(p, g, "relay", "mode")) != NULL) {
		if (strcmp(v, "splice") == 0)
			p->conf->relay.mode = RELAY_SPLICE;
		else if (strcmp(v, "copy") == 0)
			p->conf->relay.mode = RELAY_COPY;
		else
			perr(p, config_setting_get_member(g, "mode"),
			    "unknown relay.mode \"%s\" (splice, copy)", v);
	}
	parse_get_int(p, g, "relay", "pipe_size", 4096, 1 << 20,
	    &p->conf->relay.pipe_size);
	parse_get_int(p, g, "relay", "buffer_size", 1024, 1 << 20,
	    &p->conf->relay.buffer_size);
	parse_get_int(p, g, "relay", "park_after", 0, 86400,
	    &p->conf->relay.park_after);
	parse_get_int(p, g, "relay", "hubs", 1, 64, &p->conf->relay.hubs);
}

/* A PAM service is a file name in /etc/pam.d. */
static bool
pam_service_ok(const char *v)
{
	if (*v == '\0' || *v == '.' || strlen(v) > 64)
		return false;
	for (; *v; v++)
		if (!(*v >= 'a' && *v <= 'z') && !(*v >= 'A' && *v <= 'Z') &&
		    !(*v >= '0' && *v <= '9') && *v != '-' && *v != '_' &&
		    *v != '.')
			return false;
	return true;
}

static void
free_cache_watch(struct config *c)
{
	for (size_t i = 0; i < c->auth.ncache_watch; i++)
		free(c->auth.cache_watch[i]);
	c->auth.ncache_watch = 0;
}

/* auth.cache_watch: absolute paths, at most 8. */
static void
parse_cache_watch(struct parse *p, const config_setting_t *g)
{
	config_setting_t *s = parse_get_list(p, g, "auth", "cache_watch");
	struct config *c = p->conf;
	int n;

	if (s == NULL)
		return;
	free_cache_watch(c);
	n = config_setting_length(s);
	if (n > (int)(sizeof(c->auth.cache_watch) / sizeof(c->auth.cache_watch[0])))
		perr(p, s, "auth.cache_watch has %d files (at most 8)", n);
	for (int i = 0; i < n && i < 8; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v == NULL || v[0] != '/' || strlen(v) > 255)
			perr(p, e, "auth.cache_watch: an absolute path of at most 255 bytes");
		else if ((c->auth.cache_watch[c->auth.ncache_watch++] =
		    strdup(v)) == NULL)
			fatal("strdup");
	}
}

static void
parse_auth(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "pam_service", "helpers",
	    "timeout", "cache_ttl", "cache_watch", "hash_once", NULL };
	config_setting_t *g = parse_get_group(p, root, "auth");
	struct config *c = p->conf;
	const char *v;

	if (g == NULL)
		return;
	parse_check_keys(p, g, "auth", known);
	if ((v = parse_get_string(p, g, "auth", "pam_service")) != NULL) {
		if (!pam_service_ok(v))
			perr(p, config_setting_get_member(g, "pam_service"),
			    "auth.pam_service \"%s\" is not a PAM service name "
			    "(letters, digits, '-', '_', '.')", v);
		else if ((v = strdup(v)) == NULL)
			fatal("strdup");
		else {
			free(c->auth.pam_service);
			c->auth.pam_service = (char *)v;
		}
	}
	parse_get_int(p, g, "auth", "helpers", 1, 64, &c->auth.helpers);
	parse_get_int(p, g, "auth", "timeout", 1, 300, &c->auth.timeout);
	parse_get_int(p, g, "auth", "cache_ttl", 0, 86400, &c->auth.cache_ttl);
	parse_cache_watch(p, g);
	parse_get_bool(p, g, "auth", "hash_once", &c->auth.hash_once);
}

/* What pam_unix's answers depend on. */
static void
default_cache_watch(struct config *c)
{
	static const char *const watch[] = { "/etc/shadow", "/etc/passwd",
	    "/etc/group" };

	for (size_t i = 0; i < sizeof(watch) / sizeof(watch[0]); i++)
		if ((c->auth.cache_watch[c->auth.ncache_watch++] =
		    strdup(watch[i])) == NULL)
			fatal("strdup");
}

static void
set_defaults(struct config *c)
{
	c->workers.min_spare = 4;
	c->workers.max_spare = 32;
	c->workers.max = 1024;
	c->workers.max_sessions = 10000;
	c->workers.max_negotiating = 8;
	c->timeouts.negotiate = 10;
	c->timeouts.connect = 10;
	c->timeouts.idle = 3600;
	c->timeouts.shutdown = 10;
	c->timeouts.bind = 60;
	c->timeouts.udp = 300;
	c->udp.batch = 16;
	c->log.facility = LOG_DAEMON;
	c->log.level = LOG_INFO;
	c->relay.mode = RELAY_SPLICE;
	c->relay.pipe_size = 65536;
	c->relay.buffer_size = 65536;
	c->relay.park_after = 30;
	c->relay.hubs = 1;
	if ((c->auth.pam_service = strdup("socks5d")) == NULL)
		fatal("strdup");
	c->auth.helpers = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (c->auth.helpers < 1 || c->auth.helpers > 64)
		c->auth.helpers = c->auth.helpers < 1 ? 1 : 64;
	c->auth.timeout = 10;
	c->sandbox = sandbox_available();
	c->auth.cache_ttl = 0;
	c->auth.hash_once = true;
	default_cache_watch(c);
	if ((c->control_socket = strdup(config_control_default())) == NULL)
		fatal("strdup");
}

/* sandbox = true | false: the seccomp filter of workers and hubs. */
static void
parse_sandbox(struct parse *p, const config_setting_t *root)
{
	config_setting_t *s = parse_get_bool(p, root, NULL, "sandbox",
	    &p->conf->sandbox);

	if (s != NULL && p->conf->sandbox && !sandbox_available())
		pwarn(p, s, "sandbox: no seccomp filter here (built "
		    "--without-libseccomp, or no seccomp in the kernel)");
}

static void
parse_root(struct parse *p, const config_setting_t *root)
{
	static const char *const known[] = { "user", "workers", "timeouts",
	    "log", "relay", "auth", "bind", "udp", "listeners", "external",
	    "clients", "rules", "control", "sandbox", NULL };
	struct config *c = p->conf;
	size_t before = p->d->nerrors;

	parse_check_keys(p, root, "", known);
	parse_user(p, root);
	parse_sandbox(p, root);
	parse_workers(p, root);
	parse_timeouts(p, root);
	parse_log(p, root);
	parse_relay(p, root);
	parse_auth(p, root);
	parse_bind(p, root);
	parse_control(p, root);
	parse_udp(p, root);
	if (p->d->nerrors == before)
		check_limits(p, root);
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

/* Hands path to libconfig; false (after an error) if it did not parse. */
static bool
parse_file(struct parse *p, config_t *cfg)
{
	char buf[PATH_MAX];
	const char *file;

	errno = 0;
	if (config_read_file(cfg, p->path) == CONFIG_TRUE)
		return true;
	if (config_error_type(cfg) == CONFIG_ERR_FILE_IO) {
		diag_add(p->d, DIAG_ERROR, p->path, 0, "cannot read: %s",
		    strerror(errno ? errno : EIO));
	} else {
		file = config_error_file(cfg);
		if (file == NULL)
			file = p->path;
		else if (file[0] != '/' && strcmp(file, p->path) != 0) {
			snprintf(buf, sizeof(buf), "%s/%s", p->dir, file);
			file = buf;
		}
		diag_add(p->d, DIAG_ERROR, file, config_error_line(cfg), "%s",
		    config_error_text(cfg));
	}
	return false;
}

static struct config *
config_new(const char *path)
{
	struct config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		fatal("calloc");
	set_defaults(c);
	if ((c->path = strdup(path)) == NULL)
		fatal("strdup");
	return c;
}

struct config *
config_load(const char *path, struct diag *d)
{
	size_t before = d->nerrors;
	struct parse p = { path, NULL, d, config_new(path), NULL };
	config_t cfg;
	char *dir = strdup(path);

	if (dir == NULL)
		fatal("strdup");
	config_init(&cfg);
	/* Relative @include paths are taken from the file's own directory. */
	config_set_include_dir(&cfg, dirname(dir));
	p.dir = config_get_include_dir(&cfg);
	if (config_include_check(&p) && parse_file(&p, &cfg)) {
		p.nums = config_numbers_read(&p, config_root_setting(&cfg));
		parse_root(&p, config_root_setting(&cfg));
		config_numbers_free(p.nums);
	}
	config_destroy(&cfg);
	free(dir);
	diag_sort(d);
	if (d->nerrors != before) {
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
	for (size_t i = 0; i < c->nlisteners; i++) {
		free(c->listeners[i].name);
		free(c->listeners[i].file);
	}
	rules_free(&c->clients);
	rules_free(&c->rules);
	free(c->listeners);
	free(c->user);
	free(c->auth.pam_service);
	free(c->control_socket);
	free_cache_watch(c);
	free(c->path);
	free(c);
}
