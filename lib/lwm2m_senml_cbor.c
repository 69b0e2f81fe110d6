/* SenML CBOR (content format 112, RFC 8428 section 6 as profiled by LwM2M 1.1 TS Core 7.4.5):
 * an array of maps with integer labels (bn -2, bt -3, bver -1, n 0, v 2, vs 3, vb 4, t 6, vd 8)
 * and the text label "vlo" for object links. Definite and indefinite lengths are accepted. */
#include "cbor.h"
#include "lwm2m_codec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { L_BVER = -1, L_BN = -2, L_BT = -3, L_N = 0, L_V = 2, L_VS = 3, L_VB = 4, L_T = 6, L_VD = 8 };

#define MAX_OWNED 8

struct rec_buf {
	uint8_t *owned[MAX_OWNED];
	int nowned;
};

static int get_string(struct cbor_reader *r, const struct cbor_item *it, struct rec_buf *rb,
                      const uint8_t **s, size_t *n)
{
	uint8_t *own;
	if (rb->nowned == MAX_OWNED) {
		r->err = "too many labels in one record";
		return -1;
	}
	if (cbor_string(r, it, s, n, &own) < 0)
		return -1;
	if (own)
		rb->owned[rb->nowned++] = own;
	return 0;
}

/* One record (a map); 0 or -1 with the reason in st. */
static int decode_record(struct senml_state *st, struct cbor_reader *r, const struct cbor_item *m)
{
	struct senml_rec rec;
	struct rec_buf rb = {.nowned = 0};
	memset(&rec, 0, sizeof rec);
	uint64_t left = m->val;
	int more, rc = 0;
	while (rc == 0 && (more = cbor_more(r, m, &left)) == 1) {
		struct cbor_item k, v;
		if (cbor_read(r, &k) < 0 || cbor_read(r, &v) < 0) {
			rc = senml_fail(st, "%s", r->err);
			break;
		}
		int64_t label;
		if (k.type == CBOR_UINT && k.val < 1000) {
			label = (int64_t)k.val;
		} else if (k.type == CBOR_NEGINT && k.val < 1000) {
			label = -1 - (int64_t)k.val;
		} else if (k.type == CBOR_TEXT && !k.indef && k.len == 3 && memcmp(k.str, "vlo", 3) == 0) {
			label = 1000;
		} else if (k.type == CBOR_TEXT && !k.indef && k.len && k.str[k.len - 1] == '_') {
			rc = senml_fail(st, "must-understand label \"%.*s\" not supported",
			                (int)(k.len > 40 ? 40 : k.len), (const char *)k.str);
			break;
		} else if (k.type == CBOR_UINT || k.type == CBOR_NEGINT || k.type == CBOR_TEXT) {
			label = 2000; /* an unknown label: skipped */
		} else {
			rc = senml_fail(st, "a label is neither an integer nor a text string");
			break;
		}
		const uint8_t *s;
		size_t n;
		switch (label) {
		case L_BN:
		case L_N:
		case 1000:
		case L_VS:
			if (v.type != CBOR_TEXT) {
				rc = senml_fail(st, "%s is not a text string",
				                label == L_BN ? "bn" : label == L_N ? "n" : label == L_VS ? "vs" : "vlo");
				break;
			}
			if (get_string(r, &v, &rb, &s, &n) < 0) {
				rc = senml_fail(st, "%s", r->err);
				break;
			}
			if (label == L_BN) {
				rec.has_bn = true;
				rec.bn = (const char *)s;
				rec.bnlen = n;
			} else if (label == L_N) {
				rec.has_n = true;
				rec.n = (const char *)s;
				rec.nlen = n;
			} else {
				rec.nvals++;
				rec.kind = label == L_VS ? SENML_STR : SENML_OBJLNK;
				rec.s = s;
				rec.slen = n;
			}
			break;
		case L_VD:
			if (v.type != CBOR_BYTES) {
				rc = senml_fail(st, "vd is not a byte string");
				break;
			}
			if (get_string(r, &v, &rb, &s, &n) < 0) {
				rc = senml_fail(st, "%s", r->err);
				break;
			}
			rec.nvals++;
			rec.kind = SENML_DATA;
			rec.s = s;
			rec.slen = n;
			break;
		case L_VB:
			if (v.type != CBOR_BOOL) {
				rc = senml_fail(st, "vb is not a boolean");
				break;
			}
			rec.nvals++;
			rec.kind = SENML_BOOL;
			rec.b = v.b;
			break;
		case L_V:
		case L_BT:
		case L_T:
		case L_BVER: {
			double d;
			if (cbor_number(r, &v, &d) < 0) {
				rc = senml_fail(st, "label %d is not a number", (int)label);
				break;
			}
			if (label == L_V) {
				rec.nvals++;
				rec.kind = SENML_NUM;
				rec.num = d;
			} else if (label == L_BT) {
				rec.has_bt = true;
				rec.bt = d;
			} else if (label == L_T) {
				rec.t = d;
			} else if (d > 10) {
				rc = senml_fail(st, "base version (bver) not supported");
			}
			break;
		}
		default:
			if (cbor_skip(r, &v, CODEC_MAX_DEPTH) < 0)
				rc = senml_fail(st, "%s", r->err);
			break;
		}
	}
	if (rc == 0 && more < 0)
		rc = senml_fail(st, "%s", r->err);
	if (rc == 0)
		rc = senml_record(st, &rec);
	for (int i = 0; i < rb.nowned; i++)
		free(rb.owned[i]);
	return rc;
}

