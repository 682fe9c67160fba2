/* pidfile.h: the master's pid file (-p), locked while the master runs. */
#ifndef SOCKS5D_PIDFILE_H
#define SOCKS5D_PIDFILE_H

/* Opens and locks path (before the daemon detaches: the lock outlives
 * the fork). -1 after logging why: it cannot be opened, or another
 * running process holds it (its pid is named). */
int pidfile_open(const char *path);
/* Writes the calling process's pid into the locked file: 0 or -1 after
 * logging. */
int pidfile_write(void);
/* Removes the file at a clean exit. */
void pidfile_remove(void);

#endif
