/* fuzz_config.c: the configuration loader, libconfig text through all of
 * config_load's validation, @include included. The input up to its first
 * NUL byte is the main file, the rest the file it may include as
 * "inc.conf" (relative: found next to the main file), both written to a
 * private directory. A loaded configuration must hold what validation
 * promises; a refused one must say why, each message with its file. */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "fuzz.h"
#include "socks5.h"

static char main_path[PATH_MAX], inc_path[PATH_MAX];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv);

static char dir[PATH_MAX];

static void
remove_dir(void)
{
	unlink(main_path);
	unlink(inc_path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/socks5d-fuzz-config.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL || (devnull = fopen("/dev/null", "w")) == NULL) {
		perror("fuzz_config: setup");
		exit(1);
	}
	snprintf(main_path, sizeof(main_path), "%s/socks5d.conf", dir);
	snprintf(inc_path, sizeof(inc_path), "%s/inc.conf", dir);
	atexit(remove_dir);
	return 0;
}

static void
write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd == -1 || (len > 0 && write(fd, data, len) != (ssize_t)len) ||
	    close(fd) == -1) {
		perror(path);
		abort();
	}
}

static void
check_listener(const struct listener_conf *l)
{
	FUZZ_CHECK(l->nmethods >= 1 && l->nmethods <= CONFIG_MAX_METHODS);
	for (int i = 0; i < l->nmethods; i++)
		FUZZ_CHECK(l->methods[i] == SOCKS5_METHOD_NONE ||
		    l->methods[i] == SOCKS5_METHOD_USERPASS);
	FUZZ_CHECK((l->addr.ss_family == AF_INET &&
	    l->addrlen == sizeof(struct sockaddr_in)) ||
	    (l->addr.ss_family == AF_INET6 &&
	    l->addrlen == sizeof(struct sockaddr_in6)));
	FUZZ_CHECK(l->backlog > 0);
}

static void
check_config(const struct config *c)
{
	FUZZ_CHECK(c->user != NULL && c->path != NULL);
	FUZZ_CHECK(c->workers.min_spare >= 1 &&
	    c->workers.min_spare <= c->workers.max_spare &&
	    c->workers.min_spare <= c->workers.max);
	FUZZ_CHECK(c->nlisteners >= 1 && c->nlisteners <= CONFIG_MAX_LISTENERS);
	for (size_t i = 0; i < c->nlisteners; i++)
		check_listener(&c->listeners[i]);
	FUZZ_CHECK(c->auth.ncache_watch <= sizeof(c->auth.cache_watch) /
	    sizeof(c->auth.cache_watch[0]));
	FUZZ_CHECK(c->udp.batch >= 1 && c->udp.batch <= CONFIG_UDP_MAX_BATCH);
	FUZZ_CHECK(c->relay.hubs >= 0 && c->auth.helpers >= 0);
	FUZZ_CHECK(c->control_socket != NULL);
}

static void
check_diag(const struct diag *d)
{
	size_t errors = 0;

	for (size_t i = 0; i < d->n; i++) {
		const struct diag_record *r = &d->recs[i];

		FUZZ_CHECK(r->file != NULL && r->message != NULL);
		FUZZ_CHECK(r->message[0] != '\0' && r->line >= 0);
		/* One line each, wherever it is printed or logged. */
		for (const char *s = r->message; *s; s++)
			FUZZ_CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
		for (const char *s = r->file; *s; s++)
			FUZZ_CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
		errors += r->severity == DIAG_ERROR;
	}
	FUZZ_CHECK(errors == d->nerrors);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t main_len = nul != NULL ? (size_t)(nul - data) : size;
	struct diag d = DIAG_INIT;
	struct config *conf;
	char *control;

	write_file(main_path, data, main_len);
	write_file(inc_path, data + main_len + (nul != NULL),
	    size - main_len - (nul != NULL));
	conf = config_load(main_path, &d);
	check_diag(&d);
	FUZZ_CHECK((conf != NULL) == (d.nerrors == 0));
	if (conf != NULL)
		check_config(conf);
	diag_print(&d, devnull);
	diag_free(&d);
	config_free(conf);
	control = config_control_socket(main_path);
	FUZZ_CHECK(control != NULL);
	free(control);
	return 0;
}
