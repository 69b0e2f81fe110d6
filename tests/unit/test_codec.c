/* Unit checks of the LwM2M object model and content-format codecs, with the examples of the
 * OMA LwM2M TS (Core 1.1, appendix and section 7.4 tables) as vectors. */
#include "hex.h"
#include "lwm2m_codec.h"
#include "objmodel.h"
#include "objmodel_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static struct lwm2m_path P(const char *s)
{
	struct lwm2m_path p;
	if (lwm2m_path_parse(s, &p) < 0) {
		fprintf(stderr, "bad test path %s\n", s);
		exit(2);
	}
	return p;
}

/* Decode data (ct, base) and compare with the JSON text want; 1 if equal. */
static int dec_eq(int ct, const char *base, const void *data, size_t len, const char *want,
                  int line)
{
	struct lwm2m_path b = P(base);
	jv got = lwm2m_decode(ct, &b, data, len);
	jv w = jv_parse(want);
	if (!jv_is_valid(w)) {
		fprintf(stderr, "line %d: bad expected JSON\n", line);
		exit(2);
	}
	if (!jv_is_valid(got)) {
		jv m = jv_invalid_get_msg(got);
		fprintf(stderr, "line %d: decode failed: %s\n", line,
		        jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "(no message)");
		jv_free(m);
		jv_free(w);
		return 0;
	}
	int eq = jv_equal(jv_copy(got), jv_copy(w));
	if (!eq) {
		jv s = jv_dump_string(got, 0);
		jv t = jv_dump_string(w, 0);
		fprintf(stderr, "line %d: decoded %s\n  expected %s\n", line, jv_string_value(s),
		        jv_string_value(t));
		jv_free(s);
		jv_free(t);
	} else {
		jv_free(got);
		jv_free(w);
	}
	return eq;
}
#define DEC_EQ(ct, base, data, len, want) CHECK(dec_eq(ct, base, data, len, want, __LINE__))

/* Decoding must fail with a message containing part. */
static int dec_err(int ct, const char *base, const void *data, size_t len, const char *part,
                   int line)
{
	struct lwm2m_path b = P(base);
	jv got = lwm2m_decode(ct, &b, data, len);
	if (jv_is_valid(got)) {
		jv s = jv_dump_string(got, 0);
		fprintf(stderr, "line %d: decode should fail, gave %s\n", line, jv_string_value(s));
		jv_free(s);
		return 0;
	}
	jv m = jv_invalid_get_msg(got);
	int ok = jv_get_kind(m) == JV_KIND_STRING && strstr(jv_string_value(m), part);
	if (!ok)
		fprintf(stderr, "line %d: error \"%s\" lacks \"%s\"\n", line,
		        jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "(none)", part);
	jv_free(m);
	return ok;
}
#define DEC_ERR(ct, base, data, len, part) CHECK(dec_err(ct, base, data, len, part, __LINE__))

/* Encode the JSON values; compare with want (want_len bytes), or just succeed if want NULL.
 * The encoding is returned in *out when out is given. */
static int enc_eq(int ct, const char *base, const char *values, const void *want, size_t want_len,
                  uint8_t **outp, size_t *outlen, int line)
{
	struct lwm2m_path b = P(base);
	uint8_t *out;
	size_t len;
	char *err;
	if (lwm2m_encode(ct, &b, jv_parse(values), &out, &len, &err) < 0) {
		fprintf(stderr, "line %d: encode failed: %s\n", line, err);
		free(err);
		return 0;
	}
	int ok = !want || (len == want_len && memcmp(out, want, len) == 0);
	if (!ok) {
		fprintf(stderr, "line %d: encoded %zu bytes:", line, len);
		for (size_t i = 0; i < len; i++)
			fprintf(stderr, " %02X", out[i]);
		fprintf(stderr, "\n  (as text: %.*s)\n", (int)len, (const char *)out);
	}
	if (outp) {
		*outp = out;
		*outlen = len;
	} else {
		free(out);
	}
	return ok;
}
#define ENC_EQ(ct, base, values, want, wlen) \
	CHECK(enc_eq(ct, base, values, want, wlen, NULL, NULL, __LINE__))
#define ENC_STR(ct, base, values, want) \
	CHECK(enc_eq(ct, base, values, want, strlen(want), NULL, NULL, __LINE__))

static int enc_err(int ct, const char *base, const char *values, const char *part, int line)
{
	struct lwm2m_path b = P(base);
	uint8_t *out = NULL;
	size_t len;
	char *err = NULL;
	jv v = jv_parse(values);
	if (!jv_is_valid(v)) {
		fprintf(stderr, "line %d: bad test JSON\n", line);
		exit(2);
	}
	if (lwm2m_encode(ct, &b, v, &out, &len, &err) == 0) {
		fprintf(stderr, "line %d: encode should fail\n", line);
		free(out);
		return 0;
	}
	int ok = err && strstr(err, part);
	if (!ok)
		fprintf(stderr, "line %d: error \"%s\" lacks \"%s\"\n", line, err ? err : "(null)",
		        part);
	free(err);
	return ok;
}
#define ENC_ERR(ct, base, values, part) CHECK(enc_err(ct, base, values, part, __LINE__))

/* Encode values in ct, decode the result, and expect the same flat object back. */
static int round_trip(int ct, const char *base, const char *values, int line)
{
	uint8_t *out;
	size_t len;
	if (!enc_eq(ct, base, values, NULL, 0, &out, &len, line))
		return 0;
	int ok = dec_eq(ct, base, out, len, values, line);
	free(out);
	return ok;
}
#define ROUND_TRIP(ct, base, values) CHECK(round_trip(ct, base, values, __LINE__))

static size_t unhex(const char *s, uint8_t *buf, size_t size)
{
	char clean[4096];
	size_t n = 0;
	for (; *s && n + 1 < sizeof clean; s++)
		if (*s != ' ' && *s != '\n')
			clean[n++] = *s;
	clean[n] = 0;
	int k = hex_decode(clean, buf, size);
	if (k < 0) {
		fprintf(stderr, "bad test hex\n");
		exit(2);
	}
	return (size_t)k;
}

static void test_objmodel(void)
{
	const struct lwm2m_object_def *o = objmodel_object(3);
	CHECK(o && strcmp(o->name, "Device") == 0 && !o->multiple);
	const struct lwm2m_resource_def *r = objmodel_resource(3, 9);
	CHECK(r && r->type == LWM2M_T_INTEGER && !r->multiple && (r->ops & LWM2M_OP_R));
	r = objmodel_resource(3, 7);
	CHECK(r && r->multiple && r->type == LWM2M_T_INTEGER);
	r = objmodel_resource(3, 4);
	CHECK(r && r->type == LWM2M_T_NONE && r->ops == LWM2M_OP_E && r->mandatory);
	r = objmodel_resource(3303, 5700);
	CHECK(r && r->type == LWM2M_T_FLOAT && r->mandatory);
	r = objmodel_resource(3311, 5850);
	CHECK(r && r->type == LWM2M_T_BOOLEAN && r->ops == (LWM2M_OP_R | LWM2M_OP_W));
	r = objmodel_resource(3347, 5501);
	CHECK(r && r->type == LWM2M_T_INTEGER);
	r = objmodel_resource(1, 1);
	CHECK(r && r->type == LWM2M_T_INTEGER);
	r = objmodel_resource(1, 10);
	CHECK(r && r->type == LWM2M_T_OBJLNK);
	r = objmodel_resource(0, 3);
	CHECK(r && r->type == LWM2M_T_OPAQUE && r->ops == 0);
	CHECK(objmodel_object(3350) && objmodel_object(0) && objmodel_object(7));
	CHECK(objmodel_object(3200) && objmodel_object(3203));
	CHECK(!objmodel_object(8) && !objmodel_object(3351) && !objmodel_object(3307));
	CHECK(!objmodel_resource(3, 12345));
	CHECK(objmodel_type_from_name("Unsigned Integer") == LWM2M_T_UNSIGNED);
	CHECK(objmodel_type_from_name("Objlnk") == LWM2M_T_OBJLNK);
	CHECK(objmodel_type_from_name("") == LWM2M_T_NONE);
	CHECK(strcmp(objmodel_type_name(LWM2M_T_FLOAT), "float") == 0);
	/* every table is sorted, so lookups by bisection find every resource */
	for (uint16_t id = 0; id < 4000; id++) {
		const struct lwm2m_object_def *d = objmodel_object(id);
		if (!d)
			continue;
		CHECK(d->id == id);
		for (uint16_t i = 0; i < d->nres; i++) {
			CHECK(i == 0 || d->res[i].id > d->res[i - 1].id);
			CHECK(objmodel_resource(id, d->res[i].id) == &d->res[i]);
		}
	}
}

static void test_ct(void)
{
	CHECK(lwm2m_ct_parse("tlv") == LWM2M_CT_TLV);
	CHECK(lwm2m_ct_parse("senml-json") == 110);
	CHECK(lwm2m_ct_parse("senml-cbor") == 112);
	CHECK(lwm2m_ct_parse("lwm2m-cbor") == 11544);
	CHECK(lwm2m_ct_parse("json") == 11543);
	CHECK(lwm2m_ct_parse("text") == 0);
	CHECK(lwm2m_ct_parse("opaque") == 42);
	CHECK(lwm2m_ct_parse("cbor") == 60);
	CHECK(lwm2m_ct_parse("11542") == 11542);
	CHECK(lwm2m_ct_parse("0") == 0);
	CHECK(lwm2m_ct_parse("xml") == -1);
	CHECK(lwm2m_ct_parse("") == -1);
	CHECK(lwm2m_ct_parse("65536") == -1);
	CHECK(lwm2m_ct_parse("-1") == -1);
	CHECK(strcmp(lwm2m_ct_name(11542), "tlv") == 0);
	CHECK(strcmp(lwm2m_ct_name(110), "senml-json") == 0);
	CHECK(lwm2m_ct_name(1234) == NULL);
}

