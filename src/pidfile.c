/* pidfile.c: a pid file held with flock(2), so that a stale file left by a
 * killed master is simply taken over and a running one is never. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "children.h"
#include "log.h"
#include "pidfile.h"

static struct {
	int fd;
	char *path;
} pf = { -1, NULL };

/* The pid written in a file that someone holds, or 0. */
static long
pidfile_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* path made absolute: the daemon changes to / before it removes it. */
static char *
pidfile_abspath(const char *path)
{
	char cwd[4096], *abs;

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		abs = strdup(path);
	else if (asprintf(&abs, "%s/%s", cwd, path) == -1)
		abs = NULL;
	if (abs == NULL)
		fatal("pidfile path");
	return abs;
}

int
pidfile_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd == -1) {
		log_warn("pidfile %s", path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			log_warnx("pidfile %s: held by pid %ld: is socks5d already running?",
			    path, pidfile_holder(fd));
		else
			log_warn("pidfile %s: flock", path);
		close(fd);
		return -1;
	}
	pf.path = pidfile_abspath(path);
	pf.fd = fd;
	/* The lock is the master's: no child keeps it, so orphaned workers
	 * never stop a new master from starting. */
	children_register_fd(fd, 0);
	return 0;
}

int
pidfile_write(void)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (pf.fd == -1)
		return 0;
	if (ftruncate(pf.fd, 0) == -1 ||
	    pwrite(pf.fd, buf, (size_t)n, 0) != (ssize_t)n) {
		log_warn("pidfile %s: write", pf.path);
		return -1;
	}
	return 0;
}

void
pidfile_remove(void)
{
	if (pf.fd == -1)
		return;
	if (unlink(pf.path) == -1 && errno != ENOENT)
		log_warn("pidfile %s: unlink", pf.path);
	close(pf.fd);
	pf.fd = -1;
	free(pf.path);
	pf.path = NULL;
}
