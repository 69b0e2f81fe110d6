/* Unit checks of lib/shadow_doc.c: AWS IoT Device Shadow document semantics. */
#include <stdio.h>
#include <string.h>

#include "jsonl.h"
#include "shadow_doc.h"

static int failures;
#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                        \
		}                                                                          \
	} while (0)

static jv J(const char *s)
{
	jv v = jv_parse(s);
	if (!jv_is_valid(v)) {
		fprintf(stderr, "bad fixture: %s\n", s);
		failures++;
	}
	return v;
}

/* 1 if a (consumed) equals the JSON text b. */
static int same(jv a, const char *b)
{
	jv e = J(b);
	int eq = jv_equal(jv_copy(a), jv_copy(e));
	if (!eq) {
		jv s = jv_dump_string(a, 0);
		fprintf(stderr, "  got:  %s\n  want: %s\n", jv_string_value(s), b);
		jv_free(s);
	} else {
		jv_free(a);
	}
	jv_free(e);
	return eq;
}

static int check_err(const char *req, int code, const char *message)
{
	struct shadow_error e = {0, NULL};
	jv r = J(req);
	int rc = shadow_check_update(r, &e);
	jv_free(r);
	if (rc == 0 || e.code != code || strcmp(e.message, message) != 0) {
		fprintf(stderr, "  %s: got %d %s\n", req, e.code, e.message ? e.message : "(none)");
		return 0;
	}
	return 1;
}

/* Apply req to *doc at time t; return the accepted body, or the error code as a number. */
static jv apply(jv *doc, const char *req, time_t t, jv *delta)
{
	struct shadow_error e;
	jv r = J(req), acc = jv_invalid(), d = jv_invalid();
	CHECK(shadow_check_update(r, &e) == 0);
	int rc = shadow_apply(doc, r, t, &acc, &d, &e);
	jv_free(r);
	if (delta)
		*delta = d;
	else
		jv_free(d);
	return rc == 0 ? acc : jv_number(e.code);
}

static jv delta_state(jv doc, time_t t)
{
	jv d = shadow_delta(doc, t);
	jv s = jl_get(d, "state");
	jv_free(d);
	return s;
}

static void test_names(void)
{
	CHECK(shadow_thing_name_ok("dev1"));
	CHECK(shadow_thing_name_ok("urn:imei:1234_5-6"));
	CHECK(!shadow_thing_name_ok(""));
	CHECK(!shadow_thing_name_ok("a/b"));
	CHECK(!shadow_thing_name_ok("a.b"));
	CHECK(!shadow_thing_name_ok("dév"));
	char n[200];
	memset(n, 'a', 128);
	n[128] = 0;
	CHECK(shadow_thing_name_ok(n));
	CHECK(!shadow_shadow_name_ok(n));
	n[64] = 0;
	CHECK(shadow_shadow_name_ok(n));
	n[128] = 'a';
	memset(n, 'a', 129);
	n[129] = 0;
	CHECK(!shadow_thing_name_ok(n));
}

