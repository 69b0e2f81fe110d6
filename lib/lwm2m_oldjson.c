/* The LwM2M 1.0 JSON format (content format 11543, OMA-TS-LightweightM2M-V1_0 6.4.4):
 * {"bn":"/3/0/","bt":...,"e":[{"n":"9","v":55},{"n":"7/0","v":3800},{"n":"0","sv":"x"},
 * {"n":"1","bv":true},{"n":"2","ov":"3:0"}]}. Without bn, names are relative to the request
 * path. Opaque values travel as base64 in sv. Records share the SenML resolution (lwm2m_senml.c). */
#include "json_check.h"
#include "lwm2m_codec_int.h"

#include <stdlib.h>
#include <string.h>

static int parse_entry(struct senml_state *st, jv e, struct senml_rec *r, uint8_t **data)
{
	int rc = 0;
	jv_object_foreach(e, key, v)
	{
		const char *k = jv_string_value(key);
		jv_kind kind = jv_get_kind(v);
		if (rc < 0) {
		} else if (strcmp(k, "n") == 0) {
			if (kind != JV_KIND_STRING)
				rc = senml_fail(st, "n is not a string");
			r->has_n = true;
			r->n = kind == JV_KIND_STRING ? jv_string_value(v) : "";
			r->nlen = kind == JV_KIND_STRING ? (size_t)jv_string_length_bytes(jv_copy(v)) : 0;
		} else if (strcmp(k, "t") == 0) {
			if (kind != JV_KIND_NUMBER)
				rc = senml_fail(st, "t is not a number");
			else
				r->t = jv_number_value(v);
		} else if (strcmp(k, "v") == 0 || strcmp(k, "sv") == 0 || strcmp(k, "bv") == 0 ||
		           strcmp(k, "ov") == 0) {
			r->nvals++;
			if (k[0] == 'v' && kind == JV_KIND_NUMBER) {
				r->kind = SENML_NUM;
				r->num = jv_number_value(v);
			} else if (k[0] == 's' && kind == JV_KIND_STRING) {
				r->kind = SENML_STR;
				r->s = (const uint8_t *)jv_string_value(v);
				r->slen = (size_t)jv_string_length_bytes(jv_copy(v));
			} else if (k[0] == 'b' && (kind == JV_KIND_TRUE || kind == JV_KIND_FALSE)) {
				r->kind = SENML_BOOL;
				r->b = kind == JV_KIND_TRUE;
			} else if (k[0] == 'o' && kind == JV_KIND_STRING) {
				r->kind = SENML_OBJLNK;
				r->s = (const uint8_t *)jv_string_value(v);
				r->slen = (size_t)jv_string_length_bytes(jv_copy(v));
			} else {
				rc = senml_fail(st, "%s has the wrong JSON type", k);
			}
		}
		jv_free(key);
		jv_free(v);
	}
	(void)data;
	return rc;
}

/* An opaque resource's sv is base64: carry the bytes, so the flat value is canonical base64. */
static int opaque_sv(struct senml_state *st, struct senml_rec *r, uint8_t **data)
{
	char name[2 * LWM2M_PATH_STRLEN + 16];
	size_t n = 0;
	if (r->kind != SENML_STR)
		return 0;
	if (r->has_bn && r->bnlen < sizeof name / 2) {
		memcpy(name, r->bn, r->bnlen);
		n = r->bnlen;
	} else if (!r->has_bn && st->bnlen < sizeof name / 2) {
		memcpy(name, st->bn, st->bnlen);
		n = st->bnlen;
	}
	if (r->has_n && r->nlen < sizeof name / 2 - 1) {
		memcpy(name + n, r->n, r->nlen);
		n += r->nlen;
	}
	struct lwm2m_path p;
	if (codec_name_to_path(name, n, &p) < 0 || codec_res_type(&p, NULL) != LWM2M_T_OPAQUE)
		return 0;
	if (codec_unb64((const char *)r->s, r->slen, data, &r->slen) < 0)
		return senml_fail(st, "sv of an opaque resource is not base64");
	r->kind = SENML_DATA;
	r->s = *data ? *data : (const uint8_t *)"";
	return 0;
}

