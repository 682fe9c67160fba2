/* hub_relay.h: the hub's relay driver: many parked sessions in one epoll
 * set, each run by the relay engine (relay.c). */
#ifndef SOCKS5D_HUB_RELAY_H
#define SOCKS5D_HUB_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubmsg.h"

struct hub_session;

/* A socket in the hub's epoll set: a session's side, or (s NULL) one of
 * the hub's own (its channel, its signalfd). epoll's data points here. */
struct hub_sock {
	struct hub_session *s;
	int fd;
	uint32_t events;		/* interest registered */
	bool in_set;
	bool hup;			/* clean hang-up: left out while nothing is wanted */
};

/* ep: the hub's epoll set. The pool relays by splice when splice is set.
 * Each session that ends gives a ticket back to tickets. */
void hub_relay_init(int ep, int hub_index, int idle_ms, bool splice,
    int pipe_size, struct hub_tickets *tickets);
void hub_relay_free(void);
/* fds this driver keeps out of the sessions' share (its pipes). */
long hub_relay_fd_reserve(void);
/* Takes over a session that a worker handed over (checked already). */
void hub_relay_start(const struct hub_msg *m, const int fds[2]);
/* Events on a session's socket. */
void hub_relay_event(struct hub_sock *k, uint32_t events);
/* Ends idle sessions, or all of them when cut (the stop's grace ran out). */
void hub_relay_scan(int64_t now, bool cut);
/* No session goes idle before this moment (INT64_MAX: none at all). */
int64_t hub_relay_next_idle(void);
/* log.interim: a session-update line for every parked session. */
void hub_relay_interim(int64_t now);
/* Rate caps: when a throttled session is due (INT64_MAX: none is), and
 * steps the sessions whose time has come. */
int64_t hub_relay_next_wake(void);
void hub_relay_wake(int64_t now);
/* After a quiet period, closes pipes and buffers the pool keeps beyond a
 * few. */
void hub_relay_trim(void);
/* Frees sessions that ended during the last batch of events. */
void hub_relay_reap(void);
/* Sessions relayed now. */
size_t hub_relay_count(void);

#endif
