/* udp_relay.c: the datagram pump of a UDP association: the client's
 * datagrams (header parsed by socks5.c, target checked by the rules) to
 * their targets, the targets' replies (with a header naming them) to the
 * client. Batched with recvmmsg/sendmmsg; nothing here blocks but the
 * first resolution of a name. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connect.h"
#include "limits_session.h"
#include "log.h"
#include "udp_relay.h"

/* A whole UDP payload (at most 65527 bytes over IPv6), with room before
 * it for the header a reply gets. */
#define UDP_SLOT (SOCKS5_MAX_UDP_REPLY_HEADER + 65536)

/* Datagrams queued for one sendmmsg. */
struct udp_queue {
	struct mmsghdr msg[CONFIG_UDP_MAX_BATCH];
	struct iovec iov[CONFIG_UDP_MAX_BATCH];
	struct sockaddr_storage to[CONFIG_UDP_MAX_BATCH];
	uint8_t hdr[CONFIG_UDP_MAX_BATCH];	/* header bytes before the payload */
	unsigned n;
};

struct udp_batch {
	unsigned size;			/* datagrams per call (udp.batch) */
	struct mmsghdr msg[CONFIG_UDP_MAX_BATCH];
	struct iovec iov[CONFIG_UDP_MAX_BATCH];
	struct sockaddr_storage from[CONFIG_UDP_MAX_BATCH];
	struct udp_queue q[UDP_FAMILIES + 1];	/* per family; the last: client */
	uint8_t *slots;			/* size * UDP_SLOT bytes */
};

int
udp_relay_init(struct udp_assoc *a)
{
	struct udp_batch *b = calloc(1, sizeof(*b));

	a->b = b;
	if (b == NULL)
		return -1;
	b->size = (unsigned)a->conf->udp.batch;
	if ((b->slots = malloc((size_t)b->size * UDP_SLOT)) == NULL)
		return -1;
	return 0;
}

void
udp_relay_free(struct udp_assoc *a)
{
	for (int f = 0; f < UDP_FAMILIES; f++)
		if (a->out[f] != -1) {
			close(a->out[f]);
			a->out[f] = -1;
		}
	if (a->b != NULL)
		free(a->b->slots);
	free(a->b);
	a->b = NULL;
}

bool
udp_same_ip(const struct sockaddr *x, const struct sockaddr *y)
{
	struct sockaddr_storage a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memcpy(&a, x, addr_len(x));
	memcpy(&b, y, addr_len(y));
	addr_unmap(&a);
	addr_unmap(&b);
	if (a.ss_family != b.ss_family)
		return false;
	if (a.ss_family == AF_INET)
		return ((struct sockaddr_in *)&a)->sin_addr.s_addr ==
		    ((struct sockaddr_in *)&b)->sin_addr.s_addr;
	return a.ss_family == AF_INET6 &&
	    memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
	    &((struct sockaddr_in6 *)&b)->sin6_addr, 16) == 0;
}

/* Whether a datagram of n bytes fits the rate cap b (NULL: none), which
 * is charged for it then: a datagram over the cap is dropped, as a router
 * shapes UDP, not delayed. */
static bool
udp_rate_ok(struct rate_bucket *b, size_t n)
{
	int64_t now, wait;

	if (b == NULL || b->rate == 0)
		return true;
	now = rate_now_ns();
	if (rate_allow(b, now, &wait) < n)
		return false;
	rate_charge(b, now, n);
	return true;
}

static bool
same_addr(const struct sockaddr *x, const struct sockaddr *y)
{
	return udp_same_ip(x, y) && addr_port(x) == addr_port(y);
}

static struct udp_dest *
dest_find(struct udp_assoc *a, const struct sockaddr *sa)
{
	for (size_t i = 0; i < a->ndests; i++)
		if (same_addr((struct sockaddr *)&a->dests[i].addr, sa))
			return &a->dests[i];
	return NULL;
}

/* The remembered destination sa, with the rules asked the first time:
 * NULL when the table is full. */
