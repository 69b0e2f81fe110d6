/* Unit checks of lib/ basics: line reading with bounds, hex, JSON lines. */
#include "hex.h"
#include "json_fast.h"
#include "json_out.h"
#include "jsonl.h"
#include "linereader.h"
#include "lwm2m_path.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static void test_lines(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	const char *in = "one\n\ntoo-long-line-here\nlast";
	CHECK(write(p[1], in, strlen(in)) == (ssize_t)strlen(in));
	close(p[1]);
	struct linereader r;
	lr_init(&r, p[0], 8);
	char *l;
	size_t n;
	CHECK(lr_getline(&r, &l, &n) == LR_LINE && strcmp(l, "one") == 0);
	CHECK(lr_getline(&r, &l, &n) == LR_LINE && n == 0);
	CHECK(lr_getline(&r, &l, &n) == LR_TOOLONG && r.lineno == 3);
	CHECK(lr_getline(&r, &l, &n) == LR_LINE && strcmp(l, "last") == 0 && r.lineno == 4);
	CHECK(lr_getline(&r, &l, &n) == 0);
	lr_free(&r);
	close(p[0]);
}

static void test_hex(void)
{
	uint8_t b[4];
	char s[9];
	CHECK(hex_decode("0xDEadBEef", b, 4) == 4 && b[0] == 0xde && b[3] == 0xef);
	CHECK(hex_decode("abc", b, 4) == -1);
	CHECK(hex_decode("zz", b, 4) == -1);
	CHECK(hex_decode("0011223344", b, 4) == -1);
	CHECK(hex_decode_exact("0102", b, 2) == 0);
	hex_encode((const uint8_t *)"\x01\xab", 2, s);
	CHECK(strcmp(s, "01AB") == 0);
}

static void test_json(void)
{
	jv v = jsonl_parse_object("{\"a\":\"x\",\"n\":2}", 15);
	CHECK(jv_is_valid(v));
	CHECK(strcmp(jl_str(v, "a"), "x") == 0 && jl_num(v, "n", 0) == 2);
	jv_free(v);
	v = jsonl_parse_object("{\"a\":", 5);
	CHECK(!jv_is_valid(v));
	jv_free(v);
	v = jsonl_parse_object("[1]", 3);
	CHECK(!jv_is_valid(v));
	jv msg = jv_invalid_get_msg(v);
	CHECK(strcmp(jv_string_value(msg), "not a JSON object") == 0);
	jv_free(msg);
	/* the strict pre-check refuses what jq 1.6 would leak on, naming the byte */
	v = jsonl_parse_object("[\"a\" \"b\"]", 9);
	msg = jv_invalid_get_msg(v);
	CHECK(jv_get_kind(msg) == JV_KIND_STRING &&
	      strcmp(jv_string_value(msg), "malformed JSON: expected ',' or ']' at byte 5") == 0);
	jv_free(msg);
	v = jsonl_parse_object("{\"a\":1} {}", 10);
	msg = jv_invalid_get_msg(v);
	CHECK(jv_get_kind(msg) == JV_KIND_STRING &&
	      strncmp(jv_string_value(msg), "malformed JSON: extra data", 26) == 0);
	jv_free(msg);
	v = jsonl_parse_object("{\"a\":[1,2]}\r", 12);
	CHECK(jv_is_valid(v));
	jv_free(v);
}

/* json_out must print exactly what jq's own dump prints */
static int same_as_jq(jv v)
{
	jv d = jv_dump_string(jv_copy(v), 0);
	struct jbuf b = {0};
	int ok = json_out_append(&b, v) == 0 && b.len == strlen(jv_string_value(d)) &&
	         memcmp(b.p, jv_string_value(d), b.len) == 0 && json_out_len(v) == b.len;
	if (!ok)
		fprintf(stderr, "json_out: %.*s, jq: %s\n", (int)b.len, b.p ? b.p : "", jv_string_value(d));
	free(b.p);
	jv_free(d);
	jv_free(v);
	return ok;
}

