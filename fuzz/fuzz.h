/* fuzz.h: what every libFuzzer target shares: the entry point and a check
 * that ends the run (a crash libFuzzer reports, with the input saved) when
 * a property of the codec does not hold. */
#ifndef SOCKS5D_FUZZ_H
#define SOCKS5D_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: property failed: %s\n",	\
			    __FILE__, __LINE__, #cond);			\
			abort();					\
		}							\
	} while (0)

#endif
