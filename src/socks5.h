/* socks5.h: the pure SOCKS5 wire codec (RFC 1928, RFC 1929): bytes in, structs out, no I/O. */
#ifndef SOCKS5D_SOCKS5_H
#define SOCKS5D_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	SOCKS5_VERSION = 0x05,
	SOCKS5_AUTH_VERSION = 0x01,	/* RFC 1929 sub-negotiation */
};

enum socks5_method {
	SOCKS5_METHOD_NONE = 0x00,
	SOCKS5_METHOD_GSSAPI = 0x01,
	SOCKS5_METHOD_USERPASS = 0x02,
	SOCKS5_METHOD_NO_ACCEPTABLE = 0xff,
};

enum socks5_cmd {
	SOCKS5_CMD_CONNECT = 0x01,
	SOCKS5_CMD_BIND = 0x02,
	SOCKS5_CMD_UDP_ASSOCIATE = 0x03,
};

enum socks5_atyp {
	SOCKS5_ATYP_IPV4 = 0x01,
	SOCKS5_ATYP_DOMAIN = 0x03,
	SOCKS5_ATYP_IPV6 = 0x04,
};

enum socks5_rep {
	SOCKS5_REP_SUCCEEDED = 0x00,
	SOCKS5_REP_GENERAL_FAILURE = 0x01,
	SOCKS5_REP_NOT_ALLOWED = 0x02,
	SOCKS5_REP_NET_UNREACHABLE = 0x03,
	SOCKS5_REP_HOST_UNREACHABLE = 0x04,
	SOCKS5_REP_REFUSED = 0x05,
	SOCKS5_REP_TTL_EXPIRED = 0x06,
	SOCKS5_REP_CMD_NOT_SUPPORTED = 0x07,
	SOCKS5_REP_ATYP_NOT_SUPPORTED = 0x08,
};

/* Outcome of a parse. Anything but OK and INCOMPLETE is a malformed message. */
enum socks5_status {
	SOCKS5_OK = 0,
	SOCKS5_INCOMPLETE,	/* need more bytes; nothing consumed */
	SOCKS5_BAD_VERSION,	/* not SOCKS5 (or not RFC 1929 version 1) */
	SOCKS5_BAD_RSV,		/* reserved byte not zero */
	SOCKS5_BAD_CMD,		/* CMD not 01/02/03: reply 07 */
	SOCKS5_BAD_ATYP,	/* ATYP not 01/03/04: reply 08 */
	SOCKS5_BAD_DOMAIN,	/* domain of length 0 or with a NUL byte */
	SOCKS5_BAD_LENGTH,	/* ULEN or PLEN of 0 */
	SOCKS5_BAD_FRAG,	/* UDP datagram with FRAG != 0 */
};

#define SOCKS5_MAX_DOMAIN 255
/* Longest messages: greeting 2+255, request 4+1+255+2, RFC 1929 1+1+255+1+255. */
#define SOCKS5_MAX_GREETING 257
#define SOCKS5_MAX_REQUEST 262
#define SOCKS5_MAX_USERPASS 513
#define SOCKS5_MAX_REPLY 22
/* UDP ASSOCIATE datagram header: RSV(2) FRAG ATYP DST.ADDR DST.PORT. The
 * longest a client can send (a domain of 255), and the longest we write. */
#define SOCKS5_MAX_UDP_HEADER 262
#define SOCKS5_MAX_UDP_REPLY_HEADER 22

struct socks5_greeting {
	uint8_t nmethods;
	uint8_t methods[255];
};

struct socks5_addr {
	uint8_t atyp;			/* enum socks5_atyp */
	union {
		uint8_t ipv4[4];
		uint8_t ipv6[16];
		struct {
			uint8_t len;
			char name[SOCKS5_MAX_DOMAIN + 1];	/* NUL-terminated */
		} domain;
	} u;
	uint16_t port;			/* host byte order */
};

struct socks5_request {
	uint8_t cmd;
	struct socks5_addr dst;
};

struct socks5_userpass {
	uint8_t ulen;
	char user[256];			/* NUL-terminated, may hold any byte but NUL */
	uint8_t plen;
	char pass[256];
};

/* Each parser reads one message from the start of buf; on OK it stores the
 * number of bytes used in *used (the rest belongs to the next message). */
enum socks5_status socks5_parse_greeting(const uint8_t *buf, size_t len,
    struct socks5_greeting *out, size_t *used);
enum socks5_status socks5_parse_request(const uint8_t *buf, size_t len,
    struct socks5_request *out, size_t *used);
enum socks5_status socks5_parse_userpass(const uint8_t *buf, size_t len,
    struct socks5_userpass *out, size_t *used);

/* The header of a UDP ASSOCIATE datagram (RFC 1928 section 7). A datagram
 * is whole: INCOMPLETE means truncated (shorter than its header says).
 * BAD_RSV: RSV not 0; BAD_FRAG: FRAG not 0 (checked after the whole header
 * is read); BAD_ATYP, BAD_DOMAIN as for a request. On OK *used is the
 * header's length: the payload is the rest of the datagram. */
enum socks5_status socks5_parse_udp_header(const uint8_t *buf, size_t len,
    struct socks5_addr *dst, size_t *used);
/* Writes the header of a datagram to the client, naming src (AF_INET or
 * AF_INET6; an IPv4-mapped IPv6 address is written as IPv4): its length,
 * or 0 for another family. */
size_t socks5_write_udp_header(uint8_t out[SOCKS5_MAX_UDP_REPLY_HEADER],
    const struct sockaddr *src);

/* The first of prefs (in order) that the client offered, or NO_ACCEPTABLE. */
uint8_t socks5_select_method(const uint8_t *prefs, size_t nprefs,
    const struct socks5_greeting *greeting);

/* Writers return the number of bytes written to out (at least the size named). */
size_t socks5_write_method(uint8_t out[2], uint8_t method);
size_t socks5_write_auth_status(uint8_t out[2], uint8_t status);
/* bnd may be NULL (all-zero IPv4); AF_INET and AF_INET6 are encoded as such. */
size_t socks5_write_reply(uint8_t out[SOCKS5_MAX_REPLY], uint8_t rep,
    const struct sockaddr *bnd);

/* The sockaddr of an IPv4 or IPv6 address with its port: 0, or -1 for a
 * domain name, which has to be resolved. */
int socks5_addr_to_sockaddr(const struct socks5_addr *a,
    struct sockaddr_storage *ss);

/* Reply code for an errno from connect(2) or a failed resolution. */
uint8_t socks5_rep_from_errno(int err);
/* Reply code for a request that failed to parse with status st. */
uint8_t socks5_rep_from_status(enum socks5_status st);

const char *socks5_cmd_name(uint8_t cmd);
/* Whether a is 0.0.0.0 or :: (a name is not). */
bool socks5_addr_is_zero(const struct socks5_addr *a);
const char *socks5_status_str(enum socks5_status st);

#endif
