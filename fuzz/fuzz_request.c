/* fuzz_request.c: the SOCKS5 request (VER CMD RSV ATYP DST.ADDR DST.PORT)
 * as a worker reads it. A good one is written back with the reply
 * encoder (the same layout) and must give the same bytes; its dst= must
 * pass the hub's check. */
#include "fuzz_addr.h"

static void
check_roundtrip(const uint8_t *data, size_t used,
    const struct socks5_request *req)
{
	uint8_t out[4 + 1 + SOCKS5_MAX_DOMAIN + 2];
	uint8_t reply[SOCKS5_MAX_REPLY];
	struct sockaddr_storage ss;
	size_t n;

	out[0] = SOCKS5_VERSION;
	out[1] = req->cmd;
	out[2] = 0;
	n = 3 + fuzz_encode_addr(&req->dst, out + 3);
	FUZZ_CHECK(n == used && memcmp(out, data, used) == 0);
	if (socks5_addr_to_sockaddr(&req->dst, &ss) == -1)
		return;
	/* An address reply has the request's layout, REP for CMD. */
	n = socks5_write_reply(reply, req->cmd, (struct sockaddr *)&ss);
	FUZZ_CHECK(n == used && n <= SOCKS5_MAX_REPLY);
	FUZZ_CHECK(memcmp(reply, data, used) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct socks5_request req, again;
	size_t used = 0, used2 = 0;
	enum socks5_status st = socks5_parse_request(data, size, &req, &used);
	uint8_t rep = socks5_rep_from_status(st);

	FUZZ_CHECK(socks5_status_str(st) != NULL);
	if (st == SOCKS5_INCOMPLETE)
		return 0;
	if (st != SOCKS5_OK) {
		FUZZ_CHECK(rep == SOCKS5_REP_GENERAL_FAILURE ||
		    (rep == SOCKS5_REP_CMD_NOT_SUPPORTED && st == SOCKS5_BAD_CMD) ||
		    (rep == SOCKS5_REP_ATYP_NOT_SUPPORTED && st == SOCKS5_BAD_ATYP));
		if (st == SOCKS5_BAD_VERSION)
			FUZZ_CHECK(data[0] != SOCKS5_VERSION);
		return 0;
	}
	FUZZ_CHECK(used >= 8 && used <= SOCKS5_MAX_REQUEST && used <= size);
	FUZZ_CHECK(req.cmd >= SOCKS5_CMD_CONNECT &&
	    req.cmd <= SOCKS5_CMD_UDP_ASSOCIATE);
	FUZZ_CHECK(strcmp(socks5_cmd_name(req.cmd), "unknown") != 0);
	check_roundtrip(data, used, &req);
	FUZZ_CHECK(socks5_parse_request(data, used, &again, &used2) ==
	    SOCKS5_OK && used2 == used);
	for (size_t k = 0; k < used; k++)
		FUZZ_CHECK(socks5_parse_request(data, k, &again, &used2) ==
		    SOCKS5_INCOMPLETE);
	fuzz_check_dst(&req.dst);
	return 0;
}
