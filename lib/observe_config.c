#define _GNU_SOURCE
#include "observe_config.h"

#include "lwm2m_path.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const char *const default_paths[] = {"/3/0/9", "/4/0/2", "/3303/0/5700", "/3347/0/5501",
                                            "/3347/1/5501"};
static const char *const known_attrs[] = {"pmin", "pmax", "gt", "lt", "st", "epmin", "epmax"};

static void rule_free(struct observe_rule *r)
{
	for (size_t i = 0; i < r->npaths; i++)
		free(r->paths[i]);
	free(r->paths);
	free(r->match);
	jv_free(r->attributes);
	memset(r, 0, sizeof *r);
	r->attributes = jv_null();
}

void observe_config_free(struct observe_config *cfg)
{
	rule_free(&cfg->def);
	for (size_t i = 0; i < cfg->nrules; i++)
		rule_free(&cfg->rules[i]);
	free(cfg->rules);
	cfg->rules = NULL;
	cfg->nrules = 0;
}

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
	return -1;
}

static int add_path(struct observe_rule *r, const char *s, char **err)
{
	struct lwm2m_path p;
	if (lwm2m_path_parse(s, &p) < 0 || p.len < 1)
		return fail(err, "bad LwM2M path \"%s\" (like /3/0/9)", s);
	char buf[LWM2M_PATH_STRLEN];
	char **np = realloc(r->paths, (r->npaths + 1) * sizeof *np);
	if (!np)
		return fail(err, "out of memory");
	r->paths = np;
	if (!(r->paths[r->npaths] = strdup(lwm2m_path_str(&p, buf, sizeof buf))))
		return fail(err, "out of memory");
	r->npaths++;
	return 0;
}

int observe_config_default(struct observe_config *cfg)
{
	char *err = NULL;
	memset(cfg, 0, sizeof *cfg);
	cfg->def.attributes = jv_object();
	for (size_t i = 0; i < sizeof default_paths / sizeof *default_paths; i++)
		if (add_path(&cfg->def, default_paths[i], &err) < 0) {
			free(err);
			return -1;
		}
	return 0;
}

int observe_config_set_paths(struct observe_config *cfg, char *const *paths, size_t n, char **err)
{
	struct observe_rule r = {.attributes = jv_null()};
	for (size_t i = 0; i < n; i++)
		if (add_path(&r, paths[i], err) < 0) {
			rule_free(&r);
			return -1;
		}
	for (size_t i = 0; i < cfg->def.npaths; i++)
		free(cfg->def.paths[i]);
	free(cfg->def.paths);
	cfg->def.paths = r.paths;
	cfg->def.npaths = r.npaths;
	free(r.match);
	jv_free(r.attributes);
	return 0;
}

const struct observe_rule *observe_config_rule(const struct observe_config *cfg, const char *ep)
{
	for (size_t i = 0; i < cfg->nrules; i++)
		if (fnmatch(cfg->rules[i].match, ep, 0) == 0)
			return &cfg->rules[i];
	return &cfg->def;
}

/* ---- YAML walking (libyaml document API) ---- */

struct walk {
	yaml_document_t *doc;
	const char *file;
	char **err;
};

static unsigned long line_of(yaml_node_t *n)
{
	return (unsigned long)n->start_mark.line + 1;
}

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int wfail(struct walk *w, yaml_node_t *n, const char *what, const char *detail)
{
	return fail(w->err, "%s:%lu: %s%s%s", w->file, n ? line_of(n) : 0UL, what, detail ? ": " : "",
	            detail ? detail : "");
}

static int load_paths(struct walk *w, yaml_node_t *n, struct observe_rule *r)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return wfail(w, n, "paths must be a list of LwM2M paths", NULL);
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(w->doc, *it);
		const char *s = scalar(e);
		if (!s)
			return wfail(w, e, "a path must be a string like /3/0/9", NULL);
		char *e2 = NULL;
		if (add_path(r, s, &e2) < 0) {
			wfail(w, e, e2 ? e2 : "bad path", NULL);
			free(e2);
			return -1;
		}
	}
	return 0;
}

