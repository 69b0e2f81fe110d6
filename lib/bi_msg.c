#include "bi_msg.h"

#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "json_out.h"
#include "jsonl.h"

static const char *const names[] = {
	[BI_SUCCESS] = "Success",
	[BI_MIC_FAILED] = "MICFailed",
	[BI_UNKNOWN_DEVEUI] = "UnknownDevEUI",
	[BI_ACTIVATION_DISALLOWED] = "ActivationDisallowed",
	[BI_JOINREQ_FAILED] = "JoinReqFailed",
	[BI_MALFORMED] = "MalformedRequest",
	[BI_UNKNOWN_SENDER] = "UnknownSender",
	[BI_OTHER] = "Other",
};

const char *bi_result_name(enum bi_result r, const char *pv)
{
	if (r == BI_MALFORMED && pv && strcmp(pv, "1.1") == 0)
		return "MalformedMessage";
	return names[r];
}

const char *bi_answer_type(const char *t)
{
	static const char *const pairs[][2] = {
		{"JoinReq", "JoinAns"}, {"RejoinReq", "RejoinAns"}, {"AppSKeyReq", "AppSKeyAns"},
		{"HomeNSReq", "HomeNSAns"}, {"PRStartReq", "PRStartAns"}, {"PRStopReq", "PRStopAns"},
		{"HRStartReq", "HRStartAns"}, {"HRStopReq", "HRStopAns"}, {"ProfileReq", "ProfileAns"},
		{"XmitDataReq", "XmitDataAns"}, {"XmitLocReq", "XmitLocAns"},
	};
	for (size_t i = 0; t && i < sizeof pairs / sizeof pairs[0]; i++)
		if (strcmp(t, pairs[i][0]) == 0)
			return pairs[i][1];
	return NULL;
}

static jv copy_field(jv ans, jv req, const char *from, const char *to)
{
	jv v = jl_get(req, from);
	if (jv_is_valid(v) && jv_get_kind(v) != JV_KIND_NULL)
		return jv_object_set(ans, jv_string(to), v);
	jv_free(v);
	return ans;
}

jv bi_answer(jv req, const char *ans_type)
{
	jv a = jv_object();
	const char *pv = jl_str(req, "ProtocolVersion");
	a = jv_object_set(a, jv_string("ProtocolVersion"), jv_string(pv ? pv : "1.0"));
	a = copy_field(a, req, "ReceiverID", "SenderID");
	a = copy_field(a, req, "SenderID", "ReceiverID");
	a = copy_field(a, req, "TransactionID", "TransactionID");
	const char *t = bi_answer_type(jl_str(req, "MessageType"));
	if (!t)
		t = ans_type;
	if (t)
		a = jv_object_set(a, jv_string("MessageType"), jv_string(t));
	a = copy_field(a, req, "SenderToken", "ReceiverToken");
	a = copy_field(a, req, "ReceiverToken", "SenderToken");
	if (pv && strcmp(pv, "1.1") == 0)
		a = copy_field(a, req, "SenderNSID", "ReceiverNSID");
	return a;
}

jv bi_result(jv ans, enum bi_result r, const char *pv, const char *desc)
{
	jv res = jv_object_set(jv_object(), jv_string("ResultCode"), jv_string(bi_result_name(r, pv)));
	if (desc && *desc)
		res = jv_object_set(res, jv_string("Description"), jv_string(desc));
	return jv_object_set(ans, jv_string("Result"), res);
}

int bi_hex_bytes(jv msg, const char *key, uint8_t *out, size_t n)
{
	const char *s = jl_str(msg, key);
	return s && hex_decode_exact(s, out, n) == 0 ? 0 : -1;
}

int bi_hex_uint(jv msg, const char *key, size_t n, uint64_t *v)
{
	uint8_t b[8];
	if (n > 8 || bi_hex_bytes(msg, key, b, n) != 0)
		return -1;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = *v << 8 | b[i];
	return 0;
}

