/* fuzz_udp_header.c: the header of a UDP ASSOCIATE datagram (RSV FRAG
 * ATYP DST.ADDR DST.PORT) as the relay reads it from a client. A good
 * one is re-encoded; an address header written by the relay's encoder
 * (replies to the client) must parse back to the same address. */
#include <netinet/in.h>

#include "fuzz_addr.h"

static void
check_encoder(const struct socks5_addr *a)
{
	uint8_t hdr[SOCKS5_MAX_UDP_REPLY_HEADER];
	struct sockaddr_storage ss;
	struct socks5_addr back;
	struct in6_addr a6;
	size_t n, used = 0;
	const uint8_t *want = a->u.ipv6;
	size_t want_len = a->atyp == SOCKS5_ATYP_IPV4 ? 4 : 16;

	if (socks5_addr_to_sockaddr(a, &ss) == -1)
		return;
	n = socks5_write_udp_header(hdr, (struct sockaddr *)&ss);
	FUZZ_CHECK(n > 0 && n <= SOCKS5_MAX_UDP_REPLY_HEADER);
	FUZZ_CHECK(socks5_parse_udp_header(hdr, n, &back, &used) == SOCKS5_OK);
	FUZZ_CHECK(used == n && back.port == a->port);
	/* An IPv4-mapped IPv6 source is written as IPv4. */
	memcpy(&a6, a->u.ipv6, sizeof(a6));
	if (a->atyp == SOCKS5_ATYP_IPV6 && IN6_IS_ADDR_V4MAPPED(&a6)) {
		want += 12;
		want_len = 4;
	}
	FUZZ_CHECK(back.atyp == (want_len == 4 ? SOCKS5_ATYP_IPV4 :
	    SOCKS5_ATYP_IPV6));
	FUZZ_CHECK(memcmp(back.u.ipv6, want, want_len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct socks5_addr dst;
	uint8_t out[3 + 1 + 1 + SOCKS5_MAX_DOMAIN + 2];
	size_t used = 0, n;
	enum socks5_status st = socks5_parse_udp_header(data, size, &dst, &used);

	FUZZ_CHECK(socks5_status_str(st) != NULL);
	if (st == SOCKS5_BAD_RSV)
		FUZZ_CHECK(size >= 2 && (data[0] != 0 || data[1] != 0));
	if (st == SOCKS5_BAD_FRAG)
		FUZZ_CHECK(size >= 3 && data[2] != 0);
	if (st != SOCKS5_OK)
		return 0;
	FUZZ_CHECK(used >= 8 && used <= SOCKS5_MAX_UDP_HEADER && used <= size);
	out[0] = out[1] = out[2] = 0;
	n = 3 + fuzz_encode_addr(&dst, out + 3);
	FUZZ_CHECK(n == used && memcmp(out, data, used) == 0);
	/* A datagram is whole: the header alone is a good datagram too. */
	FUZZ_CHECK(socks5_parse_udp_header(data, used, &dst, &n) ==
	    SOCKS5_OK && n == used);
	check_encoder(&dst);
	fuzz_check_dst(&dst);
	return 0;
}