jv lwm2m_oldjson_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	char bs[LWM2M_PATH_STRLEN + 2];
	char why[96];
	if (json_check(data, len, CODEC_MAX_DEPTH, why, sizeof why) < 0)
		return codec_err("%s: %s", "LwM2M JSON", why);
	jv doc = jv_parse_sized((const char *)data, (int)len);
	if (!jv_is_valid(doc)) {
		jv msg = jv_invalid_get_msg(doc);
		jv r = codec_err("LwM2M JSON: %s", jv_get_kind(msg) == JV_KIND_STRING
		                                       ? jv_string_value(msg) : "not JSON");
		jv_free(msg);
		return r;
	}
	if (jv_get_kind(doc) != JV_KIND_OBJECT) {
		jv_free(doc);
		return codec_err("LwM2M JSON: not an object with \"e\"");
	}
	jv bn = jv_object_get(jv_copy(doc), jv_string("bn"));
	jv bt = jv_object_get(jv_copy(doc), jv_string("bt"));
	jv e = jv_object_get(jv_copy(doc), jv_string("e"));
	jv_free(doc);
	struct senml_state st;
	senml_begin(&st, base, "LwM2M JSON");
	if ((jv_is_valid(bn) && jv_get_kind(bn) != JV_KIND_STRING) ||
	    (jv_is_valid(bt) && jv_get_kind(bt) != JV_KIND_NUMBER)) {
		jv_free(st.out);
		st.out = codec_err("LwM2M JSON: bn must be a string and bt a number");
	} else if (jv_get_kind(e) != JV_KIND_ARRAY) {
		jv_free(st.out);
		st.out = codec_err("LwM2M JSON: \"e\" is not an array");
	} else {
		const char *bns;
		if (jv_is_valid(bn)) {
			bns = jv_string_value(bn);
		} else {
			PATHSTR(base, bs);
			if (base->len)
				strcat(bs, "/");
			bns = bs;
		}
		int n = jv_array_length(jv_copy(e));
		for (st.idx = 0; st.idx < n; st.idx++) {
			jv x = jv_array_get(jv_copy(e), st.idx);
			struct senml_rec r;
			uint8_t *bytes = NULL;
			int rc;
			memset(&r, 0, sizeof r);
			if (st.idx == 0) {
				r.has_bn = true;
				r.bn = bns;
				r.bnlen = strlen(bns);
				r.has_bt = jv_is_valid(bt);
				r.bt = r.has_bt ? jv_number_value(bt) : 0;
			}
			if (jv_get_kind(x) != JV_KIND_OBJECT)
				rc = senml_fail(&st, "not an object");
			else if ((rc = parse_entry(&st, x, &r, &bytes)) == 0 &&
			         (rc = opaque_sv(&st, &r, &bytes)) == 0)
				rc = senml_record(&st, &r);
			free(bytes);
			jv_free(x);
			if (rc < 0)
				break;
		}
	}
	jv_free(bn);
	jv_free(bt);
	jv_free(e);
	return senml_end(&st);
}

int lwm2m_oldjson_encode(const struct lwm2m_path *base, const struct codec_vals *vs,
                         struct obuf *o, char **err)
{
	(void)base;
	char bn[LWM2M_PATH_STRLEN + 1], n[LWM2M_PATH_STRLEN];
	jv arr = jv_array();
	jv doc = jv_object();
	for (size_t i = 0; i < vs->n; i++) {
		const struct codec_val *v = &vs->v[i];
		senml_names(vs, i, bn, sizeof bn, n, sizeof n);
		if (i == 0)
			doc = jv_object_set(doc, jv_string("bn"), jv_string(bn[0] ? bn : "/"));
		jv rec = jv_object_set(jv_object(), jv_string("n"),
		                       jv_string(vs->prefix.len == 0 && n[0] == '/' ? n + 1 : n));
		switch (v->type) {
		case LWM2M_T_STRING:
		case LWM2M_T_CORELNK:
			rec = jv_object_set(rec, jv_string("sv"),
			                    jv_string_sized((const char *)v->bytes, (int)v->nbytes));
			break;
		case LWM2M_T_OPAQUE:
			rec = jv_object_set(rec, jv_string("sv"), codec_b64(v->bytes, v->nbytes));
			break;
		case LWM2M_T_INTEGER:
		case LWM2M_T_TIME:
			rec = jv_object_set(rec, jv_string("v"), jv_number((double)v->v.i));
			break;
		case LWM2M_T_UNSIGNED:
			rec = jv_object_set(rec, jv_string("v"), jv_number((double)v->v.u));
			break;
		case LWM2M_T_FLOAT:
			rec = jv_object_set(rec, jv_string("v"), jv_number(v->v.f));
			break;
		case LWM2M_T_BOOLEAN:
			rec = jv_object_set(rec, jv_string("bv"), jv_bool(v->v.b));
			break;
		case LWM2M_T_OBJLNK:
			rec = jv_object_set(rec, jv_string("ov"),
			                    jv_string_fmt("%u:%u", v->v.lnk[0], v->v.lnk[1]));
			break;
		}
		if (!jv_is_valid(rec)) {
			jv_free(arr);
			jv_free(doc);
			return codec_seterr(err, "out of memory");
		}
		arr = jv_array_append(arr, rec);
	}
	doc = jv_object_set(doc, jv_string("e"), arr);
	jv s = jv_dump_string(doc, 0);
	obuf_put(o, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
	jv_free(s);
	return 0;
}
