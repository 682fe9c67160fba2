/* test_auth.c: unit tests for the auth helpers' codec (src/authmsg.c), the
 * keyed hash (src/siphash.c) and the credential cache (src/authcache.c). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authcache.h"
#include "authmsg.h"
#include "siphash.h"

static struct sockaddr_storage
client(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(4000);
	inet_pton(AF_INET, "192.0.2.7", &sin->sin_addr);
	return ss;
}

START_TEST(siphash_vectors)
{
	uint8_t key[16], msg[64];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	/* From the SipHash paper's reference vectors (vectors.h). */
	ck_assert_uint_eq(siphash24(key, msg, 0), 0x726fdb47dd0e0e31ULL);
	ck_assert_uint_eq(siphash24(key, msg, 1), 0x74f839c593dc67fdULL);
	ck_assert_uint_eq(siphash24(key, msg, 8), 0x93f5f5799a932462ULL);
	ck_assert_uint_eq(siphash24(key, msg, 15), 0xa129ca6149be45e5ULL);
	ck_assert_uint_eq(siphash24(key, msg, 63), 0x958a324ceb064572ULL);
}
END_TEST

START_TEST(request_make_bounds)
{
	struct sockaddr_storage c = client();
	struct auth_request r;
	char big[300];

	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(auth_request_make(&r, "alice", 5, "pw", 2, &c), 0);
	ck_assert_ptr_null(auth_request_check(&r, sizeof(r)));
	ck_assert_int_eq(auth_request_make(&r, big, 255, big, 255, &c), 0);
	ck_assert_ptr_null(auth_request_check(&r, sizeof(r)));
	ck_assert_int_eq(auth_request_make(&r, big, 256, "pw", 2, &c), -1);
	ck_assert_int_eq(auth_request_make(&r, "", 0, "pw", 2, &c), -1);
	ck_assert_int_eq(auth_request_make(&r, "alice", 5, "", 0, &c), -1);
	ck_assert_int_eq(auth_request_make(&r, "a\0b", 3, "pw", 2, &c), -1);
	ck_assert_int_eq(auth_request_make(&r, "alice", 5, "p\0", 2, &c), -1);
}
END_TEST

START_TEST(request_check_refuses)
{
	struct sockaddr_storage c = client();
	struct auth_request r, bad;

	ck_assert_int_eq(auth_request_make(&r, "alice", 5, "pw", 2, &c), 0);
	ck_assert_str_eq(auth_request_check(&r, sizeof(r) - 1), "wrong size");
	bad = r;
	bad.magic = 0;
	ck_assert_str_eq(auth_request_check(&bad, sizeof(bad)), "wrong magic or version");
	bad = r;
	bad.user_len = 0;
	ck_assert_str_eq(auth_request_check(&bad, sizeof(bad)), "bad user");
	bad = r;
	bad.user_len = 3;	/* "ali" then 'c' where its NUL should be */
	ck_assert_str_eq(auth_request_check(&bad, sizeof(bad)), "bad user");
	bad = r;
	bad.pass[1] = '\0';
	ck_assert_str_eq(auth_request_check(&bad, sizeof(bad)), "bad password");
	bad = r;
	bad.client.ss_family = AF_UNIX;
	ck_assert_str_eq(auth_request_check(&bad, sizeof(bad)), "bad address");
	auth_request_wipe(&r);
	for (size_t i = 0; i < sizeof(r.pass); i++)
		ck_assert_int_eq(r.pass[i], 0);
}
END_TEST

START_TEST(reply_check_refuses)
{
	struct auth_reply r;

	memset(&r, 0, sizeof(r));
	r.magic = AUTH_MAGIC;
	r.version = AUTH_VERSION;
	ck_assert_ptr_null(auth_reply_check(&r, sizeof(r)));
	ck_assert_str_eq(auth_reply_check(&r, 4), "wrong size");
	r.result = 4;
	ck_assert_str_eq(auth_reply_check(&r, sizeof(r)), "bad result");
	r.result = AUTH_OK;
	r.ngroups = AUTH_MAX_GROUPS + 1;
	ck_assert_str_eq(auth_reply_check(&r, sizeof(r)), "bad group count");
	r.ngroups = 0;
	r.delay_ms = 60001;
	ck_assert_str_eq(auth_reply_check(&r, sizeof(r)), "bad delay");
	ck_assert_str_eq(auth_result_name(AUTH_DENIED), "password");
	ck_assert_str_eq(auth_result_name(AUTH_ACCOUNT), "account");
	ck_assert_str_eq(auth_result_name(AUTH_ERROR), "error");
}
END_TEST

