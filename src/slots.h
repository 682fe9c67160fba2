/* slots.h: the master's own record of which scoreboard slots are taken.
 * Workers write the scoreboard; which slot is free is never read from it. */
#ifndef SOCKS5D_SLOTS_H
#define SOCKS5D_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct slots {
	uint64_t *bits;			/* bit i set: slot i is taken */
	size_t n;			/* slots in all */
	size_t taken;
};

/* n free slots. 0, or -1 (errno) when out of memory. */
int slots_init(struct slots *s, size_t n);
void slots_free(struct slots *s);
/* Takes the lowest free slot: its index, or -1 when all are taken. */
int slots_take(struct slots *s);
/* Gives back a taken slot; giving back a free one is a broken invariant. */
void slots_put(struct slots *s, int i);
bool slots_is_taken(const struct slots *s, int i);

#endif
