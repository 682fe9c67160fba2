/* portbind.h: binding a socket within a configured port range (bind.ports,
 * udp.ports), so that a firewall can be opened for exactly those ports. */
#ifndef SOCKS5D_PORTBIND_H
#define SOCKS5D_PORTBIND_H

#include <sys/socket.h>

#include "rules.h"

/*
 * Binds fd to addr's IP address with a port from *range (inclusive), or
 * with any port the kernel picks when range is NULL or range->lo is 0. The
 * search starts at a random port of the range and tries each once, so
 * concurrent workers rarely collide. Returns 0, or an errno value
 * (EADDRINUSE when every port of the range is taken).
 */
int portbind(int fd, const struct sockaddr *addr, const struct port_range *range);

#endif
