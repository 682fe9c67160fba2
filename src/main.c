/* main.c: command line, configuration check, start of the master. */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
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
	    "               [--allow-unsafe-config]\n"
	    "       socks5d [-f file | -S socket] status [--metrics]\n"
	    "       socks5d [-f file | -S socket] reload\n"
	    "  -f, --config file  configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -p, --pidfile file write the master's pid there (locked while it runs)\n"
	    "  -S, --control socket  the control socket for status and reload\n"
	    "                     (default: control.socket of the file)\n"
	    "  -t, --test         check the configuration and exit\n"
	    "  -F, --foreground   stay in the foreground, log to stderr too\n"
	    "  -d, --debug        log at debug level\n"
	    "  -v, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n"
	    "  --allow-unsafe-config  read files others can write (refused\n"
	    "                     otherwise)\n"
	    "  status             what the running daemon does (its control socket)\n"
	    "  status --metrics   the same, as Prometheus text\n"
	    "  reload             reload the running daemon and wait for the result\n");
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

/* `socks5d status [--metrics]` and `socks5d reload`: asks the running
 * daemon through the control socket named in path. */
static int
client_command(const char *path, const char *control, int argc,
    char *argv[])
{
	const char *request = NULL;
	char *socket_path;
	int rc;

	if (strcmp(argv[0], "status") == 0 && argc == 1)
		request = "status";
	else if (strcmp(argv[0], "status") == 0 && argc == 2 &&
	    strcmp(argv[1], "--metrics") == 0)
		request = "metrics";
	else if (strcmp(argv[0], "reload") == 0 && argc == 1)
		request = "reload";
	if (request == NULL) {
		usage(stderr);
		return 2;
	}
	if (control != NULL) {
		if ((socket_path = strdup(control)) == NULL) {
			perror("socks5d: strdup");
			return 1;
		}
	} else {
		socket_path = config_control_socket(path);
	}
	if (socket_path[0] == '\0') {
		fprintf(stderr, "socks5d: %s: control.socket is \"\": no control socket\n",
		    path);
		free(socket_path);
		return 1;
	}
	rc = control_request(socket_path, request, stdout);
	free(socket_path);
	return rc;
}

struct options {
	const char *path, *pidfile, *control;
	bool check, foreground, debug;
};

/* The options into *o: -1 to go on, else the exit status. */
static int
parse_options(int argc, char *argv[], struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "control", required_argument, NULL, 'S' },
		{ "test", no_argument, NULL, 't' },
		{ "foreground", no_argument, NULL, 'F' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "allow-unsafe-config", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	/* "+": stop at the first command word (status, reload). */
	while ((ch = getopt_long(argc, argv, "+f:p:S:tFdvh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'f': o->path = optarg; break;
		case 'p': o->pidfile = optarg; break;
		case 'S': o->control = optarg; break;
		case 't': o->check = true; break;
		case 'F': o->foreground = true; break;
		case 'd': o->debug = true; break;
		case 'U': config_allow_unsafe_files(true); break;
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
	return -1;
}

int
main(int argc, char *argv[])
{
	struct options o = { .path = DEFAULT_CONFIG };
	char abspath[PATH_MAX];
	struct config *conf;
	const char *path;
	int rc;

	if ((rc = parse_options(argc, argv, &o)) != -1)
		return rc;
	if (optind != argc)
		return client_command(o.path, o.control, argc - optind,
		    argv + optind);
	path = o.path;
	/* The daemon changes to / and reloads from this path later. */
	if (!o.check && realpath(path, abspath) != NULL)
		path = abspath;
	/* Until the configuration names a facility, errors go to daemon and
	 * to stderr, so that a failed start is seen where it was typed. */
	log_init("socks5d", LOG_DAEMON, o.debug ? LOG_DEBUG : LOG_INFO, !o.check);
	conf = load(path, o.check);
	if (o.check) {
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
	    o.debug ? LOG_DEBUG : conf->log.level, o.foreground);
	/* Decided here, once, for every generation the master will start. */
	if (!priv_init() && getuid() != conf->uid)
		log_notice("not started as root: workers keep uid %u instead of user %s",
		    (unsigned)getuid(), conf->user);
	priv_log_sandbox(conf);
	return master_run(conf, &(struct master_opts){
	    .foreground = o.foreground, .debug = o.debug, .pidfile = o.pidfile });
}
