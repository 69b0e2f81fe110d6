/* lib/aws_sigv4: AWS's published Signature Version 4 test suite (aws-sig-v4-test-suite, the
 * cases botocore's tests carry: credentials AKIDEXAMPLE, region us-east-1, service "service",
 * 2015-08-30T12:36:00Z), then, with "-", a signing mode for the botocore comparison: one JSON
 * request per line in, one JSON line with the wire path, query and signature out. */
#include "aws_sigv4.h"
#include "jsonl.h"
#include "linereader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define SUITE_TIME 1440938160 /* 20150830T123600Z */
#define AUTHZ "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define H0 "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY
#define STS "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

struct vector {
	const char *name, *method, *path;
	struct aws_param params[3];
	struct aws_header headers[4];
	const char *body, *token, *creq, *authz;
};

static const struct vector suite[] = {
	{"get-vanilla", "GET", "/", {{0}}, {{0}}, NULL, NULL, "GET\n/\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{"get-vanilla-empty-query-key", "GET", "/", {{"Param1", "value1"}}, {{0}}, NULL, NULL, "GET\n/\nParam1=value1\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
	{"get-vanilla-query-order-key-case", "GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}, {{0}}, NULL, NULL,
	 "GET\n/\nParam1=value1&Param2=value2\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
	{"get-vanilla-query-order-key", "GET", "/", {{"Param1", "value2"}, {"Param1", "Value1"}}, {{0}}, NULL, NULL,
	 "GET\n/\nParam1=Value1&Param1=value2\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
	{"get-vanilla-query-order-value", "GET", "/", {{"Param1", "value2"}, {"Param1", "value1"}}, {{0}}, NULL, NULL,
	 "GET\n/\nParam1=value1&Param1=value2\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
	{"get-vanilla-query-unreserved", "GET", "/",
	 {{"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
	   "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}},
	 {{0}}, NULL, NULL,
	 "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
	 "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
	{"get-vanilla-utf8-query", "GET", "/", {{"\xe1\x88\xb4", "bar"}}, {{0}}, NULL, NULL, "GET\n/\n%E1%88%B4=bar\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
	{"get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", {{0}}, {{0}}, NULL, NULL,
	 "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
	{"get-utf8", "GET", "/\xe1\x88\xb4", {{0}}, {{0}}, NULL, NULL, "GET\n/%E1%88%B4\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
	{"get-header-key-duplicate", "GET", "/", {{0}},
	 {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}, NULL, NULL,
	 "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\n"
	 "host;my-header1;x-amz-date\n" EMPTY,
	 AUTHZ "SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
	{"get-header-value-multiline", "GET", "/", {{0}}, {{"My-Header1", "value1\n  value2\n     value3"}}, NULL, NULL,
	 "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1 value2 value3\nx-amz-date:20150830T123600Z\n\n"
	 "host;my-header1;x-amz-date\n" EMPTY,
	 AUTHZ "SignedHeaders=host;my-header1;x-amz-date, Signature=cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd"},
	{"get-header-value-order", "GET", "/", {{0}},
	 {{"My-Header1", "value4"}, {"My-Header1", "value1"}, {"My-Header1", "value3"}, {"My-Header1", "value2"}}, NULL, NULL,
	 "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:20150830T123600Z\n\n"
	 "host;my-header1;x-amz-date\n" EMPTY,
	 AUTHZ "SignedHeaders=host;my-header1;x-amz-date, Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
	{"get-header-value-trim", "GET", "/", {{0}}, {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}, NULL, NULL,
	 "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\n"
	 "host;my-header1;my-header2;x-amz-date\n" EMPTY,
	 AUTHZ "SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
	{"post-vanilla", "POST", "/", {{0}}, {{0}}, NULL, NULL, "POST\n/\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
	{"post-vanilla-query", "POST", "/", {{"Param1", "value1"}}, {{0}}, NULL, NULL, "POST\n/\nParam1=value1\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
	{"post-header-key-sort", "POST", "/", {{0}}, {{"My-Header1", "value1"}}, NULL, NULL,
	 "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY,
	 AUTHZ "SignedHeaders=host;my-header1;x-amz-date, Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
	{"post-header-value-case", "POST", "/", {{0}}, {{"My-Header1", "VALUE1"}}, NULL, NULL,
	 "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY,
	 AUTHZ "SignedHeaders=host;my-header1;x-amz-date, Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
	{"post-x-www-form-urlencoded", "POST", "/", {{0}}, {{"Content-Type", "application/x-www-form-urlencoded"}},
	 "Param1=value1", NULL,
	 "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
	 "content-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	 AUTHZ "SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
	{"post-x-www-form-urlencoded-parameters", "POST", "/", {{0}},
	 {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}}, "Param1=value1", NULL,
	 "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\n"
	 "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	 AUTHZ "SignedHeaders=content-type;host;x-amz-date, Signature=1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
	{"post-sts-header-before", "POST", "/", {{0}}, {{0}}, NULL, STS,
	 "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:" STS
	 "\n\nhost;x-amz-date;x-amz-security-token\n" EMPTY,
	 AUTHZ "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
	{"get-vanilla-with-session-token", "GET", "/", {{0}}, {{0}}, NULL,
	 "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
	 "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
	 "x-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\n"
	 "host;x-amz-date;x-amz-security-token\n" EMPTY,
	 AUTHZ "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"},
	/* normalize-path/ */
	{"get-relative", "GET", "/example/..", {{0}}, {{0}}, NULL, NULL, "GET\n/\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{"get-relative-relative", "GET", "/example1/example2/../..", {{0}}, {{0}}, NULL, NULL, "GET\n/\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{"get-slash", "GET", "//", {{0}}, {{0}}, NULL, NULL, "GET\n/\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{"get-slash-dot-slash", "GET", "/./", {{0}}, {{0}}, NULL, NULL, "GET\n/\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{"get-slash-pointless-dot", "GET", "/./example", {{0}}, {{0}}, NULL, NULL, "GET\n/example\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
	{"get-slashes", "GET", "//example//", {{0}}, {{0}}, NULL, NULL, "GET\n/example/\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
	{"get-space", "GET", "/example space/", {{0}}, {{0}}, NULL, NULL, "GET\n/example%20space/\n\n" H0,
	 AUTHZ "SignedHeaders=host;x-amz-date, Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
};

static size_t count_params(const struct aws_param *p, size_t max)
{
	size_t n = 0;
	while (n < max && p[n].key)
		n++;
	return n;
}

static size_t count_headers(const struct aws_header *h, size_t max)
{
	size_t n = 0;
	while (n < max && h[n].name)
		n++;
	return n;
}

static void run_suite(void)
{
	for (size_t i = 0; i < sizeof suite / sizeof suite[0]; i++) {
		const struct vector *v = &suite[i];
		struct aws_creds c = {.region = "us-east-1", .access_key = "AKIDEXAMPLE",
				      .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
				      .session_token = (char *)v->token};
		struct aws_sigv4_req r = {
			.method = v->method, .host = "example.amazonaws.com", .path = v->path,
			.params = v->params, .nparams = count_params(v->params, 3),
			.headers = v->headers, .nheaders = count_headers(v->headers, 4),
			.body = v->body, .body_len = v->body ? strlen(v->body) : 0,
		};
		struct aws_sigv4_result out;
		if (aws_sigv4_sign(&r, &c, "service", SUITE_TIME, &out) < 0) {
			fprintf(stderr, "%s: signing failed\n", v->name);
			failures++;
			continue;
		}
		if (strcmp(out.canonical_request, v->creq) != 0) {
			fprintf(stderr, "%s: canonical request\n got: %s\nwant: %s\n", v->name, out.canonical_request, v->creq);
			failures++;
		}
		if (strcmp(out.authorization, v->authz) != 0) {
			fprintf(stderr, "%s: authorization\n got: %s\nwant: %s\n", v->name, out.authorization, v->authz);
			failures++;
		}
		aws_sigv4_result_free(&out);
	}
}

static void check_encode(void)
{
	char *e = aws_uri_encode("urn:imei:352656100000000", 24, 0);
	if (!e || strcmp(e, "urn%3Aimei%3A352656100000000") != 0) {
		fprintf(stderr, "aws_uri_encode: got %s\n", e ? e : "(null)");
		failures++;
	}
	free(e);
}

/* The string of s, kept alive in *keep (s consumed); "" when s is not a string. */
static const char *keep_str(jv *keep, jv s)
{
	if (jv_get_kind(s) != JV_KIND_STRING) {
		jv_free(s);
		return "";
	}
	*keep = jv_array_append(*keep, jv_copy(s));
	const char *p = jv_string_value(s);
	jv_free(s);
	return p;
}

/* {"name":..,"method":..,"host":..,"path":.. | "segments":[..],"params":[[k,v],..],
 *  "headers":[[n,v],..],"body":..,"region":..,"service":..,"access_key":..,"secret_key":..,
 *  "token":..,"time":N}: the path is built from segments with aws_uri_encode, as the tools do. */
static int sign_line(jv req)
{
	struct aws_creds c = {.region = (char *)jl_str(req, "region"), .access_key = (char *)jl_str(req, "access_key"),
			      .secret_key = (char *)jl_str(req, "secret_key"), .session_token = (char *)jl_str(req, "token")};
	jv params = jl_get(req, "params"), headers = jl_get(req, "headers"), segs = jl_get(req, "segments");
	int np = jv_get_kind(params) == JV_KIND_ARRAY ? jv_array_length(jv_copy(params)) : 0;
	int nh = jv_get_kind(headers) == JV_KIND_ARRAY ? jv_array_length(jv_copy(headers)) : 0;
	struct aws_param p[16];
	struct aws_header h[16];
	if (np > 16 || nh > 16)
		return -1;
	jv keep = jv_array(); /* holds the strings the pointers above borrow */
	for (int i = 0; i < np; i++) {
		jv kv = jv_array_get(jv_copy(params), i);
		p[i].key = keep_str(&keep, jv_array_get(jv_copy(kv), 0));
		p[i].value = keep_str(&keep, jv_array_get(kv, 1));
	}
	for (int i = 0; i < nh; i++) {
		jv kv = jv_array_get(jv_copy(headers), i);
		h[i].name = keep_str(&keep, jv_array_get(jv_copy(kv), 0));
		h[i].value = keep_str(&keep, jv_array_get(kv, 1));
	}
	char path[4096] = "";
	if (jv_get_kind(segs) == JV_KIND_ARRAY) {
		jv_array_foreach(segs, i, s)
		{
			char *e = aws_uri_encode(jv_string_value(s), jv_string_length_bytes(jv_copy(s)), 0);
			strncat(path, "/", sizeof path - strlen(path) - 1);
			strncat(path, e, sizeof path - strlen(path) - 1);
			free(e);
			jv_free(s);
		}
	} else {
		snprintf(path, sizeof path, "%s", jl_str(req, "path"));
	}
	const char *body = jl_str(req, "body");
	struct aws_sigv4_req r = {.method = jl_str(req, "method"), .host = jl_str(req, "host"), .path = path,
				  .params = p, .nparams = (size_t)np, .headers = h, .nheaders = (size_t)nh,
				  .body = body, .body_len = body ? strlen(body) : 0};
	struct aws_sigv4_result out;
	int rc = aws_sigv4_sign(&r, &c, jl_str(req, "service"), (time_t)jl_num(req, "time", 0), &out);
	if (rc == 0) {
		jv o = jv_object();
		o = jv_object_set(o, jv_string("name"), jl_get(req, "name"));
		o = jv_object_set(o, jv_string("path"), jv_string(path));
		o = jv_object_set(o, jv_string("query"), jv_string(out.query));
		o = jv_object_set(o, jv_string("amz_date"), jv_string(out.amz_date));
		o = jv_object_set(o, jv_string("authorization"), jv_string(out.authorization));
		o = jv_object_set(o, jv_string("canonical_request"), jv_string(out.canonical_request));
		jsonl_write(stdout, o);
		aws_sigv4_result_free(&out);
	}
	jv_free(keep);
	jv_free(params);
	jv_free(headers);
	jv_free(segs);
	return rc;
}

static int sign_stdin(void)
{
	struct linereader lr;
	lr_init(&lr, STDIN_FILENO, LR_DEFAULT_MAX);
	char *line;
	size_t len;
	int rc, bad = 0;
	while ((rc = lr_getline(&lr, &line, &len)) > 0) {
		jv req = rc == LR_LINE ? jsonl_parse_object(line, len) : jv_invalid();
		if (!jv_is_valid(req) || sign_line(req) < 0) {
			fprintf(stderr, "line %lu: cannot sign\n", lr.lineno);
			bad = 1;
		}
		jv_free(req);
	}
	lr_free(&lr);
	return bad || rc < 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "-") == 0)
		return sign_stdin();
	run_suite();
	check_encode();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("%zu published SigV4 vectors match\n", sizeof suite / sizeof suite[0]);
	return failures ? 1 : 0;
}