/* The Device object instance of the LwM2M TS (Core 1.0 section 6.4.3.1 / 1.1 appendix C
 * "TLV examples", the same bytes as Wakaama's tests/tlv_json_lwm2m_data_test.c test_2). */
static const char device_tlv[] =
	"C800144F70656E204D6F62696C6520416C6C69616E6365"
	"C801164C69676874776569676874204D324D20436C69656E74"
	"C80209333435303030313233"
	"C303312E30"
	"86064100014101 05"
	"880708420 00ED842011388"
	"870841007D42010384"
	"C10964"
	"C10A0F"
	"830B410000"
	"C40D5182428F"
	"C60E2B30323A3030"
	"C10F55";
static const char device_json[] =
	"{\"/3/0/0\":\"Open Mobile Alliance\",\"/3/0/1\":\"Lightweight M2M Client\","
	"\"/3/0/2\":\"345000123\",\"/3/0/3\":\"1.0\",\"/3/0/6/0\":1,\"/3/0/6/1\":5,"
	"\"/3/0/7/0\":3800,\"/3/0/7/1\":5000,\"/3/0/8/0\":125,\"/3/0/8/1\":900,\"/3/0/9\":100,"
	"\"/3/0/10\":15,\"/3/0/11/0\":0,\"/3/0/13\":1367491215,\"/3/0/14\":\"+02:00\","
	"\"/3/0/15\":\"U\"}";

static void test_tlv(void)
{
	uint8_t b[1024];
	size_t n = unhex(device_tlv, b, sizeof b);
	CHECK(n == 121);
	DEC_EQ(LWM2M_CT_TLV, "/3/0", b, n, device_json);
	/* re-encoding gives the spec's bytes again */
	ENC_EQ(LWM2M_CT_TLV, "/3/0", device_json, b, n);
	/* the same resources wrapped in object instance 0, as an answer on /3 */
	uint8_t w[1100];
	w[0] = 0x08; /* object instance, 8-bit id, 8-bit length */
	w[1] = 0;
	w[2] = (uint8_t)n;
	memcpy(w + 3, b, n);
	DEC_EQ(LWM2M_CT_TLV, "/3", w, n + 3, device_json);
	ENC_EQ(LWM2M_CT_TLV, "/3", device_json, w, n + 3);
	/* LwM2M TS 1.0 section 6.4.3 examples, as in Leshan's LwM2mNodeDecoderTest: the Device
	 * instance (resource 16 "U"), alone and wrapped in its object instance TLV; two Access
	 * Control instances (16-bit resource instance id 310); one Server instance */
	n = unhex("C800144F70656E204D6F62696C6520416C6C69616E6365C801164c69676874776569676874204d324d20436c69656e74"
	          "C80209333435303030313233C303312E30860641000141010588070842000ED842011388870841007D42010384"
	          "C10964C10A0F830B410000C40D5182428FC60E2B30323A3030C11055", b, sizeof b);
	static const char dev16[] =
		"{\"/3/0/0\":\"Open Mobile Alliance\",\"/3/0/1\":\"Lightweight M2M Client\","
		"\"/3/0/2\":\"345000123\",\"/3/0/3\":\"1.0\",\"/3/0/6/0\":1,\"/3/0/6/1\":5,"
		"\"/3/0/7/0\":3800,\"/3/0/7/1\":5000,\"/3/0/8/0\":125,\"/3/0/8/1\":900,\"/3/0/9\":100,"
		"\"/3/0/10\":15,\"/3/0/11/0\":0,\"/3/0/13\":1367491215,\"/3/0/14\":\"+02:00\","
		"\"/3/0/16\":\"U\"}";
	DEC_EQ(LWM2M_CT_TLV, "/3/0", b, n, dev16);
	ENC_EQ(LWM2M_CT_TLV, "/3/0", dev16, b, n);
	n = unhex("080079C800144F70656E204D6F62696C6520416C6C69616E6365C801164C69676874776569676874204D324D20436C69656E74"
	          "C80209333435303030313233C303312E30860641000141010588070842000ED842011388870841007D42010384"
	          "C10964C10A0F830B410000C40D5182428FC60E2B30323A3030C11055", b, sizeof b);
	DEC_EQ(LWM2M_CT_TLV, "/3/0", b, n, dev16);
	DEC_EQ(LWM2M_CT_TLV, "/3", b, n, dev16);
	ENC_EQ(LWM2M_CT_TLV, "/3", dev16, b, n);
	n = unhex("08000EC10001C101008302417F07C1037F080212C10003C101008702417F0761013601C1037F", b, sizeof b);
	static const char acl[] = "{\"/2/0/0\":1,\"/2/0/1\":0,\"/2/0/2/127\":7,\"/2/0/3\":127,"
	                          "\"/2/2/0\":3,\"/2/2/1\":0,\"/2/2/2/127\":7,\"/2/2/2/310\":1,\"/2/2/3\":127}";
	DEC_EQ(LWM2M_CT_TLV, "/2", b, n, acl);
	ENC_EQ(LWM2M_CT_TLV, "/2", acl, b, n);
	n = unhex("08000FC10001C40100015180C10601C10755", b, sizeof b);
	static const char srv[] = "{\"/1/0/0\":1,\"/1/0/1\":86400,\"/1/0/6\":true,\"/1/0/7\":\"U\"}";
	DEC_EQ(LWM2M_CT_TLV, "/1", b, n, srv);
	ENC_EQ(LWM2M_CT_TLV, "/1", srv, b, n);
	DEC_ERR(LWM2M_CT_TLV, "/1/1", b, n, "does not match");
	/* a single resource read answers with its resource TLV */
	DEC_EQ(LWM2M_CT_TLV, "/3/0/9", "\xC1\x09\x64", 3, "{\"/3/0/9\":100}");
	/* a multiple resource: the spec's /3/0/7 read and one of its instances */
	n = unhex("88070842 000ED8420113 88", b, sizeof b);
	DEC_EQ(LWM2M_CT_TLV, "/3/0/7", b, n, "{\"/3/0/7/0\":3800,\"/3/0/7/1\":5000}");
	ENC_EQ(LWM2M_CT_TLV, "/3/0/7", "{\"/3/0/7/0\":3800,\"/3/0/7/1\":5000}", b, n);
	ENC_EQ(LWM2M_CT_TLV, "/3/0/7", "{\"/3/0/7\":{\"0\":3800,\"1\":5000}}", b, n);
	DEC_EQ(LWM2M_CT_TLV, "/3/0/7/1", "\x42\x01\x13\x88", 4, "{\"/3/0/7/1\":5000}");
	DEC_ERR(LWM2M_CT_TLV, "/3/0/7/0", "\x42\x01\x13\x88", 4, "does not match");
	/* types: float (4 and 8 bytes), boolean, objlnk, opaque, 16-bit ids, negative ints */
	DEC_EQ(LWM2M_CT_TLV, "/3303/0", "\xE4\x16\x44\x41\xAC\x00\x00", 7, "{\"/3303/0/5700\":21.5}");
	ENC_EQ(LWM2M_CT_TLV, "/3303/0", "{\"/3303/0/5700\":21.5}", "\xE4\x16\x44\x41\xAC\x00\x00", 7);
	ENC_EQ(LWM2M_CT_TLV, "/3303/0", "{\"/3303/0/5700\":0.1}",
	       "\xE8\x16\x44\x08\x3F\xB9\x99\x99\x99\x99\x99\x9A", 12);
	DEC_EQ(LWM2M_CT_TLV, "/3303/0/5700", "\xE8\x16\x44\x08\x3F\xB9\x99\x99\x99\x99\x99\x9A", 12,
	       "{\"/3303/0/5700\":0.1}");
	ENC_EQ(LWM2M_CT_TLV, "/3311/0/5850", "{\"/3311/0/5850\":true}", "\xE1\x16\xDA\x01", 4);
	DEC_EQ(LWM2M_CT_TLV, "/3311/0/5850", "\xE1\x16\xDA\x00", 4, "{\"/3311/0/5850\":false}");
	DEC_ERR(LWM2M_CT_TLV, "/3311/0/5850", "\xE1\x16\xDA\x02", 4, "boolean");
	ENC_EQ(LWM2M_CT_TLV, "/1/0/10", "{\"/1/0/10\":\"3:0\"}", "\xC4\x0A\x00\x03\x00\x00", 6);
	DEC_EQ(LWM2M_CT_TLV, "/1/0", "\xC4\x0A\xFF\xFF\x00\x01", 6, "{\"/1/0/10\":\"65535:1\"}");
	ENC_EQ(LWM2M_CT_TLV, "/3/0/13", "{\"/3/0/13\":-2}", "\xC1\x0D\xFE", 3);
	DEC_EQ(LWM2M_CT_TLV, "/3/0/13", "\xC2\x0D\xFF\x38", 4, "{\"/3/0/13\":-200}");
	ENC_EQ(LWM2M_CT_TLV, "/3/0/13", "{\"/3/0/13\":-200}", "\xC2\x0D\xFF\x38", 4);
	ENC_EQ(LWM2M_CT_TLV, "/3/0/13", "{\"/3/0/13\":128}", "\xC2\x0D\x00\x80", 4);
	ENC_EQ(LWM2M_CT_TLV, "/3/0/13", "{\"/3/0/13\":4294967296}",
	       "\xC8\x0D\x08\x00\x00\x00\x01\x00\x00\x00\x00", 11);
	DEC_EQ(LWM2M_CT_TLV, "/5/0/0", "\xC3\x00\x01\x02\x03", 5, "{\"/5/0/0\":\"AQID\"}"); /* opaque */
	/* unsigned integer (Security 0/0/13 Matching Type): 0xC8 is 200, not -56 */
	DEC_EQ(LWM2M_CT_TLV, "/0/0/13", "\xC1\x0D\xC8", 3, "{\"/0/0/13\":200}");
	ENC_EQ(LWM2M_CT_TLV, "/0/0/13", "{\"/0/0/13\":200}", "\xC1\x0D\xC8", 3);
	ENC_ERR(LWM2M_CT_TLV, "/0/0/13", "{\"/0/0/13\":-1}", "expected unsigned integer (a whole number >= 0)");
	/* unknown resources stay opaque (base64); unknown objects likewise */
	DEC_EQ(LWM2M_CT_TLV, "/3/0", "\xC1\x63\x05", 3, "{\"/3/0/99\":\"BQ==\"}");
	DEC_EQ(LWM2M_CT_TLV, "/9999/1", "\xC2\x01hi", 4, "{\"/9999/1/1\":\"aGk=\"}");
	/* 24-bit length */
	static uint8_t big[5 + 70000];
	big[0] = 0xC0 | 0x18; /* resource, 8-bit id, 24-bit length */
	big[1] = 0x00; /* id 0 */
	big[2] = 0x01; big[3] = 0x11; big[4] = 0x70; /* 70000 */
	memset(big + 5, 'a', 70000);
	{
		struct lwm2m_path pb = P("/3/0/0");
		jv got = lwm2m_decode(LWM2M_CT_TLV, &pb, big, sizeof big);
		CHECK(jv_is_valid(got) &&
		      jv_string_length_bytes(jv_object_get(got, jv_string("/3/0/0"))) == 70000);
	}
	/* truncated and garbage payloads are refused, naming the problem */
	n = unhex(device_tlv, b, sizeof b);
	for (size_t k = 1; k < n; k++) {
		struct lwm2m_path pb = P("/3/0");
		jv got = lwm2m_decode(LWM2M_CT_TLV, &pb, b, k);
		/* some prefixes end on a TLV boundary and decode fine; the rest must fail cleanly */
		if (!jv_is_valid(got)) {
			jv m = jv_invalid_get_msg(got);
			CHECK(jv_get_kind(m) == JV_KIND_STRING);
			jv_free(m);
		} else {
			jv_free(got);
		}
	}
	DEC_ERR(LWM2M_CT_TLV, "/3/0", b, 5, "longer than the payload");
	DEC_ERR(LWM2M_CT_TLV, "/3/0", "\xC8", 1, "truncated");
	DEC_ERR(LWM2M_CT_TLV, "/3/0", "\xF8\x00", 2, "truncated");
	DEC_ERR(LWM2M_CT_TLV, "/3/0", "\xC3\x09\x00\x00\x01", 5, "integer of 3 bytes");
	DEC_ERR(LWM2M_CT_TLV, "/3303", "\xC1\x09\x64", 3, "cannot answer a request on /3303");
	DEC_EQ(LWM2M_CT_TLV, "/3", "\xC1\x09\x64", 3, "{\"/3/0/9\":100}"); /* single-instance */
	DEC_ERR(LWM2M_CT_TLV, "/3/0", "\x00\x01", 2, "does not match");
	DEC_ERR(LWM2M_CT_TLV, "/", "\xC1\x09\x64", 3, "root");
	DEC_ERR(LWM2M_CT_TLV, "/3/0", "\x88\x07\x03\xC1\x00\x01", 6, "resource");
	DEC_ERR(LWM2M_CT_TLV, "/3/0/9", "\xC1\x0A\x64", 3, "does not match");
	DEC_ERR(LWM2M_CT_TLV, "/3/0", "\xE1\xFF\xFF\x01", 4, "65535");
	DEC_EQ(LWM2M_CT_TLV, "/3/0", "", 0, "{}");
	DEC_ERR(LWM2M_CT_TLV, "/3/0", "\xC1\x09\x64\xC1\x09\x65", 6, "/3/0/9 appears twice");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\xA2\x83\x03\x00\x09\x01\x83\x03\x00\x09\x02", 11, "/3/0/9 appears twice");
	/* round trips */
	ROUND_TRIP(LWM2M_CT_TLV, "/3/0", device_json);
	ROUND_TRIP(LWM2M_CT_TLV, "/3311", "{\"/3311/0/5850\":true,\"/3311/0/5851\":55,"
	                                   "\"/3311/1/5850\":false,\"/3311/1/5750\":\"lamp\"}");
	ROUND_TRIP(LWM2M_CT_TLV, "/1/0", "{\"/1/0/1\":300,\"/1/0/7\":\"U\",\"/1/0/6\":false}");
}

