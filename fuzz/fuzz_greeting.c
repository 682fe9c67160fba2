/* fuzz_greeting.c: the SOCKS5 greeting (VER NMETHODS METHODS), as a worker
 * reads it from a client, and the method choice made from it. */
#include <string.h>

#include "fuzz.h"
#include "socks5.h"

/* Preferences as listeners configure them (userpass first, or none). */
static const uint8_t prefs[] = { SOCKS5_METHOD_USERPASS, SOCKS5_METHOD_NONE };

static void
check_choice(const struct socks5_greeting *g)
{
	uint8_t m = socks5_select_method(prefs, sizeof(prefs), g);
	uint8_t out[2];

	if (m == SOCKS5_METHOD_NO_ACCEPTABLE) {
		FUZZ_CHECK(memchr(g->methods, prefs[0], g->nmethods) == NULL);
		FUZZ_CHECK(memchr(g->methods, prefs[1], g->nmethods) == NULL);
	} else {
		FUZZ_CHECK(m == prefs[0] || m == prefs[1]);
		FUZZ_CHECK(memchr(g->methods, m, g->nmethods) != NULL);
		/* The first preference wins whenever it is offered. */
		FUZZ_CHECK(m == prefs[0] ||
		    memchr(g->methods, prefs[0], g->nmethods) == NULL);
	}
	FUZZ_CHECK(socks5_write_method(out, m) == 2);
	FUZZ_CHECK(out[0] == SOCKS5_VERSION && out[1] == m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct socks5_greeting g, again;
	size_t used = 0, used2 = 0;
	enum socks5_status st = socks5_parse_greeting(data, size, &g, &used);

	FUZZ_CHECK(socks5_status_str(st) != NULL);
	if (st == SOCKS5_BAD_VERSION) {
		FUZZ_CHECK(size >= 1 && data[0] != SOCKS5_VERSION);
		return 0;
	}
	if (st == SOCKS5_INCOMPLETE) {
		FUZZ_CHECK(size < 2 || size < 2 + (size_t)data[1]);
		FUZZ_CHECK(size == 0 || data[0] == SOCKS5_VERSION);
		return 0;
	}
	FUZZ_CHECK(st == SOCKS5_OK);
	/* What it used is exactly the message, and nothing past it. */
	FUZZ_CHECK(used == 2 + (size_t)g.nmethods && used <= size);
	FUZZ_CHECK(data[0] == SOCKS5_VERSION && data[1] == g.nmethods);
	FUZZ_CHECK(memcmp(g.methods, data + 2, g.nmethods) == 0);
	FUZZ_CHECK(socks5_parse_greeting(data, used, &again, &used2) ==
	    SOCKS5_OK && used2 == used && again.nmethods == g.nmethods);
	/* A worker reads in pieces: every shorter prefix asks for more. */
	for (size_t k = 0; k < used; k++)
		FUZZ_CHECK(socks5_parse_greeting(data, k, &again, &used2) ==
		    SOCKS5_INCOMPLETE);
	check_choice(&g);
	return 0;
}