static char watched[64];

static void
cache_setup(void)
{
	FILE *f;

	strcpy(watched, "/tmp/socks5d-test-watch-XXXXXX");
	ck_assert_int_ne(mkstemp(watched), -1);
	f = fopen(watched, "w");
	fputs("alice:one\n", f);
	fclose(f);
}

static void
cache_teardown(void)
{
	unlink(watched);
}

static bool
lookup(struct auth_cache *c, const char *user, const char *pass,
    struct auth_reply *out)
{
	struct sockaddr_storage cl = client();
	struct auth_request r;

	ck_assert_int_eq(auth_request_make(&r, user, strlen(user), pass,
	    strlen(pass), &cl), 0);
	memset(out, 0, sizeof(*out));
	return authcache_lookup(c, &r, out);
}

static void
store(struct auth_cache *c, const char *user, const char *pass, int ttl)
{
	struct sockaddr_storage cl = client();
	struct auth_request r;
	struct auth_reply rep;

	ck_assert_int_eq(auth_request_make(&r, user, strlen(user), pass,
	    strlen(pass), &cl), 0);
	memset(&rep, 0, sizeof(rep));
	rep.result = AUTH_OK;
	rep.ngroups = 2;
	rep.gids[0] = 100;
	rep.gids[1] = 27;
	authcache_store(c, &r, &rep, ttl);
}

START_TEST(cache_hits_only_the_same_password)
{
	const char *w[] = { watched };
	size_t bytes;
	struct auth_cache *c = authcache_create(64, w, 1, &bytes);
	struct auth_reply out;

	ck_assert_ptr_nonnull(c);
	ck_assert(!lookup(c, "alice", "one", &out));
	store(c, "alice", "one", 60);
	ck_assert(lookup(c, "alice", "one", &out));
	ck_assert_int_eq(out.result, AUTH_OK);
	ck_assert_int_eq(out.cached, 1);
	ck_assert_int_eq(out.ngroups, 2);
	ck_assert_int_eq(out.gids[1], 27);
	ck_assert(!lookup(c, "alice", "two", &out));
	ck_assert(!lookup(c, "alicf", "one", &out));
	ck_assert(lookup(c, "alice", "one", &out));
	authcache_destroy(c);
}
END_TEST

START_TEST(cache_forgets_when_a_watched_file_changes)
{
	const char *w[] = { watched };
	size_t bytes;
	struct auth_cache *c = authcache_create(64, w, 1, &bytes);
	struct auth_reply out;
	FILE *f;

	store(c, "alice", "one", 60);
	ck_assert(lookup(c, "alice", "one", &out));
	f = fopen(watched, "a");
	fputs("bob:two\n", f);
	fclose(f);
	ck_assert(!lookup(c, "alice", "one", &out));
	authcache_destroy(c);
}
END_TEST

START_TEST(cache_entries_expire)
{
	const char *w[] = { watched };
	size_t bytes;
	struct auth_cache *c = authcache_create(64, w, 1, &bytes);
	struct auth_reply out;

	store(c, "alice", "one", 0);
	ck_assert(!lookup(c, "alice", "one", &out));
	authcache_destroy(c);
}
END_TEST

START_TEST(cache_many_users)
{
	const char *w[] = { watched };
	size_t bytes;
	struct auth_cache *c = authcache_create(16, w, 1, &bytes);
	struct auth_reply out;
	char user[32];
	int hits = 0;

	for (int i = 0; i < 100; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		store(c, user, "pw", 60);
	}
	for (int i = 0; i < 100; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		hits += lookup(c, user, "pw", &out);
	}
	ck_assert_int_le(hits, 16);	/* a full table evicts, never grows */
	ck_assert(lookup(c, "user99", "pw", &out));	/* the newest stays */
	authcache_destroy(c);
}
END_TEST

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *codec = tcase_create("codec"), *cache = tcase_create("cache");

	tcase_add_test(codec, siphash_vectors);
	tcase_add_test(codec, request_make_bounds);
	tcase_add_test(codec, request_check_refuses);
	tcase_add_test(codec, reply_check_refuses);
	suite_add_tcase(s, codec);
	tcase_add_checked_fixture(cache, cache_setup, cache_teardown);
	tcase_add_test(cache, cache_hits_only_the_same_password);
	tcase_add_test(cache, cache_forgets_when_a_watched_file_changes);
	tcase_add_test(cache, cache_entries_expire);
	tcase_add_test(cache, cache_many_users);
	suite_add_tcase(s, cache);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
