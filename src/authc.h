/* authc.h: the worker's side of the auth helpers: one request, one reply,
 * within a deadline. */
#ifndef SOCKS5D_AUTHC_H
#define SOCKS5D_AUTHC_H

#include <stdint.h>

#include "authmsg.h"

/* Sends req on the helpers' channel chan with the helper's end of the
 * worker's reply socket pair (made at the first login, kept while logins
 * succeed) and waits for the reply, which brings that end back, until
 * deadline (monotonic ms). 0 with *out checked, or -1 with errno:
 * ETIMEDOUT (no answer in time: a helper stuck or all busy), EPIPE (the
 * helper died, or the channel is gone), EPROTO (a malformed reply); after
 * a failure the next call makes a new pair. */
int authc_ask(int chan, const struct auth_request *req, int64_t deadline,
    struct auth_reply *out);

#endif
