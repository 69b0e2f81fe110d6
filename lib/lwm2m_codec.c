/* Content-format dispatch, names, and what every codec shares: the flat object's paths,
 * typing values from the object model, strict coercion of values to encode, base64. */
#include "lwm2m_codec.h"
#include "lwm2m_codec_int.h"

#include <math.h>
#include <nettle/base64.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	int ct;
	const char *name;
} ct_names[] = {
	{LWM2M_CT_TEXT, "text"},
	{LWM2M_CT_LINK, "link"},
	{LWM2M_CT_OPAQUE, "opaque"},
	{LWM2M_CT_CBOR, "cbor"},
	{LWM2M_CT_SENML_JSON, "senml-json"},
	{LWM2M_CT_SENML_CBOR, "senml-cbor"},
	{LWM2M_CT_TLV, "tlv"},
	{LWM2M_CT_JSON, "json"},
	{LWM2M_CT_LWM2M_CBOR, "lwm2m-cbor"},
};

int lwm2m_ct_parse(const char *name)
{
	if (!name || !*name)
		return -1;
	for (size_t i = 0; i < sizeof ct_names / sizeof ct_names[0]; i++)
		if (strcmp(name, ct_names[i].name) == 0)
			return ct_names[i].ct;
	char *end;
	unsigned long v = strtoul(name, &end, 10);
	if (*end || name[0] < '0' || name[0] > '9' || v > 65535)
		return -1;
	return (int)v;
}

const char *lwm2m_ct_name(int ct)
{
	for (size_t i = 0; i < sizeof ct_names / sizeof ct_names[0]; i++)
		if (ct_names[i].ct == ct)
			return ct_names[i].name;
	return NULL;
}

jv codec_err(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return jv_invalid_with_msg(jv_string(buf));
}

int codec_seterr(char **err, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (err)
		*err = strdup(buf);
	return -1;
}

enum lwm2m_type codec_res_type(const struct lwm2m_path *p, bool *known)
{
	const struct lwm2m_resource_def *r = p->len >= 3 ? objmodel_resource(p->id[0], p->id[2]) : NULL;
	if (known)
		*known = r != NULL;
	return r ? (enum lwm2m_type)r->type : LWM2M_T_NONE;
}

jv codec_store(jv o, const struct lwm2m_path *base, const struct lwm2m_path *p, jv v,
               const char *fmt_name)
{
	char ps[LWM2M_PATH_STRLEN], bs[LWM2M_PATH_STRLEN];
	if (!jv_is_valid(v)) {
		jv_free(o);
		return v;
	}
	if (p->len < 3) {
		jv_free(o);
		jv_free(v);
		return codec_err("%s: value at %s, which is not a resource", fmt_name, PATHSTR(p, ps));
	}
	if (!lwm2m_path_covers(base, p)) {
		jv_free(o);
		jv_free(v);
		return codec_err("%s: value at %s, outside the requested %s", fmt_name, PATHSTR(p, ps),
		                 PATHSTR(base, bs));
	}
	return jv_object_set(o, jv_string(PATHSTR(p, ps)), v);
}

jv codec_store_once(jv o, const struct lwm2m_path *base, const struct lwm2m_path *p, jv v,
                    const char *fmt_name)
{
	char ps[LWM2M_PATH_STRLEN];
	if (jv_is_valid(o) && jv_object_has(jv_copy(o), jv_string(PATHSTR(p, ps)))) {
		jv_free(o);
		jv_free(v);
		return codec_err("%s: %s appears twice", fmt_name, ps);
	}
	return codec_store(o, base, p, v, fmt_name);
}

int codec_name_to_path(const char *s, size_t n, struct lwm2m_path *p)
{
	char buf[LWM2M_PATH_STRLEN + 2];
	if (n >= sizeof buf || memchr(s, 0, n))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	if (buf[0] != '/')
		return -1;
	if (n == 1) {
		p->len = 0;
		return 0;
	}
	return lwm2m_path_parse(buf, p);
}

void codec_rel_name(const struct lwm2m_path *prefix, const struct lwm2m_path *p, char *buf,
                    size_t size)
{
	size_t n = 0;
	buf[0] = 0;
	for (int i = prefix->len; i < p->len && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%u",
		                      (i > prefix->len || prefix->len == 0) ? "/" : "", p->id[i]);
}

