/* priv.h: dropping root in every unprivileged child (workers, hubs). */
#ifndef SOCKS5D_PRIV_H
#define SOCKS5D_PRIV_H

#include <sys/types.h>

#include "config.h"

/* setgroups, setresgid, setresuid, in that order, fatal on any failure;
 * refuses to go on as root; then asks for SIGTERM when the master dies and
 * exits at once if it is gone already. role names the process in errors. */
void priv_drop(const struct config *conf, pid_t master, const char *role);

#endif
