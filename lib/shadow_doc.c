#include "shadow_doc.h"

#include <string.h>

#include "json_out.h"
#include "jsonl.h"

static int name_ok(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ':' || c == '_' || c == '-'))
			return 0;
	}
	return n >= 1 && n <= max;
}

int shadow_thing_name_ok(const char *s)
{
	return s && name_ok(s, SHADOW_THING_MAX);
}

int shadow_shadow_name_ok(const char *s)
{
	return s && name_ok(s, SHADOW_NAME_MAX);
}

static int fail(struct shadow_error *err, int code, const char *message)
{
	err->code = code;
	err->message = message;
	return -1;
}

/* Levels of containers in v: a scalar is 0, {"a":1} is 1. */
static int depth(jv v)
{
	int d = 0;
	if (jv_get_kind(v) == JV_KIND_OBJECT) {
		jv_object_foreach(v, k, x) {
			int c = depth(x);
			if (c > d)
				d = c;
			jv_free(k);
			jv_free(x);
		}
		return d + 1;
	}
	if (jv_get_kind(v) == JV_KIND_ARRAY) {
		jv_array_foreach(v, i, x) {
			int c = depth(x);
			if (c > d)
				d = c;
			jv_free(x);
		}
		return d + 1;
	}
	return 0;
}

/* AWS refuses null inside arrays ("Arrays can't have null values"). */
static int has_null_in_array(jv v, int in_array)
{
	int found = 0;
	switch (jv_get_kind(v)) {
	case JV_KIND_NULL:
		return in_array;
	case JV_KIND_OBJECT:
		jv_object_foreach(v, k, x) {
			found = found || has_null_in_array(x, 0);
			jv_free(k);
			jv_free(x);
		}
		return found;
	case JV_KIND_ARRAY:
		jv_array_foreach(v, i, x) {
			found = found || has_null_in_array(x, 1);
			jv_free(x);
		}
		return found;
	default:
		return 0;
	}
}

/* The size AWS limits is that of the compact JSON text: measured without building it. */
static size_t dumped_len(jv v)
{
	return json_out_len(v);
}

int shadow_check_update(jv req, struct shadow_error *err)
{
	return shadow_check_update_text(req, 0, err);
}

int shadow_check_update_text(jv req, size_t text_len, struct shadow_error *err)
{
	jv thing = jl_get(req, "thing");
	jv_kind tk = jv_get_kind(thing);
	int thing_ok = tk == JV_KIND_STRING && shadow_thing_name_ok(jv_string_value(thing));
	jv_free(thing);
	if (tk == JV_KIND_INVALID || tk == JV_KIND_NULL)
		return fail(err, 400, "Missing required node: thing");
	if (!thing_ok)
		return fail(err, 400, "Invalid thing name");

	jv name = jl_get(req, "shadow");
	jv_kind nk = jv_get_kind(name);
	int name_ok_ = nk == JV_KIND_INVALID || nk == JV_KIND_NULL ||
	               (nk == JV_KIND_STRING && shadow_shadow_name_ok(jv_string_value(name)));
	jv_free(name);
	if (!name_ok_)
		return fail(err, 400, "Invalid shadow name");

	jv tok = jl_get(req, "clientToken");
	jv_kind ok = jv_get_kind(tok);
	int tok_ok = ok == JV_KIND_INVALID || ok == JV_KIND_NULL ||
	             (ok == JV_KIND_STRING && strlen(jv_string_value(tok)) <= SHADOW_MAX_TOKEN);
	jv_free(tok);
	if (!tok_ok)
		return fail(err, 400, "Invalid clientToken");

	jv ver = jl_get(req, "version");
	jv_kind vk = jv_get_kind(ver);
	int ver_ok = vk == JV_KIND_INVALID || vk == JV_KIND_NULL ||
	             (vk == JV_KIND_NUMBER && jv_is_integer(ver) && jv_number_value(ver) >= 0 &&
	              jv_number_value(ver) <= 9007199254740992.0);
	jv_free(ver);
	if (!ver_ok)
		return fail(err, 400, "Invalid version");

	jv state = jl_get(req, "state");
	jv_kind sk = jv_get_kind(state);
	if (sk == JV_KIND_INVALID)
		return fail(err, 400, "Missing required node: state");
	if (sk == JV_KIND_NULL) {
		jv_free(state);
		return 0;
	}
	if (sk != JV_KIND_OBJECT) {
		jv_free(state);
		return fail(err, 400, "State node must be an object");
	}
	int rc = 0;
	jv_object_foreach(state, k, x) {
		const char *key = jv_string_value(k);
		jv_kind xk = jv_get_kind(x);
		if (rc == 0) {
			if (strcmp(key, "desired") != 0 && strcmp(key, "reported") != 0)
				rc = fail(err, 400, "State contains an invalid node");
			else if (xk != JV_KIND_OBJECT && xk != JV_KIND_NULL)
				rc = fail(err, 400,
				          key[0] == 'd' ? "Desired node must be an object"
				                        : "Reported node must be an object");
			else if (has_null_in_array(x, 0))
				rc = fail(err, 400, "State contains an invalid node");
			else if (depth(x) > SHADOW_MAX_DEPTH)
				rc = fail(err, 400, "JSON contains too many levels of nesting; maximum is 6");
		}
		jv_free(k);
		jv_free(x);
	}
	/* a byte of JSON text becomes at most 6 in jq's compact form (DEL as \u007f; "1e9" is
	 * 10 bytes long): a short line needs no measuring */
	if (rc == 0 && (text_len == 0 || text_len > SHADOW_MAX_STATE / 6) && dumped_len(state) > SHADOW_MAX_STATE)
		rc = fail(err, 413, "The payload exceeds the maximum size allowed");
	jv_free(state);
	return rc;
}

