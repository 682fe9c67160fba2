/* priv.c: dropping root in every unprivileged child (workers, hubs). */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "priv.h"
#include "sandbox.h"

/* Sanitizer builds (--enable-sanitizers, which defines
 * __SANITIZE_ADDRESS__) keep their children dumpable: LeakSanitizer
 * ptraces the process from a thread of its own at exit. */
#ifdef __SANITIZE_ADDRESS__
#define PRIV_DUMPABLE 1
#else
#define PRIV_DUMPABLE 0
#endif

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

void
priv_log_sandbox(const struct config *c)
{
	if (c->sandbox && sandbox_available())
		log_info("sandbox on: workers and hubs: seccomp filter (a "
		    "forbidden system call kills the process), no "
		    "capabilities, empty bounding set, no_new_privs, %s",
		    PRIV_DUMPABLE ? "dumpable (sanitizer build)" :
		    "not dumpable");
	else
		log_notice("sandbox off: workers and hubs run without a "
		    "seccomp filter (%s)", sandbox_available() ?
		    "sandbox = false" :
		    "built without libseccomp, or no seccomp in the kernel");
}

/* Empties the capability bounding set, so that nothing this process
 * runs later can ever hold a capability. Needs CAP_SETPCAP: root only,
 * before the uid change. The set is walked until the kernel says the
 * capability does not exist (the kernel may know more than our headers'
 * CAP_LAST_CAP, or fewer). */
static void
priv_drop_bounding_set(void)
{
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1) {
			if (errno == EINVAL)
				break;
			fatal("prctl PR_CAPBSET_DROP %d", cap);
		}
}

/* Clears the permitted, effective, inheritable and ambient sets and
 * checks that the kernel agrees. setresuid from root clears the first
 * three already; a master started by another user with capabilities
 * (ambient ones from a service manager) would pass them on otherwise. */
static void
priv_drop_caps(const char *role)
{
	struct __user_cap_header_struct hdr = {
		_LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) == -1)
		fatal("capset");
	if (syscall(SYS_capget, &hdr, data) == -1)
		fatal("capget");
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective || data[i].permitted ||
		    data[i].inheritable)
			fatalx("%s still holds capabilities: refusing", role);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1)
		fatal("prctl PR_CAP_AMBIENT_CLEAR_ALL");
}

/* Not dumpable: no core file, and no process of the same user can
 * ptrace it or read its memory through /proc. Sanitizer builds are made
 * dumpable (the uid change cleared it): LeakSanitizer ptraces the
 * process at exit (it would turn it on itself for that moment). */
static void
priv_set_undumpable(void)
{
	if (prctl(PR_SET_DUMPABLE, PRIV_DUMPABLE, 0, 0, 0) == -1)
		fatal("prctl PR_SET_DUMPABLE");
}

/* After OpenBSD's daemons: one function, a fixed order, fatal on failure. */
void
priv_drop(const struct config *c, pid_t master, const char *role)
{
	gid_t gid = c->gid;
	uid_t uid = c->uid;

	if (switch_user) {
		priv_drop_bounding_set();
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
	priv_drop_caps(role);
	priv_set_undumpable();
	if (c->sandbox)
		sandbox_enter(role);
	sandbox_test_hook(role);
}
