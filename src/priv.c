/* priv.c: dropping root in every unprivileged child (workers, hubs). */
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "priv.h"

static bool switch_user;

bool
priv_init(void)
{
	switch_user = geteuid() == 0;
	return switch_user;
}

bool
priv_switches_user(void)
{
	return switch_user;
}

/* After OpenBSD's daemons: one function, a fixed order, fatal on failure. */
void
priv_drop(const struct config *c, pid_t master, const char *role)
{
	gid_t gid = c->gid;
	uid_t uid = c->uid;

	if (switch_user) {
		if (setgroups(1, &gid) == -1)
			fatal("setgroups");
		if (setresgid(gid, gid, gid) == -1)
			fatal("setresgid %u", (unsigned)gid);
		if (setresuid(uid, uid, uid) == -1)
			fatal("setresuid %u", (unsigned)uid);
	}
	if (getuid() == 0 || geteuid() == 0 || getgid() == 0 || getegid() == 0)
		fatalx("%s would run sessions as root: refusing", role);
	/* No exec of a set-uid program (or file capabilities) can give back
	 * what was dropped. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl PR_SET_NO_NEW_PRIVS");
	/* Set after the uid change, which clears it. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("prctl PR_SET_PDEATHSIG");
	if (getppid() != master)
		exit(0);
}
