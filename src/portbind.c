/* portbind.c: binding within a port range. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "addr.h"
#include "portbind.h"

static int
bind_port(int fd, const struct sockaddr *addr, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, addr, addr_len(addr));
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	if (bind(fd, (struct sockaddr *)&ss, addr_len(addr)) == -1)
		return errno;
	return 0;
}

int
portbind(int fd, const struct sockaddr *addr, const struct port_range *range)
{
	uint32_t span, start;
	int err = EADDRINUSE;

	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
		return EAFNOSUPPORT;
	if (range == NULL || range->lo == 0)
		return bind_port(fd, addr, 0);
	span = (uint32_t)range->hi - range->lo + 1;
	start = arc4random_uniform(span);
	for (uint32_t i = 0; i < span; i++) {
		uint16_t port = (uint16_t)(range->lo + (start + i) % span);

		err = bind_port(fd, addr, port);
		if (err != EADDRINUSE)
			return err;
	}
	return err;
}