/* Merge src (borrowed) into dst (consumed): null deletes, objects merge, anything else (arrays
 * included) replaces. Objects left empty disappear. */
static jv merge(jv dst, jv src)
{
	if (jv_get_kind(dst) != JV_KIND_OBJECT) {
		jv_free(dst);
		dst = jv_object();
	}
	jv_object_foreach(src, k, v) {
		if (jv_get_kind(v) == JV_KIND_NULL) {
			dst = jv_object_delete(dst, k);
			jv_free(v);
		} else if (jv_get_kind(v) == JV_KIND_OBJECT) {
			jv sub = merge(jv_object_get(jv_copy(dst), jv_copy(k)), v);
			jv_free(v);
			if (jv_object_length(jv_copy(sub)) == 0) {
				jv_free(sub);
				dst = jv_object_delete(dst, k);
			} else {
				dst = jv_object_set(dst, k, sub);
			}
		} else {
			dst = jv_object_set(dst, k, v);
		}
	}
	return dst;
}

static jv stamp(time_t now)
{
	return jv_object_set(jv_object(), jv_string("timestamp"), jv_number((double)now));
}

/* Stamp every leaf of the request section src (borrowed) into meta (consumed). */
static jv meta_merge(jv meta, jv src, time_t now)
{
	if (jv_get_kind(meta) != JV_KIND_OBJECT) {
		jv_free(meta);
		meta = jv_object();
	}
	jv_object_foreach(src, k, v) {
		if (jv_get_kind(v) == JV_KIND_NULL) {
			meta = jv_object_delete(meta, k);
		} else if (jv_get_kind(v) == JV_KIND_OBJECT) {
			jv sub = meta_merge(jv_object_get(jv_copy(meta), jv_copy(k)), v, now);
			meta = jv_object_set(meta, k, sub);
		} else {
			meta = jv_object_set(meta, k, stamp(now));
		}
		jv_free(v);
	}
	return meta;
}

/* Metadata (meta, borrowed) shaped exactly like state (borrowed): one {"timestamp"} per leaf. */
static jv meta_restrict(jv meta, jv state, time_t now)
{
	jv out = jv_object();
	jv_object_foreach(state, k, v) {
		jv m = jv_get_kind(meta) == JV_KIND_OBJECT ? jv_object_get(jv_copy(meta), jv_copy(k))
		                                           : jv_invalid();
		if (jv_get_kind(v) == JV_KIND_OBJECT) {
			jv sub = meta_restrict(m, v, now);
			jv_free(m);
			out = jv_object_set(out, k, sub);
		} else if (jv_get_kind(m) == JV_KIND_OBJECT && jl_has(m, "timestamp")) {
			jv leaf = jv_object_set(jv_object(), jv_string("timestamp"), jl_get(m, "timestamp"));
			jv_free(m);
			out = jv_object_set(out, k, leaf);
		} else {
			jv_free(m);
			out = jv_object_set(out, k, stamp(now));
		}
		jv_free(v);
	}
	return out;
}

/* The accepted body's metadata: a timestamp for every leaf of the request (nulls included). */
static jv meta_of(jv v, time_t now)
{
	if (jv_get_kind(v) != JV_KIND_OBJECT)
		return stamp(now);
	jv out = jv_object();
	jv_object_foreach(v, k, x) {
		out = jv_object_set(out, k, meta_of(x, now));
		jv_free(x);
	}
	return out;
}