static int load_attrs(struct walk *w, yaml_node_t *n, struct observe_rule *r)
{
	if (n->type != YAML_MAPPING_NODE)
		return wfail(w, n, "attributes must be a mapping like {pmin: 1, pmax: 60}", NULL);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
		const char *ks = scalar(k), *vs = scalar(v);
		int known = 0;
		for (size_t i = 0; ks && i < sizeof known_attrs / sizeof *known_attrs; i++)
			known |= strcmp(ks, known_attrs[i]) == 0;
		if (!known)
			return wfail(w, k, "unknown attribute (pmin, pmax, gt, lt, st, epmin, epmax)", ks);
		char *end;
		errno = 0;
		double d = vs ? strtod(vs, &end) : 0;
		if (!vs || !*vs || *end || errno)
			return wfail(w, v, "an attribute value must be a number", ks);
		r->attributes = jv_object_set(r->attributes, jv_string(ks), jv_number(d));
	}
	return 0;
}

static int load_rule(struct walk *w, yaml_node_t *n, struct observe_rule *r, int top)
{
	if (n->type != YAML_MAPPING_NODE)
		return wfail(w, n, top ? "the configuration must be a mapping" : "an endpoints entry must be a mapping",
		             NULL);
	int have_paths = 0;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
		const char *ks = scalar(k);
		if (!ks)
			return wfail(w, k, "keys must be strings", NULL);
		if (strcmp(ks, "paths") == 0) {
			if (load_paths(w, v, r) < 0)
				return -1;
			have_paths = 1;
		} else if (strcmp(ks, "attributes") == 0) {
			if (load_attrs(w, v, r) < 0)
				return -1;
		} else if (!top && strcmp(ks, "match") == 0) {
			const char *m = scalar(v);
			if (!m || !*m)
				return wfail(w, v, "match must be a glob pattern string", NULL);
			free(r->match);
			if (!(r->match = strdup(m)))
				return wfail(w, v, "out of memory", NULL);
		} else if (top && strcmp(ks, "endpoints") == 0) {
			continue; /* handled by the caller */
		} else {
			return wfail(w, k, top ? "unknown key (paths, attributes, endpoints)" : "unknown key (match, paths, attributes)",
			             ks);
		}
	}
	if (!top && !r->match)
		return wfail(w, n, "an endpoints entry needs match", NULL);
	if (!top && !have_paths)
		return wfail(w, n, "an endpoints entry needs paths", NULL);
	return have_paths ? 1 : 0;
}

int observe_config_load(struct observe_config *cfg, const char *file, char **err)
{
	*err = NULL;
	FILE *f = fopen(file, "r");
	if (!f)
		return fail(err, "%s: %s", file, strerror(errno));
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return fail(err, "%s: unable to start the YAML parser", file);
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		fail(err, "%s:%lu: %s", file, (unsigned long)parser.problem_mark.line + 1,
		     parser.problem ? parser.problem : "malformed YAML");
		yaml_parser_delete(&parser);
		fclose(f);
		return -1;
	}
	yaml_parser_delete(&parser);
	fclose(f);

	struct observe_config nc;
	if (observe_config_default(&nc) < 0) {
		yaml_document_delete(&doc);
		return fail(err, "out of memory");
	}
	struct walk w = {&doc, file, err};
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	int rc = 0;
	if (!root) {
		/* an empty file: the built-in defaults */
		goto done;
	}
	struct observe_rule top = {.attributes = jv_object()};
	int k = load_rule(&w, root, &top, 1);
	if (k < 0) {
		rule_free(&top);
		rc = -1;
		goto done;
	}
	if (k == 1) {
		rule_free(&nc.def);
		nc.def = top;
	} else {
		jv_free(nc.def.attributes);
		nc.def.attributes = top.attributes;
		top.attributes = jv_null();
		rule_free(&top);
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		const char *ks = scalar(yaml_document_get_node(&doc, p->key));
		if (!ks || strcmp(ks, "endpoints") != 0)
			continue;
		yaml_node_t *seq = yaml_document_get_node(&doc, p->value);
		if (seq->type != YAML_SEQUENCE_NODE) {
			rc = wfail(&w, seq, "endpoints must be a list of {match, paths} entries", NULL);
			goto done;
		}
		for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
			struct observe_rule r = {.attributes = jv_object()};
			if (load_rule(&w, yaml_document_get_node(&doc, *it), &r, 0) < 0) {
				rule_free(&r);
				rc = -1;
				goto done;
			}
			struct observe_rule *nr = realloc(nc.rules, (nc.nrules + 1) * sizeof *nr);
			if (!nr) {
				rule_free(&r);
				rc = fail(err, "out of memory");
				goto done;
			}
			nc.rules = nr;
			nc.rules[nc.nrules++] = r;
		}
	}
done:
	yaml_document_delete(&doc);
	if (rc < 0) {
		observe_config_free(&nc);
		return -1;
	}
	observe_config_free(cfg);
	*cfg = nc;
	return 0;
}
