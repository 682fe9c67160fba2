/* master.h: the supervising process: listeners, the worker pool, signals. */
#ifndef SOCKS5D_MASTER_H
#define SOCKS5D_MASTER_H

#include <stdbool.h>

#include "config.h"

/* Opens the listeners, forks the pool and supervises it until SIGTERM or
 * SIGINT. Takes ownership of conf. Returns the process exit status. */
int master_run(struct config *conf, bool foreground, bool debug);

/* Writes a config load's error text to the log, one line per error:
 * "config-error FILE:LINE: message" (warnings as "config-warning ..."). */
void master_log_config_errors(const char *text);

#endif
