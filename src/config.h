/* config.h: the parsed configuration of one generation (libconfig file). */
#ifndef SOCKS5D_CONFIG_H
#define SOCKS5D_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "addr.h"

#define CONFIG_MAX_METHODS 4
#define CONFIG_MAX_LISTENERS 64

enum relay_mode { RELAY_SPLICE, RELAY_COPY };
enum rule_action { RULE_PASS, RULE_BLOCK };

struct listener_conf {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool v6only;
	int backlog;
	uint8_t methods[CONFIG_MAX_METHODS];	/* in order of preference */
	int nmethods;
	int line;
};

struct port_range {
	uint16_t lo, hi;
};

/* One entry of `clients` or `rules`: first match wins. Empty lists match all. */
struct rule {
	enum rule_action action;
	int line;			/* where it is in the file: logged as rule=N */
	struct cidr *from;
	size_t nfrom;
	struct cidr *to;
	size_t nto;
	struct port_range *ports;
	size_t nports;
	unsigned commands;		/* bit (1 << cmd); 0 = all */
};

struct config {
	char *path;
	char *user;
	uid_t uid;
	gid_t gid;
	struct {
		int min_spare, max_spare, max, max_sessions;
	} workers;
	struct {
		int negotiate, connect, idle, shutdown;
	} timeouts;
	struct {
		int facility, level;
	} log;
	struct {
		enum relay_mode mode;
		int pipe_size;
		int buffer_size;
		int park_after;		/* seconds idle before a hub takes it; 0 never */
		int hubs;		/* hub processes per generation */
	} relay;
	struct listener_conf *listeners;
	size_t nlisteners;
	struct sockaddr_storage external4, external6;
	bool has_external4, has_external6;
	bool has_clients, has_rules;
	struct rule *clients;
	size_t nclients;
	struct rule *rules;
	size_t nrules;
};

/* Reads and validates path. On success returns a config and 0 errors; on
 * failure returns NULL after writing every error, one "file:line: message"
 * per line, to errs. Warnings (valid but suspicious) also go to errs, as
 * "file:line: warning: message", and do not fail the load. */
struct config *config_load(const char *path, FILE *errs);
void config_free(struct config *conf);

#endif