/* Attributes of desired (borrowed) that reported (borrowed) lacks or holds differently. */
static jv delta_of(jv desired, jv reported)
{
	jv out = jv_object();
	jv_object_foreach(desired, k, d) {
		jv r = jv_get_kind(reported) == JV_KIND_OBJECT
		           ? jv_object_get(jv_copy(reported), jv_copy(k))
		           : jv_invalid();
		if (jv_get_kind(d) == JV_KIND_OBJECT && jv_get_kind(r) == JV_KIND_OBJECT) {
			jv sub = delta_of(d, r);
			jv_free(d);
			if (jv_object_length(jv_copy(sub)) > 0)
				out = jv_object_set(out, k, sub);
			else {
				jv_free(sub);
				jv_free(k);
			}
		} else if (jv_is_valid(r) && jv_equal(jv_copy(d), jv_copy(r))) {
			jv_free(d);
			jv_free(k);
		} else {
			out = jv_object_set(out, k, d);
		}
		jv_free(r);
	}
	return out;
}

jv shadow_delta(jv doc, time_t now)
{
	jv state = jl_get(doc, "state");
	jv desired = jl_get(state, "desired");
	if (jv_get_kind(desired) != JV_KIND_OBJECT) {
		jv_free(state);
		jv_free(desired);
		return jv_invalid();
	}
	jv reported = jl_get(state, "reported");
	jv d = delta_of(desired, reported);
	jv_free(reported);
	jv_free(state);
	jv_free(desired);
	if (jv_object_length(jv_copy(d)) == 0) {
		jv_free(d);
		return jv_invalid();
	}
	jv meta = jl_get(doc, "metadata");
	jv mdes = jl_get(meta, "desired");
	jv dmeta = meta_restrict(mdes, d, now);
	jv_free(mdes);
	jv_free(meta);
	jv out = jv_object();
	out = jv_object_set(out, jv_string("version"), jl_get(doc, "version"));
	out = jv_object_set(out, jv_string("state"), d);
	out = jv_object_set(out, jv_string("metadata"), dmeta);
	out = jv_object_set(out, jv_string("timestamp"), jv_number((double)now));
	return out;
}

/* Does merging sec (borrowed) into cur (borrowed, the section before) keep the shape that
 * meta_merge gives the metadata: no null and no empty object in sec, and no leaf of cur turned
 * into an object? Then the metadata needs no meta_restrict (it rebuilds the whole tree). */
static int plain(jv sec, jv cur)
{
	int ok = 1;
	jv_object_foreach(sec, k, v) {
		jv_kind kind = jv_get_kind(v);
		if (ok && (kind == JV_KIND_NULL || (kind == JV_KIND_OBJECT && jv_object_length(jv_copy(v)) == 0))) {
			ok = 0;
		} else if (ok && kind == JV_KIND_OBJECT) {
			jv c = jv_get_kind(cur) == JV_KIND_OBJECT ? jv_object_get(jv_copy(cur), jv_copy(k)) : jv_invalid();
			jv_kind ck = jv_get_kind(c);
			ok = (ck == JV_KIND_INVALID || ck == JV_KIND_OBJECT) && plain(v, c);
			jv_free(c);
		}
		jv_free(k);
		jv_free(v);
	}
	return ok;
}

/* Apply one request section (borrowed; null clears) to the document's section. */
static void apply_section(jv *state, jv *meta, const char *name, jv sec, time_t now)
{
	if (jv_get_kind(sec) == JV_KIND_INVALID)
		return;
	if (jv_get_kind(sec) == JV_KIND_NULL) {
		*state = jv_object_delete(*state, jv_string(name));
		*meta = jv_object_delete(*meta, jv_string(name));
		return;
	}
	jv cur = jv_object_get(jv_copy(*state), jv_string(name));
	int same_shape = plain(sec, cur);
	cur = merge(cur, sec);
	jv m = meta_merge(jv_object_get(jv_copy(*meta), jv_string(name)), sec, now);
	if (jv_object_length(jv_copy(cur)) == 0) {
		jv_free(cur);
		jv_free(m);
		*state = jv_object_delete(*state, jv_string(name));
		*meta = jv_object_delete(*meta, jv_string(name));
		return;
	}
	jv mr = same_shape ? m : meta_restrict(m, cur, now);
	if (!same_shape)
		jv_free(m);
	*state = jv_object_set(*state, jv_string(name), cur);
	*meta = jv_object_set(*meta, jv_string(name), mr);
}

