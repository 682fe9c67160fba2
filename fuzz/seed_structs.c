/* seed_structs.c: writes the seeds of the targets whose input is a C
 * struct (hub and auth helper messages), with the compiler's own layout:
 * good messages and one of each malformed class the unit tests use
 * (tests/unit/test_audit.c, test_auth.c). Run by fuzz/make_corpus.py:
 *   seed_structs CORPUSDIR */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "authmsg.h"
#include "hubmsg.h"

static const char *top;

static void
put(const char *target, const char *name, const void *prefix,
    size_t prefix_len, const void *body, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", top, target, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(prefix, 1, prefix_len, f) != prefix_len ||
	    fwrite(body, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "seed_structs: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void
good_hub(struct hub_msg *m)
{
	struct sockaddr_in *c = (struct sockaddr_in *)&m->rec.client;

	memset(m, 0, sizeof(*m));
	m->magic = HUB_MAGIC;
	m->version = HUB_VERSION;
	c->sin_family = AF_INET;
	c->sin_port = htons(40000);
	c->sin_addr.s_addr = htonl(0x7f000001);
	m->rec.listener = m->rec.client;
	m->rec.target = m->rec.client;
	m->rec.target.ss_family = AF_INET6;
	snprintf(m->rec.dst, sizeof(m->rec.dst), "example.org:443");
	memcpy(m->rec.user, "alice", 5);
	m->rec.user_len = 5;
	m->rec.method = 2;
	m->rec.cmd = 1;
	m->rec.rule = 3;
	snprintf(m->rec.rule_name, sizeof(m->rec.rule_name), "web");
	m->rec.rep = 0;
	m->rec.up = 1000;
	m->rec.down = 5000;
	m->last_ms = 1;
	m->first_eof = -1;
	m->lim.rate[0] = 1 << 20;
}

/* Each hub seed: flags and leases byte, fds byte (two stream sockets),
 * the message (fuzz_hubmsg.c). */
static void
hub_seeds(void)
{
	static const uint8_t ok[2] = { 0, 2 | 0 << 2 | 1 << 4 };
	static const uint8_t leases[2] = { 4, 2 | 1 << 4 };
	static const uint8_t forged[2] = { 4 | 8, 2 | 1 << 4 };
	static const uint8_t trunc[2] = { 1, 2 | 1 << 4 };
	static const uint8_t one_fd[2] = { 0, 1 };
	static const uint8_t dgram[2] = { 0, 2 | 2 << 2 | 1 << 4 };
	static const uint8_t pipe_fd[2] = { 0, 2 | 3 << 4 };
	struct hub_msg m;

	good_hub(&m);
	put("hubmsg", "good", ok, 2, &m, sizeof(m));
	put("hubmsg", "good-leases", leases, 2, &m, sizeof(m));
	put("hubmsg", "forged-leases", forged, 2, &m, sizeof(m));
	put("hubmsg", "truncated", trunc, 2, &m, sizeof(m));
	put("hubmsg", "one-fd", one_fd, 2, &m, sizeof(m));
	put("hubmsg", "dgram-fd", dgram, 2, &m, sizeof(m));
	put("hubmsg", "pipe-fd", pipe_fd, 2, &m, sizeof(m));
	put("hubmsg", "short", ok, 2, &m, sizeof(m) - 1);
	m.magic ^= 1;
	put("hubmsg", "bad-magic", ok, 2, &m, sizeof(m));
	good_hub(&m);
	m.version++;
	put("hubmsg", "bad-version", ok, 2, &m, sizeof(m));
	good_hub(&m);
	m.done[0] = m.done[1] = 1;
	put("hubmsg", "both-done", ok, 2, &m, sizeof(m));
	good_hub(&m);
	m.first_eof = 2;
	put("hubmsg", "bad-first-eof", ok, 2, &m, sizeof(m));
	good_hub(&m);
	m.lim.rate[1] = LIMITS_RATE_MAX + 1;
	put("hubmsg", "bad-rate", ok, 2, &m, sizeof(m));
	good_hub(&m);
	memset(m.rec.dst, 'a', sizeof(m.rec.dst));
	put("hubmsg", "dst-unterminated", ok, 2, &m, sizeof(m));
	good_hub(&m);
	snprintf(m.rec.dst, sizeof(m.rec.dst), "a b\n:80");
	put("hubmsg", "dst-unescaped", ok, 2, &m, sizeof(m));
	good_hub(&m);
	m.rec.client.ss_family = AF_UNIX;
	put("hubmsg", "bad-family", ok, 2, &m, sizeof(m));
	good_hub(&m);
	m.rec.cmd = 256;
	put("hubmsg", "bad-cmd", ok, 2, &m, sizeof(m));
	good_hub(&m);
	m.rec.start_ms = INT64_MIN;
	m.last_ms = INT64_MAX;
	m.lim.tat[0] = INT64_MIN;
	m.lim.tat[1] = INT64_MAX;
	m.lim.shared = 1;
	m.lim.holds[0].lease = 1;
	m.lim.holds[1].lease = 0xffffffffu;
	put("hubmsg", "extreme-numbers", ok, 2, &m, sizeof(m));
}

static void
auth_seeds(void)
{
	static const uint8_t none[1];
	struct sockaddr_storage ss = { .ss_family = AF_INET6 };
	struct auth_request r;
	struct auth_reply rep;
	char name[AUTH_MAX_LEN];

	auth_request_make(&r, "alice", 5, "secret", 6, &ss);
	put("auth_request", "good", none, 0, &r, sizeof(r));
	memset(name, 'u', sizeof(name));
	auth_request_make(&r, name, sizeof(name), name, sizeof(name), &ss);
	put("auth_request", "longest", none, 0, &r, sizeof(r));
	put("auth_request", "short", none, 0, &r, sizeof(r) - 1);
	auth_request_make(&r, "alice", 5, "secret", 6, &ss);
	r.magic = 0;
	put("auth_request", "bad-magic", none, 0, &r, sizeof(r));
	auth_request_make(&r, "alice", 5, "secret", 6, &ss);
	r.user_len = 0;
	put("auth_request", "user-empty", none, 0, &r, sizeof(r));
	auth_request_make(&r, "alice", 5, "secret", 6, &ss);
	r.user_len = 9;
	put("auth_request", "user-len-past-nul", none, 0, &r, sizeof(r));
	auth_request_make(&r, "alice", 5, "secret", 6, &ss);
	r.pass[6] = 'x';
	put("auth_request", "pass-unterminated", none, 0, &r, sizeof(r));
	auth_request_make(&r, "alice", 5, "secret", 6, &ss);
	r.client.ss_family = AF_UNIX;
	put("auth_request", "bad-family", none, 0, &r, sizeof(r));

	memset(&rep, 0, sizeof(rep));
	rep.magic = AUTH_MAGIC;
	rep.version = AUTH_VERSION;
	rep.ngroups = 2;
	rep.gids[0] = 100;
	rep.gids[1] = 27;
	put("auth_reply", "good", none, 0, &rep, sizeof(rep));
	rep.result = AUTH_DENIED;
	rep.ngroups = 0;
	rep.delay_ms = 2000;
	put("auth_reply", "denied", none, 0, &rep, sizeof(rep));
	put("auth_reply", "short", none, 0, &rep, sizeof(rep) - 4);
	rep.result = AUTH_ERROR + 1;
	put("auth_reply", "bad-result", none, 0, &rep, sizeof(rep));
	rep.result = AUTH_OK;
	rep.ngroups = AUTH_MAX_GROUPS + 1;
	put("auth_reply", "too-many-groups", none, 0, &rep, sizeof(rep));
	rep.ngroups = AUTH_MAX_GROUPS;
	put("auth_reply", "most-groups", none, 0, &rep, sizeof(rep));
	rep.delay_ms = 60001;
	put("auth_reply", "bad-delay", none, 0, &rep, sizeof(rep));
	rep.delay_ms = 0;
	rep.version = 2;
	put("auth_reply", "bad-version", none, 0, &rep, sizeof(rep));
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seed_structs CORPUSDIR\n");
		return 2;
	}
	top = argv[1];
	hub_seeds();
	auth_seeds();
	return 0;
}