long bi_hex_var(jv msg, const char *key, uint8_t *out, size_t max)
{
	const char *s = jl_str(msg, key);
	if (!s)
		return jl_has(msg, key) ? -1 : -2;
	return hex_decode(s, out, max);
}

jv bi_hex_jv(const uint8_t *b, size_t n)
{
	char h[2 * 256 + 1];
	if (n > 256)
		n = 256;
	hex_encode(b, n, h);
	return jv_string(h);
}

jv bi_hex_uint_jv(uint64_t v, size_t n)
{
	uint8_t b[8];
	for (size_t i = 0; i < n && i < 8; i++)
		b[n - 1 - i] = (uint8_t)(v >> (8 * i));
	return bi_hex_jv(b, n);
}

jv bi_clear_envelope(const uint8_t key[16])
{
	jv e = jv_object_set(jv_object(), jv_string("KEKLabel"), jv_string(""));
	return jv_object_set(e, jv_string("AESKey"), bi_hex_jv(key, 16));
}

/* ---- one-pass views ---- */

static const struct {
	const char *name;
	size_t len;
} field_names[BI_NFIELDS] = {
#define F(e, n) [e] = {n, sizeof n - 1}
	F(BI_F_PROTOCOL_VERSION, "ProtocolVersion"),
	F(BI_F_MESSAGE_TYPE, "MessageType"),
	F(BI_F_SENDER_ID, "SenderID"),
	F(BI_F_RECEIVER_ID, "ReceiverID"),
	F(BI_F_TRANSACTION_ID, "TransactionID"),
	F(BI_F_SENDER_TOKEN, "SenderToken"),
	F(BI_F_RECEIVER_TOKEN, "ReceiverToken"),
	F(BI_F_SENDER_NSID, "SenderNSID"),
	F(BI_F_MAC_VERSION, "MACVersion"),
	F(BI_F_PHY_PAYLOAD, "PHYPayload"),
	F(BI_F_DEV_EUI, "DevEUI"),
	F(BI_F_DEV_ADDR, "DevAddr"),
	F(BI_F_DL_SETTINGS, "DLSettings"),
	F(BI_F_RX_DELAY, "RxDelay"),
	F(BI_F_CFLIST, "CFList"),
#undef F
};

static int field_of(const char *k, size_t n)
{
	for (int i = 0; i < BI_NFIELDS; i++)
		if (field_names[i].len == n && memcmp(field_names[i].name, k, n) == 0)
			return i;
	return -1;
}

static void view_clear(struct bi_view *m)
{
	for (int i = 0; i < BI_NFIELDS; i++)
		m->f[i] = (struct bi_val){.kind = JV_KIND_INVALID, .v = jv_invalid()};
	m->text = NULL;
	m->n_ends = 0;
}

void bi_view_jv(struct bi_view *m, jv msg)
{
	view_clear(m);
	if (jv_get_kind(msg) != JV_KIND_OBJECT)
		return;
	for (int it = jv_object_iter(msg); jv_object_iter_valid(msg, it); it = jv_object_iter_next(msg, it)) {
		jv k = jv_object_iter_key(msg, it);
		int f = field_of(jv_string_value(k), (size_t)jv_string_length_bytes(jv_copy(k)));
		jv_free(k);
		if (f < 0)
			continue;
		/* msg keeps its own reference: the value and its string outlive this one */
		jv v = jv_object_iter_value(msg, it);
		struct bi_val *x = &m->f[f];
		x->kind = jv_get_kind(v);
		x->v = v;
		if (x->kind == JV_KIND_STRING) {
			x->str = jv_string_value(v);
			x->len = strlen(x->str);
		} else if (x->kind == JV_KIND_NUMBER) {
			x->num = jv_number_value(v);
		}
		jv_free(v);
	}
}

static const char *ws(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	return s;
}

/* s just past an opening quote: past the closing one; *plain when no escape and only
 * printable ASCII (the text jq would print for it is then the same bytes) */
