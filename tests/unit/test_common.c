/* Unit checks of lib/ basics: line reading with bounds, hex, JSON lines. */
#include "hex.h"
#include "jsonl.h"
#include "linereader.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                   \
		}                                                                     \
	} while (0)

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

int main(void)
{
	test_lines();
	test_hex();
	test_json();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
