/* fdpass.h: one message with file descriptors over an AF_UNIX socket
 * (SCM_RIGHTS), both ways: what the hub and auth channels share. */
#ifndef SOCKS5D_FDPASS_H
#define SOCKS5D_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define FDPASS_MAX 8		/* fds one message may carry */

/* Sends len bytes of buf with nfds fds (1..FDPASS_MAX) in one sendmsg
 * with flags (MSG_NOSIGNAL is added): what sendmsg returns. */
ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds,
    int nfds, int flags);
/* Receives one message into buf (cap bytes) and the fds that came with it
 * (close-on-exec; at most FDPASS_MAX kept, the rest closed) in fds,
 * *nfds. *msg_flags: recvmsg's (MSG_TRUNC, MSG_CTRUNC). What recvmsg
 * returns; on -1 no fd is kept. */
ssize_t fdpass_recv(int sock, void *buf, size_t cap, int fds[FDPASS_MAX],
    int *nfds, int *msg_flags, int flags);

#endif