static const char *str_end(const char *s, const char *e, bool *plain)
{
	*plain = true;
	for (; s < e && *s != '"'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\\') {
			*plain = false;
			s++;
		} else if (c < 0x20 || c > 0x7E) {
			*plain = false;
		}
	}
	return s < e ? s + 1 : e;
}

/* past one value of well-formed JSON */
static const char *value_end(const char *s, const char *e)
{
	int depth = 0;
	bool plain;
	do {
		s = ws(s, e);
		if (s >= e)
			return e;
		char c = *s;
		if (c == '"') {
			s = str_end(s + 1, e, &plain);
		} else if (c == '{' || c == '[') {
			depth++;
			s++;
		} else if (c == '}' || c == ']') {
			depth--;
			s++;
		} else if (c == ',' || c == ':') {
			s++;
		} else {
			while (s < e && !strchr(" \t\r\n,:]}", *s))
				s++;
		}
	} while (depth > 0);
	return s;
}

int bi_view_text(struct bi_view *m, char *text, size_t len)
{
	view_clear(m);
	const char *s = ws(text, text + len), *e = text + len;
	bool plain;
	if (s >= e || *s != '{')
		return -1;
	s = ws(s + 1, e);
	if (s < e && *s == '}')
		s++;
	else
		for (;;) {
			if (s >= e || *s != '"')
				return -1;
			const char *k = s + 1;
			s = str_end(k, e, &plain);
			if (!plain)
				return -1; /* an escaped key may still name a field */
			int f = field_of(k, (size_t)(s - 1 - k));
			s = ws(s, e);
			if (s >= e || *s != ':')
				return -1;
			s = ws(s + 1, e);
			if (s >= e)
				return -1;
			if (f < 0) {
				s = value_end(s, e);
			} else {
				struct bi_val *x = &m->f[f];
				if (x->kind != JV_KIND_INVALID)
					return -1; /* jq keeps the last one, in the first one's place */
				char c = *s;
				if (c == '"') {
					x->str = s + 1;
					s = str_end(s + 1, e, &plain);
					if (!plain)
						return -1;
					x->kind = JV_KIND_STRING;
					x->len = (size_t)(s - 1 - x->str);
					m->ends[m->n_ends++] = (size_t)(s - 1 - text);
				} else if (c == '-' || (c >= '0' && c <= '9')) {
					/* as json_fast reads numbers */
					char buf[64];
					const char *b = s;
					while (s < e && strchr("0123456789+-.eE", *s))
						s++;
					size_t n = (size_t)(s - b);
					if (n == 0 || n >= sizeof buf)
						return -1;
					memcpy(buf, b, n);
					buf[n] = 0;
					x->kind = JV_KIND_NUMBER;
					x->num = strtod(buf, NULL);
				} else if (c == 't' && e - s >= 4 && memcmp(s, "true", 4) == 0) {
					x->kind = JV_KIND_TRUE;
					s += 4;
				} else if (c == 'f' && e - s >= 5 && memcmp(s, "false", 5) == 0) {
					x->kind = JV_KIND_FALSE;
					s += 5;
				} else if (c == 'n' && e - s >= 4 && memcmp(s, "null", 4) == 0) {
					x->kind = JV_KIND_NULL;
					s += 4;
				} else {
					return -1;
				}
			}
			s = ws(s, e);
			if (s < e && *s == ',') {
				s = ws(s + 1, e);
				continue;
			}
			if (s < e && *s == '}') {
				s++;
				break;
			}
			return -1;
		}
	if (ws(s, e) != e)
		return -1;
	m->text = text;
	return 0;
}

void bi_view_text_finish(struct bi_view *m)
{
	for (unsigned i = 0; m->text && i < m->n_ends; i++)
		m->text[m->ends[i]] = 0;
	m->n_ends = 0;
}

const char *bi_str(const struct bi_view *m, enum bi_field f)
{
	return m->f[f].kind == JV_KIND_STRING ? m->f[f].str : NULL;
}