jv codec_b64(const uint8_t *data, size_t n)
{
	if (n > CODEC_MAX_PAYLOAD)
		return codec_err("opaque value too large");
	size_t sz = BASE64_ENCODE_RAW_LENGTH(n);
	char *s = malloc(sz + 1);
	if (!s)
		return codec_err("out of memory");
	base64_encode_raw(s, n, data);
	jv r = jv_string_sized(s, (int)sz);
	free(s);
	return r;
}

char *codec_b64url(const uint8_t *data, size_t n)
{
	size_t sz = BASE64_ENCODE_RAW_LENGTH(n);
	char *s = malloc(sz + 1);
	if (!s)
		return NULL;
	base64_encode_raw(s, n, data);
	while (sz && s[sz - 1] == '=')
		sz--;
	s[sz] = 0;
	for (size_t i = 0; i < sz; i++)
		s[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
	return s;
}

int codec_unb64(const char *s, size_t len, uint8_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (len > 2 * (size_t)CODEC_MAX_PAYLOAD)
		return -1;
	char *t = malloc(len + 4);
	if (!t)
		return -1;
	size_t k = 0;
	bool std = false, url = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '-' || c == '_') {
			url = true;
			c = c == '-' ? '+' : '/';
		} else if (c == '+' || c == '/') {
			std = true;
		} else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		             c == '=')) {
			free(t);
			return -1;
		}
		if (c == '=' && (i + 2 < len || (i + 2 == len && s[i + 1] != '='))) {
			free(t);
			return -1;
		}
		t[k++] = c;
	}
	if ((std && url) || k % 4 == 1) {
		free(t);
		return -1;
	}
	while (k % 4)
		t[k++] = '=';
	uint8_t *d = malloc(BASE64_DECODE_LENGTH(k) + 1);
	if (!d) {
		free(t);
		return -1;
	}
	struct base64_decode_ctx ctx;
	size_t dn = BASE64_DECODE_LENGTH(k) + 1;
	base64_decode_init(&ctx);
	int ok = base64_decode_update(&ctx, &dn, d, k, t) && base64_decode_final(&ctx);
	free(t);
	if (!ok) {
		free(d);
		return -1;
	}
	*out = d;
	*n = dn;
	return 0;
}

jv codec_from_number(const struct lwm2m_path *p, double d)
{
	char ps[LWM2M_PATH_STRLEN];
	if (!isfinite(d))
		return codec_err("%s: a NaN or infinite number has no JSON form", PATHSTR(p, ps));
	if (codec_res_type(p, NULL) == LWM2M_T_BOOLEAN && (d == 0 || d == 1))
		return jv_bool(d == 1);
	return jv_number(d);
}

jv codec_from_text(const struct lwm2m_path *p, const char *s, size_t n)
{
	(void)p;
	if (n > CODEC_MAX_PAYLOAD)
		return codec_err("string value too large");
	return jv_string_sized(s, (int)n);
}

jv codec_from_bytes(const struct lwm2m_path *p, const uint8_t *b, size_t n)
{
	(void)p;
	return codec_b64(b, n);
}

jv codec_from_bool(const struct lwm2m_path *p, bool b)
{
	(void)p;
	return jv_bool(b);
}

/* --- Encoding: the flat object to checked, typed values --- */

static bool integral(double d, double lo, double hi)
{
	return isfinite(d) && d == floor(d) && d >= lo && d < hi;
}

static int parse_objlnk(const char *s, uint16_t lnk[2])
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long a = strtoul(s, &end, 10);
	if (*end != ':' || a > 65535 || end[1] < '0' || end[1] > '9')
		return -1;
	unsigned long b = strtoul(end + 1, &end, 10);
	if (*end || b > 65535)
		return -1;
	lnk[0] = (uint16_t)a;
	lnk[1] = (uint16_t)b;
	return 0;
}

static const char *kind_name(jv v)
{
	switch (jv_get_kind(v)) {
	case JV_KIND_NULL: return "null";
	case JV_KIND_TRUE:
	case JV_KIND_FALSE: return "a boolean";
	case JV_KIND_NUMBER: return "a number";
	case JV_KIND_STRING: return "a string";
	case JV_KIND_ARRAY: return "an array";
	case JV_KIND_OBJECT: return "an object";
	default: return "invalid";
	}
}

