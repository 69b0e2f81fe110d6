#include "lwm2m_shadow.h"

#include "lwm2m_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

jv lwm2m_nest_set(jv state, const char *path, jv v)
{
	struct lwm2m_path p;
	if (lwm2m_path_parse(path, &p) < 0 || p.len < 3) {
		jv_free(v);
		return state;
	}
	char k[4][8];
	for (int i = 0; i < p.len; i++)
		snprintf(k[i], sizeof k[i], "%u", (unsigned)p.id[i]);
	/* build from the leaf up, merging with what is there */
	jv lvl[4];
	lvl[0] = state;
	for (int i = 1; i < p.len; i++) {
		jv child = jv_object_get(jv_copy(lvl[i - 1]), jv_string(k[i - 1]));
		lvl[i] = jv_get_kind(child) == JV_KIND_OBJECT ? child : (jv_free(child), jv_object());
	}
	jv cur = v;
	for (int i = p.len - 1; i >= 0; i--)
		cur = jv_object_set(lvl[i], jv_string(k[i]), cur);
	return cur;
}

jv lwm2m_values_nest(jv values)
{
	jv out = jv_object();
	if (jv_get_kind(values) != JV_KIND_OBJECT)
		return out;
	jv_object_foreach(values, key, val)
	{
		out = lwm2m_nest_set(out, jv_string_value(key), val);
		jv_free(key);
	}
	return out;
}

static int numeric_id(const char *s)
{
	if (!*s || strlen(s) > 5)
		return 0;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return (s[0] != '0' || s[1] == 0) && atoi(s) <= LWM2M_ID_MAX;
}

static void flatten(jv node, char *path, size_t plen, int depth, jv *out, jv *bad)
{
	jv_object_foreach(node, key, val)
	{
		const char *ks = jv_string_value(key);
		char sub[160];
		snprintf(sub, sizeof sub, "%.*s/%s", (int)plen, path, ks);
		jv_kind kind = jv_get_kind(val);
		if (!numeric_id(ks)) {
			*bad = jv_object_set(*bad, jv_string(sub), jv_string("not an LwM2M id (0-65534)"));
		} else if (kind == JV_KIND_OBJECT && depth < 4) {
			if (depth == 3 && jv_object_length(jv_copy(val)) == 0)
				*bad = jv_object_set(*bad, jv_string(sub), jv_string("an empty object"));
			else
				flatten(val, sub, strlen(sub), depth + 1, out, bad);
		} else if (kind == JV_KIND_OBJECT || kind == JV_KIND_ARRAY) {
			*bad = jv_object_set(*bad, jv_string(sub), jv_string("nested too deep for an LwM2M resource"));
		} else if (depth < 3) {
			*bad = jv_object_set(*bad, jv_string(sub),
			                     jv_string(depth == 1 ? "an object id needs instances, not a value"
			                                          : "an instance id needs resources, not a value"));
		} else {
			*out = jv_object_set(*out, jv_string(sub), jv_copy(val));
		}
		jv_free(key);
		jv_free(val);
	}
}

jv lwm2m_state_flatten(jv state, jv *bad)
{
	jv out = jv_object();
	*bad = jv_object();
	if (jv_get_kind(state) == JV_KIND_OBJECT)
		flatten(state, "", 0, 1, &out, bad);
	return out;
}
