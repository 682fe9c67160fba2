/* control.h: the master's control socket (control.socket): a root-only
 * AF_UNIX stream socket that answers `socks5d status`, `socks5d status
 * --metrics` and `socks5d reload`. */
#ifndef SOCKS5D_CONTROL_H
#define SOCKS5D_CONTROL_H

#include <stdbool.h>
#include <stdio.h>

/* What the master does for a request. reload writes the new generation or
 * the errors to out and returns whether the reload was taken. */
struct control_ops {
	bool (*reload)(FILE *out);
	void (*status)(FILE *out, bool metrics);
};

/* Listens on path ("" or NULL: no control socket; an open one is closed).
 * Keeps the current socket when path is unchanged. A failure is logged and
 * leaves no socket: the daemon runs without one. */
void control_listen(const char *path);
/* The listening fd to poll, or -1. */
int control_fd(void);
/* Accepts one client, checks it, answers it and closes it. */
void control_serve(const struct control_ops *ops);
/* Closes and removes the socket (at exit). */
void control_close(void);

/* The client side, in the same binary: sends request to the socket at
 * path, copies the answer to out, and returns the exit status for the
 * command (0 done, 1 refused or failed, after a message on stderr). */
int control_request(const char *path, const char *request, FILE *out);

#endif
