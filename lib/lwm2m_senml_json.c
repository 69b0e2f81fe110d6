/* SenML JSON (content format 110, RFC 8428 as profiled by LwM2M 1.1 TS Core 7.4.4).
 * Names are bn + n, absolute paths; bn carries over to the records after it. bt, t, bu, u and
 * bver are accepted and ignored. Values: v (number), vs (string), vb (boolean), vd (base64url
 * bytes, standard base64 tolerated), vlo (object link "3:0"). */
#include "lwm2m_codec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str_field(jv rec, const char *key, size_t *n)
{
	jv v = jv_object_get(jv_copy(rec), jv_string(key));
	if (jv_get_kind(v) != JV_KIND_STRING) {
		int present = jv_is_valid(v);
		jv_free(v);
		return present ? (const char *)-1 : NULL;
	}
	/* the string lives on in rec, which holds a reference */
	const char *s = jv_string_value(v);
	*n = (size_t)jv_string_length_bytes(jv_copy(v));
	jv_free(v);
	return s;
}

jv lwm2m_senml_json_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	char ps[LWM2M_PATH_STRLEN];
	jv doc = jv_parse_sized((const char *)data, (int)len);
	if (!jv_is_valid(doc)) {
		jv msg = jv_invalid_get_msg(doc);
		jv r = codec_err("SenML JSON: %s", jv_get_kind(msg) == JV_KIND_STRING
		                                       ? jv_string_value(msg) : "not JSON");
		jv_free(msg);
		return r;
	}
	if (jv_get_kind(doc) != JV_KIND_ARRAY) {
		jv_free(doc);
		return codec_err("SenML JSON: not an array of records");
	}
	jv o = jv_object();
	char bn[LWM2M_PATH_STRLEN + 8] = "", badkey[48] = "";
	size_t bnlen = 0;
	double bt = 0;
	/* the time of the value kept for each path: a pack may hold several, the newest wins */
	jv times = jv_object();
	int nrec = jv_array_length(jv_copy(doc));
	for (int i = 0; i < nrec && jv_is_valid(o); i++) {
		jv rec = jv_array_get(jv_copy(doc), i);
		if (jv_get_kind(rec) != JV_KIND_OBJECT) {
			jv_free(rec);
			jv_free(o);
			o = codec_err("SenML JSON: record %d is not an object", i + 1);
			break;
		}
		const char *bad = NULL;
		jv_object_foreach(rec, key, kv)
		{
			const char *ks = jv_string_value(key);
			size_t kl = strlen(ks);
			if (!bad && kl && ks[kl - 1] == '_')
				bad = "must-understand";
			else if (!bad && strcmp(ks, "bver") == 0 &&
			         (jv_get_kind(kv) != JV_KIND_NUMBER || jv_number_value(kv) > 10))
				bad = "version";
			else if (!bad && (strcmp(ks, "bt") == 0 || strcmp(ks, "t") == 0)) {
				if (jv_get_kind(kv) != JV_KIND_NUMBER)
					bad = "time";
				else if (ks[0] == 'b')
					bt = jv_number_value(kv);
			}
			if (bad && !badkey[0])
				snprintf(badkey, sizeof badkey, "%.40s", ks);
			jv_free(key);
			jv_free(kv);
		}
		if (bad) {
			jv_free(rec);
			jv_free(o);
			o = codec_err("SenML JSON: record %d: %s \"%s\" not supported", i + 1,
			              strcmp(bad, "version") == 0 ? "base version"
			              : strcmp(bad, "time") == 0 ? "non-numeric time" : "must-understand label",
			              badkey);
			break;
		}
		double t = bt;
		jv tv = jv_object_get(jv_copy(rec), jv_string("t"));
		if (jv_get_kind(tv) == JV_KIND_NUMBER)
			t += jv_number_value(tv);
		jv_free(tv);
		size_t n = 0;
		const char *s = str_field(rec, "bn", &n);
		if (s == (const char *)-1 || (s && n >= sizeof bn)) {
			jv_free(rec);
			jv_free(o);
			o = codec_err("SenML JSON: record %d: bad bn", i + 1);
			break;
		}
		if (s) {
			memcpy(bn, s, n);
			bnlen = n;
		}
		char name[2 * sizeof bn];
		memcpy(name, bn, bnlen);
		size_t nlen = bnlen;
		s = str_field(rec, "n", &n);
		if (s == (const char *)-1 || (s && n >= sizeof name - nlen)) {
			jv_free(rec);
			jv_free(o);
			o = codec_err("SenML JSON: record %d: bad n", i + 1);
			break;
		}
		if (s) {
			memcpy(name + nlen, s, n);
			nlen += n;
		}
		struct lwm2m_path p;
		if (codec_name_to_path(name, nlen, &p) < 0) {
			jv_free(rec);
			jv_free(o);
			o = codec_err("SenML JSON: record %d: name \"%.*s\" is not an LwM2M path", i + 1,
			              (int)(nlen > 40 ? 40 : nlen), name);
			break;
		}
		PATHSTR(&p, ps);
		jv val = jv_invalid();
		int nval = 0;
		static const char *const keys[] = {"v", "vs", "vb", "vd", "vlo"};
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			jv x = jv_object_get(jv_copy(rec), jv_string(keys[k]));
			if (!jv_is_valid(x)) {
				jv_free(x);
				continue;
			}
			nval++;
			jv_kind kind = jv_get_kind(x);
			jv_free(val);
			if (k == 0 && kind == JV_KIND_NUMBER)
				val = codec_from_number(&p, jv_number_value(x));
			else if (k == 1 && kind == JV_KIND_STRING)
				val = codec_from_text(&p, jv_string_value(x),
				                      (size_t)jv_string_length_bytes(jv_copy(x)));
			else if (k == 2 && (kind == JV_KIND_TRUE || kind == JV_KIND_FALSE))
				val = jv_bool(kind == JV_KIND_TRUE);
			else if (k == 3 && kind == JV_KIND_STRING) {
				uint8_t *b;
				size_t bl;
				const char *xs = jv_string_value(x);
				if (codec_unb64(xs, strlen(xs), &b, &bl) < 0)
					val = codec_err("SenML JSON: %s: vd is not base64", ps);
				else {
					val = codec_from_bytes(&p, b, bl);
					free(b);
				}
			} else if (k == 4 && kind == JV_KIND_STRING)
				val = jv_copy(x);
			else
				val = codec_err("SenML JSON: %s: %s has the wrong JSON type", ps, keys[k]);
			jv_free(x);
		}
		jv_free(rec);
		if (nval > 1) {
			jv_free(val);
			val = codec_err("SenML JSON: %s: more than one value in a record", ps);
		} else if (nval == 0) {
			jv_free(val);
			val = codec_err("SenML JSON: %s: record %d has no value", ps, i + 1);
		}
		jv prev = jv_object_get(jv_copy(times), jv_string(ps));
		bool older = jv_get_kind(prev) == JV_KIND_NUMBER && jv_number_value(prev) > t;
		jv_free(prev);
		if (older && jv_is_valid(val)) {
			jv_free(val);
			continue;
		}
		times = jv_object_set(times, jv_string(ps), jv_number(t));
		o = codec_store(o, base, &p, val, "SenML JSON");
	}
	jv_free(times);
	jv_free(doc);
	return o;
}

