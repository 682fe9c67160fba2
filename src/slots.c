/* slots.c: the master's bitmap of scoreboard slots in use. */
#include <stdlib.h>

#include "log.h"
#include "slots.h"

#define WORD_BITS 64

int
slots_init(struct slots *s, size_t n)
{
	size_t words = (n + WORD_BITS - 1) / WORD_BITS;

	s->n = n;
	s->taken = 0;
	s->bits = calloc(words > 0 ? words : 1, sizeof(*s->bits));
	return s->bits != NULL ? 0 : -1;
}

void
slots_free(struct slots *s)
{
	free(s->bits);
	s->bits = NULL;
	s->n = s->taken = 0;
}

int
slots_take(struct slots *s)
{
	for (size_t w = 0; w * WORD_BITS < s->n; w++) {
		size_t i;

		if (s->bits[w] == UINT64_MAX)
			continue;
		i = w * WORD_BITS + (size_t)__builtin_ctzll(~s->bits[w]);
		if (i >= s->n)
			break;
		s->bits[w] |= UINT64_C(1) << (i % WORD_BITS);
		s->taken++;
		return (int)i;
	}
	return -1;
}

bool
slots_is_taken(const struct slots *s, int i)
{
	return i >= 0 && (size_t)i < s->n &&
	    (s->bits[(size_t)i / WORD_BITS] >> ((size_t)i % WORD_BITS) & 1);
}

void
slots_put(struct slots *s, int i)
{
	if (!slots_is_taken(s, i))
		fatalx("slot %d given back but not taken", i);
	s->bits[(size_t)i / WORD_BITS] &=
	    ~(UINT64_C(1) << ((size_t)i % WORD_BITS));
	s->taken--;
}
