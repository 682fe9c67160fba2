/* nofile.h: RLIMIT_NOFILE against what a configuration needs. */
#ifndef SOCKS5D_NOFILE_H
#define SOCKS5D_NOFILE_H

#include <stdio.h>

#include "config.h"

/* At start and at each reload, in the master, before anything is forked
 * with conf (children inherit the limit): raises the soft limit as far
 * as the busiest process of conf needs, up to the hard limit. Logs (and
 * writes to report, unless NULL) one line for what is still missing.
 * Returns -1 when a worker or the master could not even work (the
 * configuration must not be taken), 0 otherwise (a hub that can park
 * fewer sessions than workers.max is a warning). */
int nofile_check(const struct config *conf, FILE *report);

#endif