static void test_text_opaque(void)
{
	DEC_EQ(LWM2M_CT_TEXT, "/3/0/9", "55", 2, "{\"/3/0/9\":55}");
	DEC_EQ(LWM2M_CT_TEXT, "/3/0/0", "Open Mobile Alliance", 20,
	       "{\"/3/0/0\":\"Open Mobile Alliance\"}");
	DEC_EQ(LWM2M_CT_TEXT, "/3303/0/5700", "21.5", 4, "{\"/3303/0/5700\":21.5}");
	DEC_EQ(LWM2M_CT_TEXT, "/3303/0/5700", "-1e3", 4, "{\"/3303/0/5700\":-1000}");
	DEC_EQ(LWM2M_CT_TEXT, "/3311/0/5850", "1", 1, "{\"/3311/0/5850\":true}");
	DEC_EQ(LWM2M_CT_TEXT, "/3/0/7/1", "5000", 4, "{\"/3/0/7/1\":5000}");
	DEC_EQ(LWM2M_CT_TEXT, "/1/0/10", "3:0", 3, "{\"/1/0/10\":\"3:0\"}");
	DEC_EQ(LWM2M_CT_TEXT, "/9999/0/1", "42", 2, "{\"/9999/0/1\":\"42\"}"); /* unknown: a string */
	DEC_ERR(LWM2M_CT_TEXT, "/3/0/9", "5x", 2, "not an integer");
	DEC_ERR(LWM2M_CT_TEXT, "/3/0/9", "", 0, "not an integer");
	DEC_ERR(LWM2M_CT_TEXT, "/3/0/9", "99999999999999999999", 20, "not an integer");
	DEC_ERR(LWM2M_CT_TEXT, "/3303/0/5700", "abc", 3, "not a float");
	DEC_ERR(LWM2M_CT_TEXT, "/3303/0/5700", "nan", 3, "not a float");
	DEC_ERR(LWM2M_CT_TEXT, "/3303/0/5700", "0x10", 4, "not a float");
	DEC_ERR(LWM2M_CT_TEXT, "/3311/0/5850", "true", 4, "not a boolean");
	DEC_ERR(LWM2M_CT_TEXT, "/1/0/10", "3:", 2, "objlnk");
	DEC_ERR(LWM2M_CT_TEXT, "/3/0/9", "5\0", 2, "NUL");
	DEC_ERR(LWM2M_CT_TEXT, "/3/0", "55", 2, "single value");
	ENC_STR(LWM2M_CT_TEXT, "/3/0/9", "{\"/3/0/9\":55}", "55");
	ENC_STR(LWM2M_CT_TEXT, "/3303/0/5700", "{\"/3303/0/5700\":21.5}", "21.5");
	ENC_STR(LWM2M_CT_TEXT, "/3303/0/5700", "{\"/3303/0/5700\":0.1}", "0.1");
	ENC_STR(LWM2M_CT_TEXT, "/3311/0/5850", "{\"/3311/0/5850\":false}", "0");
	ENC_STR(LWM2M_CT_TEXT, "/1/0/10", "{\"/1/0/10\":\"65535:0\"}", "65535:0");
	ENC_STR(LWM2M_CT_TEXT, "/3/0/14", "{\"/3/0/14\":\"+02:00\"}", "+02:00");
	ENC_ERR(LWM2M_CT_TEXT, "/3/0", "{\"/3/0/9\":55,\"/3/0/10\":1}", "single value");
	ENC_ERR(LWM2M_CT_TEXT, "/3/0/9", "{\"/3/0/9\":55,\"/3/0/10\":1}", "outside");
	ROUND_TRIP(LWM2M_CT_TEXT, "/3303/0/5700", "{\"/3303/0/5700\":-40.25}");
	ROUND_TRIP(LWM2M_CT_TEXT, "/1/0/1", "{\"/1/0/1\":86400}");
	DEC_EQ(LWM2M_CT_OPAQUE, "/5/0/0", "\x00\xff\x10", 3, "{\"/5/0/0\":\"AP8Q\"}");
	/* text/plain on an opaque resource is base64 (Leshan's text_decode_opaque_from_base64_string) */
	DEC_EQ(LWM2M_CT_TEXT, "/5/0/0", "AQIDBAU=", 8, "{\"/5/0/0\":\"AQIDBAU=\"}");
	DEC_ERR(LWM2M_CT_TEXT, "/5/0/0", "!,-INVALID$_'", 13, "not base64");
	ENC_STR(LWM2M_CT_TEXT, "/5/0/0", "{\"/5/0/0\":\"AQIDBAU=\"}", "AQIDBAU=");
	/* NaN and infinity have no JSON form: refused, naming the path */
	DEC_ERR(LWM2M_CT_TLV, "/3303/0", "\xE4\x16\x44\x7F\xC0\x00\x00", 7, "/3303/0/5700: a NaN");
	DEC_ERR(LWM2M_CT_CBOR, "/3303/0/5700", "\xF9\x7C\x00", 3, "infinite");
	DEC_EQ(LWM2M_CT_OPAQUE, "/5/0/0", "", 0, "{\"/5/0/0\":\"\"}");
	ENC_EQ(LWM2M_CT_OPAQUE, "/5/0/0", "{\"/5/0/0\":\"AP8Q\"}", "\x00\xff\x10", 3);
	ENC_EQ(LWM2M_CT_OPAQUE, "/5/0/0", "{\"/5/0/0\":\"AP8Q\"}", "\x00\xff\x10", 3);
	ENC_EQ(LWM2M_CT_OPAQUE, "/5/0/0", "{\"/5/0/0\":\"AA\"}", "\x00", 1);
	ENC_ERR(LWM2M_CT_OPAQUE, "/5/0/0", "{\"/5/0/0\":\"A*==\"}", "base64");
	ENC_ERR(LWM2M_CT_OPAQUE, "/3/0/9", "{\"/3/0/9\":5}", "opaque");
	ENC_ERR(LWM2M_CT_OPAQUE, "/5/0", "{\"/5/0/0\":\"AA==\"}", "single value");
	ROUND_TRIP(LWM2M_CT_OPAQUE, "/5/0/0", "{\"/5/0/0\":\"3q2+7w==\"}");
}

