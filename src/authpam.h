/* authpam.h: one PAM transaction for one login: pam_start with the
 * service, a conversation that answers only the password prompt,
 * PAM_RHOST, pam_authenticate, pam_acct_mgmt, pam_end. No PAM session is
 * opened. Runs in the auth helpers only. */
#ifndef SOCKS5D_AUTHPAM_H
#define SOCKS5D_AUTHPAM_H

#include <stdbool.h>

#include "authmsg.h"

/* Checks req's user and password with PAM service, filling out (result,
 * the failure delay PAM asked for, which the caller does not pay, and the
 * user's groups on success). hash_once: pam_authenticate runs with
 * hashonce.c armed. */
void authpam_check(const char *service, bool hash_once,
    const struct auth_request *req, struct auth_reply *out);

#endif
