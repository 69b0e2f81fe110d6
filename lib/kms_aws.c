#include "kms_aws.h"

#include "aws_creds.h"
#include "aws_sigv4.h"
#include "jsonl.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kms_aws {
	struct aws_creds creds;
	char *url;  /* scheme://host[:port]/ */
	char *host; /* the Host header as curl sends it */
	CURL *curl;
};

struct buf {
	char *p;
	size_t n;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t len = size * nmemb;
	if (b->n + len > 1 << 20)
		return 0;
	char *np = realloc(b->p, b->n + len + 1);
	if (!np)
		return 0;
	memcpy(np + b->n, data, len);
	b->p = np;
	b->n += len;
	b->p[b->n] = 0;
	return len;
}

/* "http://127.0.0.1:4566" -> url "http://127.0.0.1:4566/", host "127.0.0.1:4566" */
static int split_endpoint(const char *ep, char **url, char **host)
{
	const char *h = strstr(ep, "://");
	int https = 1;
	if (h) {
		if (strncmp(ep, "http://", 7) == 0)
			https = 0;
		else if (strncmp(ep, "https://", 8) != 0)
			return -1;
		h += 3;
	} else {
		h = ep;
	}
	size_t hl = strcspn(h, "/");
	if (hl == 0 || (h[hl] && strcmp(h + hl, "/") != 0))
		return -1;
	*host = strndup(h, hl);
	size_t ul = hl + 10;
	*url = malloc(ul);
	if (!*host || !*url)
		return -1;
	snprintf(*url, ul, "%s://%.*s/", https ? "https" : "http", (int)hl, h);
	/* curl leaves a default port out of Host; sign what is sent */
	char *colon = strrchr(*host, ':');
	if (colon && !strchr(*host, ']') == !strchr(colon, ']') &&
	    strcmp(colon + 1, https ? "443" : "80") == 0)
		*colon = 0;
	return 0;
}

int kms_aws_open(struct kms *k, const char *endpoint, const char *region, char *err, size_t errlen)
{
	struct kms_aws *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	aws_creds_from_env(&a->creds, "AWS_ENDPOINT_URL_KMS");
	if (!a->creds.endpoint)
		aws_creds_set(&a->creds.endpoint, getenv("AWS_ENDPOINT_URL"));
	if (endpoint)
		aws_creds_set(&a->creds.endpoint, endpoint);
	if (region)
		aws_creds_set(&a->creds.region, region);
	const char *missing = aws_creds_missing(&a->creds);
	if (missing) {
		snprintf(err, errlen, "AWS KMS: %s", missing);
		kms_aws_close(a);
		return -1;
	}
	char def[128];
	const char *ep = a->creds.endpoint;
	if (!ep) {
		snprintf(def, sizeof def, "https://kms.%s.amazonaws.com", a->creds.region);
		ep = def;
	}
	if (split_endpoint(ep, &a->url, &a->host) < 0) {
		snprintf(err, errlen, "AWS KMS endpoint \"%s\": expected http(s)://host[:port]", ep);
		kms_aws_close(a);
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(a->curl = curl_easy_init())) {
		snprintf(err, errlen, "unable to initialise libcurl");
		kms_aws_close(a);
		return -1;
	}
	k->aws = a;
	return 0;
}

void kms_aws_close(struct kms_aws *a)
{
	if (!a)
		return;
	if (a->curl)
		curl_easy_cleanup(a->curl);
	aws_creds_free(&a->creds);
	free(a->url);
	free(a->host);
	free(a);
}

/* POST one TrentService action. Returns KMS_OK with *resp, or an error with err set. body is
 * wiped by the caller. */
