/* worker.h: an unprivileged worker: accept one client, run its session, repeat. */
#ifndef SOCKS5D_WORKER_H
#define SOCKS5D_WORKER_H

#include <signal.h>
#include <stdnoreturn.h>
#include <sys/types.h>

#include "config.h"
#include "scoreboard.h"

struct worker {
	const struct config *conf;
	unsigned generation;
	struct scoreboard *sb;
	struct sb_slot *slot;
	const int *listen_fds;		/* one per conf->listeners entry */
	int notify_fd;			/* write a byte to wake the master */
	int hub_fd;			/* channel to this worker's hub, or -1 */
	struct hub_tickets *hub_tickets; /* its hub's tickets, or NULL */
	int auth_fd;			/* the auth helpers' channel, or -1 */
};

/* Set by signal handlers: stop (SIGTERM/SIGINT: sessions get the shutdown
 * grace) or retire (SIGUSR1: finish the session, however long, then exit). */
extern volatile sig_atomic_t worker_stopping;
extern volatile sig_atomic_t worker_retiring;

/* Runs in the child right after fork; never returns. */
noreturn void worker_main(struct worker *w);

#endif
