/* OMA LwM2M TLV (content format 11542), LwM2M 1.1 TS Core section 7.4.3.
 * Decoding types values from the object model; a resource the model does not know is kept as
 * opaque (base64), since TLV carries no type and guessing an integer would be wrong for strings. */
#include "lwm2m_codec_int.h"

#include <stdlib.h>
#include <string.h>

enum { TLV_OBJ_INST = 0, TLV_RES_INST = 1, TLV_MULTI_RES = 2, TLV_RES = 3 };

static const char *const tlv_kind[] = {"object instance", "resource instance",
                                       "multiple resource", "resource"};

struct tlv {
	int type;
	uint16_t id;
	const uint8_t *val;
	size_t len;
};

/* Read one TLV header at *pos in [data, data+len). 0, or -1 with *why. */
static int tlv_next(const uint8_t *data, size_t len, size_t *pos, struct tlv *t, const char **why)
{
	size_t p = *pos;
	if (len - p < 2) {
		*why = "truncated TLV header";
		return -1;
	}
	uint8_t h = data[p++];
	t->type = h >> 6;
	size_t idlen = (h & 0x20) ? 2 : 1, lenlen = (h >> 3) & 3;
	if (len - p < idlen + lenlen) {
		*why = "truncated TLV header";
		return -1;
	}
	t->id = data[p++];
	if (idlen == 2)
		t->id = (uint16_t)(t->id << 8 | data[p++]);
	size_t vlen = h & 7;
	if (lenlen) {
		vlen = 0;
		for (size_t i = 0; i < lenlen; i++)
			vlen = vlen << 8 | data[p++];
	}
	if (len - p < vlen) {
		*why = "TLV value longer than the payload";
		return -1;
	}
	if (t->id > LWM2M_ID_MAX) {
		*why = "TLV identifier 65535 is reserved";
		return -1;
	}
	t->val = data + p;
	t->len = vlen;
	*pos = p + vlen;
	return 0;
}

static jv tlv_value(const struct lwm2m_path *p, const uint8_t *v, size_t n)
{
	char ps[LWM2M_PATH_STRLEN];
	bool known;
	enum lwm2m_type t = codec_res_type(p, &known);
	switch (t) {
	case LWM2M_T_STRING:
	case LWM2M_T_CORELNK:
		return codec_from_text(p, (const char *)v, n);
	case LWM2M_T_INTEGER:
	case LWM2M_T_TIME:
	case LWM2M_T_UNSIGNED: {
		if (n != 1 && n != 2 && n != 4 && n != 8)
			return codec_err("TLV: %s: %s of %zu bytes (expected 1, 2, 4 or 8)",
			                 PATHSTR(p, ps), objmodel_type_name(t), n);
		uint64_t u = 0;
		for (size_t i = 0; i < n; i++)
			u = u << 8 | v[i];
		if (t == LWM2M_T_UNSIGNED)
			return jv_number((double)u);
		if (n < 8 && (v[0] & 0x80))
			u |= ~(uint64_t)0 << (8 * n);
		return jv_number((double)(int64_t)u);
	}
	case LWM2M_T_FLOAT:
		if (n == 4) {
			uint32_t u = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
			float f;
			memcpy(&f, &u, 4);
			return codec_from_number(p, f);
		} else if (n == 8) {
			uint64_t u = 0;
			for (size_t i = 0; i < 8; i++)
				u = u << 8 | v[i];
			double d;
			memcpy(&d, &u, 8);
			return codec_from_number(p, d);
		}
		return codec_err("TLV: %s: float of %zu bytes (expected 4 or 8)", PATHSTR(p, ps), n);
	case LWM2M_T_BOOLEAN:
		if (n != 1 || v[0] > 1)
			return codec_err("TLV: %s: boolean must be one byte 0 or 1", PATHSTR(p, ps));
		return jv_bool(v[0]);
	case LWM2M_T_OBJLNK:
		if (n != 4)
			return codec_err("TLV: %s: objlnk of %zu bytes (expected 4)", PATHSTR(p, ps), n);
		return jv_string_fmt("%u:%u", v[0] << 8 | v[1], v[2] << 8 | v[3]);
	default:
		return codec_from_bytes(p, v, n);
	}
}

/* Decode the TLVs in [data, data+len) whose parent is path `at` (len 1: object, 2: instance,
 * 3: resource), storing into *o. expect is the TLV kind allowed at this level. */
