/* status.h: what `socks5d status` shows, written by the master from the
 * scoreboards, its child table and the counters since start (stats.h). */
#ifndef SOCKS5D_STATUS_H
#define SOCKS5D_STATUS_H

#include <stdbool.h>
#include <stdio.h>

/* The status as key=value lines: the daemon, the pool, the totals, then
 * one line per live session a worker holds. */
void status_write(FILE *out, bool stopping);
/* The same as Prometheus text exposition (version 0.0.4). */
void status_write_metrics(FILE *out, bool stopping);

#endif
