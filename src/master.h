/* master.h: the supervising process: listeners, the worker pool, signals. */
#ifndef SOCKS5D_MASTER_H
#define SOCKS5D_MASTER_H

#include <stdbool.h>

#include "config.h"

struct master_opts {
	bool foreground;		/* -F: do not detach */
	bool debug;			/* -d: log at debug level */
	const char *pidfile;		/* -p, or NULL */
};

/* Opens the listeners, forks the pool and supervises it until SIGTERM or
 * SIGINT. Takes ownership of conf. Returns the process exit status. */
int master_run(struct config *conf, const struct master_opts *opts);

#endif
