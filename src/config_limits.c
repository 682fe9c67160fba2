/* config_limits.c: a request rule's limit keys and its identity, which
 * keeps its counts across a reload (config_parse.h). */
#include <string.h>

#include "config_parse.h"
#include "limits_session.h"
#include "siphash.h"

/* Fixed: every generation must give a rule the same identity. */
static const uint8_t id_key[16] = "socks5d-rule-id";

struct id_hash {
	uint8_t buf[4096];
	size_t len;
	uint64_t acc;
};

static void
id_add(struct id_hash *h, const void *data, size_t n)
{
	const uint8_t *b = data;

	while (n > 0) {
		size_t room = sizeof(h->buf) - h->len, k = n < room ? n : room;

		memcpy(h->buf + h->len, b, k);
		h->len += k;
		b += k;
		n -= k;
		if (h->len == sizeof(h->buf)) {
			h->acc ^= siphash24(id_key, h->buf, h->len);
			h->acc = (h->acc << 1) | (h->acc >> 63);
			h->len = 0;
		}
	}
}

/* The setting as its values say it, whatever its layout: names, types,
 * values, in order. */
/* NOLINTBEGIN(misc-no-recursion): at most 16 levels deep. */
static void
id_add_setting(struct id_hash *h, const config_setting_t *s, int depth)
{
	int type = config_setting_type(s);
	const char *name = config_setting_name(s), *str;
	long long v;
	double f;

	id_add(h, &type, sizeof(type));
	if (name != NULL)
		id_add(h, name, strlen(name) + 1);
	switch (type) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		id_add(h, &v, sizeof(v));
		break;
	case CONFIG_TYPE_FLOAT:
		f = config_setting_get_float(s);
		id_add(h, &f, sizeof(f));
		break;
	case CONFIG_TYPE_BOOL:
		v = config_setting_get_bool(s);
		id_add(h, &v, sizeof(v));
		break;
	case CONFIG_TYPE_STRING:
		str = config_setting_get_string(s);
		id_add(h, str, strlen(str) + 1);
		break;
	default:
		if (depth > 16)
			break;
		for (int i = 0; i < config_setting_length(s); i++)
			id_add_setting(h, config_setting_get_elem(s,
			    (unsigned)i), depth + 1);
		break;
	}
}
/* NOLINTEND(misc-no-recursion) */

/* A named rule is its name; any other is its position in `rules` and
 * its text (so that editing a rule, or moving it, starts its counts
 * afresh: the sessions of the old one no longer count against it). */
static uint64_t
rule_identity(const config_setting_t *r, const struct rule *rule)
{
	struct id_hash h = { .len = 0, .acc = 0 };
	int pos = config_setting_index(r);

	if (rule->name != NULL) {
		id_add(&h, "name", 5);
		id_add(&h, rule->name, strlen(rule->name) + 1);
	} else {
		id_add(&h, "text", 5);
		id_add(&h, &pos, sizeof(pos));
		id_add_setting(&h, r, 0);
	}
	return h.acc ^ siphash24(id_key, h.buf, h.len);
}

/* A byte rate: a whole number of bytes/s in 0..LIMITS_RATE_MAX. */
static void
parse_rate(struct parse *p, const config_setting_t *r, const char *name,
    uint64_t *out)
{
	config_setting_t *s = config_setting_get_member(r, name);
	char shown[64];
	long long v;

	if (s == NULL)
		return;
	if ((config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)) {
		perr(p, s, "rule %s must be an integer (bytes/s)", name);
		return;
	}
	if (!config_number_get(p->nums, s, &v, shown, sizeof(shown)) ||
	    v < 0 || (unsigned long long)v > LIMITS_RATE_MAX) {
		perr(p, s, "rule %s: %s is out of range (0..%llu bytes/s)",
		    name, shown, (unsigned long long)LIMITS_RATE_MAX);
		return;
	}
	*out = (uint64_t)v;
}

/* A string key with a few allowed words: its index, or -1 (absent or bad,
 * reported). */
static int
parse_word(struct parse *p, const config_setting_t *r, const char *name,
    const char *const *words, const char *list)
{
	config_setting_t *s = config_setting_get_member(r, name);
	const char *v;

	if (s == NULL)
		return -1;
	if ((v = config_setting_get_string(s)) != NULL)
		for (int i = 0; words[i] != NULL; i++)
			if (strcmp(v, words[i]) == 0)
				return i;
	perr(p, s, "unknown rule %s \"%s\" (%s)", name,
	    v != NULL ? v : "(not a string)", list);
	return -1;
}

void
parse_rule_limits(struct parse *p, const config_setting_t *r,
    struct rule *rule)
{
	static const char *const per_words[] = { "client", "user", "rule",
	    NULL };
	static const char *const rate_words[] = { "session", "user", NULL };
	int max = 0, w;

	rule->limit_id = rule_identity(r, rule);
	parse_get_int(p, r, "rule", "max_sessions", 0, 1000000, &max);
	rule->max_sessions = (uint32_t)max;
	if ((w = parse_word(p, r, "sessions_per", per_words,
	    "client, user, rule")) != -1)
		rule->sessions_per = (uint8_t)w;
	parse_rate(p, r, "rate_up", &rule->rate[0]);
	parse_rate(p, r, "rate_down", &rule->rate[1]);
	if ((w = parse_word(p, r, "rate_per", rate_words,
	    "session, user")) != -1)
		rule->rate_per_user = w == 1;
	if (rule->action == RULE_BLOCK && (rule->max_sessions > 0 ||
	    rule->rate[0] > 0 || rule->rate[1] > 0))
		pwarn(p, r, "a block rule's limits do nothing");
}
