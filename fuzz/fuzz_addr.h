/* fuzz_addr.h: the properties of a parsed DST.ADDR DST.PORT that the
 * request and the UDP header targets share. */
#ifndef SOCKS5D_FUZZ_ADDR_H
#define SOCKS5D_FUZZ_ADDR_H

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "audit.h"
#include "fuzz.h"
#include "log.h"
#include "socks5.h"

/* ATYP DST.ADDR DST.PORT of a as the client wrote it: its length. */
static size_t
fuzz_encode_addr(const struct socks5_addr *a, uint8_t *out)
{
	size_t n = 0;

	out[n++] = a->atyp;
	if (a->atyp == SOCKS5_ATYP_IPV4) {
		memcpy(out + n, a->u.ipv4, 4);
		n += 4;
	} else if (a->atyp == SOCKS5_ATYP_IPV6) {
		memcpy(out + n, a->u.ipv6, 16);
		n += 16;
	} else {
		out[n++] = a->u.domain.len;
		memcpy(out + n, a->u.domain.name, a->u.domain.len);
		n += a->u.domain.len;
	}
	out[n++] = (uint8_t)(a->port >> 8);
	out[n++] = (uint8_t)(a->port & 0xff);
	return n;
}

/* The session's dst= as the worker writes it (session.c format_dst): a
 * hub must accept it (audit_dst_valid), whatever the client sent. */
static void
fuzz_check_dst(const struct socks5_addr *a)
{
	char dst[AUDIT_DST_LEN], name[SOCKS5_MAX_DOMAIN * 4 + 1];
	struct sockaddr_storage ss;
	int n;

	if (a->atyp == SOCKS5_ATYP_DOMAIN) {
		FUZZ_CHECK(a->u.domain.len >= 1);
		FUZZ_CHECK(strlen(a->u.domain.name) == a->u.domain.len);
		FUZZ_CHECK(socks5_addr_to_sockaddr(a, &ss) == -1);
		FUZZ_CHECK(!socks5_addr_is_zero(a));
		log_escape(name, sizeof(name), a->u.domain.name,
		    a->u.domain.len);
		n = snprintf(dst, sizeof(dst), "%s:%u", name, a->port);
	} else {
		FUZZ_CHECK(socks5_addr_to_sockaddr(a, &ss) == 0);
		FUZZ_CHECK(addr_port((struct sockaddr *)&ss) == a->port);
		addr_format((struct sockaddr *)&ss, dst, sizeof(dst));
		n = (int)strlen(dst);
	}
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(dst));
	FUZZ_CHECK(audit_dst_valid(dst, sizeof(dst)));
}

#endif