/* Consumes v. */
static int coerce(const struct lwm2m_path *p, jv v, struct codec_val *out, char **err)
{
	char ps[LWM2M_PATH_STRLEN];
	bool known;
	enum lwm2m_type t = codec_res_type(p, &known);
	const struct lwm2m_resource_def *def = objmodel_resource(p->id[0], p->id[2]);
	jv_kind k = jv_get_kind(v);
	int rc = 0;
	memset(out, 0, sizeof *out);
	out->path = *p;
	PATHSTR(p, ps);
	if (def && def->multiple && p->len == 3) {
		rc = codec_seterr(err, "%s: a multiple-instance resource: give its instances (%s/0, ...) "
		                  "or an object of them", ps, ps);
		goto out;
	}
	if (def && !def->multiple && p->len == 4) {
		rc = codec_seterr(err, "%s: resource %u of object %u is single-instance", ps, p->id[2],
		                  p->id[0]);
		goto out;
	}
	if (known && t == LWM2M_T_NONE) {
		rc = codec_seterr(err, "%s: an executable resource has no value", ps);
		goto out;
	}
	if (!known) {
		/* Unknown resource: the JSON kind decides. */
		if (k == JV_KIND_STRING)
			t = LWM2M_T_STRING;
		else if (k == JV_KIND_TRUE || k == JV_KIND_FALSE)
			t = LWM2M_T_BOOLEAN;
		else if (k == JV_KIND_NUMBER)
			t = integral(jv_number_value(v), -9223372036854775808.0, 9223372036854775808.0)
			        ? LWM2M_T_INTEGER
			        : LWM2M_T_FLOAT;
		else {
			rc = codec_seterr(err, "%s: expected a string, number or boolean, got %s", ps,
			                  kind_name(v));
			goto out;
		}
	}
	out->type = (uint8_t)t;
	const char *tn = objmodel_type_name(t);
	switch (t) {
	case LWM2M_T_STRING:
	case LWM2M_T_CORELNK:
		if (k != JV_KIND_STRING)
			goto wrong;
		{
			size_t n = strlen(jv_string_value(v));
			if ((int)n != jv_string_length_bytes(jv_copy(v))) {
				rc = codec_seterr(err, "%s: a string with a NUL byte", ps);
				goto out;
			}
			out->bytes = malloc(n + 1);
			if (!out->bytes) {
				rc = codec_seterr(err, "out of memory");
				goto out;
			}
			memcpy(out->bytes, jv_string_value(v), n + 1);
			out->nbytes = n;
		}
		break;
	case LWM2M_T_INTEGER:
	case LWM2M_T_TIME:
		if (k != JV_KIND_NUMBER ||
		    !integral(jv_number_value(v), -9223372036854775808.0, 9223372036854775808.0))
			goto wrong;
		out->v.i = (int64_t)jv_number_value(v);
		break;
	case LWM2M_T_UNSIGNED:
		if (k != JV_KIND_NUMBER || !integral(jv_number_value(v), 0, 18446744073709551616.0))
			goto wrong;
		out->v.u = (uint64_t)jv_number_value(v);
		break;
	case LWM2M_T_FLOAT:
		if (k != JV_KIND_NUMBER || !isfinite(jv_number_value(v)))
			goto wrong;
		out->v.f = jv_number_value(v);
		break;
	case LWM2M_T_BOOLEAN:
		if (k != JV_KIND_TRUE && k != JV_KIND_FALSE)
			goto wrong;
		out->v.b = k == JV_KIND_TRUE;
		break;
	case LWM2M_T_OPAQUE:
		if (k != JV_KIND_STRING)
			goto wrong;
		{
			const char *s = jv_string_value(v);
			if (codec_unb64(s, strlen(s), &out->bytes, &out->nbytes) < 0) {
				rc = codec_seterr(err, "%s: expected opaque (a base64 string), got a string "
				                  "that is not base64", ps);
				goto out;
			}
		}
		break;
	case LWM2M_T_OBJLNK:
		if (k != JV_KIND_STRING || parse_objlnk(jv_string_value(v), out->v.lnk) < 0) {
			rc = codec_seterr(err, "%s: expected objlnk (a string \"object:instance\", e.g. "
			                  "\"3:0\"), got %s", ps, kind_name(v));
			goto out;
		}
		break;
	default:
		goto wrong;
	}
	goto out;
wrong:
	if (t == LWM2M_T_INTEGER || t == LWM2M_T_TIME || t == LWM2M_T_UNSIGNED) {
		if (k == JV_KIND_NUMBER)
			rc = codec_seterr(err, "%s: expected %s%s, got %.17g", ps, tn,
			                  t == LWM2M_T_UNSIGNED ? " (a whole number >= 0)"
			                                        : " (a whole number)",
			                  jv_number_value(v));
		else
			rc = codec_seterr(err, "%s: expected %s (a JSON number), got %s", ps, tn,
			                  kind_name(v));
	} else if (t == LWM2M_T_FLOAT) {
		rc = codec_seterr(err, "%s: expected float (a JSON number), got %s", ps, kind_name(v));
	} else if (t == LWM2M_T_BOOLEAN) {
		rc = codec_seterr(err, "%s: expected boolean (true or false), got %s", ps, kind_name(v));
	} else if (t == LWM2M_T_OPAQUE) {
		rc = codec_seterr(err, "%s: expected opaque (a base64 string), got %s", ps, kind_name(v));
	} else {
		rc = codec_seterr(err, "%s: expected %s (a JSON string), got %s", ps, tn, kind_name(v));
	}
out:
	jv_free(v);
	return rc;
}

