/* test_limits.c: unit tests for the shared limits table (limits_shm.c:
 * take, release, heal, hand-over), the token bucket (ratelimit.c) and the
 * limit keys of the configuration (config_limits.c). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "limits_session.h"
#include "limits_shm.h"
#include "ratelimit.h"

static void
setup(void)
{
	ck_assert_int_eq(limits_create(), 0);
}

static void
teardown(void)
{
	limits_destroy();
}

START_TEST(take_up_to_max)
{
	struct limits_hold h[4];
	uint64_t k = limits_key(1, 7, "a", 1);

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(limits_take(k, 3, 100, &h[i]), 0);
	ck_assert_int_eq(limits_take(k, 3, 100, &h[3]), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(limits_count(k), 3);
	limits_release(&h[1]);
	ck_assert_uint_eq(h[1].lease, 0);
	ck_assert_uint_eq(limits_count(k), 2);
	ck_assert_int_eq(limits_take(k, 3, 100, &h[3]), 0);
	/* Another key counts on its own. */
	ck_assert_int_eq(limits_take(limits_key(1, 7, "b", 1), 1, 100, &h[1]), 0);
	ck_assert_uint_eq(limits_count(k), 3);
	for (int i = 0; i < 4; i++)
		limits_release(&h[i]);
	ck_assert_uint_eq(limits_count(k), 0);
}
END_TEST

/* The master gives back what a dead pid held, and only that; a holder's
 * later release of a lease given back (and taken by someone else) does
 * not take the new holder's count away. */
START_TEST(heal_releases_dead_holder)
{
	struct limits_hold dead[2], live, again;
	uint64_t k = limits_key(2, 1, "x", 1);

	ck_assert_int_eq(limits_take(k, 0, 4001, &dead[0]), 0);
	ck_assert_int_eq(limits_take(k, 0, 4001, &dead[1]), 0);
	ck_assert_int_eq(limits_take(k, 0, 4002, &live), 0);
	limits_heal(4001);
	ck_assert_uint_eq(limits_count(k), 1);
	ck_assert_int_eq(limits_take(k, 0, 4003, &again), 0);
	ck_assert_uint_eq(limits_count(k), 2);
	limits_release(&dead[0]);	/* stale: a no-op */
	limits_release(&dead[1]);
	ck_assert_uint_eq(limits_count(k), 2);
	limits_release(&live);
	limits_release(&again);
	ck_assert_uint_eq(limits_count(k), 0);
}
END_TEST

/* A lease in transit survives the sender's exit; the hub adopts it and
 * its own exit gives it back. */
START_TEST(transit_and_adopt)
{
	struct limits_hold h, late;
	uint64_t k = limits_key(2, 2, "y", 1);

	ck_assert_int_eq(limits_take(k, 1, 5001, &h), 0);
	limits_transit(&h, true);
	limits_heal(5001);
	ck_assert_uint_eq(limits_count(k), 1);
	limits_adopt(&h, 5002);
	ck_assert_uint_ne(h.lease, 0);
	limits_heal(5001);
	ck_assert_uint_eq(limits_count(k), 1);
	limits_heal(5002);
	ck_assert_uint_eq(limits_count(k), 0);
	/* Adopting what is no longer in transit empties the hold. */
	ck_assert_int_eq(limits_take(k, 1, 5003, &late), 0);
	limits_adopt(&late, 5004);
	ck_assert_uint_eq(late.lease, 0);
	limits_heal(5003);
	ck_assert_uint_eq(limits_count(k), 0);
}
END_TEST

/* Keys come and go many times over without filling the table: released
 * keys' slots become free again; a full table says ENOSPC. */
START_TEST(table_reuses_slots)
{
	static struct limits_hold h[LIMITS_ENTRIES];
	struct limits_hold extra;
	uint32_t i;

	for (int round = 0; round < 3; round++) {
		uint32_t n;

		/* Three quarters of the table take new keys, then no more. */
		for (n = 0; n < LIMITS_ENTRIES; n++) {
			uint32_t v = n + (uint32_t)round * LIMITS_ENTRIES;

			if (limits_take(limits_key(3, 0, &v, sizeof(v)), 1, 6000,
			    &h[n]) == -1)
				break;
		}
		ck_assert_int_eq(errno, ENOSPC);
		ck_assert_uint_eq(n, LIMITS_ENTRIES / 4 * 3);
		for (i = 0; i < n; i++)
			limits_release(&h[i]);
	}
	ck_assert_int_eq(limits_take(limits_key(3, 1, "z", 1), 1, 6000,
	    &extra), 0);
	limits_release(&extra);
}
END_TEST

