/* session.h: one client session: negotiation, request, the command (from a
 * table), the audit line. */
#ifndef SOCKS5D_SESSION_H
#define SOCKS5D_SESSION_H

#include <stddef.h>
#include <sys/socket.h>

#include "worker.h"

/* Once per worker, after the privilege drop: the relay's pipes and what
 * parking needs. */
void session_worker_init(struct worker *w);
void session_worker_fini(void);

/* Runs the session of the accepted (non-blocking) socket fd from peer on
 * listener number li, logs its audit line and closes fd. */
void session_run(struct worker *w, int fd, const struct sockaddr_storage *peer,
    size_t li);

#endif
