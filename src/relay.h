/* relay.h: the relay engine: one direction's state machine (what it waits
 * for, the splice or copy step, half-close, the urgent mark, resets, byte
 * counts) and the pool of pipes and buffers it borrows from. Two drivers
 * run it: the worker's (relay_run, relay_poll.c: poll on one session) and
 * the hub's (hub_relay.c: epoll on many). They differ only in how they
 * wait and how many pipes their pool may hold. */
#ifndef SOCKS5D_RELAY_H
#define SOCKS5D_RELAY_H

#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "ratelimit.h"

enum { RELAY_UP = 0, RELAY_DOWN = 1 };	/* client->target, target->client */

/* Readiness, as either driver's wait reports it: poll(2)'s bits, which
 * epoll(7) shares on Linux (hub_relay.c checks), so neither driver
 * translates. */
enum {
	RELAY_EV_IN = POLLIN,
	RELAY_EV_OUT = POLLOUT,
	RELAY_EV_PRI = POLLPRI,		/* TCP urgent data */
	RELAY_EV_HUP = POLLHUP,
	RELAY_EV_ERR = POLLERR,
};

/* Pipes (splice mode) and buffers (copy mode, or no pipe to be had) that
 * directions borrow while they hold bytes and give back once empty, so
 * that an idle session holds neither. */
struct relay_pool {
	bool splice;			/* relay.mode splice */
	int pipe_size;			/* asked of F_SETPIPE_SZ */
	size_t buf_size;
	int max_pipes;			/* open at once, borrowed or free */
	int keep_pipes, keep_bufs;	/* kept free by relay_pool_trim */
	struct relay_pipe {
		int fd[2];
		size_t cap;		/* what F_SETPIPE_SZ gave */
	} *free_pipes;
	int nfree_pipes, nopen_pipes;
	uint8_t **free_bufs;
	int nfree_bufs;
	unsigned borrowed;		/* since the last trim */
	bool warned;			/* "relaying by copy" said once */
	bool warned_small;		/* "pipe-small" said once */
	int64_t pipe_retry_ms;		/* a pipe came back small: none
					 * opened before then (io_now_ms) */
};

/* One direction: bytes flow from src through a pipe or buffer to dst. */
struct relay_dir {
	int src, dst;
	int pipe[2];			/* -1 while none is held */
	uint8_t *buf;			/* NULL while none is held */
	size_t cap;			/* of the pipe or buffer held */
	size_t len;			/* bytes held */
	size_t off;			/* copy: where they start in buf */
	bool rd_ready, wr_ready;	/* worth trying without waiting */
	bool pipe_full;			/* splice said EAGAIN with bytes held */
	bool urgent;			/* the wait said TCP urgent data */
	bool eof, shut;			/* src ended; dst shut for writing */
	uint64_t bytes;			/* delivered to dst */
	/* The rate cap (limits): NULL none. While throttled, src is not
	 * read (nor waited for) until wake_ms, when the driver steps again. */
	struct rate_bucket *rate;
	bool throttled;
	int64_t wake_ms;		/* monotonic ms (io_now_ms) */
	size_t room;			/* what the next fill may read */
};

/* A pool of at most max_pipes pipes of pipe_size and buffers of buf_size;
 * relay_pool_trim keeps keep_pipes and keep_bufs free. Never fails. */
void relay_pool_init(struct relay_pool *p, bool splice, int pipe_size,
    size_t buf_size, int max_pipes, int keep_pipes, int keep_bufs);
void relay_pool_free(struct relay_pool *p);
/* Closes free pipes and buffers beyond what is kept, after a period in
 * which none was borrowed. */
void relay_pool_trim(struct relay_pool *p);
/* Opens n pipes ahead of use (a worker's two), so sessions reuse them. */
void relay_pool_prefill(struct relay_pool *p, int n);

/* A direction from src to dst. done: it ended before (a session taken
 * over half-closed), so src is read no more and dst is shut already. */
void relay_dir_init(struct relay_dir *d, int src, int dst, bool done);
/* Puts bytes (the client's pipelined data) in front of the direction. */
int relay_dir_preload(struct relay_dir *d, struct relay_pool *p,
    const uint8_t *data, size_t n);