/* A real child, SIGKILLed with a count held, as the master sees it. */
START_TEST(killed_child_healed)
{
	struct limits_hold h;
	uint64_t k = limits_key(4, 9, "k", 1);
	int p[2], status;
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		if (limits_take(k, 1, getpid(), &h) == 0)
			(void)write(p[1], "t", 1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_uint_eq(limits_count(k), 1);
	ck_assert_int_eq(limits_take(k, 1, getpid(), &h), -1);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	limits_heal(pid);
	ck_assert_uint_eq(limits_count(k), 0);
	ck_assert_int_eq(limits_take(k, 1, getpid(), &h), 0);
	limits_release(&h);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(log_once_a_minute)
{
	uint64_t k = limits_key(5, 0, "l", 1), other = limits_key(5, 0, "m", 1);

	ck_assert(limits_log_due(k, 1000));
	ck_assert(!limits_log_due(k, 2000));
	ck_assert(!limits_log_due(k, 1000 + LIMITS_LOG_MS - 1));
	ck_assert(limits_log_due(other, 2000));
	ck_assert(limits_log_due(k, 1000 + LIMITS_LOG_MS));
}
END_TEST

/* Sends as much as the bucket allows over simulated seconds: the total
 * stays within the rate plus the burst, and near it. */
static uint64_t
simulate(struct rate_bucket *b, uint64_t rate, int64_t seconds, size_t chunk)
{
	int64_t t = 1000000000LL, end = t + seconds * 1000000000LL, wait;
	uint64_t total = 0;

	(void)rate;
	while (t < end) {
		size_t n = rate_allow(b, t, &wait);

		if (n == 0) {
			ck_assert_int_gt(wait, 0);
			t += wait;
			continue;
		}
		n = n < chunk ? n : chunk;
		rate_charge(b, t, n);
		total += n;
		t += 10000;	/* 10 us a step */
	}
	return total;
}

START_TEST(bucket_holds_rate)
{
	static const uint64_t rates[] = { 1000, 100000, 1000000, 50000000 };

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		struct rate_bucket b;
		uint64_t want = rates[i] * 3, got;

		rate_init(&b, rates[i], NULL);
		got = simulate(&b, rates[i], 3, 65536);
		ck_assert_uint_le(got, want + want / 20 + 2 * RATE_STEP_MIN);
		ck_assert_uint_ge(got, want - want / 20);
	}
}
END_TEST

/* Two buckets on one shared state share the rate. */
START_TEST(bucket_shared)
{
	_Atomic int64_t state = 0;
	struct rate_bucket a, b;
	int64_t t = 5000000000LL, wait;
	uint64_t total = 0;

	rate_init(&a, 100000, &state);
	rate_init(&b, 100000, &state);
	for (int64_t end = t + 2000000000LL; t < end; t += 1000000) {
		size_t n = rate_allow(&a, t, &wait);

		if (n > 0) {
			rate_charge(&a, t, n);
			total += n;
		}
		if ((n = rate_allow(&b, t, &wait)) > 0) {
			rate_charge(&b, t, n);
			total += n;
		}
	}
	ck_assert_uint_le(total, 200000 + 200000 / 10);
	ck_assert_uint_ge(total, 200000 - 200000 / 10);
}
END_TEST

START_TEST(bucket_no_cap)
{
	struct rate_bucket b;
	int64_t wait;

	rate_init(&b, 0, NULL);
	ck_assert_uint_eq(rate_allow(&b, 1, &wait), SIZE_MAX);
	rate_charge(&b, 1, 1u << 30);
	ck_assert_uint_eq(rate_allow(&b, 1, &wait), SIZE_MAX);
}
END_TEST

/* Loads text as a configuration: the config (or NULL) and the messages. */
static struct config *
load(const char *text, char **msgs)
{
	char path[] = "/tmp/socks5d-limits-XXXXXX";
	int fd = mkstemp(path);
	struct diag d = DIAG_INIT;
	struct config *c;
	size_t len;
	FILE *f;

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	c = config_load(path, &d);
	f = open_memstream(msgs, &len);
	diag_print(&d, f);
	fclose(f);
	diag_free(&d);
	unlink(path);
	return c;
}

#define HEAD \
	"user = \"nobody\";\n" \
	"listeners = ( { address = \"127.0.0.1\"; port = 1080; } );\n" \
	"clients = ( { action = \"pass\"; } );\n"

START_TEST(config_limit_keys)
{
	char *msgs;
	struct config *c = load(HEAD "workers = { max_negotiating = 3; };\n"
	    "rules = ( { action = \"pass\"; max_sessions = 5;\n"
	    "  sessions_per = \"user\"; rate_up = 5000000000L;\n"
	    "  rate_down = 1000; rate_per = \"user\"; },\n"
	    "  { action = \"pass\"; } );\n", &msgs);

	ck_assert_msg(c != NULL, "%s", msgs);
	ck_assert_int_eq(c->workers.max_negotiating, 3);
	ck_assert_uint_eq(c->rules.list[0].max_sessions, 5);
	ck_assert_uint_eq(c->rules.list[0].sessions_per, LIMITS_PER_USER);
	ck_assert_uint_eq(c->rules.list[0].rate[0], 5000000000ULL);
	ck_assert_uint_eq(c->rules.list[0].rate[1], 1000);
	ck_assert(c->rules.list[0].rate_per_user);
	ck_assert_uint_eq(c->rules.list[1].max_sessions, 0);
	ck_assert_uint_eq(c->rules.list[1].rate[0], 0);
	ck_assert_uint_ne(c->rules.list[0].limit_id, c->rules.list[1].limit_id);
	config_free(c);
	free(msgs);
	c = load(HEAD "rules = ( { action = \"pass\"; } );\n", &msgs);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->workers.max_negotiating, 8);
	config_free(c);
	free(msgs);
}
END_TEST

