/* LwM2M CBOR (content format 11544, LwM2M 1.2 TS Core 7.4.6): nested maps keyed by ids from the
 * root, where a key is one id or an array of ids (a path fragment), e.g. {3: {0: {9: 55}}} or
 * {[3, 0, 9]: 55}; values are CBOR data items typed as in plain CBOR. Also plain CBOR (60), a
 * single value for a resource or resource instance (LwM2M 1.1 TS Core 7.4.7). Object links are
 * text "3:0", opaque values byte strings. */
#include "cbor.h"
#include "lwm2m_codec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value item to jv, typed from the model where unambiguous. */
static jv cbor_value(struct cbor_reader *r, const struct cbor_item *v, const struct lwm2m_path *p,
                     const char *fmt)
{
	char ps[LWM2M_PATH_STRLEN];
	const uint8_t *s;
	size_t n;
	uint8_t *own;
	double d;
	jv out;
	switch (v->type) {
	case CBOR_BOOL:
		return jv_bool(v->b);
	case CBOR_NULL:
		return jv_null();
	case CBOR_TEXT:
	case CBOR_BYTES:
		if (cbor_string(r, v, &s, &n, &own) < 0)
			return codec_err("%s: %s: %s", fmt, PATHSTR(p, ps), r->err);
		out = v->type == CBOR_TEXT ? codec_from_text(p, (const char *)s, n)
		                           : codec_from_bytes(p, s, n);
		free(own);
		return out;
	case CBOR_UINT:
	case CBOR_NEGINT:
	case CBOR_FLOAT:
	case CBOR_TAG:
		if (cbor_number(r, v, &d) < 0)
			return codec_err("%s: %s: %s", fmt, PATHSTR(p, ps), r->err);
		return codec_from_number(p, d);
	default:
		return codec_err("%s: %s: unsupported CBOR value (a %s)", fmt, PATHSTR(p, ps),
		                 v->type == CBOR_ARRAY ? "array" : v->type == CBOR_MAP ? "map"
		                                                                   : "simple value");
	}
}

static jv decode_map(jv o, const struct lwm2m_path *base, struct cbor_reader *r,
                     const struct cbor_item *m, const struct lwm2m_path *at)
{
	char ps[LWM2M_PATH_STRLEN];
	uint64_t left = m->val;
	int more;
	while ((more = cbor_more(r, m, &left)) == 1) {
		struct cbor_item k, v;
		struct lwm2m_path p = *at;
		if (cbor_read(r, &k) < 0) {
			jv_free(o);
			return codec_err("LwM2M CBOR: %s", r->err);
		}
		if (k.type == CBOR_UINT) {
			if (k.val > LWM2M_ID_MAX || p.len == 4) {
				jv_free(o);
				return codec_err("LwM2M CBOR: %s under %s",
				                 p.len == 4 ? "path longer than 4 ids" : "id out of range",
				                 PATHSTR(at, ps));
			}
			p.id[p.len++] = (uint16_t)k.val;
		} else if (k.type == CBOR_ARRAY) {
			uint64_t kl = k.val;
			int km;
			while ((km = cbor_more(r, &k, &kl)) == 1) {
				struct cbor_item id;
				if (cbor_read(r, &id) < 0) {
					jv_free(o);
					return codec_err("LwM2M CBOR: %s", r->err);
				}
				if (id.type != CBOR_UINT || id.val > LWM2M_ID_MAX || p.len == 4) {
					jv_free(o);
					return codec_err("LwM2M CBOR: bad path key under %s (%s)",
					                 PATHSTR(at, ps),
					                 p.len == 4 ? "longer than 4 ids" : "not an id");
				}
				p.id[p.len++] = (uint16_t)id.val;
			}
			if (km < 0) {
				jv_free(o);
				return codec_err("LwM2M CBOR: %s", r->err);
			}
			if (p.len == at->len) {
				jv_free(o);
				return codec_err("LwM2M CBOR: empty path key under %s", PATHSTR(at, ps));
			}
		} else {
			jv_free(o);
			return codec_err("LwM2M CBOR: a key under %s is not an id or an array of ids",
			                 PATHSTR(at, ps));
		}
		if (cbor_read(r, &v) < 0) {
			jv_free(o);
			return codec_err("LwM2M CBOR: %s", r->err);
		}
		if (v.type == CBOR_MAP) {
			if (p.len == 4) {
				jv_free(o);
				return codec_err("LwM2M CBOR: a map below the resource instance %s",
				                 PATHSTR(&p, ps));
			}
			/* recursion depth is bounded: every level adds at least one id, at most 4 */
			o = decode_map(o, base, r, &v, &p);
			if (!jv_is_valid(o))
				return o;
		} else {
			o = codec_store_once(o, base, &p, cbor_value(r, &v, &p, "LwM2M CBOR"), "LwM2M CBOR");
			if (!jv_is_valid(o))
				return o;
		}
	}
	if (more < 0) {
		jv_free(o);
		return codec_err("LwM2M CBOR: %s", r->err);
	}
	return o;
}

