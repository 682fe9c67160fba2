/* session.h: one client session: negotiation, request, command, relay, audit line. */
#ifndef SOCKS5D_SESSION_H
#define SOCKS5D_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "worker.h"

/* Once per worker, after the privilege drop: what every session of the
 * worker reuses (the relay's pipes and buffers); and before it exits. */
void session_worker_init(struct worker *w);
void session_worker_fini(void);

/* Runs the session of the accepted (non-blocking) socket fd from peer on
 * listener number li, logs its audit line and closes fd. */
void session_run(struct worker *w, int fd, const struct sockaddr_storage *peer,
    size_t li);

/* What a session's audit line says. The worker writes it for its own
 * sessions, a hub for the ones it took over (parked). */
struct session_audit {
	const struct sockaddr_storage *client;
	const struct sockaddr_storage *listener;
	const struct sockaddr_storage *target;	/* NULL: none */
	int cmd, rule, rep;		/* -1: none */
	const char *dst;		/* "": none */
	uint64_t up, down;
	int64_t ms;			/* since the client was accepted */
	const char *end;
	bool parked;
};

/* Logs "session client=... end=REASON" (and parked=1) at info level. */
void session_log_audit(const struct session_audit *a);

#endif
