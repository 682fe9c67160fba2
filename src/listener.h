/* listener.h: the master's listening sockets, kept open across reloads. */
#ifndef SOCKS5D_LISTENER_H
#define SOCKS5D_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config.h"
#include "diag.h"

struct listen_sock {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool v6only;
	int fd;
};

struct listen_set {
	struct listen_sock *socks;
	size_t n;
};

/* Makes next hold one open socket per listener of conf, in order, taking
 * the sockets of cur that match (same address and v6only) and opening the
 * rest. On failure closes what it opened, adds why to d (an error at the
 * listener's line), returns -1. */
int listener_set_build(const struct listen_set *cur, const struct config *conf,
    struct listen_set *next, struct diag *d);
/* Replaces cur by next: stops the sockets of cur that next does not use
 * and applies conf's backlog and defer time to the rest. */
void listener_set_commit(struct listen_set *cur, struct listen_set *next,
    const struct config *conf);
/* For -t: binds (without listening) and closes a socket for each listener
 * of conf, so that nothing is started. A failure is an error as it would
 * be at start, except "address in use", which is how a running socks5d's
 * own listeners look: a warning. -1 if any error. */
int listener_probe(const struct config *conf, struct diag *d);
/* Undoes listener_set_build: closes what next opened, not what it shares. */
void listener_set_discard(const struct listen_set *cur, struct listen_set *next);
/* Stops every socket of set (in every process that shares them). */
void listener_set_close(struct listen_set *set);

#endif