static struct udp_dest *
dest_get(struct udp_assoc *a, const struct sockaddr *sa, const char *name)
{
	struct udp_dest *d = dest_find(a, sa);
	struct rules_query q = a->q;
	struct verdict v;

	if (d != NULL || a->ndests == UDP_MAX_DESTS)
		return d;
	q.dst = sa;
	q.dst_name = name;
	q.port = addr_port(sa);
	v = rules_match_request(&a->conf->rules, &q);
	/* The association counts under the rule of its first destination:
	 * its max_sessions and its rate caps. Over the cap, that
	 * destination is refused (and the next one tries again). */
	if (v.pass && !a->limited) {
		if (limits_take_verdict(a->conf, &v, &q) == -1) {
			a->rec->udp.drop_limit++;
			return NULL;
		}
		a->limited = true;
		limits_session_rates(a->rate);
	}
	d = &a->dests[a->ndests++];
	memset(&d->addr, 0, sizeof(d->addr));
	memcpy(&d->addr, sa, addr_len(sa));
	d->pass = v.pass;
	if (v.pass)
		a->rec->udp.dests++;
	else
		log_debug("udp %s: refused by rule %d", a->rec->dst, v.rule);
	return d;
}

/* The name's addresses, resolved on first use and kept (a name that did
 * not resolve is kept too, so a flood of it costs one lookup). */
static const struct udp_name *
name_get(struct udp_assoc *a, const struct socks5_addr *dst)
{
	struct sockaddr_storage addrs[CONNECT_MAX_ADDRS];
	struct udp_name *nm;
	int n = 0;

	for (size_t i = 0; i < a->nnames; i++)
		if (strcmp(a->names[i].name, dst->u.domain.name) == 0)
			return &a->names[i];
	if (a->nnames < UDP_MAX_NAMES)
		nm = &a->names[a->nnames++];
	else
		nm = &a->names[a->next_name++ % UDP_MAX_NAMES];
	memcpy(nm->name, dst->u.domain.name, (size_t)dst->u.domain.len + 1);
	nm->naddrs = 0;
	if (connect_resolve(dst, addrs, &n) != 0)
		n = 0;
	for (int i = 0; i < n && nm->naddrs < UDP_NAME_ADDRS; i++)
		nm->addrs[nm->naddrs++] = addrs[i];
	return nm;
}

/* Where a client datagram goes: 0 with *to set, or -1 after counting
 * the drop. A name goes to its first address the rules let through. */
static int
target_of(struct udp_assoc *a, const struct socks5_addr *dst,
    struct sockaddr_storage *to)
{
	const struct udp_name *nm;
	struct rules_query q = a->q;
	struct udp_dest *d;

	if (socks5_addr_to_sockaddr(dst, to) == 0) {
		addr_unmap(to);
		if ((d = dest_get(a, (struct sockaddr *)to, NULL)) == NULL) {
			/* Not full: over a limit, counted as drop_limit. */
			if (a->ndests == UDP_MAX_DESTS)
				a->rec->udp.drop_send++;
			return -1;
		}
		if (!d->pass)
			a->rec->udp.drop_rule++;
		return d->pass ? 0 : -1;
	}
	/* As for CONNECT: no lookup for a name that no rule could pass at
	 * this port, so the relay is no name oracle. */
	q.port = dst->port;
	q.dst_name = dst->u.domain.name;
	if (!rules_may_pass(&a->conf->rules, &q).pass) {
		a->rec->udp.drop_rule++;
		return -1;
	}
	nm = name_get(a, dst);
	if (nm->naddrs == 0) {
		a->rec->udp.drop_resolve++;
		return -1;
	}
	for (int i = 0; i < nm->naddrs; i++) {
		*to = nm->addrs[i];
		if (to->ss_family == AF_INET)
			((struct sockaddr_in *)to)->sin_port = htons(dst->port);
		else
			((struct sockaddr_in6 *)to)->sin6_port = htons(dst->port);
		d = dest_get(a, (struct sockaddr *)to, nm->name);
		if (d != NULL && d->pass)
			return 0;
		if (d == NULL && a->ndests < UDP_MAX_DESTS)
			return -1;	/* over a limit: drop_limit */
	}
	a->rec->udp.drop_rule++;
	return -1;
}

