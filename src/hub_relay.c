/* hub_relay.c: the hub's relay driver: parked sessions in one epoll set,
 * level-triggered, each direction run by the relay engine (relay.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "addr.h"
#include "hub_relay.h"
#include "io.h"
#include "limits_session.h"
#include "log.h"
#include "relay.h"
#include "stats.h"

#define HUB_BUF		16384	/* copy: per direction, only while bytes wait */
#define HUB_BUFS_KEPT	16
#define HUB_FILL_ROUNDS	16	/* steps per event while bytes go on */
#define HUB_PIPES	64	/* splice: pipes for sessions moving bytes */
#define HUB_PIPES_KEPT	4	/* empty ones kept through a quiet second */

enum { SIDE_CLIENT = 0, SIDE_TARGET = 1 };

struct hub_session {
	struct hub_sock sock[2];	/* [SIDE_CLIENT], [SIDE_TARGET] */
	struct relay_dir dir[2];	/* [RELAY_UP] reads the client */
	struct audit_record rec;	/* what the audit line says */
	struct limits_parked lim;	/* counts held, rate caps */
	struct stats_parked *row;	/* its row in the status table */
	int first_eof;			/* direction that ended first, or -1 */
	int64_t last;			/* last activity */
	bool dead;			/* ended; freed after the event batch */
	struct hub_session *prev, *next;
};

static struct {
	int ep, index, idle_ms;
	struct hub_tickets *tickets;
	struct relay_pool pool;
	struct hub_session *sessions;
	struct hub_session *dead;	/* ended during this event batch */
	size_t nsessions;
	int64_t next_idle;		/* no session idles out before this */
	int64_t next_wake;		/* no throttled session is due before */
} hr;

void
hub_relay_init(int ep, int hub_index, int idle_ms, bool splice,
    int pipe_size, struct hub_tickets *tickets)
{
	memset(&hr, 0, sizeof(hr));
	hr.ep = ep;
	hr.index = hub_index;
	hr.idle_ms = idle_ms;
	hr.tickets = tickets;
	hr.next_idle = INT64_MAX;
	hr.next_wake = INT64_MAX;
	relay_pool_init(&hr.pool, splice, pipe_size, HUB_BUF, HUB_PIPES,
	    HUB_PIPES_KEPT, HUB_BUFS_KEPT);
}

void
hub_relay_free(void)
{
	relay_pool_free(&hr.pool);
}

long
hub_relay_fd_reserve(void)
{
	return 2L * hr.pool.max_pipes;
}

size_t
hub_relay_count(void)
{
	return hr.nsessions;
}

_Static_assert((int)EPOLLIN == (int)RELAY_EV_IN &&
    (int)EPOLLOUT == (int)RELAY_EV_OUT && (int)EPOLLPRI == (int)RELAY_EV_PRI &&
    (int)EPOLLHUP == (int)RELAY_EV_HUP && (int)EPOLLERR == (int)RELAY_EV_ERR,
    "epoll and poll bits differ");
#define RELAY_EV_ALL (RELAY_EV_IN | RELAY_EV_OUT | RELAY_EV_PRI | \
    RELAY_EV_HUP | RELAY_EV_ERR)

/* 0, or -1 (errno) when epoll cannot take the socket (ENOMEM, ENOSPC
 * from max_user_watches): that ends one session, not the hub. */
static int
sock_ctl(struct hub_sock *k, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = k };

	if (epoll_ctl(hr.ep, op, k->fd, &ev) == -1)
		return -1;
	k->events = events;
	k->in_set = op != EPOLL_CTL_DEL;
	return 0;
}

/* Level-triggered epoll reports hang-ups and errors even on a socket with
 * no interest. An error ends the session where it is seen; a clean
 * hang-up (both halves shut) would be reported again and again, so that
 * socket leaves the set until it is wanted again (as in relay_poll.c). */
static int
session_interest(struct hub_session *s)
{
	for (int i = 0; i < 2; i++) {
		struct hub_sock *k = &s->sock[i];
		uint32_t want = relay_dir_want_src(&s->dir[i]) |
		    relay_dir_want_dst(&s->dir[1 - i]);
		int rc = 0;

		if (want == 0 && k->hup) {
			if (k->in_set)
				rc = sock_ctl(k, EPOLL_CTL_DEL, 0);
		} else if (!k->in_set) {
			rc = sock_ctl(k, EPOLL_CTL_ADD, want);
		} else if (want != k->events) {
			rc = sock_ctl(k, EPOLL_CTL_MOD, want);
		}
		if (rc == -1)
			return -1;
	}
	return 0;
}