static jv tlv_level(jv o, const struct lwm2m_path *base, const struct lwm2m_path *at,
                    const uint8_t *data, size_t len)
{
	char ps[LWM2M_PATH_STRLEN];
	size_t pos = 0;
	const char *why;
	while (pos < len) {
		struct tlv t;
		if (tlv_next(data, len, &pos, &t, &why) < 0) {
			jv_free(o);
			return codec_err("TLV: %s under %s at byte %zu", why, PATHSTR(at, ps), pos);
		}
		int want = at->len == 1 ? TLV_OBJ_INST : at->len == 3 ? TLV_RES_INST : -1;
		if (at->len == 2 ? (t.type != TLV_RES && t.type != TLV_MULTI_RES) : t.type != want) {
			jv_free(o);
			return codec_err("TLV: a %s (id %u) cannot be inside %s", tlv_kind[t.type], t.id,
			                 PATHSTR(at, ps));
		}
		struct lwm2m_path p = *at;
		p.id[p.len++] = t.id;
		if (t.type == TLV_OBJ_INST || t.type == TLV_MULTI_RES) {
			o = tlv_level(o, base, &p, t.val, t.len);
			if (!jv_is_valid(o))
				return o;
		} else {
			o = codec_store_once(o, base, &p, tlv_value(&p, t.val, t.len), "TLV");
			if (!jv_is_valid(o))
				return o;
		}
	}
	return o;
}

jv lwm2m_tlv_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	char bs[LWM2M_PATH_STRLEN];
	if (base->len == 0)
		return codec_err("TLV: a request on the root path cannot carry TLV");
	jv o = jv_object();
	size_t pos = 0;
	const char *why;
	while (pos < len) {
		struct tlv t;
		if (tlv_next(data, len, &pos, &t, &why) < 0) {
			jv_free(o);
			return codec_err("TLV: %s at byte %zu", why, pos);
		}
		/* The top level holds what sits below base, or base itself (Leshan and Wakaama
		 * both send a resource read as its own resource TLV). */
		struct lwm2m_path at = *base;
		int lvl = t.type == TLV_OBJ_INST ? 1 : t.type == TLV_RES_INST ? 3 : 2;
		if (at.len > lvl) {
			if (at.id[lvl] != t.id) {
				jv_free(o);
				return codec_err("TLV: %s id %u does not match the requested %s",
				                 tlv_kind[t.type], t.id, PATHSTR(base, bs));
			}
			at.len = lvl;
		}
		/* resources straight under a single-instance object: instance 0 (Leshan does so) */
		const struct lwm2m_object_def *od = objmodel_object(base->id[0]);
		if (at.len == 1 && lvl == 2 && od && !od->multiple) {
			at.id[1] = 0;
			at.len = 2;
		}
		if (at.len != lvl) {
			jv_free(o);
			return codec_err("TLV: a %s (id %u) cannot answer a request on %s",
			                 tlv_kind[t.type], t.id, PATHSTR(base, bs));
		}
		struct lwm2m_path p = at;
		p.id[p.len++] = t.id;
		if (t.type == TLV_OBJ_INST || t.type == TLV_MULTI_RES)
			o = tlv_level(o, base, &p, t.val, t.len);
		else
			o = codec_store_once(o, base, &p, tlv_value(&p, t.val, t.len), "TLV");
		if (!jv_is_valid(o))
			return o;
	}
	return o;
}

/* --- encoding --- */

static void put_header(struct obuf *o, int type, uint16_t id, size_t len)
{
	uint8_t h[6];
	size_t n = 1;
	h[0] = (uint8_t)(type << 6);
	if (id > 255) {
		h[0] |= 0x20;
		h[n++] = (uint8_t)(id >> 8);
	}
	h[n++] = (uint8_t)id;
	if (len < 8) {
		h[0] |= (uint8_t)len;
	} else if (len < 0x100) {
		h[0] |= 1 << 3;
		h[n++] = (uint8_t)len;
	} else if (len < 0x10000) {
		h[0] |= 2 << 3;
		h[n++] = (uint8_t)(len >> 8);
		h[n++] = (uint8_t)len;
	} else {
		h[0] |= 3 << 3;
		h[n++] = (uint8_t)(len >> 16);
		h[n++] = (uint8_t)(len >> 8);
		h[n++] = (uint8_t)len;
	}
	obuf_put(o, h, n);
}

