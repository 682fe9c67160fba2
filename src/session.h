/* session.h: one client session: negotiation, request, command, relay, audit line. */
#ifndef SOCKS5D_SESSION_H
#define SOCKS5D_SESSION_H

#include <stddef.h>
#include <sys/socket.h>

#include "worker.h"

/* Runs the session of the accepted (non-blocking) socket fd from peer on
 * listener number li, logs its audit line and closes fd. */
void session_run(struct worker *w, int fd, const struct sockaddr_storage *peer,
    size_t li);

#endif
