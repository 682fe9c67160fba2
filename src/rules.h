/* rules.h: client and request rules: first match wins, no match refuses. */
#ifndef SOCKS5D_RULES_H
#define SOCKS5D_RULES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

/* The verdict and the 1-based number of the rule that gave it (0: none
 * matched, which refuses). */
struct verdict {
	bool pass;
	int rule;
};

struct verdict rules_match_client(const struct config *conf,
    const struct sockaddr *client);
/* Whether any destination could pass for this client, command and port.
 * When none could (so a name need not be resolved at all), pass is false
 * and rule names the rule that refuses every destination (0: no match). */
struct verdict rules_may_pass(const struct config *conf,
    const struct sockaddr *client, uint8_t cmd, uint16_t port);
/* dst is a resolved (or literal) destination address with its port. */
struct verdict rules_match_request(const struct config *conf,
    const struct sockaddr *client, uint8_t cmd, const struct sockaddr *dst);

#endif
