# fuzz.mk: builds the libFuzzer targets out of tree (clang, ASan + UBSan).
#   make -f fuzz/fuzz.mk O=build-fuzz        (from the top of the tree)
# Every src/*.c but main.c goes into one archive built with the fuzzer's
# coverage instrumentation; each target links only what it uses from it.

O ?= build-fuzz
CC = clang
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
CFLAGS = -std=gnu11 -O1 -g -Wall -Wextra -Werror $(SAN) \
	$(shell pkg-config --cflags libconfig)
CPPFLAGS = -D_GNU_SOURCE -Isrc -DSYSCONFDIR='"/etc"' \
	-DRUNSTATEDIR='"/run"' -DSOCKS5D_VERSION='"fuzz"'
LIBS = $(shell pkg-config --libs libconfig) -lpam

TARGETS = greeting userpass request udp_header hubmsg auth_request \
	auth_reply config
SRCS = $(filter-out src/main.c,$(wildcard src/*.c))
OBJS = $(patsubst src/%.c,$(O)/obj/%.o,$(SRCS))

all: $(addprefix $(O)/fuzz_,$(TARGETS)) $(O)/seed_structs

$(O)/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(O)/libsocks5d-fuzz.a: $(OBJS)
	rm -f $@
	ar cr $@ $(OBJS)

# The hub target formats the audit line as the hub would and checks it
# through a syslog wrapper (nothing is sent to syslog).
LDFLAGS_hubmsg = -Wl,--wrap=syslog

$(O)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(O)/libsocks5d-fuzz.a
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer $< \
	    $(O)/libsocks5d-fuzz.a $(LDFLAGS_$*) $(LIBS) -o $@

# Writes the seeds that are C structs (hub and auth messages), with the
# compiler's own layout: fuzz/make_corpus.py runs it.
$(O)/seed_structs: fuzz/seed_structs.c src/authmsg.c
	$(CC) $(CPPFLAGS) -std=gnu11 -Wall -Wextra -Werror $^ -o $@

.PHONY: all
.SECONDARY:
