/* limits_session.h: what a session does about limits (limits_shm.h): the
 * negotiation cap per client address, a passing rule's max_sessions and
 * rate caps, and their hand-over to a hub. A worker runs one session at a
 * time, so its session's holdings live here, not in the session. */
#ifndef SOCKS5D_LIMITS_SESSION_H
#define SOCKS5D_LIMITS_SESSION_H

#include <sys/socket.h>

#include "config.h"
#include "limits_shm.h"
#include "ratelimit.h"
#include "rules.h"
#include "scoreboard.h"

/* struct rule's sessions_per */
enum { LIMITS_PER_CLIENT = 0, LIMITS_PER_USER, LIMITS_PER_RULE };

/* Worker: a new session holds nothing yet. */
void limits_session_begin(void);
#define LIMITS_NEGOTIATE_CHECK_MS 250	/* an over-cap session looks this often */

/* Right after accept: 0, or -1 when peer has workers.max_negotiating
 * sessions negotiating already and the pool is full (no idle worker, no
 * free slot: workers.max reached; logged at most once a minute per
 * address). Below that the session counts but goes on: the pool grows
 * instead. The count is the scoreboard's: slot says what this worker
 * negotiates (so a dead worker's count goes with its slot). */
int limits_negotiate_begin(const struct config *c,
    const struct sockaddr_storage *peer, struct scoreboard *sb,
    struct sb_slot *slot);
/* While waiting for the client: when to look again (at most deadline). */
int64_t limits_negotiate_check_at(int64_t deadline);
/* Whether this session should give up: the pool is full and its address
 * has more than the cap negotiating (sessions let in while the pool grew,
 * which an attacker's slow greetings would keep). Ends its count. */
bool limits_negotiate_excess(const struct config *c,
    const struct scoreboard *sb);
/* The request was read (or the session ends): negotiation is over. */
void limits_negotiate_end(void);
/* After a rule passed the request (v->pass): takes the rule's
 * max_sessions count and sets its rate caps. 0, or -1 when the key is at
 * the cap (the caller refuses: REP 02, end=limit; logged at most once a
 * minute per key). Asked again (another address of the same request),
 * it gives back what the earlier rule's verdict took first. */
int limits_take_verdict(const struct config *c, const struct verdict *v,
    const struct rules_query *q);
/* The rate caps for the relay: NULL where there is none. */
void limits_session_rates(struct rate_bucket *out[2]);
/* Park: fills the message's part and marks the leases in transit;
 * limits_park_done says whether the hub has the session now. */
void limits_park_fill(struct limits_msg *m);
void limits_park_done(bool sent);
/* At the session's end: gives back what it still holds. */
void limits_session_end(void);

/* Hub: a parked session's limits, from its message. */
struct limits_parked {
	struct limits_hold holds[LIMITS_HOLDS];
	struct rate_bucket rate[2];
};
/* Adopts the leases and sets up the buckets (in place: rate[] must not
 * move afterwards). */
void limits_parked_start(struct limits_parked *lp, const struct limits_msg *m,
    int64_t now_ns);
void limits_parked_end(struct limits_parked *lp);

#endif
