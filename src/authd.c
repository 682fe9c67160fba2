/* authd.c: the auth helper process: takes one request at a time from the
 * workers' shared channel, checks it, asks PAM, answers on the socket the
 * request brought, and keeps nothing a worker could steer. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "authd.h"
#include "authmsg.h"
#include "authpam.h"
#include "fdpass.h"
#include "io.h"
#include "log.h"


static volatile sig_atomic_t stopping;

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
authd_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;	/* no SA_RESTART: recvmsg returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);	/* PAM modules may fork (pam_exec) */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Why the request cannot be served (NULL: it can): its form, and that its
 * reply socket belongs to a worker. *pid names the sender when known. */
static const char *
authd_vet(const struct authd *a, const struct auth_request *req, ssize_t n,
    int flags, int nfds, int fd, pid_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int type;
	socklen_t tlen = sizeof(type);

	*pid = 0;
	if (flags & (MSG_TRUNC | MSG_CTRUNC))
		return "truncated";
	if (nfds != 1)
		return "not exactly one fd";
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == -1 ||
	    type != SOCK_SEQPACKET ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return "the fd is not a reply socket";
	*pid = cred.pid;
	if (cred.uid != a->worker_uid)
		return "not from a worker";
	return auth_request_check(req, n);
}

/* Whether the worker is still waiting: one that gave up (auth.timeout)
 * closed its end, and a PAM attempt for nobody could still count against
 * the account (pam_faillock). */
static bool
authd_worker_waits(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	return poll(&pfd, 1, 0) == 1 && !(pfd.revents & (POLLHUP | POLLERR));
}

/* The reply goes back on the reply socket with the socket itself, which
 * the worker keeps for its next login. */
static void
authd_answer(int fd, const struct auth_reply *rep)
{
	/* The worker may have given up (auth.timeout): never wait. */
	if (fdpass_send(fd, rep, sizeof(*rep), &fd, 1, MSG_DONTWAIT) == -1 &&
	    errno != EPIPE && errno != ECONNRESET)
		log_warn("auth-helper: reply");
}

/* The answer: from the cache when it holds these credentials as good,
 * else from PAM (and a good one goes into the cache). False when the
 * worker on fd gave up before PAM's turn: no attempt, no answer. */
static bool
authd_check(const struct authd *a, const struct auth_request *req, int fd,
    struct auth_reply *rep)
{
	if (a->cache != NULL && authcache_lookup(a->cache, req, rep))
		return true;
	if (!authd_worker_waits(fd)) {
		log_debug("auth-helper: the worker gave up before its turn");
		return false;
	}
	atomic_store(&a->slot->busy_since, io_now_ms());
	authpam_check(a->service, a->hash_once, req, rep);
	atomic_store(&a->slot->busy_since, 0);
	if (a->cache != NULL && rep->result == AUTH_OK)
		authcache_store(a->cache, req, rep, a->cache_ttl);
	return true;
}

/* Serves one request: 0, or -1 when the channel is gone. */
static int
authd_serve(const struct authd *a)
{
	struct auth_request req;
	struct auth_reply rep;
	int fds[FDPASS_MAX], nfds, flags;
	const char *why;
	pid_t pid;
	ssize_t n = fdpass_recv(a->chan, &req, sizeof(req), fds, &nfds, &flags,
	    0);

	if (n == -1)
		return errno == EINTR ? 0 : -1;
	if (n == 0 && nfds == 0)
		return -1;	/* the master shut the channel */
	why = authd_vet(a, &req, n, flags, nfds, nfds > 0 ? fds[0] : -1, &pid);
	if (why != NULL) {
		log_warnx("auth-helper-bad-request pid=%ld reason=\"%s\": "
		    "its channel closed", (long)pid, why);
	} else {
		memset(&rep, 0, sizeof(rep));
		rep.magic = AUTH_MAGIC;
		rep.version = AUTH_VERSION;
		if (authd_check(a, &req, fds[0], &rep))
			authd_answer(fds[0], &rep);
	}
	explicit_bzero(&req, sizeof(req));
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return 0;
}

noreturn void
authd_main(struct authd *a)
{
	log_set_role("auth");
	(void)prctl(PR_SET_NAME, "socks5d-auth");
	authd_signals();
	/* Root, to read what PAM needs; a helper whose master is gone has
	 * nobody to answer. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("prctl PR_SET_PDEATHSIG");
	if (getppid() != a->master)
		exit(0);
	(void)prctl(PR_SET_DUMPABLE, 0);	/* it holds passwords */
	while (!stopping && authd_serve(a) == 0)
		;
	exit(0);
}
