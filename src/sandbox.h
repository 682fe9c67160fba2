/* sandbox.h: the seccomp filter of the unprivileged roles (workers, hubs). */
#ifndef SOCKS5D_SANDBOX_H
#define SOCKS5D_SANDBOX_H

#include <stdbool.h>

/* Whether the filter can be loaded here: this build has it (configure
 * found libseccomp) and the kernel has seccomp. */
bool sandbox_available(void);

/*
 * Loads the filter of role ("worker" or "hub"): the system calls on its
 * list are allowed, any other kills the process (SIGSYS). Called last in
 * priv_drop, after the uid change and no_new_privs. Fatal if the filter
 * cannot be built or loaded; a build without libseccomp does nothing.
 * A role without a list is a programming error (fatal).
 */
void sandbox_enter(const char *role);

/*
 * The test hook: if the environment names this role in
 * SOCKS5D_TEST_FORBIDDEN_CALL, makes one call that no list allows
 * (personality(2) as a query, harmless if it were allowed), so a test can
 * see the filter kill the process and the master log it.
 */
void sandbox_test_hook(const char *role);

#endif
