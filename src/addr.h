/* addr.h: socket address helpers: parsing, formatting, CIDR matching. */
#ifndef SOCKS5D_ADDR_H
#define SOCKS5D_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* "ip:port" or "[ip6]:port": the longest text addr_format writes. */
#define ADDR_STRLEN 64

struct cidr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network byte order, host bits cleared */
	int prefix;		/* 0..32 or 0..128 */
};

/* Parses a numeric IPv4 or IPv6 address (no port) into ss with the given
 * port; returns 0, or -1 if text is not an address. */
int addr_parse_ip(const char *text, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *len);
/* Parses "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n". Returns 0 or -1. */
int addr_parse_cidr(const char *text, struct cidr *out);
/* True if sa lies inside c (IPv4-mapped IPv6 addresses match IPv4 ranges). */
bool addr_in_cidr(const struct sockaddr *sa, const struct cidr *c);
/* Writes "ip:port" (IPv4) or "[ip]:port" (IPv6) into buf; returns buf. */
char *addr_format(const struct sockaddr *sa, char *buf, size_t len);
/* Writes the address alone, without port. */
char *addr_format_ip(const struct sockaddr *sa, char *buf, size_t len);
uint16_t addr_port(const struct sockaddr *sa);
socklen_t addr_len(const struct sockaddr *sa);

#endif
