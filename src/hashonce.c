/* hashonce.c: one password hash per PAM authentication in the auth
 * helpers.
 *
 * pam_unix hashes every password twice: verify_pwd_hash() does
 * `x_strdup(crypt_r(p, hash, cdata))`, and x_strdup is a macro that
 * evaluates its argument twice (Linux-PAM 1.5.2 and later). crypt_r is a
 * pure function of the passphrase and the setting, so while a helper is
 * inside pam_authenticate (armed), this file's crypt_r, which the
 * executable exports (socks5d.dynlist) and so comes before libcrypt's for
 * every PAM module, answers a call with the very same passphrase and
 * setting as the one before it from that call's result, and computes
 * every other call with libcrypt's own crypt_r. Disarming wipes what was
 * kept. Outside an armed stretch (in every process but an auth helper in
 * pam_authenticate) it only passes calls on. */
#include <crypt.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <string.h>

#include "hashonce.h"
#include "stats.h"

typedef char *crypt_r_fn(const char *, const char *, struct crypt_data *);

static __thread struct {
	bool armed;
	bool held;			/* phrase, setting and output are set */
	char phrase[CRYPT_MAX_PASSPHRASE_SIZE];
	char setting[CRYPT_OUTPUT_SIZE];
	char output[CRYPT_OUTPUT_SIZE];
} memo;

static crypt_r_fn *
libcrypt_crypt_r(void)
{
	static crypt_r_fn *fn;

	if (fn == NULL)
		fn = (crypt_r_fn *)dlsym(RTLD_NEXT, "crypt_r");
	return fn;
}

/* Nothing is held here: every disarm wiped it (and it starts zeroed). */
void
hashonce_arm(void)
{
	memo.armed = true;
}

void
hashonce_disarm(void)
{
	explicit_bzero(&memo, sizeof(memo));
}

/* Copies s with its NUL into dst of cap bytes: false when it does not fit. */
static bool
copy_in(char *dst, size_t cap, const char *s)
{
	size_t n = s != NULL ? strnlen(s, cap) : cap;

	if (n >= cap)
		return false;
	memcpy(dst, s, n + 1);
	return true;
}

static bool
same_as_held(const char *phrase, const char *setting)
{
	return memo.held && strcmp(phrase, memo.phrase) == 0 &&
	    strcmp(setting, memo.setting) == 0;
}

static void
hold(const char *phrase, const char *setting, const char *output)
{
	/* Failures and oversized inputs are computed every time. */
	memo.held = output != NULL && output[0] != '*' &&
	    copy_in(memo.phrase, sizeof(memo.phrase), phrase) &&
	    copy_in(memo.setting, sizeof(memo.setting), setting) &&
	    copy_in(memo.output, sizeof(memo.output), output);
}

char *
crypt_r(const char *phrase, const char *setting, struct crypt_data *data)
{
	crypt_r_fn *real = libcrypt_crypt_r();
	char *out;

	if (memo.armed && data != NULL && phrase != NULL && setting != NULL &&
	    same_as_held(phrase, setting)) {
		memcpy(data->output, memo.output, sizeof(data->output));
		stats_auth_hash_reused();
		return data->output;
	}
	/* Without libcrypt's crypt_r (not found: never seen), crypt_rn,
	 * which says NULL where crypt_r gives a failure token. */
	out = real != NULL ? real(phrase, setting, data) :
	    crypt_rn(phrase, setting, data, (int)sizeof(*data));
	if (memo.armed && phrase != NULL && setting != NULL)
		hold(phrase, setting, out);
	return out;
}
