/* notify.c: sd_notify for the master. */
#include <stdio.h>
#include <string.h>

#include "io.h"
#include "log.h"
#include "notify.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

static void
notify_send(const char *state)
{
	int rc = sd_notify(0, state);

	/* 0: no $NOTIFY_SOCKET, not run by systemd. */
	if (rc < 0)
		log_debug("sd_notify %s: %s", state, strerror(-rc));
}
#else
static void
notify_send(const char *state)
{
	(void)state;
}
#endif

static char last_status[256];

void
notify_ready(void)
{
	notify_send("READY=1");
}

void
notify_reloading(void)
{
	char state[64];

	/* systemd 253 and later want the time with RELOADING=1. */
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%lld",
	    (long long)io_now_ms() * 1000);
	notify_send(state);
}

void
notify_stopping(void)
{
	notify_send("STOPPING=1");
}

void
notify_status(const char *text)
{
	char state[sizeof(last_status) + 8];

	if (strncmp(text, last_status, sizeof(last_status)) == 0)
		return;
	snprintf(last_status, sizeof(last_status), "%s", text);
	snprintf(state, sizeof(state), "STATUS=%s", last_status);
	notify_send(state);
}
