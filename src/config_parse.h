/* config_parse.h: what the config_*.c files share while reading one file (libconfig side). */
#ifndef SOCKS5D_CONFIG_PARSE_H
#define SOCKS5D_CONFIG_PARSE_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "diag.h"

/* libconfig 1.5 refuses an @include nested deeper than this (scanctx.h:
 * MAX_INCLUDE_DEPTH); the pre-check uses the same bound. */
#define CONFIG_MAX_INCLUDE_DEPTH 10

struct config_numbers;

/* The parse of one file: where diagnostics go, what it builds. */
struct parse {
	const char *path;		/* the main file */
	const char *dir;		/* where relative @include names start */
	struct diag *d;
	struct config *conf;
	struct config_numbers *nums;	/* integer literals as written */
};

void perr(struct parse *p, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pwarn(struct parse *p, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The file setting s came from, as a path (libconfig names an included
 * file as written in @include, relative to p->dir); NULL if unknown. */
const char *parse_source_file(const struct parse *p, const config_setting_t *s,
    char *buf, size_t len);
/* Reports every member of group g whose name is not in known (NULL-ended). */
void parse_check_keys(struct parse *p, const config_setting_t *g,
    const char *where, const char *const *known);
/* A member expected to be a group; NULL if absent or not a group. */
config_setting_t *parse_get_group(struct parse *p,
    const config_setting_t *parent, const char *name);
/* Sets *out to member name if it is an integer in min..max. */
void parse_get_int(struct parse *p, const config_setting_t *g,
    const char *where, const char *name, long min, long max, int *out);
/* Sets *out to member name if it is true or false (an error otherwise);
 * the member, NULL if absent. where: the group's name, NULL at the top. */
config_setting_t *parse_get_bool(struct parse *p, const config_setting_t *g,
    const char *where, const char *name, bool *out);
/* The string value of member name, NULL if absent or not a string. */
const char *parse_get_string(struct parse *p, const config_setting_t *g,
    const char *where, const char *name);
/* A member that must be a list or array: [ ... ] or ( ... ). */
config_setting_t *parse_get_list(struct parse *p, const config_setting_t *g,
    const char *where, const char *name);

/* config_numbers.c: libconfig 1.5 keeps an integer written without an L
 * suffix in 32 bits, so 4294999376 reads as 32080. config_numbers_read
 * re-reads every file the settings came from and records the literal of
 * each integer setting; config_number_get gives the value as written. */
struct config_numbers *config_numbers_read(const struct parse *p,
    const config_setting_t *root);
void config_numbers_free(struct config_numbers *nums);
/* The value of integer setting s as written (false: beyond 64 bits, or its
 * literal was not found and *v is libconfig's). shown gets the value to
 * print in a message: the literal itself when it does not fit. */
bool config_number_get(const struct config_numbers *nums,
    const config_setting_t *s, long long *v, char *shown, size_t len);

/* config_include.c: libconfig's scanner ends the whole process when it
 * cannot read a file (a directory, a FIFO) and follows include cycles
 * until its depth limit: check the file and each @include first. Returns
 * false (with errors in p->d) if libconfig must not be given the file. */
bool config_include_check(struct parse *p);

/* config_listeners.c and config_rules.c */
/* A port (integer) or range ("lo-hi" string) setting into *out; false
 * (after an error naming it) if bad. Used by rule `ports` and by the port
 * ranges of commands. */
bool parse_port(struct parse *p, const config_setting_t *e,
    struct port_range *out);

/* Whether v may name a rule or a listener (config_rules.c). */
bool parse_name_valid(const char *v);
/* config_control.c */
void parse_control(struct parse *p, const config_setting_t *root);

void parse_listeners(struct parse *p, const config_setting_t *root);
void parse_external(struct parse *p, const config_setting_t *root);
/* config_udp.c: the `udp` group (UDP ASSOCIATE). */
void parse_udp(struct parse *p, const config_setting_t *root);
void parse_rules(struct parse *p, const config_setting_t *root,
    const char *name, struct ruleset *rs);

/* config_limits.c: a request rule's limit keys (max_sessions,
 * sessions_per, rate_up, rate_down, rate_per) and its identity, from
 * entry r of `rules`; called once per rule by config_rules.c. */
#define CONFIG_LIMIT_KEYS "max_sessions", "sessions_per", "rate_up", \
	"rate_down", "rate_per"
void parse_rule_limits(struct parse *p, const config_setting_t *r,
    struct rule *rule);
/* config_bind.c: the `bind` group (BIND's ports and peer check). */
void parse_bind(struct parse *p, const config_setting_t *root);

#endif
