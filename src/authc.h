/* authc.h: the worker's side of the auth helpers: one request, one reply,
 * within a deadline. */
#ifndef SOCKS5D_AUTHC_H
#define SOCKS5D_AUTHC_H

#include <stdint.h>

#include "authmsg.h"

/* Sends req on the helpers' channel chan with a socket pair made for the
 * reply and waits for it until deadline (monotonic ms). 0 with *out
 * checked, or -1 with errno: ETIMEDOUT (no answer in time: a helper stuck
 * or all busy), EPIPE (the helper died, or the channel is gone), EPROTO
 * (a malformed reply). */
int authc_ask(int chan, const struct auth_request *req, int64_t deadline,
    struct auth_reply *out);

#endif
