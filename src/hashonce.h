/* hashonce.h: one password hash per PAM authentication (hashonce.c says
 * why): an auth helper arms it around pam_authenticate. */
#ifndef SOCKS5D_HASHONCE_H
#define SOCKS5D_HASHONCE_H

/* From here, a crypt_r call with the same passphrase and setting as the
 * call before it is answered from that call's result. */
void hashonce_arm(void);
/* Every call computes again; what was kept is wiped. */
void hashonce_disarm(void);

#endif
