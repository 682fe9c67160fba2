/* io.h: reads and writes on non-blocking sockets bounded by a deadline. */
#ifndef SOCKS5D_IO_H
#define SOCKS5D_IO_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A moment (ms, monotonic) that cuts every wait short, or 0 for none: a
 * stopping worker sets it so that no session outlives the shutdown grace.
 * io_set_cutoff is safe in a signal handler. */
void io_set_cutoff(int64_t when);
int64_t io_cutoff_time(void);
/* True once the cutoff has passed. */
int io_cutoff_passed(void);

/* Milliseconds on the monotonic clock. */
int64_t io_now_ms(void);
/* Waits for events on fd until deadline (ms, monotonic): the revents seen
 * (> 0), 0 when the deadline passed, -1 on error (errno). Signals do not
 * cut it short. */
int io_wait(int fd, short events, int64_t deadline);
/* Reads up to cap bytes, at least one: n > 0, 0 on EOF, -1 on error with
 * errno set (ETIMEDOUT when the deadline passed). */
ssize_t io_read_some(int fd, void *buf, size_t cap, int64_t deadline);
/* Writes all of buf: 0, or -1 with errno set (ETIMEDOUT at the deadline). */
int io_write_all(int fd, const void *buf, size_t len, int64_t deadline);
/* Waits until the moment until (ms, monotonic), or the cutoff. */
void io_pause(int64_t until);
/* Sets or clears O_NONBLOCK: 0 or -1. */
int io_set_nonblock(int fd, int on);

/* Whether the next byte to read from TCP socket fd is urgent data (a byte
 * its peer sent with MSG_OOB). splice(2) stops there for good: it says
 * EAGAIN, or 0 once a FIN follows. recv() steps over the byte. errno is
 * kept. */
bool io_at_urgent_mark(int fd);

#endif
