/* socks5.c: the pure SOCKS5 wire codec; every length is checked against the buffer. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "socks5.h"

/* A bounds-checked reader over untrusted bytes (after OpenSSH's sshbuf). */
struct reader {
	const uint8_t *p;
	size_t left;
	size_t used;
};

static int
rd_u8(struct reader *r, uint8_t *v)
{
	if (r->left < 1)
		return -1;
	*v = r->p[r->used];
	r->used++;
	r->left--;
	return 0;
}

static int
rd_bytes(struct reader *r, void *dst, size_t n)
{
	if (r->left < n)
		return -1;
	memcpy(dst, r->p + r->used, n);
	r->used += n;
	r->left -= n;
	return 0;
}

static int
rd_u16(struct reader *r, uint16_t *v)
{
	uint8_t b[2];

	if (rd_bytes(r, b, 2) == -1)
		return -1;
	*v = (uint16_t)(b[0] << 8 | b[1]);
	return 0;
}

enum socks5_status
socks5_parse_greeting(const uint8_t *buf, size_t len,
    struct socks5_greeting *out, size_t *used)
{
	struct reader r = { buf, len, 0 };
	uint8_t ver;

	if (rd_u8(&r, &ver) == -1)
		return SOCKS5_INCOMPLETE;
	if (ver != SOCKS5_VERSION)
		return SOCKS5_BAD_VERSION;
	if (rd_u8(&r, &out->nmethods) == -1 ||
	    rd_bytes(&r, out->methods, out->nmethods) == -1)
		return SOCKS5_INCOMPLETE;
	*used = r.used;
	return SOCKS5_OK;
}

/* Reads ATYP, DST.ADDR and DST.PORT. */
static enum socks5_status
parse_addr(struct reader *r, struct socks5_addr *a)
{
	if (rd_u8(r, &a->atyp) == -1)
		return SOCKS5_INCOMPLETE;
	switch (a->atyp) {
	case SOCKS5_ATYP_IPV4:
		if (rd_bytes(r, a->u.ipv4, 4) == -1)
			return SOCKS5_INCOMPLETE;
		break;
	case SOCKS5_ATYP_IPV6:
		if (rd_bytes(r, a->u.ipv6, 16) == -1)
			return SOCKS5_INCOMPLETE;
		break;
	case SOCKS5_ATYP_DOMAIN:
		if (rd_u8(r, &a->u.domain.len) == -1)
			return SOCKS5_INCOMPLETE;
		if (a->u.domain.len == 0)
			return SOCKS5_BAD_DOMAIN;
		if (rd_bytes(r, a->u.domain.name, a->u.domain.len) == -1)
			return SOCKS5_INCOMPLETE;
		a->u.domain.name[a->u.domain.len] = '\0';
		if (memchr(a->u.domain.name, '\0', a->u.domain.len) != NULL)
			return SOCKS5_BAD_DOMAIN;
		break;
	default:
		return SOCKS5_BAD_ATYP;
	}
	if (rd_u16(r, &a->port) == -1)
		return SOCKS5_INCOMPLETE;
	return SOCKS5_OK;
}

enum socks5_status
socks5_parse_request(const uint8_t *buf, size_t len,
    struct socks5_request *out, size_t *used)
{
	struct reader r = { buf, len, 0 };
	uint8_t ver, rsv;
	enum socks5_status st;

	if (rd_u8(&r, &ver) == -1)
		return SOCKS5_INCOMPLETE;
	if (ver != SOCKS5_VERSION)
		return SOCKS5_BAD_VERSION;
	if (rd_u8(&r, &out->cmd) == -1 || rd_u8(&r, &rsv) == -1)
		return SOCKS5_INCOMPLETE;
	if (rsv != 0)
		return SOCKS5_BAD_RSV;
	st = parse_addr(&r, &out->dst);
	if (st != SOCKS5_OK)
		return st;
	/* The address is read whole before the command is judged, so that an
	 * unknown command is answered 07 only once the request is complete. */
	if (out->cmd != SOCKS5_CMD_CONNECT && out->cmd != SOCKS5_CMD_BIND &&
	    out->cmd != SOCKS5_CMD_UDP_ASSOCIATE)
		return SOCKS5_BAD_CMD;
	*used = r.used;
	return SOCKS5_OK;
}

