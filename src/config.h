/* config.h: the parsed configuration of one generation (libconfig file). */
#ifndef SOCKS5D_CONFIG_H
#define SOCKS5D_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "addr.h"
#include "diag.h"
#include "rules.h"

#define CONFIG_MAX_METHODS 4
#define CONFIG_MAX_LISTENERS 64
#define CONFIG_UDP_MAX_BATCH 64	/* udp.batch: datagrams per system call */

enum relay_mode { RELAY_SPLICE, RELAY_COPY };

struct listener_conf {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool v6only;
	int backlog;
	uint8_t methods[CONFIG_MAX_METHODS];	/* in order of preference */
	int nmethods;
	char *name;		/* what rules may call it; NULL: no name */
	/* UDP ASSOCIATE: the address named in the reply instead of the one
	 * the client reached (a host behind NAT); family 0: none. */
	struct sockaddr_storage udp_announce;
	char *file;		/* the file it is written in (NULL: path) */
	int line;
};

struct config {
	char *path;
	char *user;
	uid_t uid;
	gid_t gid;
	bool sandbox;		/* seccomp filter in workers and hubs */
	struct {
		int min_spare, max_spare, max, max_sessions;
		int max_negotiating;	/* per client address; 0: no cap */
	} workers;
	struct {
		int negotiate, connect, idle, shutdown;
		int bind;		/* BIND: waiting for the peer */
		int udp;		/* UDP ASSOCIATE: silence that ends it */
	} timeouts;
	struct {
		int facility, level;
		int interim;		/* seconds between session-update lines; 0 none */
		bool session_start;	/* a session-start line per session */
	} log;
	struct {
		enum relay_mode mode;
		int pipe_size;
		int buffer_size;
		int park_after;		/* seconds idle before a hub takes it; 0 never */
		int hubs;		/* hub processes per generation */
	} relay;
	struct {
		char *pam_service;	/* PAM service name */
		int helpers;		/* auth helper processes */
		int timeout;		/* seconds a login may take */
		int cache_ttl;		/* seconds; 0: no credential cache */
		bool hash_once;		/* hashonce.c in the helpers */
		char *cache_watch[8];	/* files whose change empties the cache */
		size_t ncache_watch;
	} auth;
	char *control_socket;		/* control.socket; "": none */
	struct {
		struct port_range ports;	/* lo 0: any port */
		bool any_peer;		/* false: a peer must come from DST */
	} bind;
	struct {
		struct port_range ports;	/* relay ports; lo 0: any */
		bool replies_any;	/* replies from any source, not only
					 * from the destinations sent to */
		int batch;		/* datagrams per recvmmsg/sendmmsg */
	} udp;
	struct listener_conf *listeners;
	size_t nlisteners;
	struct sockaddr_storage external4, external6;
	bool has_external4, has_external6;
	struct ruleset clients;		/* compiled from `clients` */
	struct ruleset rules;		/* compiled from `rules` */
};

/* Reads and validates path. Appends every error and warning (valid but
 * suspicious) to d, sorted by file and line, each with the file and line
 * it is about. Returns the config if no error was added, else NULL. */
struct config *config_load(const char *path, struct diag *d);
/* true: config_load reads files and includes that others could change
 * (owned by another user, writable by group or others, in such a
 * directory); false (the default): each is an error at its @include. */
void config_allow_unsafe_files(bool allow);
void config_free(struct config *conf);
/* control.socket's default path. */
const char *config_control_default(void);
/* control.socket as written in path, without validating the rest (the
 * default when the file cannot be read or parsed, or does not say). */
char *config_control_socket(const char *path);

#endif
