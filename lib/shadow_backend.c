#include "shadow_backend.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "jsonl.h"
#include "log.h"
#include "shadow_doc.h"
#include "shadow_tree.h"

static const char *str_or_null(jv req, const char *key)
{
	return jv_get_kind(req) == JV_KIND_OBJECT ? jl_str(req, key) : NULL;
}

const char *shadow_req_thing(const struct shadow_req *r)
{
	return str_or_null(r->req, "thing");
}

const char *shadow_req_shadow(const struct shadow_req *r)
{
	return str_or_null(r->req, "shadow");
}

void shadow_req_reject(struct shadow_req *r, int code, const char *message, time_t now)
{
	struct shadow_error e = {code, message};
	const char *thing = shadow_req_thing(r), *shadow = shadow_req_shadow(r);
	jv out = shadow_tag(shadow_rejection(r->req, &e, now),
	                    thing && shadow_thing_name_ok(thing) ? thing : NULL,
	                    shadow && shadow_shadow_name_ok(shadow) ? shadow : NULL, "rejected");
	out = jv_object_set(out, jv_string("line"), jv_number((double)r->line));
	jv_free(r->result);
	r->result = out;
	free(r->text);
	r->text = NULL;
}

void shadow_req_accept(struct shadow_req *r, jv body)
{
	jv_free(r->result);
	r->result = shadow_tag(body, shadow_req_thing(r), shadow_req_shadow(r), "accepted");
}

void shadow_req_accept_text(struct shadow_req *r, struct jbuf *b)
{
	jv_free(r->result);
	free(r->text);
	r->result = jv_true();
	r->text = b->p;
	r->text_len = b->len;
	*b = (struct jbuf){0};
}

int shadow_req_accepted(const struct shadow_req *r)
{
	if (r->text)
		return 1;
	const char *res = jv_get_kind(r->result) == JV_KIND_OBJECT ? jl_str(r->result, "result") : NULL;
	return res && strcmp(res, "accepted") == 0;
}

int shadow_req_append(struct jbuf *b, const struct shadow_req *r)
{
	if (r->text)
		return jbuf_add(b, r->text, r->text_len);
	json_out_append(b, r->result);
	return jbuf_add(b, "\n", 1);
}

void shadow_req_init_local(struct shadow_req *r, const char *line, size_t len, unsigned long lineno)
{
	r->line = lineno;
	r->text = NULL;
	r->fast = NULL;
	r->result = jv_invalid();
	/* jsonl_parse_object's trimming and well-formedness check, then the quick parse */
	size_t n = len;
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	char why[96];
	if (n > 0 && json_check((const uint8_t *)line, n, 256, why, sizeof why) == 0 &&
	    shadow_rtree_parse(line, n, &r->req, &r->fast))
		return;
	shadow_req_init(r, line, len, lineno);
}

void shadow_req_init(struct shadow_req *r, const char *line, size_t len, unsigned long lineno)
{
	r->line = lineno;
	r->text = NULL;
	r->fast = NULL;
	r->result = jv_invalid();
	jv v = jsonl_parse_object(line, len);
	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);
		log_warn("line %lu: %s", lineno,
		         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "unreadable");
		jv_free(msg);
		r->req = jv_null();
		shadow_req_reject(r, 400, "Invalid JSON", time(NULL));
		return;
	}
	r->req = v;
	struct shadow_error e;
	if (shadow_check_update_text(r->req, len, &e) < 0) {
		log_warn("line %lu: rejected: %d %s", lineno, e.code, e.message);
		shadow_req_reject(r, e.code, e.message, time(NULL));
	}
}

void shadow_req_free(struct shadow_req *r)
{
	jv_free(r->req);
	jv_free(r->result);
	free(r->text);
	r->text = NULL;
	shadow_rtree_free(r->fast);
	r->fast = NULL;
	r->req = jv_null();
	r->result = jv_invalid();
}

int shadow_select_match(const struct shadow_select *s, const char *thing)
{
	if (!s || s->n == 0)
		return 1;
	for (int i = 0; i < s->n; i++)
		if (fnmatch(s->patterns[i], thing, 0) == 0)
			return 1;
	return 0;
}

int shadow_select_literal(const struct shadow_select *s)
{
	if (!s || s->n == 0)
		return 0;
	for (int i = 0; i < s->n; i++)
		if (strpbrk(s->patterns[i], "*?[\\"))
			return 0;
	return 1;
}

int shadow_seen_newer(jv *seen, const char *thing, const char *shadow, double version)
{
	jv key = jv_string_fmt("%s/%s", thing, shadow ? shadow : "");
	double last = jl_num(*seen, jv_string_value(key), -1);
	if (version <= last) {
		jv_free(key);
		return 0;
	}
	*seen = jv_object_set(*seen, key, jv_number(version));
	return 1;
}

const char *shadow_store_dir(const char *dir)
{
	if (dir && *dir)
		return dir;
	const char *env = getenv("SHADOW_STORE");
	if (env && *env)
		return env;
	return "./var/shadows";
}
