/* SenML JSON (content format 110, RFC 8428 as profiled by LwM2M 1.1 TS Core 7.4.4).
 * Names are bn + n, absolute paths; bn carries over to the records after it. bt and t order the
 * values of one path (the newest is kept); bu, u, bver (up to 10) and unknown labels are ignored,
 * labels ending in '_' (must-understand) are refused. Values: v (number), vs (string), vb
 * (boolean), vd (base64url bytes; standard base64 tolerated), vlo (object link "3:0"). */
#include "json_check.h"
#include "lwm2m_codec_int.h"

#include <stdlib.h>
#include <string.h>

/* Fill r from the JSON record rec (borrowed); *data gets the decoded vd (to free). */
static int parse_record(struct senml_state *st, jv rec, struct senml_rec *r, uint8_t **data)
{
	memset(r, 0, sizeof *r);
	*data = NULL;
	int rc = 0;
	jv_object_foreach(rec, key, v)
	{
		const char *k = jv_string_value(key);
		size_t kl = strlen(k);
		jv_kind kind = jv_get_kind(v);
		bool num = kind == JV_KIND_NUMBER, str = kind == JV_KIND_STRING;
		if (rc < 0) {
		} else if (strcmp(k, "bn") == 0 || strcmp(k, "n") == 0) {
			if (!str) {
				rc = senml_fail(st, "%s is not a string", k);
			} else if (k[0] == 'b') {
				r->has_bn = true;
				r->bn = jv_string_value(v); /* lives as long as rec */
				r->bnlen = (size_t)jv_string_length_bytes(jv_copy(v));
			} else {
				r->has_n = true;
				r->n = jv_string_value(v);
				r->nlen = (size_t)jv_string_length_bytes(jv_copy(v));
			}
		} else if (strcmp(k, "bt") == 0 || strcmp(k, "t") == 0) {
			if (!num)
				rc = senml_fail(st, "%s is not a number", k);
			else if (k[0] == 'b') {
				r->has_bt = true;
				r->bt = jv_number_value(v);
			} else
				r->t = jv_number_value(v);
		} else if (strcmp(k, "bver") == 0) {
			if (!num || jv_number_value(v) > 10)
				rc = senml_fail(st, "base version (bver) not supported");
		} else if (strcmp(k, "v") == 0 || strcmp(k, "vs") == 0 || strcmp(k, "vb") == 0 ||
		           strcmp(k, "vd") == 0 || strcmp(k, "vlo") == 0) {
			r->nvals++;
			if (k[1] == 0 && num) {
				r->kind = SENML_NUM;
				r->num = jv_number_value(v);
			} else if (k[1] == 's' && str) {
				r->kind = SENML_STR;
				r->s = (const uint8_t *)jv_string_value(v);
				r->slen = (size_t)jv_string_length_bytes(jv_copy(v));
			} else if (k[1] == 'b' && (kind == JV_KIND_TRUE || kind == JV_KIND_FALSE)) {
				r->kind = SENML_BOOL;
				r->b = kind == JV_KIND_TRUE;
			} else if (k[1] == 'd' && str) {
				const char *s = jv_string_value(v);
				free(*data);
				if (codec_unb64(s, strlen(s), data, &r->slen) < 0)
					rc = senml_fail(st, "vd is not base64");
				r->kind = SENML_DATA;
				r->s = *data ? *data : (const uint8_t *)"";
			} else if (k[1] == 'l' && str) {
				r->kind = SENML_OBJLNK;
				r->s = (const uint8_t *)jv_string_value(v);
				r->slen = (size_t)jv_string_length_bytes(jv_copy(v));
			} else {
				rc = senml_fail(st, "%s has the wrong JSON type", k);
			}
		} else if (kl && k[kl - 1] == '_') {
			rc = senml_fail(st, "must-understand label \"%.40s\" not supported", k);
		}
		jv_free(key);
		jv_free(v);
	}
	return rc;
}

jv lwm2m_senml_json_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	char why[96];
	if (json_check(data, len, CODEC_MAX_DEPTH, why, sizeof why) < 0)
		return codec_err("%s: %s", "SenML JSON", why);
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
	struct senml_state st;
	senml_begin(&st, base, "SenML JSON");
	int n = jv_array_length(jv_copy(doc));
	for (st.idx = 0; st.idx < n; st.idx++) {
		jv rec = jv_array_get(jv_copy(doc), st.idx);
		struct senml_rec r;
		uint8_t *vd = NULL;
		int rc;
		if (jv_get_kind(rec) != JV_KIND_OBJECT)
			rc = senml_fail(&st, "not an object");
		else if ((rc = parse_record(&st, rec, &r, &vd)) == 0)
			rc = senml_record(&st, &r);
		free(vd);
		jv_free(rec);
		if (rc < 0)
			break;
	}
	jv_free(doc);
	return senml_end(&st);
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
		senml_names(vs, i, bn, sizeof bn, n, sizeof n);
		if (bn[0])
			rec = jv_object_set(rec, jv_string("bn"), jv_string(bn));
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
