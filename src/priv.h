/* priv.h: dropping root in every unprivileged child (workers, hubs). */
#ifndef SOCKS5D_PRIV_H
#define SOCKS5D_PRIV_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

/* Decides, once, before the master starts: children switch to the
 * configured user only if the daemon was started as root (nobody else
 * can). Returns that decision. */
bool priv_init(void);
/* The decision priv_init made. */
bool priv_switches_user(void);

/* One line at start: whether workers and hubs run sandboxed (conf's
 * sandbox key, and whether this build has the filter). */
void priv_log_sandbox(const struct config *conf);

/* In an unprivileged child right after fork: setgroups, setresgid,
 * setresuid to conf's user (if priv_init decided so), in that order, fatal
 * on any failure, after emptying the capability bounding set (as root);
 * refuses to go on as root; sets no_new_privs; then asks for SIGTERM when
 * the master dies and exits at once if it is gone already; clears every
 * capability set, turns dumpable off (not in sanitizer builds) and, if
 * conf's sandbox key says so, loads role's seccomp filter (sandbox.c).
 * role names the process in errors. Privileged roles never call it. */
void priv_drop(const struct config *conf, pid_t master, const char *role);

#endif
