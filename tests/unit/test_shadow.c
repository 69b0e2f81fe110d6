/* Unit checks of lib/shadow_doc.c: AWS IoT Device Shadow document semantics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"
#include "jsonl.h"
#include "shadow_doc.h"
#include "shadow_tree.h"

#include "check.h"
#include "shadow_agree.h"

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

/* ---- lib/shadow_tree.c against shadow_apply: random update sequences ---- */

static unsigned long rng = 12345;
static unsigned rnd(unsigned n)
{
	rng = rng * 6364136223846793005ul + 1442695040888963407ul;
	return (unsigned)(rng >> 33) % n;
}

static jv rand_value(int depth, int allow_null);

static jv rand_object(int depth, int allow_null)
{
	/* keys jq escapes in its output (", DEL), UTF-8, and one named like a metadata leaf */
	static const char *keys[] = {"a", "b", "c", "o", "5700", "q\"", "\xc3\xa9", "t\x7f", "timestamp"};
	jv o = jv_object();
	unsigned n = rnd(4);
	for (unsigned i = 0; i < n; i++)
		o = jv_object_set(o, jv_string(keys[rnd(sizeof keys / sizeof *keys)]), rand_value(depth + 1, allow_null));
	return o;
}

static jv rand_value(int depth, int allow_null)
{
	switch (rnd(depth > 3 ? 6 : 9)) {
	case 0:
		return jv_number((double)rnd(1000));
	case 1:
		return jv_number(rnd(1000) / 8.0 - 20.3);
	case 2:
		return jv_string(rnd(2) ? "on" : "x\"y\n");
	case 3:
		return rnd(2) ? jv_true() : jv_false();
	case 4:
		return allow_null ? jv_null() : jv_number(1);
	case 5:
		return rnd(2) ? J("[1,2.5,\"s\"]") : J("[{\"z\":1,\"a\":[2]}]");
	case 6:
		return rnd(3) ? rand_object(depth, allow_null) : jv_object();
	default:
		return rand_object(depth, allow_null);
	}
}

static jv rand_request(double version)
{
	jv r = jv_object();
	r = jv_object_set(r, jv_string("thing"), jv_string("dev1"));
	jv state;
	unsigned shape = rnd(10);
	if (shape == 0) {
		state = jv_null();
	} else {
		state = jv_object();
		if (shape < 4 || shape == 9)
			state = jv_object_set(state, jv_string("desired"), rnd(8) ? rand_object(0, 1) : jv_null());
		if (shape >= 3)
			state = jv_object_set(state, jv_string("reported"), rnd(8) ? rand_object(0, 1) : jv_null());
	}
	if (rnd(12) == 0) {
		char big[3001];
		memset(big, 'x', 3000);
		big[3000] = 0;
		const char *bigs[] = {"big1", "big2", "big3"};
		jv sec = jv_object_set(jv_object(), jv_string(bigs[rnd(3)]), jv_string(big));
		if (jv_get_kind(state) != JV_KIND_OBJECT) {
			jv_free(state);
			state = jv_object();
		}
		state = jv_object_set(state, jv_string(rnd(2) ? "reported" : "desired"), sec);
	}
	r = jv_object_set(r, jv_string("state"), state);
	if (rnd(5) == 0)
		r = jv_object_set(r, jv_string("version"), jv_number(rnd(3) ? version : version + 1));
	if (rnd(4) == 0)
		r = jv_object_set(r, jv_string("clientToken"), jv_string("tok\"1"));
	return r;
}

static void test_tree(void)
{
	int accepted = 0, deltas = 0, conflicts = 0, too_big = 0;
	for (int run = 0; run < 300; run++) {
		jv doc = jv_null();
		struct shadow_tdoc *t = shadow_tdoc_from_jv(doc);
		for (int step = 0; step < 40; step++) {
			time_t now = 1700000000 + run * 100 + step;
			jv req = rand_request(jl_num(doc, "version", 0));
			struct shadow_error e1 = {0, NULL}, e2 = {0, NULL};
			if (shadow_check_update(req, &e1) < 0) {
				jv_free(req);
				continue;
			}
			jv acc = jv_invalid(), d1 = jv_invalid(), d2 = jv_invalid();
			struct jbuf line = {0};
			int r1 = shadow_apply(&doc, req, now, &acc, &d1, &e1);
			int r2 = shadow_tdoc_apply(t, req, NULL, now, "dev1", NULL, &line, &d2, &e2);
			accepted += r1 == 0;
			deltas += jv_is_valid(d1);
			conflicts += r1 < 0 && e1.code == 409;
			too_big += r1 < 0 && e1.code == 413;
			const char *why = shadow_agree(r1, acc, d1, &e1, r2, &line, d2, &e2, doc, t, "dev1");
			if (why) {
				char *rq = shadow_text_of(req);
				fprintf(stderr, "  run %d step %d: %s differs: %s\n", run, step, why, rq);
				free(rq);
				failures++;
				step = 1000;
			}
			/* and a tree made from the stored text again is the same document */
			if (step % 7 == 0) {
				shadow_tdoc_free(t);
				t = shadow_tdoc_from_jv(doc);
			}
			free(line.p);
			jv_free(acc);
			jv_free(d1);
			jv_free(d2);
			jv_free(req);
		}
		shadow_tdoc_free(t);
		jv_free(doc);
	}
	/* the sequences reach every outcome */
	CHECK(accepted > 5000 && deltas > 1000 && conflicts > 100 && too_big > 50);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "tree: %d accepted, %d deltas, %d conflicts, %d too big\n", accepted, deltas, conflicts, too_big);
}