/* Strict coercion from the object model, and the messages naming path and type. */
static void test_coercion(void)
{
	ENC_ERR(LWM2M_CT_TLV, "/3303/0", "{\"/3303/0/5700\":\"21.5\"}",
	        "/3303/0/5700: expected float (a JSON number), got a string");
	ENC_ERR(LWM2M_CT_TLV, "/3311/0", "{\"/3311/0/5850\":1}",
	        "/3311/0/5850: expected boolean (true or false), got a number");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/9\":55.5}", "/3/0/9: expected integer (a whole number), got 55.5");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/9\":\"55\"}", "/3/0/9: expected integer (a JSON number), got a string");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/0\":5}", "/3/0/0: expected string (a JSON string), got a number");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/9\":null}", "got null");
	ENC_ERR(LWM2M_CT_TLV, "/1/0", "{\"/1/0/10\":\"3-0\"}", "/1/0/10: expected objlnk");
	ENC_ERR(LWM2M_CT_TLV, "/1/0", "{\"/1/0/10\":\"3:65536\"}", "expected objlnk");
	ENC_ERR(LWM2M_CT_TLV, "/5/0", "{\"/5/0/0\":\"not base64!\"}", "/5/0/0: expected opaque");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/4\":1}", "/3/0/4: an executable resource has no value");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/7\":3800}", "/3/0/7: a multiple-instance resource");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/9/0\":1}", "single-instance");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/4/0/2\":1}", "/4/0/2 is outside the target /3/0");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0\":1}", "not a resource path");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"x\":1}", "not a resource path");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{}", "no values");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "[1]", "values must be an object");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/9\":1,\"3/0/9\":2}", "given twice");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/7\":{\"x\":1}}", "not a resource instance id");
	ENC_ERR(LWM2M_CT_TLV, "/", "{\"/3/0/9\":1}", "root");
	ENC_ERR(LWM2M_CT_TLV, "/3/0", "{\"/3/0/9\":[1]}", "got an array");
	ENC_ERR(LWM2M_CT_TLV, "/9999/0", "{\"/9999/0/1\":null}", "expected a string, number or boolean");
	ENC_ERR(LWM2M_CT_LINK, "/3/0", "{\"/3/0/9\":1}", "not supported");
	/* unknown resources: the JSON kind decides */
	ENC_EQ(LWM2M_CT_TLV, "/9999/0", "{\"/9999/0/1\":7}", "\xC1\x01\x07", 3);
	ENC_EQ(LWM2M_CT_TLV, "/9999/0", "{\"/9999/0/1\":\"a\"}", "\xC1\x01" "a", 3);
	ENC_EQ(LWM2M_CT_TLV, "/9999/0", "{\"/9999/0/1\":true}", "\xC1\x01\x01", 3);
}

/* SenML JSON: the tables of LwM2M TS Core 1.1 section 7.4.4 (as in Wakaama's
 * tests/senml_json_tests.c), RFC 8428 base names, and refusals. */
