/* rulescost.c: what the rules cost one benchmark session, without the
 * rest of the session: loads a configuration (socks5d's own loader) and
 * asks its rules, N times, the questions a bench/run session asks
 * (client 127.0.0.1 on listener 0, method none, CONNECT to 127.0.0.1 or
 * to "localhost", which /etc/hosts gives as 127.0.0.1 and ::1). Prints
 * ns per session for each kind (KIND: ipv4, domain or both, the
 * default). Under valgrind, the difference of the instruction counts of
 * two runs (N and 2N) over N is the count per session (bench/run
 * --rules). Usage: rulescost CONFIG [N [KIND]] */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "config.h"
#include "diag.h"
#include "rules.h"
#include "socks5.h"

static volatile int sink;

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One IPv4 session: the client check and one request. */
static void
session_ipv4(const struct config *c, const struct sockaddr *cl,
    const struct sockaddr *dst)
{
	struct rules_query q = { .client = cl, .listener = 0,
	    .method = SOCKS5_METHOD_NONE, .cmd = SOCKS5_CMD_CONNECT };

	sink += rules_match_client(&c->clients, &q).pass;
	q.dst = dst;
	q.port = 40000;
	sink += rules_match_request(&c->rules, &q).pass;
}

/* One domain session: the client check, the name before resolution,
 * then its first address (connect.c stops at the first that passes). */
static void
session_domain(const struct config *c, const struct sockaddr *cl,
    const struct sockaddr *dst)
{
	struct rules_query q = { .client = cl, .listener = 0,
	    .method = SOCKS5_METHOD_NONE, .cmd = SOCKS5_CMD_CONNECT };

	sink += rules_match_client(&c->clients, &q).pass;
	q.dst_name = "localhost";
	q.port = 40000;
	sink += rules_may_pass(&c->rules, &q).pass;
	q.dst = dst;
	sink += rules_match_request(&c->rules, &q).pass;
}

int
main(int argc, char **argv)
{
	struct diag d = DIAG_INIT;
	struct config *c;
	struct sockaddr_storage cl, dst;
	socklen_t len;
	long n = argc > 2 ? atol(argv[2]) : 100000;
	const char *kind = argc > 3 ? argv[3] : "both";
	bool ipv4 = strcmp(kind, "domain") != 0;
	bool domain = strcmp(kind, "ipv4") != 0;
	double t0, t1, t2;

	if (argc < 2 || n <= 0 || (!ipv4 && !domain) || (strcmp(kind, "both")
	    != 0 && strcmp(kind, "ipv4") != 0 && strcmp(kind, "domain") != 0)) {
		fprintf(stderr, "usage: rulescost CONFIG [N [ipv4|domain|both]]\n");
		return 2;
	}
	if ((c = config_load(argv[1], &d)) == NULL) {
		diag_print(&d, stderr);
		return 1;
	}
	if (addr_parse_ip("127.0.0.1", 50000, &cl, &len) != 0 ||
	    addr_parse_ip("127.0.0.1", 40000, &dst, &len) != 0)
		return 1;
	t0 = now_ns();
	for (long i = 0; ipv4 && i < n; i++)
		session_ipv4(c, (struct sockaddr *)&cl, (struct sockaddr *)&dst);
	t1 = now_ns();
	for (long i = 0; domain && i < n; i++)
		session_domain(c, (struct sockaddr *)&cl, (struct sockaddr *)&dst);
	t2 = now_ns();
	printf("rules %zu clients %zu: ipv4 %.0f ns/session, domain %.0f ns/session\n",
	    c->rules.n, c->clients.n, (t1 - t0) / n, (t2 - t1) / n);
	config_free(c);
	diag_free(&d);
	return 0;
}