static void test_json_out(void)
{
	static const char *const texts[] = {
	    "{\"thing\":\"dev0\",\"state\":{\"reported\":{\"3303\":{\"0\":{\"5700\":21.5}}}}}",
	    "[1,-1,0,-0,0.1,1e-5,1.5e-7,1e16,1e17,1.5e20,15000000000,123456789012345678,1e308,-2.5e-308,5e-324]",
	    "{\"a\":[true,false,null,{},[],\"\"],\"b\":\"caf\u00e9 \\\" \\\\ / \\u0001\\u001f\\u007f\\b\\f\\n\\r\\t\"}",
	    "{\"\\u2603\":\"\\ud83d\\ude00\",\"k\":{\"x\":1,\"y\":2,\"z\":3,\"w\":4,\"v\":5,\"u\":6,\"t\":7,\"s\":8,\"r\":9}}",
	};
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
		jv v = jv_parse(texts[i]);
		CHECK(jv_is_valid(v));
		CHECK(same_as_jq(v));
	}
	char all[128];
	for (int c = 1; c < 128; c++)
		all[c - 1] = (char)c;
	CHECK(same_as_jq(jv_string_sized(all, 127)));
	int bad = 0;
	srand(7);
	for (int i = 0; i < 40000 && bad < 5; i++) {
		double d;
		switch (i % 10) {
		case 5: /* clock times in milliseconds (json_out's fast path), and their neighbours */
		case 6:
		case 7:
			d = (double)(1700000000000LL + (long long)rand() * 37 + i) / 1000 * (i % 3 ? 1 : -1);
			if (i % 10 == 6)
				d = nextafter(d, 0);
			else if (i % 10 == 7)
				d = (double)(rand() % 4000000) * 1000003 / 1000 + (double)(rand() % 1000) / 1000;
			break;
		case 8: d = (double)(rand() % 100000) / 1000 + 1; break;
		case 9: d = 4e12 - (double)(rand() % 100000000) / 1000; break;
		case 0: d = (double)(rand() % 2000001 - 1000000) / 10.0; break;
		case 1: d = (double)rand() / 1000.0 * (rand() % 2 ? 1 : -1); break;
		case 2: d = ldexp((double)rand() / RAND_MAX, rand() % 200 - 100); break;
		case 3: d = (double)(i * 104729LL) * pow(10, rand() % 20); break;
		default: {
			unsigned long long u = ((unsigned long long)rand() << 33) ^ ((unsigned long long)rand() << 11) ^ (unsigned long long)rand();
			memcpy(&d, &u, sizeof d);
			if (!isfinite(d))
				d = 1;
		}
		}
		if (!same_as_jq(jv_number(d)))
			bad++;
	}
	CHECK(bad == 0);
	/* json_out_cstring: what jv_string_sized makes of any bytes (bad UTF-8 replaced) */
	bad = 0;
	for (int i = 0; i < 20000 && bad < 5; i++) {
		char s[12];
		size_t n = (size_t)(rand() % 12);
		for (size_t k = 0; k < n; k++)
			s[k] = (char)(i % 4 == 0 ? 0x20 + rand() % 95 : 1 + rand() % 255);
		jv d = jv_dump_string(jv_string_sized(s, (int)n), 0);
		struct jbuf b = {0};
		if (json_out_cstring(&b, s, n) != 0 || b.len != strlen(jv_string_value(d)) ||
		    memcmp(b.p, jv_string_value(d), b.len) != 0) {
			fprintf(stderr, "json_out_cstring: %.*s, jq: %s\n", (int)b.len, b.p ? b.p : "", jv_string_value(d));
			bad++;
		}
		free(b.p);
		jv_free(d);
	}
	CHECK(bad == 0);
}

/* json_fast_parse builds what jq's parser builds (key order included), or leaves the text to jq */
static void test_json_fast(void)
{
	static const char *const texts[] = {
	    "{\"id\":12,\"op\":\"notify\",\"ep\":\"dev0\",\"values\":{\"/3303/0/5700\":1795393641235594},\"value\":-0}",
	    " [1, -1.5e-7 , 0.1,1E2,123456789012345678901234567890, 1e400, true,false,null,[],{}] ",
	    "{\"a\":1,\"b\":2,\"a\":3,\"c\":{\"x\":[{\"y\":\"caf\xc3\xa9 \xff\xfe\"}]},\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9}",
	    "\"plain\"",
	};
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
		jv a = json_fast_parse(texts[i], strlen(texts[i]));
		jv b = jv_parse_sized(texts[i], (int)strlen(texts[i]));
		CHECK(jv_is_valid(a) && jv_is_valid(b));
		jv da = jv_dump_string(a, 0), db = jv_dump_string(b, 0);
		CHECK(strcmp(jv_string_value(da), jv_string_value(db)) == 0);
		jv_free(da);
		jv_free(db);
	}
	/* escapes are jq's to decode */
	jv e = json_fast_parse("{\"a\":\"x\\ny\"}", 12);
	CHECK(!jv_is_valid(e));
	jv_free(e);
	jv l = jsonl_parse_object("{\"a\":\"x\\ny\",\"b\":\"\\u00e9\"}", 25);
	CHECK(jv_is_valid(l) && strcmp(jl_str(l, "a"), "x\ny") == 0 && strcmp(jl_str(l, "b"), "\xc3\xa9") == 0);
	jv_free(l);
}

/* jsonl_put: a line longer than its stack buffer, whole */
static void test_jsonl_put(void)
{
	char big[3000];
	memset(big, 'x', sizeof big);
	FILE *f = tmpfile();
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(jsonl_put(f, jv_object_set(jv_object(), jv_string("k"), jv_string_sized(big, sizeof big))) == 0);
	CHECK(jsonl_put(f, jv_object_set(jv_object(), jv_string("n"), jv_number(1))) == 0);
	CHECK(fflush(f) == 0);
	CHECK(ftell(f) == (long)(sizeof big + 9 + 8));
	fclose(f);
}

/* lwm2m_path_str writes what one snprintf "/%u" per level writes, cut the same way. */
static void test_path_str(void)
{
	static const uint16_t ids[] = {0, 1, 9, 10, 99, 100, 3303, 5700, 9999, 10000, 65534, 65535};
	const int nids = (int)(sizeof ids / sizeof ids[0]);
	unsigned seed = 7;
	for (int t = 0; t < 20000; t++) {
		struct lwm2m_path p = {.len = t % 5};
		for (int i = 0; i < p.len; i++) {
			seed = seed * 1103515245u + 12345u;
			p.id[i] = ids[(seed >> 16) % (unsigned)nids];
		}
		char want[32], got[32];
		size_t size = (size_t)(t % 30);
		size_t n = 0;
		if (p.len == 0)
			snprintf(want, sizeof want, "/");
		for (int i = 0; i < p.len; i++)
			n += (size_t)snprintf(want + n, sizeof want - n, "/%u", p.id[i]);
		if (size)
			want[strlen(want) < size ? strlen(want) : size - 1] = 0;
		memset(got, 'x', sizeof got);
		lwm2m_path_str(&p, got, size);
		if (size)
			CHECK(strcmp(got, want) == 0);
		CHECK(got[size] == 'x' || size == sizeof got); /* nothing written past size */
	}
}

int main(void)
{
	test_lines();
	test_hex();
	test_json();
	test_json_out();
	test_json_fast();
	test_jsonl_put();
	test_path_str();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