static void
session_unlink(struct hub_session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		hr.sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->dead = true;
	s->next = hr.dead;
	hr.dead = s;
	hr.nsessions--;
	stats_hub_parked(-1);
	stats_parked_remove(s->row);
	s->row = NULL;
}

static void
session_end(struct hub_session *s, enum audit_end end, int err, int bad_fd)
{
	relay_abort_for(end, err, bad_fd, s->sock[SIDE_CLIENT].fd,
	    s->sock[SIDE_TARGET].fd);
	s->rec.up = s->dir[RELAY_UP].bytes;
	s->rec.down = s->dir[RELAY_DOWN].bytes;
	s->rec.end = end;
	audit_log(&s->rec, io_now_ms());
	stats_session_end(&s->rec);
	/* Released before the close: a direction cut with bytes held sets
	 * its dst to reset. */
	for (int i = 0; i < 2; i++)
		relay_dir_release(&s->dir[i], &hr.pool);
	for (int i = 0; i < 2; i++) {
		if (s->sock[i].in_set)
			(void)sock_ctl(&s->sock[i], EPOLL_CTL_DEL, 0);
		close(s->sock[i].fd);
	}
	limits_parked_end(&s->lim);
	session_unlink(s);
	hub_tickets_give(hr.tickets);
}

/* An I/O error on bad_fd (errno set). */
static void
session_fail(struct hub_session *s, int bad_fd)
{
	int err = errno;
	enum audit_end end = relay_end_of_error(err, s->first_eof,
	    bad_fd == s->sock[SIDE_TARGET].fd);

	if (end == AUDIT_END_ERROR)
		log_debug("relay %s: %s", s->rec.dst, strerror(err));
	session_end(s, end, err, bad_fd);
}

/* Both directions as far as they go, a bounded number of rounds so that a
 * busy session cannot starve the others: -1 on an error (*bad_fd). */
static int
session_steps(struct hub_session *s, int *bad_fd)
{
	for (int round = 0; round < HUB_FILL_ROUNDS; round++) {
		int moved = 0, n;

		for (int i = 0; i < 2; i++) {
			bool was_eof = s->dir[i].eof;

			n = relay_dir_step(&s->dir[i], &hr.pool,
			    s->dir[1 - i].shut, bad_fd);
			if (n < 0)
				return -1;
			moved |= n;
			if (!was_eof && s->dir[i].eof && s->first_eof == -1)
				s->first_eof = i;
		}
		if (!moved)
			break;
		s->last = io_now_ms();
	}
	return 0;
}

/* A throttled direction is stepped again at its wake time (its src is
 * out of the epoll interest meanwhile): the earliest of them all. */
static void
session_note_wake(const struct hub_session *s)
{
	for (int i = 0; i < 2; i++) {
		int64_t w = relay_dir_wake(&s->dir[i]);

		if (w != 0 && w < hr.next_wake)
			hr.next_wake = w;
	}
}

/* Steps the session after an event or a wake: it ends, or waits again. */
static void
session_go(struct hub_session *s, int fd)
{
	int bad = -1;

	if (session_steps(s, &bad) == -1) {
		session_fail(s, bad);
		return;
	}
	if (s->dir[0].shut && s->dir[1].shut) {
		session_end(s, s->first_eof == RELAY_DOWN ? AUDIT_END_TARGET :
		    AUDIT_END_CLIENT, 0, -1);
		return;
	}
	if (session_interest(s) == -1) {
		session_fail(s, fd);
		return;
	}
	session_note_wake(s);
}

void
hub_relay_event(struct hub_sock *k, uint32_t events)
{
	struct hub_session *s = k->s;
	int side = (int)(k - s->sock);
	unsigned ev = events & RELAY_EV_ALL;

	if (s->dead)
		return;
	if (events & EPOLLERR) {
		/* No pending error but EPOLLERR: something sits in the error
		 * queue (options a worker could have set). It would be
		 * reported for ever: end the session. */
		errno = relay_sock_error(k->fd);
		session_fail(s, k->fd);
		return;
	}
	if (events & EPOLLHUP)
		k->hup = true;
	relay_dir_events(&s->dir[side], ev, 0);
	relay_dir_events(&s->dir[1 - side], 0, ev);
	session_go(s, k->fd);
}

int64_t
hub_relay_next_wake(void)
{
	return hr.next_wake;
}

/* Walks every session, but only when one is due: a hub pays for the
 * rate caps only while some session of it is throttled. */