/* The same text gives the same identity (a reload keeps the counts);
 * another position or text gives another. */
START_TEST(config_rule_identity)
{
	const char *a = HEAD "rules = ( { action = \"pass\"; max_sessions = 2; } );\n";
	const char *b = HEAD "rules = ( { action = \"pass\";\n\n max_sessions = 2; } );\n";
	const char *moved = HEAD "rules = ( { action = \"block\"; from = [\"10.0.0.0/8\"]; },\n"
	    " { action = \"pass\"; max_sessions = 2; } );\n";
	char *m1, *m2, *m3;
	struct config *ca = load(a, &m1), *cb = load(b, &m2), *cm = load(moved, &m3);

	ck_assert_ptr_nonnull(ca);
	ck_assert_ptr_nonnull(cb);
	ck_assert_ptr_nonnull(cm);
	ck_assert_uint_eq(ca->rules.list[0].limit_id, cb->rules.list[0].limit_id);
	ck_assert_uint_ne(ca->rules.list[0].limit_id, cm->rules.list[1].limit_id);
	config_free(ca);
	config_free(cb);
	config_free(cm);
	free(m1);
	free(m2);
	free(m3);
}
END_TEST

static void
assert_refused(const char *rules, int line, const char *want)
{
	char *msgs, prefix[64], text[1024];
	struct config *c;

	snprintf(text, sizeof(text), HEAD "rules = (\n%s\n);\n", rules);
	c = load(text, &msgs);
	ck_assert_msg(c == NULL, "accepted: %s", rules);
	snprintf(prefix, sizeof(prefix), ":%d: ", line);
	ck_assert_msg(strstr(msgs, prefix) != NULL && strstr(msgs, want) != NULL,
	    "for %s: %s (want line %d, %s)", rules, msgs, line, want);
	free(msgs);
}

START_TEST(config_limit_errors)
{
	assert_refused("{ action = \"pass\"; max_sessions = -1; }", 5,
	    "max_sessions");
	assert_refused("{ action = \"pass\"; max_sessions = \"3\"; }", 5,
	    "max_sessions");
	assert_refused("{ action = \"pass\"; sessions_per = \"host\"; }", 5,
	    "unknown rule sessions_per \"host\" (client, user, rule)");
	assert_refused("{ action = \"pass\";\n rate_up = 2199023255553L; }", 6,
	    "rate_up: 2199023255553 is out of range");
	assert_refused("{ action = \"pass\"; rate_down = 1.5; }", 5,
	    "rate_down must be an integer");
	assert_refused("{ action = \"pass\"; rate_per = \"group\"; }", 5,
	    "unknown rule rate_per");
	assert_refused("{ action = \"pass\"; max_session = 2; }", 5,
	    "unknown setting");
}
END_TEST

static Suite *
limits_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("table");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, take_up_to_max);
	tcase_add_test(tc, heal_releases_dead_holder);
	tcase_add_test(tc, transit_and_adopt);
	tcase_add_test(tc, table_reuses_slots);
	tcase_add_test(tc, killed_child_healed);
	tcase_add_test(tc, log_once_a_minute);
	suite_add_tcase(s, tc);

	tc = tcase_create("bucket");
	tcase_add_test(tc, bucket_holds_rate);
	tcase_add_test(tc, bucket_shared);
	tcase_add_test(tc, bucket_no_cap);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_test(tc, config_limit_keys);
	tcase_add_test(tc, config_rule_identity);
	tcase_add_test(tc, config_limit_errors);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(limits_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
