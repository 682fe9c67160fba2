/* addr.c: socket address helpers: parsing, formatting, CIDR matching. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int
addr_parse_ip(const char *text, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

int
addr_parse_cidr(const char *text, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash, *end;
	struct sockaddr_storage ss;
	socklen_t len;
	long prefix;
	int max;

	if (strlen(text) >= sizeof(buf))
		return -1;
	/* NOLINTNEXTLINE(clang-analyzer-security.insecureAPI.strcpy): fits */
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (addr_parse_ip(buf, 0, &ss, &len) == -1)
		return -1;
	memset(out, 0, sizeof(*out));
	out->family = ss.ss_family;
	if (ss.ss_family == AF_INET) {
		memcpy(out->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		max = 32;
	} else {
		memcpy(out->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
		max = 128;
	}
	prefix = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		prefix = strtol(slash + 1, &end, 10);
		if (*end != '\0' || prefix < 0 || prefix > max)
			return -1;
	}
	out->prefix = (int)prefix;
	for (int bit = out->prefix; bit < max; bit++)
		out->addr[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
	return 0;
}

static bool
prefix_equal(const uint8_t *a, const uint8_t *b, int prefix)
{
	int whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, (size_t)whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool
addr_embedded_v4(const uint8_t a[16], uint32_t *v4)
{
	static const uint8_t zero[12];
	static const uint8_t mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
	static const uint8_t nat64[12] = { 0,0x64,0xff,0x9b };
	const uint8_t *p;

	/* NOLINTBEGIN(bugprone-branch-clone): a branch per kind of address */
	if (a[0] == 0x20 && a[1] == 0x02)
		p = a + 2;		/* 6to4: 2002:AABB:CCDD::/48 */
	else if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
		p = a + 12;
	else if (memcmp(a, zero, 12) == 0 && (a[12] | a[13] | a[14]) != 0)
		p = a + 12;		/* compatible, which :: and ::1 are not */
	else if (memcmp(a, zero, 12) == 0 && a[15] > 1)
		p = a + 12;
	else
		return false;
	/* NOLINTEND(bugprone-branch-clone) */
	*v4 = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	return true;
}

bool
addr_in_cidr(const struct sockaddr *sa, const struct cidr *c)
{
	const uint8_t *a;
	uint32_t v4;
	uint8_t b[4];

	if (sa->sa_family == AF_INET) {
		if (c->family != AF_INET)
			return false;
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		return prefix_equal(a, c->addr, c->prefix);
	}
	if (sa->sa_family != AF_INET6)
		return false;
	a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (c->family == AF_INET6)
		return prefix_equal(a, c->addr, c->prefix);
	if (!addr_embedded_v4(a, &v4))
		return false;
	b[0] = (uint8_t)(v4 >> 24);
	b[1] = (uint8_t)(v4 >> 16);
	b[2] = (uint8_t)(v4 >> 8);
	b[3] = (uint8_t)v4;
	return prefix_equal(b, c->addr, c->prefix);
}

int
addr_host_cidrs(struct cidr **out, size_t *n)
{
	struct ifaddrs *ifa, *i;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (getifaddrs(&ifa) == -1)
		return -1;
	for (i = ifa; i != NULL; i = i->ifa_next)
		cap++;
	if ((*out = calloc(cap + 1, sizeof(**out))) == NULL) {
		freeifaddrs(ifa);
		return -1;
	}
	for (i = ifa; i != NULL; i = i->ifa_next) {
		struct cidr *c = &(*out)[*n];

		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			c->family = AF_INET;
			c->prefix = 32;
			memcpy(c->addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			c->family = AF_INET6;
			c->prefix = 128;
			memcpy(c->addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		(*n)++;
	}
	freeifaddrs(ifa);
	return 0;
}

char *
addr_format_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *src;

	if (sa->sa_family == AF_INET)
		src = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		src = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else {
		snprintf(buf, len, "?");
		return buf;
	}
	if (inet_ntop(sa->sa_family, src, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

char *
addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	addr_format_ip(sa, ip, sizeof(ip));
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip, addr_port(sa));
	else
		snprintf(buf, len, "%s:%u", ip, addr_port(sa));
	return buf;
}

uint16_t
addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

socklen_t
addr_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
}

void
addr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in s4 = { .sin_family = AF_INET };

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}