/* What the wait reported on src and on dst. */
void relay_dir_events(struct relay_dir *d, unsigned src_ev, unsigned dst_ev);
/* What the direction waits for, whether or not it thinks it could go on
 * now: on src (IN|PRI) and on dst (OUT). */
unsigned relay_dir_want_src(const struct relay_dir *d);
unsigned relay_dir_want_dst(const struct relay_dir *d);
/* When a throttled direction wants to be stepped again (io_now_ms time),
 * or 0 when it is not throttled. */
int64_t relay_dir_wake(const struct relay_dir *d);
/* Runs what can run now: a read (when ready), a write, the half-close
 * (EOF becomes shutdown(SHUT_WR) of dst once delivered, unless the other
 * direction is done already: the final close sends that FIN). Returns 1
 * when something moved or changed, 0 when not, -1 on an error (errno kept,
 * the failing socket in *bad_fd). */
int relay_dir_step(struct relay_dir *d, struct relay_pool *p, bool other_shut,
    int *bad_fd);
/* At the session's end: gives back what the direction holds (a pipe with
 * bytes left is closed), and when it still held bytes, which will never
 * be delivered, sets dst to close with a reset so that the cut stream does
 * not look complete. Call it before the sockets are closed. */
void relay_dir_release(struct relay_dir *d, struct relay_pool *p);

/* The end of a session that failed with err on bad_fd: a reset or broken
 * pipe names the side that went away (the target when it ended first, or
 * when bad_fd is the target and neither ended), anything else is an error.
 * first_eof is the direction that saw EOF first, or -1. */
enum audit_end relay_end_of_error(int err, int first_eof, bool bad_is_target);
/* The error pending on a socket that reported an error condition: its
 * SO_ERROR, or EPROTO when there is none (something in its error queue). */
int relay_sock_error(int fd);
/* Sockets to close with a reset (SO_LINGER 0) rather than a FIN, so that
 * an aborted session does not look complete: the other side of one that
 * reset, both at an error or the shutdown cut. */
void relay_abort_for(enum audit_end end, int err, int bad_fd, int client,
    int target);

/* The worker's driver: one session, waiting with poll. */

/* What a session handed over to a hub goes on from. */
struct relay_state {
	int64_t last_ms;		/* last activity: the idle timeout's origin */
	uint64_t bytes[2];		/* delivered so far, [RELAY_UP], [RELAY_DOWN] */
	bool done[2];			/* direction ended (half-closed) */
	int first_eof;			/* direction that ended first, or -1 */
};

struct relay_limits {
	int idle_ms;
	int park_ms;			/* idle time before parking; 0 never */
	/* Hands the idle session over: 0 when taken, -1 to keep it. */
	int (*park)(void *arg, const struct relay_state *st);
	void *park_arg;
	/* Kept current while bytes move (a status view); may be NULL. */
	_Atomic uint64_t *progress[2];
	/* Rate caps per direction (limits); NULL: none. */
	struct rate_bucket *rate[2];
	/* Every interim_ms (0: never) while the session runs here: told the
	 * bytes so far (log.interim's session-update line). */
	int interim_ms;
	void (*interim)(void *arg, const uint64_t bytes[2]);
	void *interim_arg;
};

struct relay_result {
	uint64_t bytes[2];		/* [RELAY_UP], [RELAY_DOWN] */
	enum audit_end end;		/* client, target, idle, error, shutdown, parked */
	int err;			/* errno for AUDIT_END_ERROR */
};

/* Relays until both directions are done, an error, the idle timeout, the
 * shutdown grace (io_cutoff()) or a successful park (lim->park). pending:
 * bytes the client sent after its request, which go to the target first.
 * Both sockets must be non-blocking. A session that ends by a reset, an
 * error or the shutdown cut leaves its sockets set to reset when closed
 * (relay_abort_for). */
void relay_run(struct relay_pool *pool, int client, int target,
    const uint8_t *pending, size_t npending, const struct relay_limits *lim,
    struct relay_result *res);

#endif