/* The record's value member for one typed value. */
static jv record_value(jv rec, const struct codec_val *v)
{
	switch (v->type) {
	case LWM2M_T_STRING:
	case LWM2M_T_CORELNK:
		return jv_object_set(rec, jv_string("vs"), jv_string_sized((const char *)v->bytes,
		                                                           (int)v->nbytes));
	case LWM2M_T_OPAQUE: {
		char *s = codec_b64url(v->bytes, v->nbytes);
		if (!s) {
			jv_free(rec);
			return jv_invalid();
		}
		rec = jv_object_set(rec, jv_string("vd"), jv_string(s));
		free(s);
		return rec;
	}
	case LWM2M_T_INTEGER:
	case LWM2M_T_TIME:
		return jv_object_set(rec, jv_string("v"), jv_number((double)v->v.i));
	case LWM2M_T_UNSIGNED:
		return jv_object_set(rec, jv_string("v"), jv_number((double)v->v.u));
	case LWM2M_T_FLOAT:
		return jv_object_set(rec, jv_string("v"), jv_number(v->v.f));
	case LWM2M_T_BOOLEAN:
		return jv_object_set(rec, jv_string("vb"), jv_bool(v->v.b));
	case LWM2M_T_OBJLNK:
		return jv_object_set(rec, jv_string("vlo"),
		                     jv_string_fmt("%u:%u", v->v.lnk[0], v->v.lnk[1]));
	}
	return rec;
}

int lwm2m_senml_json_encode(const struct lwm2m_path *base, const struct codec_vals *vs,
                            struct obuf *o, char **err)
{
	(void)base;
	char bn[LWM2M_PATH_STRLEN + 1], n[LWM2M_PATH_STRLEN];
	jv arr = jv_array();
	for (size_t i = 0; i < vs->n; i++) {
		jv rec = jv_object();
		if (i == 0 && vs->prefix.len > 0) {
			PATHSTR(&vs->prefix, bn);
			strcat(bn, "/");
			rec = jv_object_set(rec, jv_string("bn"), jv_string(bn));
		}
		codec_rel_name(&vs->prefix, &vs->v[i].path, n, sizeof n);
		rec = jv_object_set(rec, jv_string("n"), jv_string(n));
		rec = record_value(rec, &vs->v[i]);
		if (!jv_is_valid(rec)) {
			jv_free(arr);
			return codec_seterr(err, "out of memory");
		}
		arr = jv_array_append(arr, rec);
	}
	jv s = jv_dump_string(arr, 0);
	obuf_put(o, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
	jv_free(s);
	return 0;
}