static int call(struct kms_aws *a, const char *action, const char *body, jv *resp, char *err, size_t errlen)
{
	char target[64];
	snprintf(target, sizeof target, "TrentService.%s", action);
	struct aws_header hs[] = {{"Content-Type", "application/x-amz-json-1.1"}, {"X-Amz-Target", target}};
	struct aws_sigv4_req r = {
	    .method = "POST", .host = a->host, .path = "/", .headers = hs, .nheaders = 2,
	    .body = body, .body_len = strlen(body),
	};
	struct aws_sigv4_result s;
	if (aws_sigv4_sign(&r, &a->creds, "kms", time(NULL), &s) < 0) {
		snprintf(err, errlen, "unable to sign the request");
		return KMS_TEMPORARY;
	}
	char h_auth[1024], h_date[64], h_target[96], *h_token = NULL;
	snprintf(h_auth, sizeof h_auth, "Authorization: %s", s.authorization);
	snprintf(h_date, sizeof h_date, "X-Amz-Date: %s", s.amz_date);
	snprintf(h_target, sizeof h_target, "X-Amz-Target: %s", target);
	struct curl_slist *hl = NULL, *t;
	int ok = (t = curl_slist_append(hl, "Content-Type: application/x-amz-json-1.1")) && (hl = t) &&
	         (t = curl_slist_append(hl, h_target)) && (hl = t) && (t = curl_slist_append(hl, h_date)) && (hl = t) &&
	         (t = curl_slist_append(hl, h_auth)) && (hl = t) && (t = curl_slist_append(hl, "Expect:")) && (hl = t);
	if (ok && a->creds.session_token) {
		size_t n = strlen(a->creds.session_token) + 32;
		h_token = malloc(n);
		ok = h_token && snprintf(h_token, n, "X-Amz-Security-Token: %s", a->creds.session_token) > 0 &&
		     (t = curl_slist_append(hl, h_token)) && (hl = t);
	}
	aws_sigv4_result_free(&s);
	free(h_token);
	if (!ok) {
		curl_slist_free_all(hl);
		snprintf(err, errlen, "out of memory");
		return KMS_TEMPORARY;
	}
	struct buf b = {0};
	CURL *c = a->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, a->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	CURLcode cc = curl_easy_perform(c);
	curl_slist_free_all(hl);
	/* the request body, with any plaintext, is the caller's; the response may hold plaintext */
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "AWS KMS %s at %s: %s", action, a->url, curl_easy_strerror(cc));
		if (b.p)
			memset(b.p, 0, b.n);
		free(b.p);
		return KMS_TEMPORARY;
	}
	jv v = b.p ? jv_parse_sized(b.p, (int)b.n) : jv_invalid();
	if (status == 200 && jv_get_kind(v) == JV_KIND_OBJECT) {
		memset(b.p, 0, b.n);
		free(b.p);
		*resp = v;
		return KMS_OK;
	}
	const char *type = jv_get_kind(v) == JV_KIND_OBJECT ? jl_str(v, "__type") : NULL;
	char code[64] = "";
	if (!type && b.n) {
		/* IAM-style XML errors (signature, access) carry <Code> */
		const char *c0 = strstr(b.p, "<Code>"), *c1 = c0 ? strstr(c0, "</Code>") : NULL;
		if (c1 && c1 - c0 - 6 < (long)sizeof code) {
			memcpy(code, c0 + 6, (size_t)(c1 - c0 - 6));
			code[c1 - c0 - 6] = 0;
			type = code;
		}
	}
	const char *msg = jv_get_kind(v) == JV_KIND_OBJECT ? jl_str(v, "message") : NULL;
	if (!msg && jv_get_kind(v) == JV_KIND_OBJECT)
		msg = jl_str(v, "Message");
	if (type && strchr(type, '#'))
		type = strchr(type, '#') + 1;
	snprintf(err, errlen, "AWS KMS %s: HTTP %ld%s%s%s%s", action, status, type ? " " : "", type ? type : "",
	         msg ? ": " : "", msg ? msg : "");
	/* throttling and service faults pass; a refused request will be refused again */
	int rc = status >= 500 || status == 429 || (type && strstr(type, "Throttl")) ? KMS_TEMPORARY : KMS_REJECTED;
	jv_free(v);
	free(b.p);
	return rc;
}

static jv request(const char *key_id, jv ctx)
{
	jv req = jv_object();
	if (key_id)
		req = jv_object_set(req, jv_string("KeyId"), jv_string(key_id));
	if (jv_get_kind(ctx) == JV_KIND_OBJECT && jv_object_length(jv_copy(ctx)) > 0)
		req = jv_object_set(req, jv_string("EncryptionContext"), jv_copy(ctx));
	return req;
}

static char *dump_wipe_later(jv req)
{
	jv s = jv_dump_string(req, 0);
	char *body = strdup(jv_string_value(s));
	/* the jv copy may hold base64 plaintext too */
	memset((char *)jv_string_value(s), 0, strlen(jv_string_value(s)));
	jv_free(s);
	return body;
}

int kms_aws_encrypt(struct kms_aws *a, const char *key_id, const uint8_t *pt, size_t n, jv ctx, char **b64,
                    char *err, size_t errlen)
{
	char *p64 = kms_b64_encode(pt, n);
	if (!p64) {
		snprintf(err, errlen, "out of memory");
		return KMS_TEMPORARY;
	}
	jv req = request(key_id, ctx);
	req = jv_object_set(req, jv_string("Plaintext"), jv_string(p64));
	memset(p64, 0, strlen(p64));
	free(p64);
	char *body = dump_wipe_later(req);
	if (!body) {
		snprintf(err, errlen, "out of memory");
		return KMS_TEMPORARY;
	}
	jv resp;
	int rc = call(a, "Encrypt", body, &resp, err, errlen);
	memset(body, 0, strlen(body));
	free(body);
	if (rc != KMS_OK)
		return rc;
	const char *blob = jl_str(resp, "CiphertextBlob");
	if (!blob || !(*b64 = strdup(blob))) {
		snprintf(err, errlen, "AWS KMS Encrypt: the answer has no CiphertextBlob");
		jv_free(resp);
		return KMS_TEMPORARY;
	}
	jv_free(resp);
	return KMS_OK;
}

int kms_aws_decrypt(struct kms_aws *a, const char *key_id, const char *b64, jv ctx, uint8_t **pt, size_t *n,
                    char *err, size_t errlen)
{
	uint8_t *raw;
	size_t rl;
	if (kms_b64_decode(b64, &raw, &rl) < 0) {
		snprintf(err, errlen, "ciphertext is not base64");
		return KMS_REJECTED;
	}
	free(raw);
	jv req = request(key_id, ctx);
	req = jv_object_set(req, jv_string("CiphertextBlob"), jv_string(b64));
	char *body = dump_wipe_later(req);
	if (!body) {
		snprintf(err, errlen, "out of memory");
		return KMS_TEMPORARY;
	}
	jv resp;
	int rc = call(a, "Decrypt", body, &resp, err, errlen);
	free(body);
	if (rc != KMS_OK)
		return rc;
	const char *p64 = jl_str(resp, "Plaintext");
	rc = KMS_OK;
	if (!p64 || kms_b64_decode(p64, pt, n) < 0) {
		snprintf(err, errlen, "AWS KMS Decrypt: the answer has no Plaintext");
		rc = KMS_TEMPORARY;
	}
	if (p64)
		memset((char *)p64, 0, strlen(p64));
	jv_free(resp);
	return rc;
}
