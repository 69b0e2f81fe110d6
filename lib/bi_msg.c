#include "bi_msg.h"

#include <string.h>

#include "hex.h"
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
