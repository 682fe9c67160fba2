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
/* True if sa lies inside c. An IPv6 address that embeds an IPv4 address
 * (addr_embedded_v4) matches IPv4 ranges as that address too. */
bool addr_in_cidr(const struct sockaddr *sa, const struct cidr *c);
/* The IPv4 address (host order) an IPv6 address a carries, if it is one
 * of the forms that embed one: IPv4-mapped ::ffff:0:0/96, IPv4-compatible
 * ::/96 (but :: and ::1), the NAT64 well-known prefix 64:ff9b::/96
 * (RFC 6052) and 6to4 2002::/16 (RFC 3056, the IPv4 address in bits
 * 16..47). Returns false for any other address. */
bool addr_embedded_v4(const uint8_t a[16], uint32_t *v4);
/* Every address of this host's interfaces (getifaddrs), each as a host
 * network (/32, /128), into a new array *out of *n. Returns 0, or -1 with
 * errno set. */
int addr_host_cidrs(struct cidr **out, size_t *n);
/* Writes "ip:port" (IPv4) or "[ip]:port" (IPv6) into buf; returns buf. */
char *addr_format(const struct sockaddr *sa, char *buf, size_t len);
/* Writes the address alone, without port. */
char *addr_format_ip(const struct sockaddr *sa, char *buf, size_t len);
uint16_t addr_port(const struct sockaddr *sa);
socklen_t addr_len(const struct sockaddr *sa);
/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a dual-stack socket
 * shows an IPv4 peer) becomes that IPv4 address, port kept; anything
 * else is left as it is. */
void addr_unmap(struct sockaddr_storage *ss);

#endif