static int cmp_path(const struct lwm2m_path *a, const struct lwm2m_path *b)
{
	for (int i = 0; i < a->len && i < b->len; i++)
		if (a->id[i] != b->id[i])
			return a->id[i] < b->id[i] ? -1 : 1;
	return (a->len > b->len) - (a->len < b->len);
}

static int cmp_val(const void *a, const void *b)
{
	return cmp_path(&((const struct codec_val *)a)->path, &((const struct codec_val *)b)->path);
}

static void vals_free(struct codec_vals *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		free(vs->v[i].bytes);
	free(vs->v);
	vs->v = NULL;
	vs->n = 0;
}

static int vals_add(struct codec_vals *vs, size_t *cap, const struct lwm2m_path *p, jv v,
                    char **err)
{
	if (vs->n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		struct codec_val *n = realloc(vs->v, c * sizeof *n);
		if (!n) {
			jv_free(v);
			return codec_seterr(err, "out of memory");
		}
		vs->v = n;
		*cap = c;
	}
	if (coerce(p, v, &vs->v[vs->n], err) < 0)
		return -1;
	vs->n++;
	return 0;
}

/* Consumes values. */
static int vals_from_jv(const struct lwm2m_path *base, jv values, struct codec_vals *vs, char **err)
{
	char ps[LWM2M_PATH_STRLEN], bs[LWM2M_PATH_STRLEN];
	size_t cap = 0;
	int rc = 0;
	memset(vs, 0, sizeof *vs);
	if (jv_get_kind(values) != JV_KIND_OBJECT) {
		rc = codec_seterr(err, "values must be an object of paths to values, got %s",
		                  kind_name(values));
		goto out;
	}
	jv_object_foreach(values, key, val)
	{
		struct lwm2m_path p;
		const char *ks = jv_string_value(key);
		if (rc < 0) {
		} else if (lwm2m_path_parse(ks, &p) < 0 || p.len < 3) {
			rc = codec_seterr(err, "\"%s\": not a resource path like /3/0/9 or /3/0/7/1", ks);
		} else if (!lwm2m_path_covers(base, &p) && !(p.len == 3 && base->len == 4 &&
		                                                lwm2m_path_covers(&p, base))) {
			rc = codec_seterr(err, "%s is outside the target %s", PATHSTR(&p, ps),
			                  PATHSTR(base, bs));
		} else if (p.len == 3 && jv_get_kind(val) == JV_KIND_OBJECT) {
			/* {"/3/0/7": {"0": 3800, "1": 5000}}: the instances of a multiple resource */
			jv_object_foreach(val, ik, iv)
			{
				struct lwm2m_path q = p;
				char *end;
				const char *is = jv_string_value(ik);
				unsigned long id = strtoul(is, &end, 10);
				q.len = 4;
				q.id[3] = (uint16_t)id;
				if (rc < 0)
					jv_free(iv);
				else if (!*is || *end || *is < '0' || *is > '9' || id > LWM2M_ID_MAX) {
					rc = codec_seterr(err, "%s: \"%s\" is not a resource instance id",
					                  PATHSTR(&p, ps), is);
					jv_free(iv);
				} else if (!lwm2m_path_covers(base, &q)) {
					rc = codec_seterr(err, "%s is outside the target %s",
					                  PATHSTR(&q, ps), PATHSTR(base, bs));
					jv_free(iv);
				} else {
					rc = vals_add(vs, &cap, &q, iv, err);
				}
				jv_free(ik);
			}
			jv_free(val);
			val = jv_null();
		} else {
			rc = vals_add(vs, &cap, &p, val, err);
			val = jv_null();
		}
		jv_free(key);
		jv_free(val);
	}
	if (rc < 0)
		goto out;
	if (vs->n == 0) {
		rc = codec_seterr(err, "no values to encode");
		goto out;
	}
	qsort(vs->v, vs->n, sizeof *vs->v, cmp_val);
	for (size_t i = 1; i < vs->n; i++)
		if (cmp_path(&vs->v[i - 1].path, &vs->v[i].path) == 0) {
			rc = codec_seterr(err, "%s is given twice", PATHSTR(&vs->v[i].path, ps));
			goto out;
		}
	vs->prefix = *base;
	for (size_t i = 0; i < vs->n; i++)
		if (vs->v[i].path.len <= base->len) {
			vs->prefix.len = base->len - 1;
			break;
		}
	if (vs->prefix.len > 0)
		for (size_t i = 0; i < vs->n; i++)
			if (!lwm2m_path_covers(&vs->prefix, &vs->v[i].path))
				vs->prefix.len = 0;
out:
	jv_free(values);
	if (rc < 0)
		vals_free(vs);
	return rc;
}

