/* scoreboard.c: the shared worker status array. */
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "scoreboard.h"

static size_t
scoreboard_bytes(size_t n)
{
	return sizeof(struct scoreboard) + n * sizeof(struct sb_slot);
}

struct scoreboard *
scoreboard_create(size_t n)
{
	struct scoreboard *sb;

	sb = mmap(NULL, scoreboard_bytes(n), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sb == MAP_FAILED)
		return NULL;
	memset(sb, 0, sizeof(*sb));
	sb->nslots = n;
	return sb;
}

void
scoreboard_destroy(struct scoreboard *sb)
{
	if (sb != NULL && munmap(sb, scoreboard_bytes(sb->nslots)) == -1)
		log_warn("munmap scoreboard");
}

size_t
scoreboard_count(const struct scoreboard *sb, enum sb_state state)
{
	size_t n = 0;

	for (size_t i = 0; i < sb->nslots; i++)
		if (atomic_load_explicit(&sb->slots[i].state,
		    memory_order_relaxed) == (int)state)
			n++;
	return n;
}

void
scoreboard_set_state(struct scoreboard *sb, struct sb_slot *slot,
    enum sb_state state)
{
	int old = atomic_exchange(&slot->state, (int)state);

	if (old == SB_IDLE && state != SB_IDLE)
		atomic_fetch_sub(&sb->idle, 1);
	else if (old != SB_IDLE && state == SB_IDLE)
		atomic_fetch_add(&sb->idle, 1);
}
