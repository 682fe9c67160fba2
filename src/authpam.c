/* authpam.c: one PAM transaction for one login, in an auth helper. */
#include <grp.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "authpam.h"
#include "hashonce.h"
#include "log.h"

/* What the conversation may answer: the password, once. */
struct conv_data {
	const char *pass;
	bool answered;
};

/* PAM's failure delay is recorded, not slept: the helper answers at once
 * and the worker, which holds that client anyway, pays it. */
static unsigned fail_delay_usec;

static void
record_delay(int retval, unsigned usec, void *appdata)
{
	(void)retval;
	(void)appdata;
	fail_delay_usec = usec;
}

static void
free_responses(struct pam_response *r, int n)
{
	for (int i = 0; i < n; i++)
		if (r[i].resp != NULL) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	free(r);
}

/* Answers the password prompt (echo off) once; any other prompt fails
 * the conversation: a module that wants more than a password (a second
 * factor, a new password) cannot be served over RFC 1929. */
static int
conversation(int n, const struct pam_message **msg,
    struct pam_response **resp, void *appdata)
{
	struct conv_data *cd = appdata;
	struct pam_response *r;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	if ((r = calloc((size_t)n, sizeof(*r))) == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			if (cd->answered || (r[i].resp = strdup(cd->pass)) == NULL)
				goto fail;
			cd->answered = true;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			break;
		default:
			goto fail;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	free_responses(r, n);
	return PAM_CONV_ERR;
}

static enum auth_result
result_of_authenticate(int rc)
{
	switch (rc) {
	case PAM_SUCCESS:
		return AUTH_OK;
	case PAM_AUTH_ERR:
	case PAM_USER_UNKNOWN:
	case PAM_CRED_INSUFFICIENT:
	case PAM_MAXTRIES:
		return AUTH_DENIED;
	default:
		return AUTH_ERROR;
	}
}

/* The user's groups, for rules that match groups. None when the user is
 * not known to NSS (PAM may know users the system does not). */
static void
user_groups(const char *user, struct auth_reply *out)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t gids[AUTH_MAX_GROUPS];
	int n = AUTH_MAX_GROUPS;

	out->ngroups = 0;
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return;
	if (getgrouplist(user, pw.pw_gid, gids, &n) == -1)
		n = AUTH_MAX_GROUPS;	/* more than fit: the first ones */
	for (int i = 0; i < n && i < AUTH_MAX_GROUPS; i++)
		out->gids[out->ngroups++] = (uint32_t)gids[i];
}

static int
start(const char *service, const struct auth_request *req,
    struct conv_data *cd, pam_handle_t **ph)
{
	struct pam_conv conv = { conversation, cd };
	char rhost[ADDR_STRLEN];
	int rc;

	rc = pam_start(service, req->user, &conv, ph);
	if (rc != PAM_SUCCESS) {
		log_warnx("pam_start %s: %s", service, pam_strerror(NULL, rc));
		return rc;
	}
	addr_format_ip((const struct sockaddr *)&req->client, rhost,
	    sizeof(rhost));
	if ((rc = pam_set_item(*ph, PAM_RHOST, rhost)) == PAM_SUCCESS)
		rc = pam_set_item(*ph, PAM_FAIL_DELAY, (const void *)record_delay);
	return rc;
}

void
authpam_check(const char *service, bool hash_once,
    const struct auth_request *req, struct auth_reply *out)
{
	struct conv_data cd = { req->pass, false };
	pam_handle_t *ph = NULL;
	int rc;

	fail_delay_usec = 0;
	out->result = AUTH_ERROR;
	rc = start(service, req, &cd, &ph);
	if (rc == PAM_SUCCESS) {
		if (hash_once)
			hashonce_arm();
		rc = pam_authenticate(ph, PAM_DISALLOW_NULL_AUTHTOK);
		hashonce_disarm();
		out->result = result_of_authenticate(rc);
	}
	if (out->result == AUTH_OK) {
		rc = pam_acct_mgmt(ph, PAM_DISALLOW_NULL_AUTHTOK);
		if (rc != PAM_SUCCESS)
			out->result = rc == PAM_AUTHINFO_UNAVAIL ||
			    rc == PAM_SYSTEM_ERR || rc == PAM_BUF_ERR ?
			    AUTH_ERROR : AUTH_ACCOUNT;
	}
	if (out->result == AUTH_ERROR && rc != PAM_SUCCESS)
		log_debug("pam %s: %s", service, pam_strerror(ph, rc));
	if (ph != NULL)
		pam_end(ph, rc);
	out->delay_ms = out->result == AUTH_OK ? 0 :
	    (fail_delay_usec + 999) / 1000;
	if (out->delay_ms > 60000)
		out->delay_ms = 60000;
	if (out->result == AUTH_OK)
		user_groups(req->user, out);
}