jv lwm2m_decode(int ct, const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	if (!base || base->len < 0 || base->len > 4)
		return codec_err("bad base path");
	if (len > CODEC_MAX_PAYLOAD)
		return codec_err("payload of %zu bytes is larger than the %u bytes allowed", len,
		                 CODEC_MAX_PAYLOAD);
	if (!data && len)
		return codec_err("no payload");
	static const uint8_t empty[1];
	if (!data)
		data = empty;
	switch (ct) {
	case LWM2M_CT_TLV: return lwm2m_tlv_decode(base, data, len);
	case LWM2M_CT_TEXT: return lwm2m_text_decode(base, data, len);
	case LWM2M_CT_OPAQUE: return lwm2m_opaque_decode(base, data, len);
	case LWM2M_CT_SENML_JSON: return lwm2m_senml_json_decode(base, data, len);
	case LWM2M_CT_SENML_CBOR: return lwm2m_senml_cbor_decode(base, data, len);
	case LWM2M_CT_LWM2M_CBOR: return lwm2m_cbor_decode(base, data, len);
	case LWM2M_CT_CBOR: return lwm2m_plain_cbor_decode(base, data, len);
	case LWM2M_CT_JSON: return lwm2m_oldjson_decode(base, data, len);
	default: return codec_err("content format %d is not supported for values", ct);
	}
}

int lwm2m_encode(int ct, const struct lwm2m_path *base, jv values, uint8_t **out, size_t *len,
                 char **err)
{
	struct codec_vals vs;
	*out = NULL;
	*len = 0;
	if (err)
		*err = NULL;
	if (!base || base->len < 0 || base->len > 4) {
		jv_free(values);
		return codec_seterr(err, "bad base path");
	}
	if (vals_from_jv(base, values, &vs, err) < 0)
		return -1;
	struct obuf o = {0};
	int rc;
	switch (ct) {
	case LWM2M_CT_TLV: rc = lwm2m_tlv_encode(base, &vs, &o, err); break;
	case LWM2M_CT_TEXT: rc = lwm2m_text_encode(base, &vs, &o, err); break;
	case LWM2M_CT_OPAQUE: rc = lwm2m_opaque_encode(base, &vs, &o, err); break;
	case LWM2M_CT_SENML_JSON: rc = lwm2m_senml_json_encode(base, &vs, &o, err); break;
	case LWM2M_CT_SENML_CBOR: rc = lwm2m_senml_cbor_encode(base, &vs, &o, err); break;
	case LWM2M_CT_LWM2M_CBOR: rc = lwm2m_cbor_encode(base, &vs, &o, err); break;
	case LWM2M_CT_CBOR: rc = lwm2m_plain_cbor_encode(base, &vs, &o, err); break;
	case LWM2M_CT_JSON: rc = lwm2m_oldjson_encode(base, &vs, &o, err); break;
	default: rc = codec_seterr(err, "content format %d is not supported for values", ct); break;
	}
	vals_free(&vs);
	if (rc == 0 && o.err)
		rc = codec_seterr(err, "out of memory");
	if (rc < 0) {
		free(o.p);
		return -1;
	}
	if (!o.p) {
		o.p = malloc(1);
		if (!o.p)
			return codec_seterr(err, "out of memory");
	}
	*out = o.p;
	*len = o.len;
	return 0;
}