static void test_senml_json(void)
{
	/* Table 7.4.4-2: Read /3/0 */
	static const char t2[] =
		"[{\"bn\":\"/3/0/\",\"n\":\"0\",\"vs\":\"Open Mobile Alliance\"},"
		"{\"n\":\"1\",\"vs\":\"Lightweight M2M Client\"},{\"n\":\"2\",\"vs\":\"345000123\"},"
		"{\"n\":\"3\",\"vs\":\"1.0\"},{\"n\":\"6/0\",\"v\":1},{\"n\":\"6/1\",\"v\":5},"
		"{\"n\":\"7/0\",\"v\":3800},{\"n\":\"7/1\",\"v\":5000},{\"n\":\"8/0\",\"v\":125},"
		"{\"n\":\"8/1\",\"v\":900},{\"n\":\"9\",\"v\":100},{\"n\":\"10\",\"v\":15},"
		"{\"n\":\"11/0\",\"v\":0},{\"n\":\"13\",\"v\":1367491215},{\"n\":\"14\",\"vs\":\"+02:00\"},"
		"{\"n\":\"15\",\"vs\":\"U\"}]";
	DEC_EQ(LWM2M_CT_SENML_JSON, "/3/0", t2, strlen(t2), device_json);
	ENC_STR(LWM2M_CT_SENML_JSON, "/3/0", device_json, t2);
	/* Table 7.4.4-3: timestamped values of one resource; the newest (bt + t largest) wins */
	static const char t3[] = "[{\"bn\":\"/72/\",\"bt\":25462634,\"n\":\"1/2\",\"v\":22.4,\"t\":-5},"
	                         "{\"n\":\"1/2\",\"v\":22.9,\"t\":-30},{\"n\":\"1/2\",\"v\":24.1,\"t\":-50}]";
	DEC_EQ(LWM2M_CT_SENML_JSON, "/72", t3, strlen(t3), "{\"/72/1/2\":22.4}");
	/* Table 7.4.4-4: Read on the root, several objects, object links */
	static const char t4[] =
		"[{\"bn\":\"/\",\"n\":\"65/0/0/0\",\"vlo\":\"66:0\"},{\"n\":\"65/0/0/1\",\"vlo\":\"66:1\"},"
		"{\"n\":\"65/0/1\",\"vs\":\"8613800755500\"},{\"n\":\"65/0/2\",\"v\":1},"
		"{\"n\":\"66/0/0\",\"vs\":\"myService1\"},{\"n\":\"66/0/1\",\"vs\":\"Internet.15.234\"},"
		"{\"n\":\"66/0/2\",\"vlo\":\"67:0\"},{\"n\":\"66/1/0\",\"vs\":\"myService2\"},"
		"{\"n\":\"66/1/1\",\"vs\":\"Internet.15.235\"},{\"n\":\"66/1/2\",\"vlo\":\"65535:65535\"},"
		"{\"n\":\"67/0/0\",\"vs\":\"85.76.76.84\"},{\"n\":\"67/0/1\",\"vs\":\"85.76.255.255\"}]";
	DEC_EQ(LWM2M_CT_SENML_JSON, "/", t4, strlen(t4),
	       "{\"/65/0/0/0\":\"66:0\",\"/65/0/0/1\":\"66:1\",\"/65/0/1\":\"8613800755500\","
	       "\"/65/0/2\":1,\"/66/0/0\":\"myService1\",\"/66/0/1\":\"Internet.15.234\","
	       "\"/66/0/2\":\"67:0\",\"/66/1/0\":\"myService2\",\"/66/1/1\":\"Internet.15.235\","
	       "\"/66/1/2\":\"65535:65535\",\"/67/0/0\":\"85.76.76.84\",\"/67/0/1\":\"85.76.255.255\"}");
	/* Table 7.4.4-5: one resource, the name in bn alone */
	static const char t5[] = "[{\"bn\":\"/3/0/0\",\"vs\":\"Open Mobile Alliance\"}]";
	DEC_EQ(LWM2M_CT_SENML_JSON, "/3/0/0", t5, strlen(t5), "{\"/3/0/0\":\"Open Mobile Alliance\"}");
	/* a Send (/dp) with absolute names and no bn; bn changing midway; bn + "/1" */
	static const char s1[] = "[{\"n\":\"/3303/0/5700\",\"v\":21.5},{\"n\":\"/3/0/9\",\"v\":88},"
	                         "{\"bn\":\"/3311/0/\",\"n\":\"5850\",\"vb\":true}]";
	DEC_EQ(LWM2M_CT_SENML_JSON, "/", s1, strlen(s1),
	       "{\"/3303/0/5700\":21.5,\"/3/0/9\":88,\"/3311/0/5850\":true}");
	static const char s2[] = "[{\"bn\":\"/5/0/1\",\"n\":\"/1\",\"vs\":\"http\"}]";
	DEC_EQ(LWM2M_CT_SENML_JSON, "/5/0", s2, strlen(s2), "{\"/5/0/1/1\":\"http\"}");
	/* vd: base64url without padding (RFC 8428), standard base64 accepted too */
	static const char s3[] = "[{\"bn\":\"/5/0/0\",\"vd\":\"-_8\"}]";
	DEC_EQ(LWM2M_CT_SENML_JSON, "/5/0/0", s3, strlen(s3), "{\"/5/0/0\":\"+/8=\"}");
	static const char s4[] = "[{\"bn\":\"/5/0/0\",\"vd\":\"AQIDBAU=\"}]";
	DEC_EQ(LWM2M_CT_SENML_JSON, "/5/0/0", s4, strlen(s4), "{\"/5/0/0\":\"AQIDBAU=\"}");
	ENC_STR(LWM2M_CT_SENML_JSON, "/5/0/0", "{\"/5/0/0\":\"+/8=\"}",
	        "[{\"bn\":\"/5/0/\",\"n\":\"0\",\"vd\":\"-_8\"}]");
	/* encodings of one value at each level of target (cf. Wakaama test 25) */
	ENC_STR(LWM2M_CT_SENML_JSON, "/4", "{\"/4/0/1/0\":0}", "[{\"bn\":\"/4/\",\"n\":\"0/1/0\",\"v\":0}]");
	ENC_STR(LWM2M_CT_SENML_JSON, "/4/0/1", "{\"/4/0/1/0\":0}", "[{\"bn\":\"/4/0/1/\",\"n\":\"0\",\"v\":0}]");
	ENC_STR(LWM2M_CT_SENML_JSON, "/4/0/1/0", "{\"/4/0/1/0\":0}", "[{\"bn\":\"/4/0/1/\",\"n\":\"0\",\"v\":0}]");
	ENC_STR(LWM2M_CT_SENML_JSON, "/", "{\"/3311/0/5850\":true,\"/3/0/14\":\"Z\"}",
	        "[{\"n\":\"/3/0/14\",\"vs\":\"Z\"},{\"n\":\"/3311/0/5850\",\"vb\":true}]");
	ENC_STR(LWM2M_CT_SENML_JSON, "/1/0", "{\"/1/0/10\":\"11:0\"}", "[{\"bn\":\"/1/0/\",\"n\":\"10\",\"vlo\":\"11:0\"}]");
	/* a boolean resource sent as 0/1 in v is typed from the model */
	static const char s5[] = "[{\"bn\":\"/3311/0/5850\",\"v\":1}]";
	DEC_EQ(LWM2M_CT_SENML_JSON, "/3311/0/5850", s5, strlen(s5), "{\"/3311/0/5850\":true}");
	/* refusals */
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[{\"n\":\"/3/0/9\",\"v\":1", strlen("[{\"n\":\"/3/0/9\",\"v\":1"), "SenML JSON");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "{}", strlen("{}"), "not an array");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[1]", strlen("[1]"), "record 1: not an object");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[{\"n\":\"/3/0/9\"}]", strlen("[{\"n\":\"/3/0/9\"}]"), "no value");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[{\"n\":\"/3/0/9\",\"v\":1,\"vs\":\"a\"}]", strlen("[{\"n\":\"/3/0/9\",\"v\":1,\"vs\":\"a\"}]"), "more than one value");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[{\"n\":\"/3/0/9\",\"v\":\"1\"}]", strlen("[{\"n\":\"/3/0/9\",\"v\":\"1\"}]"), "wrong JSON type");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[{\"n\":\"/4/0/9\",\"v\":1}]", strlen("[{\"n\":\"/4/0/9\",\"v\":1}]"), "outside the requested /3/0");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[{\"n\":\"/3/0\",\"v\":1}]", strlen("[{\"n\":\"/3/0\",\"v\":1}]"), "not a resource");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[{\"n\":\"3/x\",\"v\":1}]", strlen("[{\"n\":\"3/x\",\"v\":1}]"), "not an LwM2M path");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[{\"n\":5,\"v\":1}]", strlen("[{\"n\":5,\"v\":1}]"), "n is not a string");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/3/0", "[{\"n\":\"/3/0/9\",\"vd\":\"*\"}]", strlen("[{\"n\":\"/3/0/9\",\"vd\":\"*\"}]"), "not base64");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[{\"bver\":11,\"n\":\"/3/0/9\",\"v\":1}]", strlen("[{\"bver\":11,\"n\":\"/3/0/9\",\"v\":1}]"), "version");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[{\"bn\":\"/\",\"x_\":1,\"n\":\"3/0/9\",\"v\":1}]", strlen("[{\"bn\":\"/\",\"x_\":1,\"n\":\"3/0/9\",\"v\":1}]"), "x_");
	DEC_EQ(LWM2M_CT_SENML_JSON, "/", "[{\"other\":1,\"n\":\"/3/0/9\",\"v\":1}]", strlen("[{\"other\":1,\"n\":\"/3/0/9\",\"v\":1}]"), "{\"/3/0/9\":1}");
	DEC_EQ(LWM2M_CT_SENML_JSON, "/3/0", "[]", strlen("[]"), "{}");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[{\"n\":\"/3/0/9\\u0000x\",\"v\":1}]", 29, "bad name");
	/* malformed JSON is refused before libjq sees it, naming the byte */
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[{\"n\":\"/3/0/0\" \"vs\":\"a\"}]", 30, "expected ',' or '}' at byte 15");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[\"a\" \"b\"]", 9, "expected ',' or ']' at byte 5");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[1,]", 4, "unexpected character at byte 3");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[01]", 4, "expected ',' or ']'");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[\"\\x\"]", 6, "bad escape");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[] []", 5, "extra data");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[nan]", 5, "unexpected character");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "[\"a\x01\"]", 5, "control character");
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", "", 0, "truncated");
	/* round trips */
	ROUND_TRIP(LWM2M_CT_SENML_JSON, "/3/0", device_json);
	ROUND_TRIP(LWM2M_CT_SENML_JSON, "/", "{\"/3303/0/5700\":-12.75,\"/3311/0/5850\":false,"
	                                     "\"/5/0/0\":\"AAECAwQF\",\"/1/1/10\":\"3:0\",\"/9999/0/1\":\"x\"}");
}


/* SenML CBOR: the same tables in CBOR (LwM2M TS Core 1.1 7.4.5; bytes as in Wakaama's
 * tests/senml_cbor_tests.c). */
static void test_senml_cbor(void)
{
	uint8_t b[1024];
	/* Table 7.4.4-2 (resource 16 "U" as in the SenML tables) */
	static const char t2[] =
		"90 a3 21 65 2f332f302f 00 61 30 03 74 4f70656e204d6f62696c6520416c6c69616e6365"
		"a2 00 61 31 03 76 4c69676874776569676874204d324d20436c69656e74"
		"a2 00 61 32 03 69 333435303030313233"
		"a2 00 61 33 03 63 312e30"
		"a2 00 63 362f30 02 01 a2 00 63 362f31 02 05"
		"a2 00 63 372f30 02 190ed8 a2 00 63 372f31 02 191388"
		"a2 00 63 382f30 02 187d a2 00 63 382f31 02 190384"
		"a2 00 61 39 02 1864 a2 00 62 3130 02 0f"
		"a2 00 64 31312f30 02 00"
		"a2 00 62 3133 02 1a5182428f"
		"a2 00 62 3134 03 66 2b30323a3030"
		"a2 00 62 3136 03 61 55";
	static const char t2_json[] =
		"{\"/3/0/0\":\"Open Mobile Alliance\",\"/3/0/1\":\"Lightweight M2M Client\","
		"\"/3/0/2\":\"345000123\",\"/3/0/3\":\"1.0\",\"/3/0/6/0\":1,\"/3/0/6/1\":5,"
		"\"/3/0/7/0\":3800,\"/3/0/7/1\":5000,\"/3/0/8/0\":125,\"/3/0/8/1\":900,\"/3/0/9\":100,"
		"\"/3/0/10\":15,\"/3/0/11/0\":0,\"/3/0/13\":1367491215,\"/3/0/14\":\"+02:00\","
		"\"/3/0/16\":\"U\"}";
	size_t n = unhex(t2, b, sizeof b);
	DEC_EQ(LWM2M_CT_SENML_CBOR, "/3/0", b, n, t2_json);
	ENC_EQ(LWM2M_CT_SENML_CBOR, "/3/0", t2_json, b, n);
	/* Table 7.4.4-3: timestamps, doubles; the newest value (t -5) is kept */
	static const uint8_t t3[] = {0x83, 0xa5, 0x21, 0x64, '/', '7', '2', '/', 0x22, 0x1a, 0x01, 0x84,
		0x87, 0x6a, 0x00, 0x63, '1', '/', '2', 0x02, 0xfb, 0x40, 0x36, 0x66, 0x66, 0x66, 0x66,
		0x66, 0x66, 0x06, 0x24, 0xa3, 0x00, 0x63, '1', '/', '2', 0x02, 0xfb, 0x40, 0x36, 0xe6,
		0x66, 0x66, 0x66, 0x66, 0x66, 0x06, 0x38, 0x1d, 0xa3, 0x00, 0x63, '1', '/', '2', 0x02,
		0xfb, 0x40, 0x38, 0x19, 0x99, 0x99, 0x99, 0x99, 0x9a, 0x06, 0x38, 0x31};
	DEC_EQ(LWM2M_CT_SENML_CBOR, "/72", t3, sizeof t3, "{\"/72/1/2\":22.4}");
	/* Table 7.4.4-6/7: composite names, absolute */
	static const uint8_t t7[] = {0x83, 0xa2, 0x00, 0x66, '/', '3', '/', '0', '/', '0', 0x03, 0x74,
		'O', 'p', 'e', 'n', ' ', 'M', 'o', 'b', 'i', 'l', 'e', ' ', 'A', 'l', 'l', 'i', 'a', 'n',
		'c', 'e', 0xa2, 0x00, 0x66, '/', '3', '/', '0', '/', '9', 0x02, 0x18, 0x5f, 0xa2, 0x00,
		0x66, '/', '1', '/', '0', '/', '1', 0x02, 0x1a, 0x00, 0x01, 0x51, 0x80};
	DEC_EQ(LWM2M_CT_SENML_CBOR, "/", t7, sizeof t7,
	       "{\"/3/0/0\":\"Open Mobile Alliance\",\"/3/0/9\":95,\"/1/0/1\":86400}");
	/* Table 7.4.4-8: booleans and integers in several objects */
	static const uint8_t t8[] = {0x84, 0xa2, 0x00, 0x6c, '/', '3', '3', '1', '1', '/', '0', '/', '5',
		'8', '5', '0', 0x04, 0xf4, 0xa2, 0x00, 0x6c, '/', '3', '3', '1', '1', '/', '1', '/', '5',
		'8', '5', '0', 0x04, 0xf4, 0xa2, 0x00, 0x6c, '/', '3', '3', '1', '1', '/', '2', '/', '5',
		'8', '5', '1', 0x02, 0x14, 0xa2, 0x00, 0x6c, '/', '3', '3', '0', '8', '/', '0', '/', '5',
		'9', '0', '0', 0x02, 0x12};
	DEC_EQ(LWM2M_CT_SENML_CBOR, "/", t8, sizeof t8,
	       "{\"/3311/0/5850\":false,\"/3311/1/5850\":false,\"/3311/2/5851\":20,\"/3308/0/5900\":18}");
	/* vlo and vd; indefinite-length array and map; half floats */
	static const uint8_t v1[] = {0x9f, 0xbf, 0x00, 0x67, '/', '1', '/', '0', '/', '1', '0',
		0x63, 'v', 'l', 'o', 0x64, '1', '1', ':', '0', 0xff, 0xa2, 0x00, 0x66, '/', '5', '/',
		'0', '/', '0', 0x08, 0x43, 0x01, 0x02, 0x03, 0xa2, 0x00, 0x6c, '/', '3', '3', '0', '3',
		'/', '0', '/', '5', '7', '0', '0', 0x02, 0xf9, 0x4d, 0x60, 0xff};
	DEC_EQ(LWM2M_CT_SENML_CBOR, "/", v1, sizeof v1,
	       "{\"/1/0/10\":\"11:0\",\"/5/0/0\":\"AQID\",\"/3303/0/5700\":21.5}");
	ENC_EQ(LWM2M_CT_SENML_CBOR, "/3303/0/5700", "{\"/3303/0/5700\":21.5}",
	       "\x81\xa3\x21\x68/3303/0/\x00\x64" "5700\x02\xf9\x4d\x60", 22);
	/* refusals */
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\xa0", 1, "not an array");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x81\x01", 2, "not a map");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x82\xa0", 2, "not an LwM2M path");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x81\xa1\x00\x66/3/0/9", 10, "has no value");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x81\xa2\x00\x66/3/0/9\x02", 11, "truncated");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x81\xa2\x00\x66/3/0/9\x02\x01\x00", 13, "after the array");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x81\xa2\x00\x66/3/0/9\x02\x61x", 13, "not a number");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x81\xa2\x00\x06/3/0/9\x02\x01", 12, "not a text string");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x9f\xa2\x00\x66/3/0/9\x02\x01", 12, "no break");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x81\xa2\x00\x7f\x66/3/0/9\x02\x01", 14, "bad chunk");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x1c", 1, "reserved");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "", 0, "truncated");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", "\x9b\xff\xff\xff\xff\xff\xff\xff\xff", 9, "truncated");
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/3/0", "\x81\xa2\x00\x66/4/0/9\x02\x01", 12, "outside");
	/* chunked (indefinite) text is joined */
	DEC_EQ(LWM2M_CT_SENML_CBOR, "/", "\x81\xa2\x00\x7f\x63/3/\x63" "0/9\xff\x02\x01", 15,
	       "{\"/3/0/9\":1}");
	ROUND_TRIP(LWM2M_CT_SENML_CBOR, "/3/0", device_json);
	ROUND_TRIP(LWM2M_CT_SENML_CBOR, "/", "{\"/3303/0/5700\":-12.75,\"/3303/0/5701\":\"Cel\","
	                                     "\"/3311/0/5850\":true,\"/5/0/0\":\"AAECAwQF\","
	                                     "\"/1/1/10\":\"3:0\",\"/0/0/13\":200,\"/3303/0/5601\":1e300}");
}

/* LwM2M CBOR (11544): vectors as in Anjay's tests/core/io/lwm2m_cbor_in.c. */
static void test_lwm2m_cbor(void)
{
	/* {[13, 26, 1]: 42} and its nested, array-keyed and indefinite-length spellings */
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26/1", "\xA1\x83\x0D\x18\x1A\x01\x18\x2A", 8, "{\"/13/26/1\":42}");
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26/1", "\xBF\x9F\x0D\x18\x1A\x01\xFF\x18\x2A\xFF", 10,
	       "{\"/13/26/1\":42}");
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26/1", "\xA1\x0D\xA1\x18\x1A\xA1\x01\x18\x2A", 9,
	       "{\"/13/26/1\":42}");
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26/1", "\xA1\x81\x0D\xA1\x81\x18\x1A\xA1\x81\x01\x18\x2A", 12,
	       "{\"/13/26/1\":42}");
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26/1",
	       "\xBF\x9F\x0D\xFF\xBF\x9F\x18\x1A\xFF\xBF\x9F\x01\xFF\x18\x2A\xFF\xFF\xFF", 18,
	       "{\"/13/26/1\":42}");
	/* decimal fraction 4([-1, 45]) = 4.5 */
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26/1/2",
	       "\xA1\x81\x0D\xA1\x81\x18\x1A\xA1\x81\x01\xA1\x81\x02\xC4\x82\x20\x18\x2D", 18,
	       "{\"/13/26/1/2\":4.5}");
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26", "\xA2\x83\x0D\x18\x1A\x01\x18\x2A\x82\x0D\x18\x1A\xA1\x81\x02\x15",
	       16, "{\"/13/26/1\":42,\"/13/26/2\":21}");
	/* all types: {[13, 26]: {1: 1, 2: -1, 3: 2.5, 4: "test", 5: h'11223344', 6: "12:34", 7: 1}} */
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26",
	       "\xA1\x82\x0D\x18\x1A\xA7\x01\x01\x02\x20\x03\xF9\x41\x00\x04\x64\x74\x65\x73\x74\x05"
	       "\x44\x11\x22\x33\x44\x06\x65\x31\x32\x3A\x33\x34\x07\x01", 35,
	       "{\"/13/26/1\":1,\"/13/26/2\":-1,\"/13/26/3\":2.5,\"/13/26/4\":\"test\","
	       "\"/13/26/5\":\"ESIzRA==\",\"/13/26/6\":\"12:34\",\"/13/26/7\":1}");
	/* indefinite byte string: chunks joined */
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26/1",
	       "\xA1\x83\x0D\x18\x1A\x01\x5F\x42\x00\x11\x42\x22\x33\xFF", 14, "{\"/13/26/1\":\"ABEiMw==\"}");
	/* composite on the root, nested, indefinite maps */
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/",
	       "\xBF\x0D\xBF\x18\x1A\xBF\x01\x01\xFF\xFF\x0E\xBF\x18\x1B\xBF\x02\x02\xFF\xFF\xFF", 20,
	       "{\"/13/26/1\":1,\"/14/27/2\":2}");
	/* null (a resource instance to delete in a composite write) */
	DEC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26/1", "\xA1\x83\x0D\x18\x1A\x01\xA2\x02\xF6\x03\x05", 11,
	       "{\"/13/26/1/2\":null,\"/13/26/1/3\":5}");
	/* refusals (Anjay's negative cases) */
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/13/26", "\xA1\x82\x0D\x18\x1A\xA1\x1A\x00\x01\x00\x00\x05", 12, "id out of range");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/13/26", "\xA1\x85\x0D\x18\x1A\x03\x04\x05\x05", 9, "longer than 4");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/13/26/1/2", "\xA1\x0D\xA1\x18\x1A\xA1\x01\xA1\x02\xA1\x03\x04", 12, "below the resource instance");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\xA2\x0D\xA1\x80\x18\x1A\xA1\x80\x01\x18\x2A", 11, "empty path key");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/14", "\xA1\x83\x0D\x18\x1A\x01\x18\x2A", 8, "outside the requested /14");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/13/26/2", "\xA1\x83\x0D\x18\x1A\x01\x18\x2A", 8, "outside");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\xA1\x83\x0D\xFB\x3F\xD0\xA3\xD7\x0A\x3D\x70\xA4\x01\x18\x2A", 15, "not an id");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\xA1\x0D\xA1\x62\x32\x36\xA1\x01\x18\x2A", 10, "not an id or an array");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\x00", 1, "not a map");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\x84\x01\x02\x03\x04", 5, "not a map");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\xA1\x0D\xA1\x18\x1A\x81\xA1\x01\x18\x2A", 10, "unsupported CBOR value");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\xA1\x82\x0D\x18\x1A\xA1", 6, "truncated");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\xA1\x0D\xA1\x00\x05", 5, "not a resource");
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", "\xA1\x83\x0D\x18\x1A\x01\x18\x2A\x00", 9, "after the map");
	/* encoding: nested maps from the root */
	/* encoding: the shared ids in one array key, then nested maps (Anjay's lwm2m_cbor_out.c
	 * shapes, with definite lengths) */
	ENC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26/1", "{\"/13/26/1\":42}", "\xA1\x83\x0D\x18\x1A\x01\x18\x2A", 8);
	ENC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26", "{\"/13/26/1\":42,\"/13/26/2\":21}",
	       "\xA1\x82\x0D\x18\x1A\xA2\x01\x18\x2A\x02\x15", 11);
	ENC_EQ(LWM2M_CT_LWM2M_CBOR, "/13/26", "{\"/13/26/1\":42,\"/13/26/3/21\":69.68,\"/13/26/3/37\":false}",
	       "\xA1\x82\x0D\x18\x1A\xA2\x01\x18\x2A\x03\xA2\x15\xFB\x40\x51\x6B\x85\x1E\xB8\x51\xEC\x18\x25\xF4", 24);
	ENC_EQ(LWM2M_CT_LWM2M_CBOR, "/", "{\"/13/26/1\":42,\"/13/26/2\":21,\"/14/27/1\":43,\"/14/27/2\":22}",
	       "\xA2\x0D\xA1\x18\x1A\xA2\x01\x18\x2A\x02\x15\x0E\xA1\x18\x1B\xA2\x01\x18\x2B\x02\x16", 21);
	ENC_EQ(LWM2M_CT_LWM2M_CBOR, "/3/0/7", "{\"/3/0/7/0\":3800,\"/3/0/7/1\":5000}",
	       "\xA1\x83\x03\x00\x07\xA2\x00\x19\x0E\xD8\x01\x19\x13\x88", 14);
	ENC_ERR(LWM2M_CT_LWM2M_CBOR, "/9999/0/1", "{\"/9999/0/1\":1,\"/9999/0/1/0\":2}", "has a value and resource instances");
	ROUND_TRIP(LWM2M_CT_LWM2M_CBOR, "/3/0", device_json);
	ROUND_TRIP(LWM2M_CT_LWM2M_CBOR, "/", "{\"/3303/0/5700\":-12.75,\"/3311/0/5850\":true,"
	                                     "\"/3311/1/5850\":false,\"/5/0/0\":\"AAECAwQF\","
	                                     "\"/1/1/10\":\"3:0\",\"/0/0/13\":200}");
	/* plain CBOR (60): one value */
	DEC_EQ(LWM2M_CT_CBOR, "/3303/0/5700", "\xF9\x4D\x60", 3, "{\"/3303/0/5700\":21.5}");
	DEC_EQ(LWM2M_CT_CBOR, "/3303/0/5700", "\xFA\x41\xAC\x00\x00", 5, "{\"/3303/0/5700\":21.5}");
	DEC_EQ(LWM2M_CT_CBOR, "/3/0/9", "\x18\x37", 2, "{\"/3/0/9\":55}");
	DEC_EQ(LWM2M_CT_CBOR, "/3/0/13", "\xC1\x1A\x51\x82\x42\x8F", 6, "{\"/3/0/13\":1367491215}");
	DEC_EQ(LWM2M_CT_CBOR, "/3311/0/5850", "\xF5", 1, "{\"/3311/0/5850\":true}");
	DEC_EQ(LWM2M_CT_CBOR, "/5/0/0", "\x42\x01\x02", 3, "{\"/5/0/0\":\"AQI=\"}");
	DEC_ERR(LWM2M_CT_CBOR, "/3/0", "\x01", 1, "single value");
	DEC_ERR(LWM2M_CT_CBOR, "/3/0/9", "\x01\x02", 2, "after the value");
	DEC_ERR(LWM2M_CT_CBOR, "/3/0/9", "\x19\x01", 2, "truncated");
	ENC_EQ(LWM2M_CT_CBOR, "/3303/0/5700", "{\"/3303/0/5700\":21.5}", "\xF9\x4D\x60", 3);
	ENC_EQ(LWM2M_CT_CBOR, "/3303/0/5700", "{\"/3303/0/5700\":0.1}",
	       "\xFB\x3F\xB9\x99\x99\x99\x99\x99\x9A", 9);
	ENC_EQ(LWM2M_CT_CBOR, "/3303/0/5700", "{\"/3303/0/5700\":100000.5}", "\xFA\x47\xC3\x50\x40", 5);
	ENC_EQ(LWM2M_CT_CBOR, "/3303/0/5700", "{\"/3303/0/5700\":-0.0000152587890625}", "\xF9\x81\x00", 3);
	ENC_EQ(LWM2M_CT_CBOR, "/3/0/13", "{\"/3/0/13\":-500}", "\x39\x01\xF3", 3);
	ENC_EQ(LWM2M_CT_CBOR, "/1/0/10", "{\"/1/0/10\":\"3:1\"}", "\x63" "3:1", 4);
	ROUND_TRIP(LWM2M_CT_CBOR, "/3/0/0", "{\"/3/0/0\":\"Open Mobile Alliance\"}");
	ROUND_TRIP(LWM2M_CT_CBOR, "/0/0/13", "{\"/0/0/13\":18446744073709549568}");
}