int shadow_apply(jv *doc, jv req, time_t now, jv *accepted, jv *delta, struct shadow_error *err)
{
	double cur_version = jl_num(*doc, "version", 0);
	jv want = jl_get(req, "version");
	if (jv_get_kind(want) == JV_KIND_NUMBER && jv_number_value(want) != cur_version) {
		jv_free(want);
		return fail(err, 409, "Version conflict");
	}
	jv_free(want);

	jv rstate = jl_get(req, "state");
	jv state = jl_get(*doc, "state");
	jv meta = jl_get(*doc, "metadata");
	if (jv_get_kind(state) != JV_KIND_OBJECT) {
		jv_free(state);
		state = jv_object();
	}
	if (jv_get_kind(meta) != JV_KIND_OBJECT) {
		jv_free(meta);
		meta = jv_object();
	}
	jv rdes = jv_invalid(), rrep = jv_invalid();
	if (jv_get_kind(rstate) == JV_KIND_NULL) {
		rdes = jv_null();
		rrep = jv_null();
	} else {
		rdes = jl_get(rstate, "desired");
		rrep = jl_get(rstate, "reported");
	}
	apply_section(&state, &meta, "desired", rdes, now);
	apply_section(&state, &meta, "reported", rrep, now);
	int publish_delta = jv_get_kind(rdes) == JV_KIND_OBJECT;
	jv_free(rdes);
	jv_free(rrep);

	if (dumped_len(state) > SHADOW_MAX_STATE) {
		jv_free(state);
		jv_free(meta);
		jv_free(rstate);
		return fail(err, 413, "The payload exceeds the maximum size allowed");
	}

	double version = cur_version + 1;
	jv ndoc = jv_object();
	ndoc = jv_object_set(ndoc, jv_string("state"), state);
	ndoc = jv_object_set(ndoc, jv_string("metadata"), meta);
	ndoc = jv_object_set(ndoc, jv_string("version"), jv_number(version));
	ndoc = jv_object_set(ndoc, jv_string("timestamp"), jv_number((double)now));

	jv token = jl_get(req, "clientToken");
	jv acc = jv_object();
	jv ameta = jv_object();
	if (jv_get_kind(rstate) == JV_KIND_OBJECT) {
		jv_object_foreach(rstate, k, x) {
			ameta = jv_object_set(ameta, k, meta_of(x, now));
			jv_free(x);
		}
	}
	acc = jv_object_set(acc, jv_string("state"), rstate);
	acc = jv_object_set(acc, jv_string("metadata"), ameta);
	acc = jv_object_set(acc, jv_string("version"), jv_number(version));
	acc = jv_object_set(acc, jv_string("timestamp"), jv_number((double)now));
	if (jv_get_kind(token) == JV_KIND_STRING)
		acc = jv_object_set(acc, jv_string("clientToken"), jv_copy(token));

	*delta = publish_delta ? shadow_delta(ndoc, now) : jv_invalid();
	if (jv_is_valid(*delta) && jv_get_kind(token) == JV_KIND_STRING)
		*delta = jv_object_set(*delta, jv_string("clientToken"), jv_copy(token));
	jv_free(token);
	jv_free(*doc);
	*doc = ndoc;
	*accepted = acc;
	return 0;
}

jv shadow_rejection(jv req, const struct shadow_error *err, time_t now)
{
	jv out = jv_object();
	out = jv_object_set(out, jv_string("code"), jv_number(err->code));
	out = jv_object_set(out, jv_string("message"), jv_string(err->message));
	out = jv_object_set(out, jv_string("timestamp"), jv_number((double)now));
	jv token = jl_get(req, "clientToken");
	if (jv_get_kind(token) == JV_KIND_STRING)
		out = jv_object_set(out, jv_string("clientToken"), token);
	else
		jv_free(token);
	return out;
}

jv shadow_tag(jv body, const char *thing, const char *shadow, const char *result)
{
	jv out = jv_object();
	out = jv_object_set(out, jv_string("thing"), thing ? jv_string(thing) : jv_null());
	if (shadow)
		out = jv_object_set(out, jv_string("shadow"), jv_string(shadow));
	if (result)
		out = jv_object_set(out, jv_string("result"), jv_string(result));
	jv_object_foreach(body, k, v)
		out = jv_object_set(out, k, v);
	jv_free(body);
	return out;
}
