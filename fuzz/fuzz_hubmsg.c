/* fuzz_hubmsg.c: the worker-to-hub message as a hub checks it
 * (hub_msg_check), and what the hub then does with one it accepted
 * (hub_relay.c hub_relay_start): its times clamped, its limits adopted and
 * its rate buckets stepped, its audit lines formatted. Every line the hub
 * would log is caught by a syslog wrapper (the target links with
 * -Wl,--wrap=syslog) and must be one printable line.
 *
 * Leases: each run takes two real ones (as a worker holds them, in
 * transit); byte 0 bit 2 puts them in the message as a worker would, bit
 * 3 names the first twice (a forged message). Whatever the message says,
 * once the hub ends the session and the worker's copies are given back,
 * nothing is left counted: no lease is given back twice or kept.
 *
 * Input: byte 0 the recvmsg flags (bit 0 MSG_TRUNC, bit 1 MSG_CTRUNC),
 * byte 1 the fds (bits 0-1 how many, bits 2-3 and 4-5 which kind the first
 * and second are: stream socket, its peer, datagram socket, pipe), the
 * rest the message as received (its length is n). */
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "audit.h"
#include "fuzz.h"
#include "hubmsg.h"
#include "io.h"
#include "limits_session.h"
#include "limits_shm.h"
#include "ratelimit.h"

static int kinds[4];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int stream[2], dgram[2], pipefd[2];

	(void)argc;
	(void)argv;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream) == -1 ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram) == -1 ||
	    pipe(pipefd) == -1 || limits_create() == -1) {
		perror("fuzz_hubmsg: setup");
		exit(1);
	}
	kinds[0] = stream[0];
	kinds[1] = stream[1];
	kinds[2] = dgram[0];
	kinds[3] = pipefd[0];
	return 0;
}

void __wrap_syslog(int pri, const char *fmt, ...);

void
__wrap_syslog(int pri, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	int n;

	(void)pri;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	FUZZ_CHECK(n >= 0 && (size_t)n < sizeof(line));
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(line[i] >= 0x20 && line[i] < 0x7f);
}

/* As hub_relay_start takes a session over (how: byte 0 of the input). */
static void
take_over(const struct hub_msg *msg, uint8_t how)
{
	struct hub_msg m = *msg;
	struct audit_record rec = m.rec;
	struct limits_parked lp;
	struct limits_hold own[LIMITS_HOLDS];
	uint64_t keys[LIMITS_HOLDS] = { 1, 2 };
	int64_t now = io_now_ms(), now_ns = rate_now_ns(), wait = 0;

	for (int i = 0; i < LIMITS_HOLDS; i++) {
		FUZZ_CHECK(limits_take(keys[i], 0, getpid(), &own[i]) == 0);
		limits_transit(&own[i], true);
		if (how & 4)
			m.lim.holds[i] = own[i];
	}
	if (how & 8)
		m.lim.holds[1] = m.lim.holds[0];
	rec.parked = true;
	rec.end = AUDIT_END_NONE;
	if (rec.start_ms > now || rec.start_ms < now - HUB_MAX_AGE_MS)
		rec.start_ms = now;
	limits_parked_start(&lp, &m.lim, now_ns);
	for (int i = 0; i < 2; i++) {
		size_t may = rate_allow(&lp.rate[i], now_ns, &wait);

		FUZZ_CHECK(wait >= 0);
		rate_charge(&lp.rate[i], now_ns, may == SIZE_MAX ? 65536 : may);
		(void)rate_allow(&lp.rate[i], now_ns + 1000000, &wait);
	}
	limits_parked_end(&lp);
	for (int i = 0; i < LIMITS_HOLDS; i++) {
		limits_release(&own[i]);
		FUZZ_CHECK(limits_count(keys[i]) == 0);
	}
	audit_log_start(&rec, now);
	audit_log_update(&rec, rec.up, rec.down, now);
	rec.end = AUDIT_END_IDLE;
	audit_log(&rec, now);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hub_msg m;
	int flags = 0, fds[3], nfds;
	ssize_t n;
	const char *why;

	if (size < 2)
		return 0;
	flags |= data[0] & 1 ? MSG_TRUNC : 0;
	flags |= data[0] & 2 ? MSG_CTRUNC : 0;
	nfds = data[1] & 3;
	fds[0] = kinds[(data[1] >> 2) & 3];
	fds[1] = kinds[(data[1] >> 4) & 3];
	fds[2] = kinds[0];
	n = (ssize_t)(size - 2);
	memset(&m, 0, sizeof(m));
	memcpy(&m, data + 2, (size_t)n < sizeof(m) ? (size_t)n : sizeof(m));
	why = hub_msg_check(&m, n, flags, fds, nfds);
	if (why != NULL)
		return 0;
	FUZZ_CHECK(n == (ssize_t)sizeof(m) && nfds == 2 && flags == 0);
	FUZZ_CHECK(m.magic == HUB_MAGIC && m.version == HUB_VERSION);
	FUZZ_CHECK(audit_dst_valid(m.rec.dst, sizeof(m.rec.dst)));
	FUZZ_CHECK(m.first_eof >= -1 && m.first_eof <= 1);
	take_over(&m, data[0]);
	return 0;
}