static void test_checks(void)
{
	CHECK(check_err("{\"thing\":\"d\"}", 400, "Missing required node: state"));
	CHECK(check_err("{\"state\":{}}", 400, "Missing required node: thing"));
	CHECK(check_err("{\"thing\":\"a b\",\"state\":{}}", 400, "Invalid thing name"));
	CHECK(check_err("{\"thing\":\"d\",\"shadow\":\"x.y\",\"state\":{}}", 400, "Invalid shadow name"));
	CHECK(check_err("{\"thing\":\"d\",\"state\":[]}", 400, "State node must be an object"));
	CHECK(check_err("{\"thing\":\"d\",\"state\":{\"desired\":5}}", 400, "Desired node must be an object"));
	CHECK(check_err("{\"thing\":\"d\",\"state\":{\"reported\":\"x\"}}", 400, "Reported node must be an object"));
	CHECK(check_err("{\"thing\":\"d\",\"state\":{\"delta\":{}}}", 400, "State contains an invalid node"));
	CHECK(check_err("{\"thing\":\"d\",\"state\":{\"desired\":{\"c\":[null,1]}}}", 400,
	                "State contains an invalid node"));
	CHECK(check_err("{\"thing\":\"d\",\"version\":1.5,\"state\":{}}", 400, "Invalid version"));
	CHECK(check_err("{\"thing\":\"d\",\"version\":\"3\",\"state\":{}}", 400, "Invalid version"));
	CHECK(check_err("{\"thing\":\"d\",\"clientToken\":7,\"state\":{}}", 400, "Invalid clientToken"));
	char tok[200];
	snprintf(tok, sizeof tok, "{\"thing\":\"d\",\"clientToken\":\"%065d\",\"state\":{}}", 0);
	CHECK(check_err(tok, 400, "Invalid clientToken"));
	/* 6 levels pass, 7 do not */
	struct shadow_error e;
	jv ok = J("{\"thing\":\"d\",\"state\":{\"reported\":{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":{\"6\":1}}}}}}}}");
	CHECK(shadow_check_update(ok, &e) == 0);
	jv_free(ok);
	CHECK(check_err("{\"thing\":\"d\",\"state\":{\"reported\":{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":{\"6\":{\"7\":1}}}}}}}}}",
	                400, "JSON contains too many levels of nesting; maximum is 6"));
	/* 8 KB of state */
	static char big[10000];
	int n = snprintf(big, sizeof big, "{\"thing\":\"d\",\"state\":{\"reported\":{\"s\":\"");
	memset(big + n, 'x', 8200);
	strcpy(big + n + 8200, "\"}}}");
	CHECK(check_err(big, 413, "The payload exceeds the maximum size allowed"));
	jv nul = J("{\"thing\":\"d\",\"state\":null}");
	CHECK(shadow_check_update(nul, &e) == 0);
	jv_free(nul);
}

static void test_merge(void)
{
	jv doc = jv_null(), d;
	CHECK(same(apply(&doc, "{\"thing\":\"d\",\"state\":{\"reported\":{\"a\":1,\"o\":{\"x\":1,\"y\":2},\"l\":[1,2,3]}}}", 100, &d),
	           "{\"state\":{\"reported\":{\"a\":1,\"o\":{\"x\":1,\"y\":2},\"l\":[1,2,3]}},"
	           "\"metadata\":{\"reported\":{\"a\":{\"timestamp\":100},\"o\":{\"x\":{\"timestamp\":100},"
	           "\"y\":{\"timestamp\":100}},\"l\":{\"timestamp\":100}}},\"version\":1,\"timestamp\":100}"));
	CHECK(!jv_is_valid(d)); /* a reported-only update publishes no delta */
	jv_free(d);
	/* nested merge keeps siblings, null deletes, arrays replace whole */
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"reported\":{\"o\":{\"y\":null,\"z\":3},\"l\":[9],\"a\":null}}}", 200, NULL));
	CHECK(same(jl_get(doc, "state"), "{\"reported\":{\"o\":{\"x\":1,\"z\":3},\"l\":[9]}}"));
	CHECK(same(jl_get(doc, "metadata"),
	           "{\"reported\":{\"o\":{\"x\":{\"timestamp\":100},\"z\":{\"timestamp\":200}},\"l\":{\"timestamp\":200}}}"));
	CHECK(jl_num(doc, "version", 0) == 2);
	/* an object emptied by deletes disappears, and so does its metadata */
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"reported\":{\"o\":{\"x\":null,\"z\":null}}}}", 300, NULL));
	CHECK(same(jl_get(doc, "state"), "{\"reported\":{\"l\":[9]}}"));
	CHECK(same(jl_get(doc, "metadata"), "{\"reported\":{\"l\":{\"timestamp\":200}}}"));
	/* a scalar replaced by an object and back */
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"reported\":{\"l\":{\"k\":1}}}}", 400, NULL));
	CHECK(same(jl_get(doc, "metadata"), "{\"reported\":{\"l\":{\"k\":{\"timestamp\":400}}}}"));
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"reported\":{\"l\":5}}}", 500, NULL));
	CHECK(same(jl_get(doc, "metadata"), "{\"reported\":{\"l\":{\"timestamp\":500}}}"));
	/* reported null clears the section */
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"desired\":{\"q\":1}}}", 600, NULL));
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"reported\":null}}", 700, NULL));
	CHECK(same(jl_get(doc, "state"), "{\"desired\":{\"q\":1}}"));
	CHECK(same(jl_get(doc, "metadata"), "{\"desired\":{\"q\":{\"timestamp\":600}}}"));
	/* state null clears both */
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":null}", 800, NULL));
	CHECK(same(jl_get(doc, "state"), "{}"));
	CHECK(jl_num(doc, "version", 0) == 8);
	jv_free(doc);
}

