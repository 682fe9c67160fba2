/* main.c: command line, configuration check, start of the master. */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "listener.h"
#include "log.h"
#include "master.h"
#include "priv.h"

#define DEFAULT_CONFIG SYSCONFDIR "/socks5d/socks5d.conf"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: socks5d [-f file] [-p pidfile] [-t] [-F] [-d] [-v] [-h]\n"
	    "  -f, --config file  configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -p, --pidfile file write the master's pid there (locked while it runs)\n"
	    "  -t, --test         check the configuration and exit\n"
	    "  -F, --foreground   stay in the foreground, log to stderr too\n"
	    "  -d, --debug        log at debug level\n"
	    "  -v, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n");
}

/* Loads path; errors and warnings go to stderr and, unless only checking,
 * to syslog too. */
static struct config *
load(const char *path, bool check_only)
{
	struct diag d = DIAG_INIT;
	struct config *conf = config_load(path, &d);

	if (conf != NULL && check_only && listener_probe(conf, &d) == -1) {
		config_free(conf);
		conf = NULL;
	}
	if (check_only)
		diag_print(&d, stderr);
	else
		diag_log(&d);
	diag_free(&d);
	return conf;
}

int
main(int argc, char *argv[])
{
	const char *path = DEFAULT_CONFIG, *pidfile = NULL;
	char abspath[PATH_MAX];
	bool check = false, foreground = false, debug = false;
	struct config *conf;
	int ch;

	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "test", no_argument, NULL, 't' },
		{ "foreground", no_argument, NULL, 'F' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	while ((ch = getopt_long(argc, argv, "f:p:tFdvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			path = optarg;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'F':
			foreground = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'v':
			printf("socks5d %s\n", SOCKS5D_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* The daemon changes to / and reloads from this path later. */
	if (!check && realpath(path, abspath) != NULL)
		path = abspath;
	/* Until the configuration names a facility, errors go to daemon and
	 * to stderr, so that a failed start is seen where it was typed. */
	log_init("socks5d", LOG_DAEMON, debug ? LOG_DEBUG : LOG_INFO, !check);
	conf = load(path, check);
	if (check) {
		if (conf == NULL)
			return 1;
		fprintf(stderr, "%s: configuration OK\n", path);
		config_free(conf);
		return 0;
	}
	if (conf == NULL) {
		log_warnx("%s: not started: configuration errors", path);
		return 1;
	}
	log_init("socks5d", conf->log.facility,
	    debug ? LOG_DEBUG : conf->log.level, foreground);
	/* Decided here, once, for every generation the master will start. */
	if (!priv_init() && getuid() != conf->uid)
		log_notice("not started as root: workers keep uid %u instead of user %s",
		    (unsigned)getuid(), conf->user);
	return master_run(conf, &(struct master_opts){ .foreground = foreground,
	    .debug = debug, .pidfile = pidfile });
}
