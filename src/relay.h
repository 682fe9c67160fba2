/* relay.h: moving bytes both ways between client and target, by splice(2)
 * through per-direction pipes or by a plain read/write copy. */
#ifndef SOCKS5D_RELAY_H
#define SOCKS5D_RELAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "scoreboard.h"

enum { RELAY_UP = 0, RELAY_DOWN = 1 };	/* client->target, target->client */

/* What one worker keeps across sessions: pipes and buffers, made once. */
struct relay_ctx {
	enum relay_mode mode;		/* configured */
	int pipes[2][2];		/* [direction][read end, write end] */
	size_t pipe_cap[2];
	uint8_t *bufs[2];
	size_t buf_cap;
	int pipe_size;
};

enum relay_end {
	RELAY_END_CLIENT,		/* the client closed first */
	RELAY_END_TARGET,		/* the target closed first */
	RELAY_END_IDLE,			/* nothing moved for timeouts.idle */
	RELAY_END_ERROR,		/* an I/O error other than a reset */
	RELAY_END_SHUTDOWN,		/* the daemon stopped and the grace ran out */
	RELAY_END_PARKED,		/* handed to a hub, which logs it */
};

struct relay_limits {
	int idle_ms;
	int park_ms;			/* idle time before parking; 0 never */
	/* Hands the idle session over: 0 when taken. last_ms is the time of
	 * the last activity, bytes the counts so far. */
	int (*park)(void *arg, int64_t last_ms, const uint64_t bytes[2]);
	void *park_arg;
};

struct relay_result {
	uint64_t bytes[2];		/* [RELAY_UP], [RELAY_DOWN] */
	enum relay_end end;
	int err;			/* errno for RELAY_END_ERROR */
	bool spliced;			/* false if the copy path was used */
};

/* Makes pipes (splice mode) and buffers. Never fails: without pipes the
 * relay falls back to copying, and says so once. */
void relay_init(struct relay_ctx *ctx, const struct config *conf);
void relay_free(struct relay_ctx *ctx);
/* Relays until both directions are done, an error, the idle timeout, the
 * shutdown grace (io_cutoff()) or a successful park (lim->park). pending: bytes the client sent after its request, which
 * go to the target first. Both sockets must be non-blocking. The slot's
 * byte counts are kept current. */
void relay_run(struct relay_ctx *ctx, int client, int target,
    const uint8_t *pending, size_t npending, const struct relay_limits *lim,
    struct sb_slot *slot, struct relay_result *res);
const char *relay_end_name(enum relay_end end);

#endif
