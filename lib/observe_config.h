/* lwm2m-observe's configuration: which paths to observe on which endpoints (YAML, libyaml).
 *
 *   paths: [/3/0/9, /4/0/2]            # every device that no endpoints entry matches
 *   attributes: {pmin: 1, pmax: 300}    # optional Write-Attributes before each observe
 *   endpoints:
 *     - match: "lamp-*"                 # fnmatch(3) glob on the endpoint name; first match wins
 *       paths: [/3311/0/5850, /3/0/9]
 *       attributes: {pmax: 60}
 */
#ifndef OBSERVE_CONFIG_H
#define OBSERVE_CONFIG_H

#include <jv.h>
#include <stddef.h>

struct observe_rule {
	char *match;       /* NULL for the default rule */
	char **paths;
	size_t npaths;
	jv attributes;     /* object, possibly empty */
};

struct observe_config {
	struct observe_rule def;
	struct observe_rule *rules;
	size_t nrules;
};

/* The built-in default: /3/0/9 /4/0/2 /3303/0/5700 /3347/0/5501 /3347/1/5501. */
int observe_config_default(struct observe_config *cfg);
/* Replace the default rule's paths (operands). 0, or -1 with *err (malloc'd) naming the bad path. */
int observe_config_set_paths(struct observe_config *cfg, char *const *paths, size_t n, char **err);
/* Load a YAML file. 0, or -1 with *err set (malloc'd, "FILE:LINE: what"). cfg is untouched on
 * failure. */
int observe_config_load(struct observe_config *cfg, const char *file, char **err);
/* The rule for an endpoint: the first endpoints entry that matches, else the default. */
const struct observe_rule *observe_config_rule(const struct observe_config *cfg, const char *ep);
void observe_config_free(struct observe_config *cfg);

#endif
