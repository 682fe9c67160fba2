/* connect.h: resolving a SOCKS5 destination and connecting to it. */
#ifndef SOCKS5D_CONNECT_H
#define SOCKS5D_CONNECT_H

#include <stdint.h>
#include <sys/socket.h>

#include "command.h"
#include "config.h"
#include "socks5.h"

#define CONNECT_MAX_ADDRS 16

/* Fills addrs (with the port set) from dst: a literal gives one address, a
 * name is resolved. Returns 0, or an errno value (ENOENT: no such name,
 * EHOSTUNREACH: resolver failure). */
int connect_resolve(const struct socks5_addr *dst,
    struct sockaddr_storage addrs[CONNECT_MAX_ADDRS], int *naddrs);
/* Connects to one address from the configured external address of its
 * family, waiting until deadline. Returns a connected non-blocking socket
 * in *fd and 0, or an errno value (ETIMEDOUT at the deadline). */
int connect_to(const struct config *conf, const struct sockaddr *dst,
    int64_t deadline, int *fd);

/* The CONNECT command: rules, resolution, connect, reply, relay. */
void connect_command(struct cmd_ctx *c, const struct socks5_request *req);

#endif
