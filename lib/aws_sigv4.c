#define _GNU_SOURCE /* asprintf, open_memstream */
#include "aws_sigv4.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHA256_LEN 32

static void hex_lower(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[SHA256_LEN];
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, d) < 0)
		return -1;
	hex_lower(d, sizeof d, out);
	return 0;
}

static int hmac(const void *key, size_t keylen, const char *msg, unsigned char out[SHA256_LEN])
{
	return gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, keylen, msg, strlen(msg), out) < 0 ? -1 : 0;
}

static int unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

char *aws_uri_encode(const char *s, size_t len, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	char *out = malloc(3 * len + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (unreserved(ch) || (keep_slash && ch == '/')) {
			*o++ = (char)ch;
		} else {
			*o++ = '%';
			*o++ = digits[ch >> 4];
			*o++ = digits[ch & 15];
		}
	}
	*o = 0;
	return out;
}

/* RFC 3986 remove_dot_segments, and runs of '/' collapsed, as AWS (and botocore) normalize. */
static char *normalize_path(const char *path)
{
	size_t n = strlen(path);
	if (n == 0)
		return strdup("/");
	char *out = malloc(n + 2);
	if (!out)
		return NULL;
	size_t o = 0;
	size_t nseg = 0;
	size_t *starts = malloc((n / 2 + 2) * sizeof *starts); /* where each kept segment begins */
	if (!starts) {
		free(out);
		return NULL;
	}
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* empty or "." segment: dropped */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (nseg)
				o = starts[--nseg];
		} else {
			starts[nseg++] = o;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
	}
	free(starts);
	/* re-add the leading and trailing slash the way botocore does */
	int lead = path[0] == '/', trail = path[n - 1] == '/' && o > 0;
	char *res = malloc(o + 3);
	if (!res) {
		free(out);
		return NULL;
	}
	size_t r = 0;
	if (lead)
		res[r++] = '/';
	memcpy(res + r, out, o);
	r += o;
	if (trail)
		res[r++] = '/';
	res[r] = 0;
	free(out);
	return res;
}

struct kv {
	char *k, *v;
	size_t idx; /* input order, to keep repeated header values in order */
};

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int kv_cmp_value(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	return c ? c : strcmp(x->v, y->v);
}

static void kv_free(struct kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].k);
		free(kv[i].v);
	}
	free(kv);
}

char *aws_sigv4_query(const struct aws_param *params, size_t n)
{
	struct kv *kv = calloc(n ? n : 1, sizeof *kv);
	if (!kv)
		return NULL;
	char *res = NULL;
	size_t total = 1;
	for (size_t i = 0; i < n; i++) {
		const char *v = params[i].value ? params[i].value : "";
		kv[i].k = aws_uri_encode(params[i].key, strlen(params[i].key), 0);
		kv[i].v = aws_uri_encode(v, strlen(v), 0);
		if (!kv[i].k || !kv[i].v)
			goto out;
		total += strlen(kv[i].k) + strlen(kv[i].v) + 2;
	}
	qsort(kv, n, sizeof *kv, kv_cmp_value);
	res = malloc(total);
	if (!res)
		goto out;
	char *o = res;
	for (size_t i = 0; i < n; i++)
		o += sprintf(o, "%s%s=%s", i ? "&" : "", kv[i].k, kv[i].v);
	*o = 0;
out:
	kv_free(kv, n);
	return res;
}

/* Trimall: leading and trailing white space dropped, inner runs turned into one space. */
static char *trimall(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	int space = 0;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f') {
			space = o != out;
			continue;
		}
		if (space)
			*o++ = ' ';
		space = 0;
		*o++ = *s;
	}
	*o = 0;
	return out;
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s);
	if (d)
		for (char *p = d; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	return d;
}

/* Writes the canonical headers block and the signed-header list. */
static int canonical_headers(const struct aws_sigv4_req *r, const struct aws_creds *c,
			     const char *amz_date, FILE *block, char **signed_list)
{
	size_t n = r->nheaders + 3, m = 0;
	struct kv *kv = calloc(n, sizeof *kv);
	if (!kv)
		return -1;
	int rc = -1;
	struct aws_header all[3] = {{"host", r->host}, {"x-amz-date", amz_date}, {"x-amz-security-token", c->session_token}};
	for (size_t i = 0; i < n; i++) {
		const struct aws_header *h = i < 3 ? &all[i] : &r->headers[i - 3];
		if (!h->value)
			continue;
		kv[m].k = lower_dup(h->name);
		kv[m].v = trimall(h->value);
		kv[m].idx = i;
		if (!kv[m].k || !kv[m].v) {
			m++;
			goto out;
		}
		m++;
	}
	qsort(kv, m, sizeof *kv, kv_cmp);
	char *list = NULL;
	size_t list_len = 0;
	FILE *lf = open_memstream(&list, &list_len);
	if (!lf)
		goto out;
	for (size_t i = 0; i < m; i++) {
		int first = i == 0 || strcmp(kv[i].k, kv[i - 1].k) != 0;
		int last = i + 1 == m || strcmp(kv[i].k, kv[i + 1].k) != 0;
		if (first) {
			fprintf(block, "%s:", kv[i].k);
			fprintf(lf, "%s%s", i ? ";" : "", kv[i].k);
		}
		fprintf(block, "%s%s", kv[i].v, last ? "\n" : ",");
	}
	if (fclose(lf) != 0) {
		free(list);
		goto out;
	}
	*signed_list = list;
	rc = 0;
out:
	kv_free(kv, m);
	return rc;
}