/* The external socket of a family, opened on first use from the
 * configured external address (else the wildcard): fd or -1. */
static int
out_socket(struct udp_assoc *a, int family)
{
	int f = family == AF_INET ? UDP_V4 : UDP_V6, one = 1, fd;
	struct sockaddr_storage ss;

	if (a->out[f] != -1)
		return a->out[f];
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET && a->conf->has_external4)
		ss = a->conf->external4;
	else if (family == AF_INET6 && a->conf->has_external6)
		ss = a->conf->external6;
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if ((family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
	    &one, sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, addr_len((struct sockaddr *)&ss)) == -1) {
		log_warn("udp %s: external socket", a->rec->dst);
		close(fd);
		return -1;
	}
	a->out[f] = fd;
	return fd;
}

/* Queues len bytes at data (hdr of them a header) for to. */
static void
queue_add(struct udp_queue *q, const void *data, size_t len, size_t hdr,
    const struct sockaddr *to)
{
	unsigned i = q->n++;

	q->hdr[i] = (uint8_t)hdr;
	memset(&q->to[i], 0, sizeof(q->to[i]));
	memcpy(&q->to[i], to, addr_len(to));
	q->iov[i].iov_base = (void *)data;
	q->iov[i].iov_len = len;
	memset(&q->msg[i], 0, sizeof(q->msg[i]));
	q->msg[i].msg_hdr.msg_name = &q->to[i];
	q->msg[i].msg_hdr.msg_namelen = addr_len(to);
	q->msg[i].msg_hdr.msg_iov = &q->iov[i];
	q->msg[i].msg_hdr.msg_iovlen = 1;
}

/* Sends what q holds on fd: a datagram that cannot be sent (buffer full,
 * too big, unreachable) is dropped and counted, the rest go on. Adds the
 * payload bytes and the datagrams sent to *bytes and *dgrams. */
static void
queue_flush(struct udp_assoc *a, struct udp_queue *q, int fd,
    uint64_t *bytes, uint64_t *dgrams)
{
	unsigned done = 0;

	while (done < q->n) {
		int n = sendmmsg(fd, q->msg + done, q->n - done, 0);

		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			a->rec->udp.drop_send++;
			done++;
			continue;
		}
		for (int i = 0; i < n; i++) {
			unsigned k = done + (unsigned)i;

			*bytes += q->iov[k].iov_len - q->hdr[k];
			(*dgrams)++;
		}
		done += (unsigned)n;
	}
	q->n = 0;
}

/* Reads up to a batch from fd into the slots (each at offset off). */
static int
batch_read(struct udp_batch *b, int fd, size_t off)
{
	int n;

	for (unsigned i = 0; i < b->size; i++) {
		b->iov[i].iov_base = b->slots + (size_t)i * UDP_SLOT + off;
		b->iov[i].iov_len = UDP_SLOT - off;
		memset(&b->msg[i], 0, sizeof(b->msg[i]));
		b->msg[i].msg_hdr.msg_name = &b->from[i];
		b->msg[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
		b->msg[i].msg_hdr.msg_iov = &b->iov[i];
		b->msg[i].msg_hdr.msg_iovlen = 1;
	}
	do
		n = recvmmsg(fd, b->msg, b->size, MSG_DONTWAIT, NULL);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == ECONNREFUSED))
		return 0;	/* ECONNREFUSED: an ICMP error of an earlier send */
	return n;
}

/* Whether a datagram comes from the client: its IP, and its port once
 * known (given in the request or latched from the first good datagram). */
static bool
from_client(const struct udp_assoc *a, const struct sockaddr *from)
{
	if (!udp_same_ip(from, (const struct sockaddr *)&a->client))
		return false;
	return !a->port_known ||
	    addr_port(from) == addr_port((const struct sockaddr *)&a->client);
}

