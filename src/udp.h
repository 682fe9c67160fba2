/* udp.h: the UDP ASSOCIATE command (RFC 1928 section 7). */
#ifndef SOCKS5D_UDP_H
#define SOCKS5D_UDP_H

#include "command.h"
#include "socks5.h"

/* The UDP ASSOCIATE command: rules, the relay socket, the reply, the
 * association until the control connection ends, silence or shutdown. */
void udp_command(struct cmd_ctx *c, const struct socks5_request *req);

#endif
