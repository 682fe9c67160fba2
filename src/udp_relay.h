/* udp_relay.h: the datagram pump of a UDP association: the client's
 * datagrams to their targets, the targets' replies to the client. */
#ifndef SOCKS5D_UDP_RELAY_H
#define SOCKS5D_UDP_RELAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "audit.h"
#include "config.h"
#include "rules.h"
#include "socks5.h"

#define UDP_MAX_DESTS 256	/* destinations one association remembers */
#define UDP_MAX_NAMES 16	/* resolved names it keeps */
#define UDP_NAME_ADDRS 8	/* addresses kept per name */

enum { UDP_V4, UDP_V6, UDP_FAMILIES };

/* A destination the client sent to, with the rules' verdict on it. */
struct udp_dest {
	struct sockaddr_storage addr;
	bool pass;
};

/* A name as it resolved (once per association). */
struct udp_name {
	char name[SOCKS5_MAX_DOMAIN + 1];
	int naddrs;			/* 0: did not resolve */
	struct sockaddr_storage addrs[UDP_NAME_ADDRS];
};

struct udp_batch;			/* the pump's buffers (udp_relay.c) */

struct udp_assoc {
	const struct config *conf;
	struct rules_query q;		/* the session's part; dst per datagram */
	struct audit_record *rec;	/* bytes (up, down) and rec->udp */
	_Atomic uint64_t *progress[2];	/* the scoreboard's byte counts */
	int relay_fd;			/* the socket the client sends to */
	int out[UDP_FAMILIES];		/* the external side, -1 until needed */
	struct sockaddr_storage client;	/* where the client sends from */
	bool port_known;		/* client's port given or latched */
	int64_t last_ms;		/* last datagram relayed */
	struct udp_dest dests[UDP_MAX_DESTS];
	size_t ndests;
	struct udp_name names[UDP_MAX_NAMES];
	size_t nnames, next_name;	/* next_name: the one to replace */
	struct udp_batch *b;
	bool limited;			/* a rule's limits taken (the first
					 * destination it passed) */
	struct rate_bucket *rate[2];	/* that rule's caps, NULL: none */
};

/* Allocates the pump's buffers for conf->udp.batch datagrams a call:
 * 0, or -1 (ENOMEM). */
int udp_relay_init(struct udp_assoc *a);
/* Frees them and closes the external sockets. */
void udp_relay_free(struct udp_assoc *a);
/* One batch from the client's socket to the targets. Returns the number
 * of datagrams read (0: none waiting), or -1 on an error of the socket. */
int udp_pump_client(struct udp_assoc *a);
/* One batch of replies from external socket fam to the client: the
 * number read, or -1. */
int udp_pump_remote(struct udp_assoc *a, int fam);
/* Whether two addresses hold the same IP (an IPv4-mapped IPv6 address is
 * its IPv4 address); ports are not compared. */
bool udp_same_ip(const struct sockaddr *x, const struct sockaddr *y);

#endif
