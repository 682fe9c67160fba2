/* nofile.c: the descriptors each process of a configuration needs, and
 * the soft RLIMIT_NOFILE raised to them (children inherit it). Without
 * it a worker under a limit of 14 fails every accept and a hub under 64
 * parks nothing, neither saying why. */
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "nofile.h"

/* Counted from what each one opens (stdio, channels, signal and wake-up
 * fds, epoll, the syslog socket), with room to spare. */
#define MASTER_BASE 32		/* + listeners + 4 per hub (two generations) */
#define WORKER_BASE 32		/* + listeners: the session's sockets (client,
				 * target, BIND's two, UDP's three), two pipes,
				 * a helper's socket pair, name lookups */
#define HUB_BASE 16
#define HUB_PIPE_FDS 128	/* hub_relay.c: 64 pipes kept out of tickets */
#define HUB_FDS_PER_SESSION 2

struct need {
	const char *role;
	rlim_t fds;
	char why[96];
};

static void
nofile_needs(const struct config *c, struct need *worker, struct need *master,
    struct need *hub)
{
	rlim_t nl = (rlim_t)c->nlisteners, nh = (rlim_t)c->relay.hubs;

	*worker = (struct need){ "worker", WORKER_BASE + nl, "" };
	snprintf(worker->why, sizeof(worker->why), "%d + %zu listeners",
	    WORKER_BASE, c->nlisteners);
	*master = (struct need){ "master", MASTER_BASE + nl + 4 * nh, "" };
	snprintf(master->why, sizeof(master->why),
	    "%d + %zu listeners + 4 per hub", MASTER_BASE, c->nlisteners);
	/* A hub parks what every worker may hand it; 0: no hub parks. */
	*hub = (struct need){ "hub", 0, "" };
	if (c->relay.hubs > 0 && c->relay.park_after > 0) {
		hub->fds = HUB_BASE + HUB_PIPE_FDS +
		    HUB_FDS_PER_SESSION * (rlim_t)c->workers.max;
		snprintf(hub->why, sizeof(hub->why),
		    "%d + %d for pipes + %d per parked session, workers.max %d",
		    HUB_BASE, HUB_PIPE_FDS, HUB_FDS_PER_SESSION,
		    c->workers.max);
	}
}

static void
nofile_say(FILE *report, bool error, const struct need *n,
    const struct rlimit *rl)
{
	char line[320];

	snprintf(line, sizeof(line),
	    "nofile-short role=%s need=%llu have=%llu hard=%llu (%s): "
	    "raise LimitNOFILE= in the unit, or ulimit -n%s",
	    n->role, (unsigned long long)n->fds,
	    (unsigned long long)rl->rlim_cur,
	    (unsigned long long)rl->rlim_max, n->why,
	    error ? "" : "; a hub parks fewer sessions");
	log_warnx("%s", line);
	if (report != NULL)
		fprintf(report, "%s\n", line);
}

int
nofile_check(const struct config *conf, FILE *report)
{
	struct need worker, master, hub;
	struct rlimit rl;
	rlim_t want;

	nofile_needs(conf, &worker, &master, &hub);
	want = worker.fds > master.fds ? worker.fds : master.fds;
	if (hub.fds > want)
		want = hub.fds;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit RLIMIT_NOFILE");
		return 0;
	}
	if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = rl;

		up.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
			log_debug("nofile raised soft=%llu to %llu (hard %llu)",
			    (unsigned long long)rl.rlim_cur,
			    (unsigned long long)up.rlim_cur,
			    (unsigned long long)rl.rlim_max);
			rl = up;
		} else {
			log_warn("setrlimit RLIMIT_NOFILE");
		}
	}
	if (rl.rlim_cur < worker.fds || rl.rlim_cur < master.fds) {
		nofile_say(report, true, rl.rlim_cur < worker.fds ? &worker :
		    &master, &rl);
		return -1;
	}
	if (rl.rlim_cur < hub.fds)
		nofile_say(report, false, &hub, &rl);
	return 0;
}