/* One client datagram: checked, and queued for its target's family. */
static void
client_datagram(struct udp_assoc *a, const uint8_t *d, size_t len,
    const struct sockaddr_storage *from)
{
	struct socks5_addr dst;
	struct sockaddr_storage to;
	enum socks5_status st;
	size_t used;

	if (!from_client(a, (const struct sockaddr *)from)) {
		a->rec->udp.drop_stranger++;
		return;
	}
	st = socks5_parse_udp_header(d, len, &dst, &used);
	if (st != SOCKS5_OK) {
		if (st == SOCKS5_BAD_FRAG)
			a->rec->udp.drop_frag++;
		else
			a->rec->udp.drop_header++;
		return;
	}
	if (!a->port_known) {
		memcpy(&a->client, from, sizeof(*from));
		addr_unmap(&a->client);
		a->port_known = true;
	}
	if (target_of(a, &dst, &to) == -1)
		return;
	if (out_socket(a, to.ss_family) == -1) {
		a->rec->udp.drop_send++;
		return;
	}
	if (!udp_rate_ok(a->rate[0], len - used)) {
		a->rec->udp.drop_limit++;
		return;
	}
	queue_add(&a->b->q[to.ss_family == AF_INET ? UDP_V4 : UDP_V6],
	    d + used, len - used, 0, (struct sockaddr *)&to);
}

int
udp_pump_client(struct udp_assoc *a)
{
	struct udp_batch *b = a->b;
	uint64_t before = a->rec->udp.dgrams_up;
	int n = batch_read(b, a->relay_fd, 0);

	for (int i = 0; i < n; i++)
		client_datagram(a, b->iov[i].iov_base, b->msg[i].msg_len,
		    &b->from[i]);
	for (int f = 0; f < UDP_FAMILIES; f++)
		if (b->q[f].n > 0)
			queue_flush(a, &b->q[f], a->out[f], &a->rec->up,
			    &a->rec->udp.dgrams_up);
	if (a->rec->udp.dgrams_up != before)
		atomic_store_explicit(a->progress[0], a->rec->up,
		    memory_order_relaxed);
	return n;
}

/* Whether a reply from src may reach the client: from a destination it
 * sent to (passed by the rules), or with udp.replies = "any" from any
 * source the rules would let it send to. */
static bool
reply_allowed(struct udp_assoc *a, const struct sockaddr *src)
{
	const struct udp_dest *d = dest_find(a, src);
	struct rules_query q = a->q;

	if (d != NULL)
		return d->pass;
	if (!a->conf->udp.replies_any)
		return false;
	q.dst = src;
	q.port = addr_port(src);
	return rules_match_request(&a->conf->rules, &q).pass;
}

int
udp_pump_remote(struct udp_assoc *a, int fam)
{
	struct udp_batch *b = a->b;
	struct udp_queue *q = &b->q[UDP_FAMILIES];
	uint64_t before = a->rec->udp.dgrams_down;
	int n = batch_read(b, a->out[fam], SOCKS5_MAX_UDP_REPLY_HEADER);

	for (int i = 0; i < n; i++) {
		uint8_t *data = b->iov[i].iov_base;
		size_t h;

		addr_unmap(&b->from[i]);
		if (!a->port_known ||
		    !reply_allowed(a, (struct sockaddr *)&b->from[i])) {
			a->rec->udp.drop_source++;
			continue;
		}
		if (!udp_rate_ok(a->rate[1], b->msg[i].msg_len)) {
			a->rec->udp.drop_limit++;
			continue;
		}
		/* The slot has room before the payload: the header goes
		 * there, so the datagram is sent from one buffer. */
		h = socks5_write_udp_header(data - SOCKS5_MAX_UDP_REPLY_HEADER,
		    (struct sockaddr *)&b->from[i]);
		memmove(data - h, data - SOCKS5_MAX_UDP_REPLY_HEADER, h);
		queue_add(q, data - h, h + b->msg[i].msg_len, h,
		    (struct sockaddr *)&a->client);
	}
	if (q->n > 0)
		queue_flush(a, q, a->relay_fd, &a->rec->down,
		    &a->rec->udp.dgrams_down);
	if (a->rec->udp.dgrams_down != before)
		atomic_store_explicit(a->progress[1], a->rec->down,
		    memory_order_relaxed);
	return n;
}
