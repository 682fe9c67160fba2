/* notify.h: telling systemd how the master is doing (sd_notify, for
 * Type=notify). Without $NOTIFY_SOCKET, or built without libsystemd,
 * every call does nothing. */
#ifndef SOCKS5D_NOTIFY_H
#define SOCKS5D_NOTIFY_H

/* READY=1: the listeners are open and workers accept. */
void notify_ready(void);
/* RELOADING=1 (with MONOTONIC_USEC) before a reload is tried. */
void notify_reloading(void);
/* STOPPING=1 once the stop has begun. */
void notify_stopping(void);
/* STATUS=<text>, for `systemctl status`; sent only when it changed. */
void notify_status(const char *text);

#endif