/* The value bytes of one resource (instance). */
static void value_bytes(const struct codec_val *v, struct obuf *o)
{
	uint8_t b[8];
	size_t n = 0;
	switch (v->type) {
	case LWM2M_T_STRING:
	case LWM2M_T_CORELNK:
	case LWM2M_T_OPAQUE:
		obuf_put(o, v->bytes, v->nbytes);
		return;
	case LWM2M_T_INTEGER:
	case LWM2M_T_TIME: {
		int64_t i = v->v.i;
		n = (i >= -128 && i <= 127) ? 1 : (i >= -32768 && i <= 32767) ? 2
		    : (i >= INT32_MIN && i <= INT32_MAX) ? 4 : 8;
		for (size_t k = 0; k < n; k++)
			b[k] = (uint8_t)((uint64_t)i >> (8 * (n - 1 - k)));
		break;
	}
	case LWM2M_T_UNSIGNED: {
		uint64_t u = v->v.u;
		n = u <= 0xff ? 1 : u <= 0xffff ? 2 : u <= 0xffffffffu ? 4 : 8;
		for (size_t k = 0; k < n; k++)
			b[k] = (uint8_t)(u >> (8 * (n - 1 - k)));
		break;
	}
	case LWM2M_T_FLOAT: {
		float f = (float)v->v.f;
		if ((double)f == v->v.f) {
			uint32_t u;
			memcpy(&u, &f, 4);
			n = 4;
			for (size_t k = 0; k < 4; k++)
				b[k] = (uint8_t)(u >> (8 * (3 - k)));
		} else {
			uint64_t u;
			memcpy(&u, &v->v.f, 8);
			n = 8;
			for (size_t k = 0; k < 8; k++)
				b[k] = (uint8_t)(u >> (8 * (7 - k)));
		}
		break;
	}
	case LWM2M_T_BOOLEAN:
		b[0] = v->v.b;
		n = 1;
		break;
	case LWM2M_T_OBJLNK:
		b[0] = (uint8_t)(v->v.lnk[0] >> 8);
		b[1] = (uint8_t)v->v.lnk[0];
		b[2] = (uint8_t)(v->v.lnk[1] >> 8);
		b[3] = (uint8_t)v->v.lnk[1];
		n = 4;
		break;
	}
	obuf_put(o, b, n);
}

/* Encode vals[*i..] that share the first `depth` ids of vals[*i]; depth is the level being
 * written (1: object instances, 2: resources, 3: resource instances). */
static void encode_level(const struct codec_vals *vs, size_t *i, int depth, struct obuf *o)
{
	const struct codec_val *first = &vs->v[*i];
	while (*i < vs->n) {
		const struct codec_val *v = &vs->v[*i];
		if (memcmp(v->path.id, first->path.id, (size_t)depth * sizeof v->path.id[0]) != 0)
			return;
		uint16_t id = v->path.id[depth];
		if (v->path.len == depth + 1) {
			struct obuf tmp = {0};
			value_bytes(v, &tmp);
			put_header(o, depth == 3 ? TLV_RES_INST : TLV_RES, id, tmp.len);
			obuf_put(o, tmp.p, tmp.len);
			o->err |= tmp.err;
			free(tmp.p);
			(*i)++;
			continue;
		}
		struct obuf tmp = {0};
		encode_level(vs, i, depth + 1, &tmp);
		put_header(o, depth == 1 ? TLV_OBJ_INST : TLV_MULTI_RES, id, tmp.len);
		obuf_put(o, tmp.p, tmp.len);
		o->err |= tmp.err;
		free(tmp.p);
	}
}

int lwm2m_tlv_encode(const struct lwm2m_path *base, const struct codec_vals *vs, struct obuf *o,
                     char **err)
{
	char ps[LWM2M_PATH_STRLEN];
	if (base->len == 0)
		return codec_seterr(err, "TLV cannot encode a write on the root path");
	for (size_t k = 0; k < vs->n; k++)
		if (vs->v[k].nbytes > 0xffffff)
			return codec_seterr(err, "%s: value of %zu bytes is too long for TLV",
			                    PATHSTR(&vs->v[k].path, ps), vs->v[k].nbytes);
	/* Object target: object instance TLVs (as Create needs); instance target: its resources;
	 * resource target: the resource itself (a multiple resource TLV 7 with its instances for
	 * /3/0/7); resource instance target: the resource instance. */
	int depth = base->len == 1 ? 1 : base->len == 4 ? 3 : 2;
	size_t i = 0;
	while (i < vs->n)
		encode_level(vs, &i, depth, o);
	return 0;
}