static void test_version_token(void)
{
	jv doc = jv_null();
	CHECK(same(apply(&doc, "{\"thing\":\"d\",\"version\":3,\"state\":{\"reported\":{\"a\":1}},\"clientToken\":\"t1\"}", 1, NULL),
	           "409"));
	CHECK(jv_get_kind(doc) == JV_KIND_NULL); /* untouched */
	jv acc = apply(&doc, "{\"thing\":\"d\",\"version\":0,\"state\":{\"reported\":{\"a\":1}},\"clientToken\":\"t1\"}", 1, NULL);
	CHECK(strcmp(jl_str(acc, "clientToken"), "t1") == 0 && jl_num(acc, "version", 0) == 1);
	jv_free(acc);
	CHECK(same(apply(&doc, "{\"thing\":\"d\",\"version\":0,\"state\":{\"reported\":{\"a\":2}}}", 2, NULL), "409"));
	acc = apply(&doc, "{\"thing\":\"d\",\"version\":1,\"state\":{\"reported\":{\"a\":2}}}", 2, NULL);
	CHECK(jl_num(acc, "version", 0) == 2 && !jl_has(acc, "clientToken"));
	jv_free(acc);
	struct shadow_error e = {409, "Version conflict"};
	jv req = J("{\"thing\":\"d\",\"clientToken\":\"t9\",\"state\":{}}");
	CHECK(same(shadow_rejection(req, &e, 5),
	           "{\"code\":409,\"message\":\"Version conflict\",\"timestamp\":5,\"clientToken\":\"t9\"}"));
	jv_free(req);
	jv_free(doc);
}

static void test_delta(void)
{
	jv doc = jv_null(), d;
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"reported\":{\"color\":\"green\",\"o\":{\"a\":1,\"b\":2},\"only\":1}}}", 10, NULL));
	jv_free(apply(&doc, "{\"thing\":\"d\",\"clientToken\":\"c\",\"state\":{\"desired\":{\"color\":\"red\",\"o\":{\"a\":1,\"b\":3},\"new\":[1]}}}", 20, &d));
	/* only desired attributes that differ; nested by attribute; reported-only keys never */
	CHECK(same(jv_copy(d), "{\"version\":2,\"state\":{\"color\":\"red\",\"o\":{\"b\":3},\"new\":[1]},"
	                       "\"metadata\":{\"color\":{\"timestamp\":20},\"o\":{\"b\":{\"timestamp\":20}},"
	                       "\"new\":{\"timestamp\":20}},\"timestamp\":20,\"clientToken\":\"c\"}"));
	jv_free(d);
	/* the device reports: no delta is published, and the document's delta shrinks */
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"reported\":{\"color\":\"red\",\"o\":{\"b\":3}}}}", 30, &d));
	CHECK(!jv_is_valid(d));
	jv_free(d);
	CHECK(same(delta_state(doc, 31), "{\"new\":[1]}"));
	/* a desired update that agrees with reported publishes nothing */
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"desired\":{\"new\":null}}}", 40, &d));
	CHECK(!jv_is_valid(d));
	jv_free(d);
	CHECK(!jv_is_valid(shadow_delta(doc, 41)));
	/* deleting from reported what desired still holds brings it back into the delta */
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"reported\":{\"color\":null}}}", 50, NULL));
	CHECK(same(delta_state(doc, 51), "{\"color\":\"red\"}"));
	/* a type change (scalar desired, object reported) is a difference */
	jv_free(apply(&doc, "{\"thing\":\"d\",\"state\":{\"desired\":{\"color\":null,\"o\":5}}}", 60, &d));
	CHECK(same(jl_get(d, "state"), "{\"o\":5}"));
	jv_free(d);
	jv_free(doc);
}

static void test_tag(void)
{
	CHECK(same(shadow_tag(J("{\"version\":1}"), "dev1", "cfg", "accepted"),
	           "{\"thing\":\"dev1\",\"shadow\":\"cfg\",\"result\":\"accepted\",\"version\":1}"));
	jv t = shadow_tag(J("{\"version\":1}"), "dev1", NULL, NULL);
	jv s = jv_dump_string(t, 0);
	CHECK(strcmp(jv_string_value(s), "{\"thing\":\"dev1\",\"version\":1}") == 0);
	jv_free(s);
}

int main(void)
{
	test_names();
	test_checks();
	test_merge();
	test_version_token();
	test_delta();
	test_tag();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