void aws_sigv4_result_free(struct aws_sigv4_result *out)
{
	free(out->authorization);
	free(out->query);
	free(out->canonical_request);
	free(out->string_to_sign);
	free(out->signature);
	memset(out, 0, sizeof *out);
}

int aws_sigv4_sign(const struct aws_sigv4_req *r, const struct aws_creds *c, const char *service,
		   time_t when, struct aws_sigv4_result *out)
{
	memset(out, 0, sizeof *out);
	if (!r->method || !r->host || !r->path || !c->region || !c->access_key || !c->secret_key) {
		errno = EINVAL;
		return -1;
	}
	struct tm tm;
	if (!gmtime_r(&when, &tm) || strftime(out->amz_date, sizeof out->amz_date, "%Y%m%dT%H%M%SZ", &tm) != 16) {
		errno = EINVAL;
		return -1;
	}
	char datestamp[9];
	memcpy(datestamp, out->amz_date, 8);
	datestamp[8] = 0;

	char *norm = NULL, *uri = NULL, *signed_list = NULL, *key = NULL;
	unsigned char k1[SHA256_LEN], k2[SHA256_LEN], sig[SHA256_LEN];
	char cr_hash[65];
	size_t cr_len = 0, sts_len = 0;
	FILE *f = NULL;
	int rc = -1;

	if (sha256_hex(r->body ? r->body : "", r->body ? r->body_len : 0, out->payload_hash) < 0)
		goto fail;
	out->query = aws_sigv4_query(r->params, r->nparams);
	norm = normalize_path(r->path);
	if (!out->query || !norm)
		goto fail;
	uri = aws_uri_encode(norm, strlen(norm), 1);
	if (!uri)
		goto fail;

	f = open_memstream(&out->canonical_request, &cr_len);
	if (!f)
		goto fail;
	fprintf(f, "%s\n%s\n%s\n", r->method, uri, out->query);
	if (canonical_headers(r, c, out->amz_date, f, &signed_list) < 0)
		goto fail;
	fprintf(f, "\n%s\n%s", signed_list, out->payload_hash);
	if (fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	f = NULL;

	if (sha256_hex(out->canonical_request, cr_len, cr_hash) < 0)
		goto fail;
	f = open_memstream(&out->string_to_sign, &sts_len);
	if (!f)
		goto fail;
	fprintf(f, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date, datestamp, c->region,
		service, cr_hash);
	if (fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	f = NULL;

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
	if (asprintf(&key, "AWS4%s", c->secret_key) < 0) {
		key = NULL;
		goto fail;
	}
	if (hmac(key, strlen(key), datestamp, k1) < 0 || hmac(k1, sizeof k1, c->region, k2) < 0 ||
	    hmac(k2, sizeof k2, service, k1) < 0 || hmac(k1, sizeof k1, "aws4_request", k2) < 0 ||
	    hmac(k2, sizeof k2, out->string_to_sign, sig) < 0)
		goto fail;
	out->signature = malloc(2 * SHA256_LEN + 1);
	if (!out->signature)
		goto fail;
	hex_lower(sig, sizeof sig, out->signature);
	if (asprintf(&out->authorization,
		     "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
		     c->access_key, datestamp, c->region, service, signed_list, out->signature) < 0) {
		out->authorization = NULL;
		goto fail;
	}
	rc = 0;
fail:
	if (f)
		fclose(f);
	if (key) {
		gnutls_memset(key, 0, strlen(key));
		free(key);
	}
	gnutls_memset(k1, 0, sizeof k1);
	gnutls_memset(k2, 0, sizeof k2);
	free(norm);
	free(uri);
	free(signed_list);
	if (rc < 0) {
		int e = errno ? errno : ENOMEM;
		aws_sigv4_result_free(out);
		errno = e;
	}
	return rc;
}