bool bi_eq(const struct bi_view *m, enum bi_field f, const char *s)
{
	size_t n = strlen(s);
	return m->f[f].kind == JV_KIND_STRING && m->f[f].len == n && memcmp(m->f[f].str, s, n) == 0;
}

int bi_has(const struct bi_view *m, enum bi_field f)
{
	return m->f[f].kind != JV_KIND_INVALID;
}

double bi_num(const struct bi_view *m, enum bi_field f, double def)
{
	return m->f[f].kind == JV_KIND_NUMBER ? m->f[f].num : def;
}

int bi_view_hex_uint(const struct bi_view *m, enum bi_field f, size_t n, uint64_t *v)
{
	uint8_t b[8];
	const char *s = bi_str(m, f);
	if (n > 8 || !s || hex_decode_exact(s, b, n) != 0)
		return -1;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = *v << 8 | b[i];
	return 0;
}

long bi_view_hex_var(const struct bi_view *m, enum bi_field f, uint8_t *out, size_t max)
{
	const char *s = bi_str(m, f);
	if (!s)
		return bi_has(m, f) ? -1 : -2;
	return hex_decode(s, out, max);
}

static int add(struct jbuf *b, const char *s)
{
	return jbuf_add(b, s, strlen(s));
}

/* ,"to":<the field's value as jq prints it>, unless absent or null */
static int copy_text(struct jbuf *b, const struct bi_view *m, enum bi_field f, const char *to)
{
	const struct bi_val *x = &m->f[f];
	if (x->kind == JV_KIND_INVALID || x->kind == JV_KIND_NULL)
		return 0;
	if (add(b, ",\"") || add(b, to) || add(b, "\":"))
		return -1;
	if (jv_is_valid(x->v))
		return json_out_append(b, x->v);
	switch (x->kind) {
	case JV_KIND_STRING: /* plain: the same bytes */
		return add(b, "\"") || jbuf_add(b, x->str, x->len) || add(b, "\"") ? -1 : 0;
	case JV_KIND_NUMBER:
		return json_out_append(b, jv_number(x->num));
	case JV_KIND_TRUE:
		return add(b, "true");
	case JV_KIND_FALSE:
		return add(b, "false");
	default:
		return -1;
	}
}

int bi_answer_text(struct jbuf *b, const struct bi_view *m)
{
	const char *pv = bi_str(m, BI_F_PROTOCOL_VERSION);
	jv pvs = jv_string(pv ? pv : "1.0");
	int rc = add(b, "{\"ProtocolVersion\":") || json_out_append(b, pvs);
	jv_free(pvs);
	const char *t = bi_answer_type(bi_str(m, BI_F_MESSAGE_TYPE));
	if (rc || copy_text(b, m, BI_F_RECEIVER_ID, "SenderID") || copy_text(b, m, BI_F_SENDER_ID, "ReceiverID") ||
	    copy_text(b, m, BI_F_TRANSACTION_ID, "TransactionID") ||
	    (t && (add(b, ",\"MessageType\":\"") || add(b, t) || add(b, "\""))) ||
	    copy_text(b, m, BI_F_SENDER_TOKEN, "ReceiverToken") || copy_text(b, m, BI_F_RECEIVER_TOKEN, "SenderToken") ||
	    (pv && strcmp(pv, "1.1") == 0 && copy_text(b, m, BI_F_SENDER_NSID, "ReceiverNSID")))
		return -1;
	return 0;
}

int bi_result_text(struct jbuf *b, enum bi_result r, const char *pv, const char *desc)
{
	if (add(b, ",\"Result\":{\"ResultCode\":\"") || add(b, bi_result_name(r, pv)) || add(b, "\""))
		return -1;
	if (desc && *desc) {
		jv d = jv_string(desc); /* as jq would keep it (a cut UTF-8 sequence mended) */
		int rc = add(b, ",\"Description\":") || json_out_append(b, d);
		jv_free(d);
		if (rc)
			return -1;
	}
	return add(b, "}");
}