jv lwm2m_cbor_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	struct cbor_reader r;
	struct cbor_item m;
	struct lwm2m_path root = {.len = 0};
	cbor_reader_init(&r, data, len);
	if (cbor_read(&r, &m) < 0)
		return codec_err("LwM2M CBOR: %s", r.err);
	if (m.type != CBOR_MAP)
		return codec_err("LwM2M CBOR: not a map");
	jv o = decode_map(jv_object(), base, &r, &m, &root);
	if (jv_is_valid(o) && !cbor_at_end(&r)) {
		jv_free(o);
		return codec_err("LwM2M CBOR: %zu bytes after the map", (size_t)(r.end - r.p));
	}
	return o;
}

static void put_value(struct obuf *o, const struct codec_val *v)
{
	char buf[16];
	int n;
	switch (v->type) {
	case LWM2M_T_STRING:
	case LWM2M_T_CORELNK: cbor_put_text(o, (const char *)v->bytes, v->nbytes); break;
	case LWM2M_T_OPAQUE: cbor_put_bytes(o, v->bytes, v->nbytes); break;
	case LWM2M_T_INTEGER:
	case LWM2M_T_TIME: cbor_put_int(o, v->v.i); break;
	case LWM2M_T_UNSIGNED: cbor_put_uint(o, v->v.u); break;
	case LWM2M_T_FLOAT: cbor_put_float(o, v->v.f); break;
	case LWM2M_T_BOOLEAN: cbor_put_bool(o, v->v.b); break;
	case LWM2M_T_OBJLNK:
		n = snprintf(buf, sizeof buf, "%u:%u", v->v.lnk[0], v->v.lnk[1]);
		cbor_put_text(o, buf, (size_t)n);
		break;
	}
}

/* Values [lo, hi) share ids 0..d-1; write the map of their ids at depth d. */
static int encode_level(const struct codec_vals *vs, size_t lo, size_t hi, int d, struct obuf *o,
                        char **err)
{
	char ps[LWM2M_PATH_STRLEN];
	size_t groups = 0;
	for (size_t i = lo; i < hi; i++)
		if (i == lo || vs->v[i].path.id[d] != vs->v[i - 1].path.id[d])
			groups++;
	cbor_put_map(o, groups);
	for (size_t i = lo; i < hi;) {
		size_t j = i + 1;
		while (j < hi && vs->v[j].path.id[d] == vs->v[i].path.id[d])
			j++;
		cbor_put_uint(o, vs->v[i].path.id[d]);
		if (vs->v[i].path.len == d + 1) {
			if (j - i > 1)
				return codec_seterr(err, "%s has a value and resource instances",
				                    PATHSTR(&vs->v[i].path, ps));
			put_value(o, &vs->v[i]);
		} else if (encode_level(vs, i, j, d + 1, o, err) < 0) {
			return -1;
		}
		i = j;
	}
	return 0;
}

/* The ids all values share (as Anjay writes it, {[13, 26]: {1: 42, 2: 21}}) go into one array
 * key when there are two or more of them; below that, nested maps. */
int lwm2m_cbor_encode(const struct lwm2m_path *base, const struct codec_vals *vs, struct obuf *o,
                      char **err)
{
	(void)base;
	struct lwm2m_path common = vs->v[0].path;
	for (size_t i = 1; i < vs->n; i++) {
		int k = 0;
		while (k < common.len && k < vs->v[i].path.len && vs->v[i].path.id[k] == common.id[k])
			k++;
		common.len = k;
	}
	if (vs->n > 1 && common.len == vs->v[0].path.len)
		common.len--; /* a value and values below it: encode_level reports that */
	if (common.len < 2)
		return encode_level(vs, 0, vs->n, 0, o, err);
	cbor_put_map(o, 1);
	cbor_put_array(o, (size_t)common.len);
	for (int k = 0; k < common.len; k++)
		cbor_put_uint(o, common.id[k]);
	if (vs->n == 1 && vs->v[0].path.len == common.len) {
		put_value(o, &vs->v[0]);
		return 0;
	}
	return encode_level(vs, 0, vs->n, common.len, o, err);
}

jv lwm2m_plain_cbor_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	char bs[LWM2M_PATH_STRLEN];
	struct cbor_reader r;
	struct cbor_item v;
	if (base->len < 3)
		return codec_err("CBOR: a single value cannot answer a request on %s", PATHSTR(base, bs));
	cbor_reader_init(&r, data, len);
	if (cbor_read(&r, &v) < 0)
		return codec_err("CBOR: %s", r.err);
	jv x = cbor_value(&r, &v, base, "CBOR");
	if (jv_is_valid(x) && !cbor_at_end(&r)) {
		jv_free(x);
		return codec_err("CBOR: %zu bytes after the value", (size_t)(r.end - r.p));
	}
	return codec_store(jv_object(), base, base, x, "CBOR");
}

int lwm2m_plain_cbor_encode(const struct lwm2m_path *base, const struct codec_vals *vs,
                            struct obuf *o, char **err)
{
	char bs[LWM2M_PATH_STRLEN];
	if (base->len < 3 || vs->n != 1 || vs->v[0].path.len != base->len)
		return codec_seterr(err, "CBOR carries exactly one value, for a resource or resource "
		                    "instance (target %s)", PATHSTR(base, bs));
	put_value(o, &vs->v[0]);
	return 0;
}