/* The LwM2M 1.0 JSON (11543): the TS 1.0 Device example (as in Wakaama's
 * tests/tlv_json_lwm2m_data_test.c test_3), bn and relative names. */
static void test_oldjson(void)
{
	static const char d[] =
		"{\"e\":[{\"n\":\"0\",\"sv\":\"Open Mobile Alliance\"},"
		"{\"n\":\"1\",\"sv\":\"Lightweight M2M Client\"},{\"n\":\"2\",\"sv\":\"345000123\"},"
		"{\"n\":\"3\",\"sv\":\"1.0\"},{\"n\":\"6/0\",\"v\":1},{\"n\":\"6/1\",\"v\":5},"
		"{\"n\":\"7/0\",\"v\":3800},{\"n\":\"7/1\",\"v\":5000},{\"n\":\"8/0\",\"v\":125},"
		"{\"n\":\"8/1\",\"v\":900},{\"n\":\"9\",\"v\":100},{\"n\":\"10\",\"v\":15},"
		"{\"n\":\"11/0\",\"v\":0},{\"n\":\"13\",\"v\":1367491215},"
		"{\"n\":\"14\",\"sv\":\"+02:00\"},{\"n\":\"15\",\"sv\":\"U\"}]}";
	DEC_EQ(LWM2M_CT_JSON, "/3/0", d, strlen(d), device_json);
	static const char d2[] = "{\"bn\":\"/65/543/\",\"e\":[{\"n\":\"0\",\"sv\":\"LWM2M\"},"
	                         "{\"v\":2015,\"n\":\"1\"},{\"n\":\"2/0\",\"bv\":true},{\"bv\":false,\"n\":\"2/1\"}]}";
	DEC_EQ(LWM2M_CT_JSON, "/65/543", d2, strlen(d2),
	       "{\"/65/543/0\":\"LWM2M\",\"/65/543/1\":2015,\"/65/543/2/0\":true,\"/65/543/2/1\":false}");
	static const char d3[] = "{\"bn\":\"/3/0/9\",\"e\":[{\"v\":55}]}";
	DEC_EQ(LWM2M_CT_JSON, "/3/0/9", d3, strlen(d3), "{\"/3/0/9\":55}");
	static const char d4[] = "{\"bn\":\"/\",\"e\":[{\"n\":\"1/0/10\",\"ov\":\"3:0\"},{\"n\":\"5/0/0\",\"sv\":\"AQID\"}]}";
	DEC_EQ(LWM2M_CT_JSON, "/", d4, strlen(d4), "{\"/1/0/10\":\"3:0\",\"/5/0/0\":\"AQID\"}");
	ENC_STR(LWM2M_CT_JSON, "/3/0", "{\"/3/0/9\":55,\"/3/0/0\":\"x\",\"/3/0/7/1\":5}",
	        "{\"bn\":\"/3/0/\",\"e\":[{\"n\":\"0\",\"sv\":\"x\"},{\"n\":\"7/1\",\"v\":5},{\"n\":\"9\",\"v\":55}]}");
	ENC_STR(LWM2M_CT_JSON, "/5/0/0", "{\"/5/0/0\":\"AQID\"}", "{\"bn\":\"/5/0/\",\"e\":[{\"n\":\"0\",\"sv\":\"AQID\"}]}");
	ENC_STR(LWM2M_CT_JSON, "/", "{\"/1/0/10\":\"3:0\"}", "{\"bn\":\"/\",\"e\":[{\"n\":\"1/0/10\",\"ov\":\"3:0\"}]}");
	DEC_ERR(LWM2M_CT_JSON, "/3/0", "[]", strlen("[]"), "not an object");
	DEC_ERR(LWM2M_CT_JSON, "/3/0", "{\"e\":1}", strlen("{\"e\":1}"), "not an array");
	DEC_ERR(LWM2M_CT_JSON, "/3/0", "{\"e\":[{\"n\":\"9\"}]}", strlen("{\"e\":[{\"n\":\"9\"}]}"), "no value");
	DEC_ERR(LWM2M_CT_JSON, "/3/0", "{\"e\":[{\"n\":\"9\",\"v\":\"1\"}]}", strlen("{\"e\":[{\"n\":\"9\",\"v\":\"1\"}]}"), "wrong JSON type");
	DEC_ERR(LWM2M_CT_JSON, "/3/0", "{\"e\":[{\"n\":\"9\",\"v\":1", strlen("{\"e\":[{\"n\":\"9\",\"v\":1"), "LwM2M JSON");
	DEC_ERR(LWM2M_CT_JSON, "/5/0", "{\"e\":[{\"n\":\"0\",\"sv\":\"**\"}]}", strlen("{\"e\":[{\"n\":\"0\",\"sv\":\"**\"}]}"), "not base64");
	DEC_ERR(LWM2M_CT_JSON, "/3/0", "{\"bn\":\"/4/0/\",\"e\":[{\"n\":\"9\",\"v\":1}]}", strlen("{\"bn\":\"/4/0/\",\"e\":[{\"n\":\"9\",\"v\":1}]}"), "outside");
	ROUND_TRIP(LWM2M_CT_JSON, "/3/0", device_json);
	ROUND_TRIP(LWM2M_CT_JSON, "/", "{\"/3303/0/5700\":-12.75,\"/3311/0/5850\":true,"
	                               "\"/5/0/0\":\"AAECAwQF\",\"/1/1/10\":\"3:0\",\"/0/0/13\":200}");
}

