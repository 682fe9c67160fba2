/* siphash.h: SipHash-2-4 (Aumasson and Bernstein), a keyed hash: what the
 * credential cache stores instead of a password. Pure. */
#ifndef SOCKS5D_SIPHASH_H
#define SOCKS5D_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