/* The quick parse of a line (shadow_rtree_parse) against jsonl_parse_object and the checks:
 * it takes only lines the checks accept, and the results are the same. */
static void fast_line(jv *doc, struct shadow_tdoc *t, const char *line, time_t now, int *taken)
{
	jv req = jsonl_parse_object(line, strlen(line));
	struct shadow_error e = {0, NULL};
	int valid = jv_is_valid(req) && shadow_check_update_text(req, strlen(line), &e) == 0;
	jv freq = jv_invalid();
	struct shadow_rtree *rt = NULL;
	int fast = shadow_rtree_parse(line, strlen(line), &freq, &rt);
	if (fast && !valid)
		fprintf(stderr, "  taken but invalid: %s\n", line);
	CHECK(!fast || valid);
	*taken += fast;
	if (getenv("TEST_VERBOSE") && fast && strlen(line) < 200)
		fprintf(stderr, "fast: %s\n", line);
	if (valid) {
		jv acc = jv_invalid(), d1 = jv_invalid(), d2 = jv_invalid();
		struct jbuf l2 = {0};
		struct shadow_error e1, e2;
		int r1 = shadow_apply(doc, req, now, &acc, &d1, &e1);
		int r2 = shadow_tdoc_apply(t, fast ? freq : req, rt, now, "dev1", NULL, &l2, &d2, &e2);
		const char *why = shadow_agree(r1, acc, d1, &e1, r2, &l2, d2, &e2, *doc, t, "dev1");
		if (why)
			fprintf(stderr, "  %s differs: %s\n", why, line);
		CHECK(why == NULL);
		free(l2.p);
		jv_free(acc);
		jv_free(d1);
		jv_free(d2);
	}
	jv_free(req);
	jv_free(freq);
	shadow_rtree_free(rt);
}

static void test_fast(void)
{
	static const char *lines[] = {
		"{\"thing\":\"dev1\",\"state\":{\"reported\":{\"a\":1.50,\"b\":1e2,\"c\":-0,\"d\":\"s p\"}}}",
		" { \"state\" : { \"desired\" : { \"x\" : { \"y\" : true } } , \"reported\":null } , \"thing\" : \"dev1\" , \"v\":{\"q\":1} }  ",
		"{\"thing\":\"dev1\",\"state\":{\"reported\":{\"a\":1,\"a\":2}}}",
		"{\"thing\":\"dev1\",\"thing\":\"dev2\",\"state\":{}}",
		"{\"thing\":\"dev1\",\"state\":{\"reported\":{\"l\":[1,null]}}}",
		"{\"thing\":\"dev1\",\"state\":{\"reported\":{\"l\":[1,2]}}}",
		"{\"thing\":\"dev1\",\"state\":{\"reported\":{\"s\":\"a\\\"b\"}}}",
		"{\"thing\":\"dev1\",\"state\":{\"other\":{}}}",
		"{\"thing\":\"dev1\",\"state\":{\"desired\":5}}",
		"{\"thing\":\"dev1\",\"state\":null}",
		"{\"thing\":\"dev1\"}",
		"{\"thing\":7,\"state\":{}}",
		"{\"thing\":\"bad name\",\"state\":{}}",
		"{\"thing\":\"dev1\",\"shadow\":\"a.b\",\"state\":{}}",
		"{\"thing\":\"dev1\",\"version\":1.5,\"state\":{}}",
		"{\"thing\":\"dev1\",\"version\":-1,\"state\":{}}",
		"{\"thing\":\"dev1\",\"clientToken\":5,\"state\":{}}",
		"{\"thing\":\"dev1\",\"state\":{\"reported\":{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":{\"6\":1}}}}}}}}",
		"{\"thing\":\"dev1\",\"state\":{\"reported\":{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":{\"6\":{\"7\":1}}}}}}}}}",
		"{\"thing\":\"dev1\",\"state\":{\"reported\":{\"a\":\"\xc3\xa9\"}}}",
		"{\"thing\":\"dev1\",\"state\":{\"reported\":{\"a\":{},\"b\":null}},\"clientToken\":\"t\"}",
	};
	jv doc = jv_null();
	struct shadow_tdoc *t = shadow_tdoc_from_jv(doc);
	int taken = 0;
	for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
		fast_line(&doc, t, lines[i], 1700000000 + (time_t)i, &taken);
	CHECK(taken == 4); /* the first two, the 6 levels one and the last */
	/* random lines, compact and spread out */
	for (int i = 0; i < 3000; i++) {
		jv req = rand_request(jl_num(doc, "version", 0));
		jv s = jv_dump_string(req, i % 3 == 0 ? JV_PRINT_PRETTY : 0);
		fast_line(&doc, t, jv_string_value(s), 1700001000 + i, &taken);
		jv_free(s);
	}
	CHECK(taken > 1000);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "fast: %d lines taken\n", taken);
	shadow_tdoc_free(t);
	jv_free(doc);
}

int main(void)
{
	test_names();
	test_checks();
	test_merge();
	test_version_token();
	test_delta();
	test_tag();
	test_tree();
	test_fast();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
