/* control.c: the master's control socket. A request is one line from a
 * client whose peer credentials are root's or the master's own user; the
 * answer is "ok" or "error", a newline, then text, then the close. The
 * master serves one client at a time, each bounded by CONTROL_IO_MS. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "children.h"
#include "control.h"
#include "io.h"
#include "log.h"

#define CONTROL_IO_MS	2000	/* a client's request, or the answer */
#define CONTROL_REQ_MAX	64

static struct {
	int fd;
	char *path;
	dev_t dev;
	ino_t ino;
} ctl = { -1, NULL, 0, 0 };

int
control_fd(void)
{
	return ctl.fd;
}

/* Creates the socket's directory when only its last level is missing
 * (systemd's RuntimeDirectory= makes it for the unit). */
static void
control_mkdir(const char *path)
{
	char *copy = strdup(path);

	if (copy == NULL)
		fatal("strdup");
	if (mkdir(dirname(copy), 0755) == -1 && errno != EEXIST)
		log_debug("control socket: mkdir %s: %s", copy, strerror(errno));
	free(copy);
}

/* Whether a socket at path answers (a running daemon's); a stale one
 * (nobody listening) is removed. -1: in use or not a socket. */
static int
control_clear(const char *path, const struct sockaddr_un *sun)
{
	struct stat sb;
	int probe, rc;

	if (lstat(path, &sb) == -1)
		return 0;
	if (!S_ISSOCK(sb.st_mode)) {
		log_warnx("control socket %s: exists and is not a socket", path);
		return -1;
	}
	if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = connect(probe, (const struct sockaddr *)sun, sizeof(*sun));
	close(probe);
	if (rc == 0) {
		log_warnx("control socket %s: another process answers on it",
		    path);
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

static int
control_bind(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat sb;
	mode_t old;
	int fd, rc;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	control_mkdir(path);
	if (control_clear(path, &sun) == -1)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -1;
	old = umask(0177);	/* born 0600: root (and our user) only */
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc == -1 || listen(fd, 16) == -1 || stat(path, &sb) == -1) {
		log_warn("control socket %s", path);
		close(fd);
		return -1;
	}
	ctl.dev = sb.st_dev;
	ctl.ino = sb.st_ino;
	return fd;
}

void
control_listen(const char *path)
{
	int fd;

	if (path != NULL && path[0] == '\0')
		path = NULL;
	if (ctl.path != NULL && path != NULL && strcmp(ctl.path, path) == 0)
		return;
	control_close();
	if (path == NULL)
		return;
	if ((fd = control_bind(path)) == -1) {
		log_warnx("control socket %s: not opened: socks5d status and reload are unavailable",
		    path);
		return;
	}
	if ((ctl.path = strdup(path)) == NULL)
		fatal("strdup");
	ctl.fd = fd;
	/* The master's alone: no child keeps it. */
	children_register_fd(fd, 0);
}

void
control_close(void)
{
	struct stat sb;

	if (ctl.fd == -1)
		return;
	children_unregister_fd(ctl.fd);
	close(ctl.fd);
	/* Only our own socket: another daemon may have replaced it. */
	if (stat(ctl.path, &sb) == 0 && sb.st_dev == ctl.dev &&
	    sb.st_ino == ctl.ino)
		(void)unlink(ctl.path);
	ctl.fd = -1;
	free(ctl.path);
	ctl.path = NULL;
}

/* Root, or the master's own user (a master not started as root). */
static bool
control_peer_ok(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return false;
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	log_notice("control-refused uid=%u pid=%ld: not root",
	    (unsigned)cred.uid, (long)cred.pid);
	return false;
}

/* The request line (without its newline) into req: 0, or -1 when the
 * client sent none within the time or one too long. */
static int
control_read(int fd, char req[CONTROL_REQ_MAX], int64_t deadline)
{
	size_t len = 0;

	while (len < CONTROL_REQ_MAX - 1) {
		ssize_t n = io_read_some(fd, req + len, CONTROL_REQ_MAX - 1 - len,
		    deadline);
		char *nl;

		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		if ((nl = memchr(req, '\n', len)) != NULL) {
			*nl = '\0';
			return 0;
		}
	}
	req[len] = '\0';
	/* A client that shuts its side after the line may omit the newline. */
	return len > 0 && len < CONTROL_REQ_MAX - 1 ? 0 : -1;
}

/* Runs the request: "ok" or "error" first, then what it wrote. */
static void
control_answer(const char *req, const struct control_ops *ops, FILE *out)
{
	char *text = NULL;
	size_t len = 0;
	FILE *body = open_memstream(&text, &len);
	bool ok = true;

	if (body == NULL)
		fatal("open_memstream");
	if (strcmp(req, "status") == 0)
		ops->status(body, false);
	else if (strcmp(req, "metrics") == 0)
		ops->status(body, true);
	else if (strcmp(req, "reload") == 0)
		ok = ops->reload(body);
	else {
		ok = false;
		fprintf(body, "unknown request (status, metrics, reload)\n");
	}
	fclose(body);
	fprintf(out, "%s\n", ok ? "ok" : "error");
	fwrite(text, 1, len, out);
	free(text);
}

void
control_serve(const struct control_ops *ops)
{
	int64_t deadline = io_now_ms() + CONTROL_IO_MS;
	char req[CONTROL_REQ_MAX], *text = NULL;
	size_t len = 0;
	FILE *out;
	int fd = accept4(ctl.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd == -1) {
		if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR)
			log_warn("control socket: accept");
		return;
	}
	if (!control_peer_ok(fd) || control_read(fd, req, deadline) == -1) {
		close(fd);
		return;
	}
	if ((out = open_memstream(&text, &len)) == NULL)
		fatal("open_memstream");
	control_answer(req, ops, out);
	fclose(out);
	/* A reload may have taken a while: the answer gets its own time. */
	if (io_write_all(fd, text, len, io_now_ms() + CONTROL_IO_MS) == -1)
		log_debug("control socket: answer: %s", strerror(errno));
	free(text);
	close(fd);
}