jv lwm2m_senml_cbor_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len)
{
	struct cbor_reader r;
	struct cbor_item a;
	cbor_reader_init(&r, data, len);
	if (cbor_read(&r, &a) < 0)
		return codec_err("SenML CBOR: %s", r.err);
	if (a.type != CBOR_ARRAY)
		return codec_err("SenML CBOR: not an array of records");
	struct senml_state st;
	senml_begin(&st, base, "SenML CBOR");
	uint64_t left = a.val;
	int more;
	for (st.idx = 0; (more = cbor_more(&r, &a, &left)) == 1; st.idx++) {
		struct cbor_item m;
		if (cbor_read(&r, &m) < 0) {
			senml_fail(&st, "%s", r.err);
			break;
		}
		if (m.type != CBOR_MAP) {
			senml_fail(&st, "not a map");
			break;
		}
		if (decode_record(&st, &r, &m) < 0)
			break;
	}
	if (more < 0 && jv_is_valid(st.out))
		senml_fail(&st, "%s", r.err);
	if (more == 0 && !cbor_at_end(&r) && jv_is_valid(st.out)) {
		jv_free(st.out);
		st.out = codec_err("SenML CBOR: %zu bytes after the array", (size_t)(r.end - r.p));
	}
	return senml_end(&st);
}

static void put_value(struct obuf *o, const struct codec_val *v)
{
	switch (v->type) {
	case LWM2M_T_STRING:
	case LWM2M_T_CORELNK:
		cbor_put_int(o, L_VS);
		cbor_put_text(o, (const char *)v->bytes, v->nbytes);
		break;
	case LWM2M_T_OPAQUE:
		cbor_put_int(o, L_VD);
		cbor_put_bytes(o, v->bytes, v->nbytes);
		break;
	case LWM2M_T_INTEGER:
	case LWM2M_T_TIME:
		cbor_put_int(o, L_V);
		cbor_put_int(o, v->v.i);
		break;
	case LWM2M_T_UNSIGNED:
		cbor_put_int(o, L_V);
		cbor_put_uint(o, v->v.u);
		break;
	case LWM2M_T_FLOAT:
		cbor_put_int(o, L_V);
		cbor_put_float(o, v->v.f);
		break;
	case LWM2M_T_BOOLEAN:
		cbor_put_int(o, L_VB);
		cbor_put_bool(o, v->v.b);
		break;
	case LWM2M_T_OBJLNK: {
		char buf[16];
		int n = snprintf(buf, sizeof buf, "%u:%u", v->v.lnk[0], v->v.lnk[1]);
		cbor_put_text(o, "vlo", 3);
		cbor_put_text(o, buf, (size_t)n);
		break;
	}
	}
}

int lwm2m_senml_cbor_encode(const struct lwm2m_path *base, const struct codec_vals *vs,
                            struct obuf *o, char **err)
{
	(void)base;
	(void)err;
	char bn[LWM2M_PATH_STRLEN + 1], n[LWM2M_PATH_STRLEN];
	cbor_put_array(o, vs->n);
	for (size_t i = 0; i < vs->n; i++) {
		senml_names(vs, i, bn, sizeof bn, n, sizeof n);
		cbor_put_map(o, bn[0] ? 3 : 2);
		if (bn[0]) {
			cbor_put_int(o, L_BN);
			cbor_put_text(o, bn, strlen(bn));
		}
		cbor_put_int(o, L_N);
		cbor_put_text(o, n, strlen(n));
		put_value(o, &vs->v[i]);
	}
	return 0;
}