/* Hostile input: every prefix and many byte mutations of valid payloads decode to a value or an
 * error with a message, never a crash or a read past the buffer (checked under ASan). */
static void test_hostile(void)
{
	static const int cts[] = {LWM2M_CT_TLV, LWM2M_CT_SENML_JSON, LWM2M_CT_SENML_CBOR,
	                          LWM2M_CT_LWM2M_CBOR, LWM2M_CT_JSON, LWM2M_CT_CBOR, LWM2M_CT_TEXT,
	                          LWM2M_CT_OPAQUE};
	static const char *const bases[] = {"/", "/3", "/3/0", "/3/0/7", "/3/0/7/1"};
	uint32_t seed = 12345;
	for (size_t c = 0; c < sizeof cts / sizeof cts[0]; c++) {
		uint8_t *enc;
		size_t n;
		const char *base = cts[c] == LWM2M_CT_CBOR || cts[c] == LWM2M_CT_TEXT ? "/3/0/9"
		                   : cts[c] == LWM2M_CT_OPAQUE ? "/5/0/0" : "/3/0";
		const char *vals = cts[c] == LWM2M_CT_CBOR || cts[c] == LWM2M_CT_TEXT ? "{\"/3/0/9\":55}"
		                   : cts[c] == LWM2M_CT_OPAQUE ? "{\"/5/0/0\":\"AAECAwQF\"}" : device_json;
		if (!enc_eq(cts[c], base, vals, NULL, 0, &enc, &n, __LINE__)) {
			failures++;
			continue;
		}
		for (int round = 0; round < 3000; round++) {
			size_t len = n;
			uint8_t *m = malloc(n ? n : 1);
			memcpy(m, enc, n);
			if (round < (int)n) {
				len = (size_t)round; /* every prefix */
			} else {
				for (int k = 0; k < 1 + round % 4; k++) {
					seed = seed * 1103515245u + 12345u;
					m[(seed >> 8) % n] = (uint8_t)(seed >> 20);
				}
			}
			/* a fresh copy of exactly len bytes, so ASan sees any over-read */
			uint8_t *exact = malloc(len ? len : 1);
			memcpy(exact, m, len);
			for (size_t bi = 0; bi < sizeof bases / sizeof bases[0]; bi++) {
				struct lwm2m_path pb = P(bases[bi]);
				jv got = lwm2m_decode(cts[c], &pb, exact, len);
				if (!jv_is_valid(got)) {
					jv msg = jv_invalid_get_msg(got);
					CHECK(jv_get_kind(msg) == JV_KIND_STRING);
					jv_free(msg);
				} else {
					CHECK(jv_get_kind(got) == JV_KIND_OBJECT);
					jv_free(got);
				}
			}
			free(exact);
			free(m);
		}
		free(enc);
	}
	/* deep nesting is refused without recursion trouble */
	static uint8_t deep[20000];
	memset(deep, 0x81, sizeof deep);
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", deep, sizeof deep, "not a map");
	memset(deep, 0xa1, sizeof deep);
	DEC_ERR(LWM2M_CT_LWM2M_CBOR, "/", deep, sizeof deep, "not an id");
	memset(deep, '[', sizeof deep);
	DEC_ERR(LWM2M_CT_SENML_JSON, "/", deep, sizeof deep, "SenML JSON");
	/* unknown labels with deeply nested values are skipped within a bound */
	for (size_t i = 0; i < sizeof deep; i++)
		deep[i] = 0x81;
	deep[0] = 0x81;
	deep[1] = 0xa1;
	deep[2] = 0x18;
	deep[3] = 0x63; /* label 99, unknown: its value is nested arrays */
	DEC_ERR(LWM2M_CT_SENML_CBOR, "/", deep, sizeof deep, "nested too deeply");
	struct lwm2m_path bad = {.len = 7};
	jv got = lwm2m_decode(LWM2M_CT_TLV, &bad, (const uint8_t *)"", 0);
	CHECK(!jv_is_valid(got));
	jv_free(got);
	got = lwm2m_decode(9999, &bad, (const uint8_t *)"", 0);
	CHECK(!jv_is_valid(got));
	jv_free(got);
}

