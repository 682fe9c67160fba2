/* control_client.c: `socks5d status` and `socks5d reload`: one request to
 * the master's control socket, its answer to stdout (or stderr when the
 * master refused it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "io.h"

#define CONTROL_WAIT_MS	120000	/* a reload of a large file takes a while */
#define CONTROL_ANSWER_MAX (64u << 20)

/* The whole answer, NUL-terminated, or NULL (errno set). */
static char *
control_read_all(int fd, size_t *lenp)
{
	int64_t deadline = io_now_ms() + CONTROL_WAIT_MS;
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap + 1);

	while (buf != NULL) {
		ssize_t n = io_read_some(fd, buf + len, cap - len, deadline);

		if (n == 0)
			break;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		len += (size_t)n;
		if (len == cap) {
			char *more = cap < CONTROL_ANSWER_MAX ?
			    realloc(buf, cap * 2 + 1) : NULL;

			if (more == NULL) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			buf = more;
			cap *= 2;
		}
	}
	if (buf != NULL) {
		buf[len] = '\0';
		*lenp = len;
	}
	return buf;
}

static int
control_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* NOLINTNEXTLINE(clang-analyzer-security.insecureAPI.strcpy): fits */
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

int
control_request(const char *path, const char *request, FILE *out)
{
	char line[80], *answer, *body;
	size_t len = 0;
	int fd, n = snprintf(line, sizeof(line), "%s\n", request);
	bool ok;

	if ((fd = control_connect(path)) == -1) {
		fprintf(stderr, "socks5d: control socket %s: %s (is socks5d running, with control.socket there?)\n",
		    path, strerror(errno));
		return 1;
	}
	if (io_write_all(fd, line, (size_t)n, io_now_ms() + CONTROL_WAIT_MS) ==
	    -1 || (answer = control_read_all(fd, &len)) == NULL) {
		fprintf(stderr, "socks5d: control socket %s: %s\n", path,
		    errno == ETIMEDOUT ? "no answer" : strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	ok = strncmp(answer, "ok\n", 3) == 0;
	if (!ok && strncmp(answer, "error\n", 6) != 0) {
		fprintf(stderr, "socks5d: control socket %s: %s\n", path,
		    len == 0 ? "closed without an answer (not root?)" :
		    "unexpected answer");
		free(answer);
		return 1;
	}
	body = answer + (ok ? 3 : 6);
	fputs(body, ok ? out : stderr);
	free(answer);
	return ok ? 0 : 1;
}
