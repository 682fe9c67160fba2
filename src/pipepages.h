/* pipepages.h: the pipe pages a configuration's workers and hubs may hold,
 * against the per-user limit they share. */
#ifndef SOCKS5D_PIPEPAGES_H
#define SOCKS5D_PIPEPAGES_H

#include <stdio.h>

#include "config.h"

/* At start and at each reload, in the master: warns once (the log, and
 * report unless NULL) when workers.max busy workers and the hubs' pipes
 * would need more pages than /proc/sys/fs/pipe-user-pages-soft, past
 * which the kernel gives every new pipe of the user 2 pages. */
void pipepages_check(const struct config *conf, FILE *report);

#endif