/* Objects from DDF files: a directory written by the bats test. */
static void test_ddf(const char *dir)
{
	CHECK(objmodel_load_dir(dir) == 2);
	const struct lwm2m_object_def *o = objmodel_object(10241);
	CHECK(o && strcmp(o->name, "Test Sensor") == 0 && o->multiple && o->nres == 4);
	const struct lwm2m_resource_def *r = objmodel_resource(10241, 1);
	CHECK(r && r->type == LWM2M_T_FLOAT && r->ops == LWM2M_OP_R && r->mandatory && !r->multiple &&
	      strcmp(r->name, "Level") == 0);
	r = objmodel_resource(10241, 2);
	CHECK(r && r->type == LWM2M_T_UNSIGNED && r->multiple && r->ops == (LWM2M_OP_R | LWM2M_OP_W));
	r = objmodel_resource(10241, 7);
	CHECK(r && r->type == LWM2M_T_NONE && r->ops == LWM2M_OP_E);
	/* the loaded 3303 replaces the built-in one: 5700 is now an integer */
	r = objmodel_resource(3303, 5700);
	CHECK(r && r->type == LWM2M_T_INTEGER);
	CHECK(!objmodel_resource(3303, 5701));
	DEC_EQ(LWM2M_CT_TLV, "/10241/0", "\xC4\x01\x41\xAC\x00\x00\x83\x02\x41\x00\xC8", 11,
	       "{\"/10241/0/1\":21.5,\"/10241/0/2/0\":200}");
	ENC_ERR(LWM2M_CT_TLV, "/3303/0", "{\"/3303/0/5700\":21.5}", "expected integer");
}

static void test_ddf_bad(const char *dir)
{
	CHECK(objmodel_load_dir(dir) == -1);
	CHECK(objmodel_load_dir("/nonexistent/dir") == -1);
}

/* Loading the OMA registry files gives back exactly the built-in table. */
static void test_registry(const char *dir)
{
	const struct lwm2m_object_def *before[128];
	size_t nb = objmodel_builtin_count;
	CHECK(nb > 50 && nb <= 128);
	for (size_t i = 0; i < nb && i < 128; i++)
		before[i] = &objmodel_builtin[i];
	int n = objmodel_load_dir(dir);
	CHECK(n == (int)nb);
	for (size_t i = 0; i < nb && i < 128; i++) {
		const struct lwm2m_object_def *b = before[i], *l = objmodel_object(b->id);
		CHECK(l && l != b && l->nres == b->nres && l->multiple == b->multiple &&
		      strcmp(l->name, b->name) == 0);
		for (uint16_t k = 0; l && k < b->nres && k < l->nres; k++) {
			const struct lwm2m_resource_def *x = &b->res[k], *y = &l->res[k];
			if (x->id != y->id || x->type != y->type || x->ops != y->ops ||
			    x->multiple != y->multiple || x->mandatory != y->mandatory ||
			    strcmp(x->name, y->name) != 0) {
				fprintf(stderr, "object %u resource %u differs from its DDF\n", b->id, x->id);
				failures++;
			}
		}
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--ddf") == 0) {
		test_ddf(argv[2]);
	} else if (argc == 3 && strcmp(argv[1], "--ddf-bad") == 0) {
		test_ddf_bad(argv[2]);
	} else if (argc == 3 && strcmp(argv[1], "--registry") == 0) {
		test_registry(argv[2]);
	} else if (argc == 1) {
		test_objmodel();
		test_ct();
		test_tlv();
		test_text_opaque();
		test_coercion();
		test_senml_json();
		test_senml_cbor();
		test_lwm2m_cbor();
		test_oldjson();
		test_hostile();
	} else {
		fprintf(stderr, "usage: test_codec [--ddf DIR | --ddf-bad DIR | --registry DIR]\n");
		return 2;
	}
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	return 0;
}
