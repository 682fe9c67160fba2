/* scoreboard.h: shared memory, one slot per worker, written by that worker
 * and read by the master. The master trusts none of it for process control:
 * pids it signals come from its own table, and which slot is free from its
 * own record (slots.h). */
#ifndef SOCKS5D_SCOREBOARD_H
#define SOCKS5D_SCOREBOARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

enum sb_state {
	SB_FREE = 0,		/* no worker */
	SB_STARTING,		/* forked, not accepting yet */
	SB_IDLE,		/* waiting in accept */
	SB_BUSY,		/* running a session */
};

struct sb_slot {
	_Atomic int state;
	pid_t pid;
	uint64_t sessions;		/* sessions run by this worker */
	int64_t session_start_ms;	/* monotonic */
	struct sockaddr_storage client;
	_Atomic uint64_t up, down;	/* bytes of the current session */
	char dst[270];			/* escaped destination, for status */
	char user[96];			/* escaped user (truncated), for status */
	_Atomic int cmd;		/* SOCKS5 command, -1: none yet */
	uint64_t sid;			/* the session's id, for status */
	/* While negotiating: the client address's key (limits_session.c),
	 * which workers.max_negotiating counts; 0 when not. */
	_Atomic uint64_t negotiating;
};

struct scoreboard {
	size_t nslots;
	_Atomic int idle;		/* workers in SB_IDLE: a hint for wake-ups */
	struct sb_slot slots[];
};

/* A shared anonymous mapping with n free slots (inherited over fork). */
struct scoreboard *scoreboard_create(size_t n);
void scoreboard_destroy(struct scoreboard *sb);
/* Workers in the given state. */
size_t scoreboard_count(const struct scoreboard *sb, enum sb_state state);
/* Moves a worker's slot to a new state, keeping the idle count. */
void scoreboard_set_state(struct scoreboard *sb, struct sb_slot *slot,
    enum sb_state state);

#endif