enum socks5_status
socks5_parse_udp_header(const uint8_t *buf, size_t len, struct socks5_addr *dst,
    size_t *used)
{
	struct reader r = { buf, len, 0 };
	uint8_t rsv[2], frag;
	enum socks5_status st;

	if (rd_bytes(&r, rsv, 2) == -1 || rd_u8(&r, &frag) == -1)
		return SOCKS5_INCOMPLETE;
	if (rsv[0] != 0 || rsv[1] != 0)
		return SOCKS5_BAD_RSV;
	st = parse_addr(&r, dst);
	if (st != SOCKS5_OK)
		return st;
	if (frag != 0)
		return SOCKS5_BAD_FRAG;
	*used = r.used;
	return SOCKS5_OK;
}

size_t
socks5_write_udp_header(uint8_t out[SOCKS5_MAX_UDP_REPLY_HEADER],
    const struct sockaddr *src)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
	const uint8_t *addr;
	size_t n = 0, alen;
	uint16_t port;

	if (src->sa_family == AF_INET) {
		addr = (const uint8_t *)&s4->sin_addr.s_addr;
		alen = 4;
		port = ntohs(s4->sin_port);
	} else if (src->sa_family == AF_INET6) {
		addr = s6->sin6_addr.s6_addr;
		alen = 16;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			addr += 12;
			alen = 4;
		}
		port = ntohs(s6->sin6_port);
	} else {
		return 0;
	}
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = alen == 4 ? SOCKS5_ATYP_IPV4 : SOCKS5_ATYP_IPV6;
	memcpy(out + n, addr, alen);
	n += alen;
	out[n++] = (uint8_t)(port >> 8);
	out[n++] = (uint8_t)(port & 0xff);
	return n;
}

enum socks5_status
socks5_parse_userpass(const uint8_t *buf, size_t len,
    struct socks5_userpass *out, size_t *used)
{
	struct reader r = { buf, len, 0 };
	uint8_t ver;

	if (rd_u8(&r, &ver) == -1)
		return SOCKS5_INCOMPLETE;
	if (ver != SOCKS5_AUTH_VERSION)
		return SOCKS5_BAD_VERSION;
	if (rd_u8(&r, &out->ulen) == -1)
		return SOCKS5_INCOMPLETE;
	if (out->ulen == 0)
		return SOCKS5_BAD_LENGTH;
	if (rd_bytes(&r, out->user, out->ulen) == -1 ||
	    rd_u8(&r, &out->plen) == -1)
		return SOCKS5_INCOMPLETE;
	out->user[out->ulen] = '\0';
	if (out->plen == 0)
		return SOCKS5_BAD_LENGTH;
	if (rd_bytes(&r, out->pass, out->plen) == -1)
		return SOCKS5_INCOMPLETE;
	out->pass[out->plen] = '\0';
	if (memchr(out->user, '\0', out->ulen) != NULL ||
	    memchr(out->pass, '\0', out->plen) != NULL)
		return SOCKS5_BAD_LENGTH;
	*used = r.used;
	return SOCKS5_OK;
}

uint8_t
socks5_select_method(const uint8_t *prefs, size_t nprefs,
    const struct socks5_greeting *greeting)
{
	for (size_t i = 0; i < nprefs; i++)
		if (memchr(greeting->methods, prefs[i], greeting->nmethods))
			return prefs[i];
	return SOCKS5_METHOD_NO_ACCEPTABLE;
}

size_t
socks5_write_method(uint8_t out[2], uint8_t method)
{
	out[0] = SOCKS5_VERSION;
	out[1] = method;
	return 2;
}

size_t
socks5_write_auth_status(uint8_t out[2], uint8_t status)
{
	out[0] = SOCKS5_AUTH_VERSION;
	out[1] = status;
	return 2;
}