void
hub_relay_wake(int64_t now)
{
	struct hub_session *s, *next;

	if (now < hr.next_wake)
		return;
	hr.next_wake = INT64_MAX;
	for (s = hr.sessions; s != NULL; s = next) {
		int64_t w0 = relay_dir_wake(&s->dir[0]);
		int64_t w1 = relay_dir_wake(&s->dir[1]);

		next = s->next;
		if ((w0 != 0 && w0 <= now) || (w1 != 0 && w1 <= now))
			session_go(s, -1);
		else
			session_note_wake(s);
	}
}

/* Times come from another process: kept in [start, now], so that no
 * arithmetic on them overflows. */
static void
session_clamp_times(struct hub_session *s, int64_t last_ms, int64_t now)
{
	if (s->rec.start_ms > now || s->rec.start_ms < now - HUB_MAX_AGE_MS)
		s->rec.start_ms = now;
	s->last = last_ms > now ? now :
	    last_ms < s->rec.start_ms ? s->rec.start_ms : last_ms;
	if (s->last + hr.idle_ms < hr.next_idle)
		hr.next_idle = s->last + hr.idle_ms;
}

static void
session_link(struct hub_session *s)
{
	s->next = hr.sessions;
	if (hr.sessions != NULL)
		hr.sessions->prev = s;
	hr.sessions = s;
	hr.nsessions++;
	stats_hub_parked(1);
	s->row = stats_parked_add(&s->rec);
}

void
hub_relay_start(const struct hub_msg *m, const int fds[2])
{
	struct hub_session *s = calloc(1, sizeof(*s));
	char client[ADDR_STRLEN];

	if (s == NULL)
		fatal("calloc");
	s->rec = m->rec;
	s->rec.parked = true;
	s->rec.end = AUDIT_END_NONE;
	s->first_eof = m->first_eof;
	session_clamp_times(s, m->last_ms, io_now_ms());
	for (int i = 0; i < 2; i++) {
		s->sock[i].s = s;
		s->sock[i].fd = fds[i];
		(void)io_set_nonblock(fds[i], 1);
	}
	relay_dir_init(&s->dir[RELAY_UP], fds[SIDE_CLIENT], fds[SIDE_TARGET],
	    m->done[RELAY_UP]);
	relay_dir_init(&s->dir[RELAY_DOWN], fds[SIDE_TARGET], fds[SIDE_CLIENT],
	    m->done[RELAY_DOWN]);
	/* The counts go on from the worker's. */
	s->dir[RELAY_UP].bytes = m->rec.up;
	s->dir[RELAY_DOWN].bytes = m->rec.down;
	limits_parked_start(&s->lim, &m->lim, rate_now_ns());
	for (int i = 0; i < 2; i++)
		if (s->lim.rate[i].rate != 0)
			s->dir[i].rate = &s->lim.rate[i];
	session_link(s);
	if (session_interest(s) == -1) {
		log_warn("hub %d: epoll_ctl", hr.index);
		session_end(s, AUDIT_END_ERROR, errno, -1);
		return;
	}
	if (log_get_level() >= LOG_DEBUG) {
		addr_format((const struct sockaddr *)&s->rec.client, client,
		    sizeof(client));
		log_debug("park client=%s hub=%d", client, hr.index);
	}
}

void
hub_relay_scan(int64_t now, bool cut)
{
	struct hub_session *s, *next;

	hr.next_idle = INT64_MAX;
	for (s = hr.sessions; s != NULL; s = next) {
		next = s->next;
		stats_parked_bytes(s->row, s->dir[RELAY_UP].bytes,
		    s->dir[RELAY_DOWN].bytes);
		if (cut)
			session_end(s, AUDIT_END_SHUTDOWN, 0, -1);
		else if (now - s->last >= hr.idle_ms)
			session_end(s, AUDIT_END_IDLE, 0, -1);
		else if (s->last + hr.idle_ms < hr.next_idle)
			hr.next_idle = s->last + hr.idle_ms;
	}
}

void
hub_relay_interim(int64_t now)
{
	for (struct hub_session *s = hr.sessions; s != NULL; s = s->next)
		audit_log_update(&s->rec, s->dir[RELAY_UP].bytes,
		    s->dir[RELAY_DOWN].bytes, now);
}

int64_t
hub_relay_next_idle(void)
{
	return hr.next_idle;
}

void
hub_relay_trim(void)
{
	relay_pool_trim(&hr.pool);
}

void
hub_relay_reap(void)
{
	while (hr.dead != NULL) {
		struct hub_session *s = hr.dead;

		hr.dead = s->next;
		free(s);
	}
}
