/* test_slots.c: unit tests for the master's slot allocator (src/slots.c). */
#include <check.h>
#include <stdlib.h>

#include "scoreboard.h"
#include "slots.h"

START_TEST(take_lowest_free)
{
	struct slots s;

	ck_assert_int_eq(slots_init(&s, 4), 0);
	ck_assert_int_eq(slots_take(&s), 0);
	ck_assert_int_eq(slots_take(&s), 1);
	ck_assert_int_eq(slots_take(&s), 2);
	slots_put(&s, 1);
	ck_assert(!slots_is_taken(&s, 1));
	ck_assert_int_eq(slots_take(&s), 1);
	ck_assert_uint_eq(s.taken, 3);
	slots_free(&s);
}
END_TEST

START_TEST(full_says_minus_one)
{
	struct slots s;

	ck_assert_int_eq(slots_init(&s, 3), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(slots_take(&s), i);
	ck_assert_int_eq(slots_take(&s), -1);
	slots_put(&s, 2);
	ck_assert_int_eq(slots_take(&s), 2);
	ck_assert_int_eq(slots_take(&s), -1);
	slots_free(&s);
}
END_TEST

/* Across 64-bit words, and a size that is not a multiple of 64. */
START_TEST(many_slots)
{
	struct slots s;
	size_t n = 200;

	ck_assert_int_eq(slots_init(&s, n), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(slots_take(&s), (int)i);
	ck_assert_int_eq(slots_take(&s), -1);
	slots_put(&s, 130);
	slots_put(&s, 63);
	ck_assert_int_eq(slots_take(&s), 63);
	ck_assert_int_eq(slots_take(&s), 130);
	ck_assert_int_eq(slots_take(&s), -1);
	ck_assert(!slots_is_taken(&s, -1));
	ck_assert(!slots_is_taken(&s, (int)n));
	slots_free(&s);
}
END_TEST

START_TEST(zero_slots)
{
	struct slots s;

	ck_assert_int_eq(slots_init(&s, 0), 0);
	ck_assert_int_eq(slots_take(&s), -1);
	slots_free(&s);
}
END_TEST

/* The attack the allocator exists for: a worker writes SB_FREE into its
 * own scoreboard slot. The master's record still says taken, so the slot
 * goes to no second worker. */
START_TEST(scoreboard_writes_do_not_free)
{
	struct scoreboard *sb = scoreboard_create(2);
	struct slots s;
	int a, b;

	ck_assert_ptr_nonnull(sb);
	ck_assert_int_eq(slots_init(&s, sb->nslots), 0);
	a = slots_take(&s);
	scoreboard_set_state(sb, &sb->slots[a], SB_BUSY);
	/* What a compromised worker could write. */
	atomic_store(&sb->slots[a].state, SB_FREE);
	b = slots_take(&s);
	ck_assert_int_ne(a, b);
	ck_assert_int_eq(slots_take(&s), -1);
	slots_free(&s);
	scoreboard_destroy(sb);
}
END_TEST

/* Giving back a slot that is not taken is a broken invariant: fatal. */
START_TEST(put_free_is_fatal)
{
	struct slots s;

	ck_assert_int_eq(slots_init(&s, 2), 0);
	slots_put(&s, 1);
}
END_TEST

static Suite *
slots_suite(void)
{
	Suite *s = suite_create("slots");
	TCase *tc = tcase_create("allocator");

	tcase_add_test(tc, take_lowest_free);
	tcase_add_test(tc, full_says_minus_one);
	tcase_add_test(tc, many_slots);
	tcase_add_test(tc, zero_slots);
	tcase_add_test(tc, scoreboard_writes_do_not_free);
	tcase_add_exit_test(tc, put_free_is_fatal, 1);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(slots_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