size_t
socks5_write_reply(uint8_t out[SOCKS5_MAX_REPLY], uint8_t rep,
    const struct sockaddr *bnd)
{
	size_t n = 0;
	const uint8_t *addr;
	size_t alen;
	uint16_t port;
	static const uint8_t zero4[4];

	out[n++] = SOCKS5_VERSION;
	out[n++] = rep;
	out[n++] = 0;
	if (bnd != NULL && bnd->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)bnd;
		out[n++] = SOCKS5_ATYP_IPV6;
		addr = s6->sin6_addr.s6_addr;
		alen = 16;
		port = ntohs(s6->sin6_port);
	} else if (bnd != NULL && bnd->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)bnd;
		out[n++] = SOCKS5_ATYP_IPV4;
		addr = (const uint8_t *)&s4->sin_addr.s_addr;
		alen = 4;
		port = ntohs(s4->sin_port);
	} else {
		out[n++] = SOCKS5_ATYP_IPV4;
		addr = zero4;
		alen = 4;
		port = 0;
	}
	memcpy(out + n, addr, alen);
	n += alen;
	out[n++] = (uint8_t)(port >> 8);
	out[n++] = (uint8_t)(port & 0xff);
	return n;
}

int
socks5_addr_to_sockaddr(const struct socks5_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->atyp == SOCKS5_ATYP_IPV4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a->u.ipv4, 4);
		s4->sin_port = htons(a->port);
		return 0;
	}
	if (a->atyp == SOCKS5_ATYP_IPV6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a->u.ipv6, 16);
		s6->sin6_port = htons(a->port);
		return 0;
	}
	return -1;
}

uint8_t
socks5_rep_from_errno(int err)
{
	switch (err) {
	case 0:
		return SOCKS5_REP_SUCCEEDED;
	case EACCES:
	case EPERM:
		return SOCKS5_REP_NOT_ALLOWED;
	case ENETUNREACH:
	case ENETDOWN:
	case EAFNOSUPPORT:
	case EADDRNOTAVAIL:
		return SOCKS5_REP_NET_UNREACHABLE;
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case ENOENT:		/* name does not resolve */
		return SOCKS5_REP_HOST_UNREACHABLE;
	case ECONNREFUSED:
		return SOCKS5_REP_REFUSED;
	case ETIMEDOUT:
		return SOCKS5_REP_TTL_EXPIRED;
	default:
		return SOCKS5_REP_GENERAL_FAILURE;
	}
}

uint8_t
socks5_rep_from_status(enum socks5_status st)
{
	switch (st) {
	case SOCKS5_BAD_CMD:
		return SOCKS5_REP_CMD_NOT_SUPPORTED;
	case SOCKS5_BAD_ATYP:
		return SOCKS5_REP_ATYP_NOT_SUPPORTED;
	default:
		return SOCKS5_REP_GENERAL_FAILURE;
	}
}

const char *
socks5_cmd_name(uint8_t cmd)
{
	switch (cmd) {
	case SOCKS5_CMD_CONNECT:
		return "connect";
	case SOCKS5_CMD_BIND:
		return "bind";
	case SOCKS5_CMD_UDP_ASSOCIATE:
		return "udp";
	default:
		return "unknown";
	}
}

const char *
socks5_status_str(enum socks5_status st)
{
	switch (st) {
	case SOCKS5_OK:
		return "ok";
	case SOCKS5_INCOMPLETE:
		return "incomplete message";
	case SOCKS5_BAD_VERSION:
		return "bad version";
	case SOCKS5_BAD_RSV:
		return "reserved byte not zero";
	case SOCKS5_BAD_CMD:
		return "unknown command";
	case SOCKS5_BAD_ATYP:
		return "unknown address type";
	case SOCKS5_BAD_DOMAIN:
		return "malformed domain name";
	case SOCKS5_BAD_LENGTH:
		return "malformed length";
	case SOCKS5_BAD_FRAG:
		return "fragmented datagram";
	}
	return "unknown status";
}

bool
socks5_addr_is_zero(const struct socks5_addr *a)
{
	static const uint8_t zero[16];

	if (a->atyp == SOCKS5_ATYP_IPV4)
		return memcmp(a->u.ipv4, zero, 4) == 0;
	if (a->atyp == SOCKS5_ATYP_IPV6)
		return memcmp(a->u.ipv6, zero, 16) == 0;
	return false;
}
