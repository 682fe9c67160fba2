/* children.h: the master's table of roles and its record of live children:
 * one spawn path, one reap path and one exit log for every role. */
#ifndef SOCKS5D_CHILDREN_H
#define SOCKS5D_CHILDREN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "generation.h"
#include "listener.h"

/* The rows of the table, in start order. */
enum child_role { ROLE_AUTH, ROLE_HUB, ROLE_WORKER, ROLE_COUNT };

/* Which of the master's fds and mappings a child keeps; it lets go of the
 * rest right after fork. */
enum {
	KEEP_LISTENERS = 1 << 0,	/* the listening sockets */
	KEEP_SCOREBOARD = 1 << 1,	/* its own generation's scoreboard */
	KEEP_NOTIFY = 1 << 2,		/* the pipe that wakes the master */
	KEEP_HUB_END = 1 << 3,		/* hub end of channel <slot> */
	KEEP_WORKER_END = 1 << 4,	/* worker end of channel slot % nhubs */
	KEEP_AUTH_END = 1 << 5,		/* the auth helpers' end of their channel */
	KEEP_AUTH_WORKER_END = 1 << 6,	/* the workers' end of it */
	KEEP_AUTH_SHARED = 1 << 7,	/* the helpers' shared memory */
};

enum child_respawn {
	RESPAWN_POOL,		/* the pool policy decides, each tick */
	RESPAWN_SLOT,		/* each slot of the current generation is kept
				 * filled, at most once per respawn_ms */
};

/* The master's own record of a child: what it signals comes from here,
 * never from the scoreboard that workers can write. */
struct child {
	pid_t pid;
	struct generation *gen;
	int slot;			/* scoreboard slot, or hub index */
	enum child_role role;
	bool retiring;
};

/* What a role's entry function gets, in the child, after the fds it does
 * not keep are closed and (unless privileged) root is dropped. */
struct child_start {
	struct generation *gen;
	int slot;
	pid_t master;
	int chan_fd;			/* the channel end it kept, or -1 */
	int notify_fd;			/* the wake-up pipe, or -1 */
};

/* One row of the table of roles, after OpenBSD relayd's procs[]. */
struct role {
	const char *name;		/* log role and "NAME-exit" lines */
	bool privileged;		/* stays root: no priv_drop */
	bool counted;			/* counts against workers.max */
	enum child_respawn respawn;
	int respawn_ms;			/* RESPAWN_SLOT: least time between */
	unsigned keeps;			/* KEEP_* */
	const char *lost;		/* added to an abnormal exit's line */
	/* The role's main; it never returns (a function pointer cannot say
	 * noreturn). */
	void (*enter)(const struct child_start *cs);
	/* Tops up the current generation's children of this role (starting:
	 * the daemon's first fill). Returns whether to tick fast. */
	bool (*maintain)(struct generation *g, bool starting);
	/* g is no longer current, or the daemon stops. NULL: nothing to do. */
	void (*release)(struct generation *g, bool stopping);
	/* Text added to an exit by signal (" state=busy"), or NULL. */
	const char *(*exit_state)(const struct child *c);
	/* After its exit was logged: give back what the child held. */
	void (*reaped)(const struct child *c, int status);
};

/* An fd or a mapping of the master's that only the rows whose keeps has
 * one of kept_by's bits keep; every other child closes or unmaps it. */
void children_register_fd(int fd, unsigned kept_by);
void children_register_map(void *addr, size_t len, unsigned kept_by);
void children_unregister_fd(int fd);
void children_unregister_map(void *addr);
/* In a child: the registered fd kept for bit, or -1. */
int children_kept_fd(unsigned bit);

/* What every child lets go of that is the master's alone. */
struct children_env {
	int sigfd, notify_rd, notify_wr;
	const struct listen_set *listeners;
};

/* roles has ROLE_COUNT rows (checked: fatal if one cannot work); both stay
 * the caller's and must outlive us. */
void children_init(const struct role *roles, const struct children_env *env);
const struct role *children_role(enum child_role role);
/* Forks a child of role for slot of g and runs the row's entry in it.
 * The child's pid, or -1 (logged). */
pid_t children_spawn(enum child_role role, struct generation *g, int slot);
/* Reaps every child that exited: logs it and calls its row's reaped. */
void children_reap(void);
/* Sends sig to every child of g (NULL: of every generation). */
void children_signal(const struct generation *g, int sig);
/* Live children of role; of every role; of the counted roles. */
size_t children_count(enum child_role role);
size_t children_total(void);
size_t children_counted(void);
/* The live children, for a pool's choices: *n entries. */
struct child *children_table(size_t *n);
void children_free(void);

#endif
