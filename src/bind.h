/* bind.h: the SOCKS5 BIND command (RFC 1928): listen, announce, accept
 * one peer, announce it, relay. */
#ifndef SOCKS5D_BIND_H
#define SOCKS5D_BIND_H

#include "command.h"
#include "socks5.h"

/* Runs BIND to the end of the session: rules, the listening socket and
 * the first reply, the wait for one peer, its checks, the second reply
 * and the relay. */
void bind_command(struct cmd_ctx *c, const struct socks5_request *req);

#endif
