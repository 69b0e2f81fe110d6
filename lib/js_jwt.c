#include "js_jwt.h"

#include <curl/curl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jv.h>
#include <nettle/base64.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "jsonl.h"
#include "log.h"

#define REFETCH_MIN 60 /* seconds between fetches for an unknown kid */
#define LEEWAY 60      /* clock skew allowed on exp and nbf */

struct jwk {
	char *kid;
	char *kty; /* EC, RSA, OKP */
	gnutls_pubkey_t pk;
};

struct js_jwt {
	char *issuer, *audience, *src;
	pthread_mutex_t mu;
	struct jwk *keys;
	size_t n;
	time_t fetched;
};

static int b64url(const char *in, size_t len, uint8_t **out, size_t *outlen)
{
	/* JOSE leaves out the padding; nettle's decoder wants it */
	struct base64_decode_ctx ctx;
	size_t plen = (len + 3) / 4 * 4;
	char *padded = malloc(plen + 1);
	uint8_t *buf = malloc(BASE64_DECODE_LENGTH(plen) + 1);
	size_t n = BASE64_DECODE_LENGTH(plen);
	if (!buf || !padded || memchr(in, '=', len)) {
		free(buf);
		free(padded);
		return -1;
	}
	memcpy(padded, in, len);
	memset(padded + len, '=', plen - len);
	base64url_decode_init(&ctx);
	int ok = base64_decode_update(&ctx, &n, buf, plen, padded) && base64_decode_final(&ctx);
	free(padded);
	if (!ok) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

static int b64url_str(jv o, const char *key, gnutls_datum_t *d)
{
	const char *s = jl_str(o, key);
	uint8_t *b;
	size_t n;
	if (!s || b64url(s, strlen(s), &b, &n) != 0)
		return -1;
	d->data = b;
	d->size = (unsigned)n;
	return 0;
}

static void keys_free(struct jwk *k, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(k[i].kid);
		free(k[i].kty);
		gnutls_pubkey_deinit(k[i].pk);
	}
	free(k);
}

static int import_jwk(jv k, struct jwk *out)
{
	const char *kty = jl_str(k, "kty"), *crv = jl_str(k, "crv");
	gnutls_datum_t a = {0}, b = {0};
	int rc = -1;
	if (!kty || gnutls_pubkey_init(&out->pk) < 0)
		return -1;
	if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0) {
		if (b64url_str(k, "x", &a) == 0 && b64url_str(k, "y", &b) == 0)
			rc = gnutls_pubkey_import_ecc_raw(out->pk, GNUTLS_ECC_CURVE_SECP256R1, &a, &b) < 0 ? -1 : 0;
	} else if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0) {
		if (b64url_str(k, "x", &a) == 0)
			rc = gnutls_pubkey_import_ecc_raw(out->pk, GNUTLS_ECC_CURVE_ED25519, &a, NULL) < 0 ? -1 : 0;
	} else if (strcmp(kty, "RSA") == 0) {
		if (b64url_str(k, "n", &a) == 0 && b64url_str(k, "e", &b) == 0)
			rc = gnutls_pubkey_import_rsa_raw(out->pk, &a, &b) < 0 ? -1 : 0;
	}
	free(a.data);
	free(b.data);
	if (rc != 0) {
		gnutls_pubkey_deinit(out->pk);
		return -1;
	}
	out->kty = strdup(kty);
	out->kid = jl_str(k, "kid") ? strdup(jl_str(k, "kid")) : NULL;
	return 0;
}

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	if (b->n + n > (1 << 20))
		return 0;
	char *np = realloc(b->p, b->n + n + 1);
	if (!np)
		return 0;
	memcpy(np + b->n, p, n);
	b->p = np;
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

/* Load the JWKS from the file or URL; replaces the keys when it parses. Called with mu held. */
static int fetch(struct js_jwt *j, char *err, size_t errlen)
{
	struct buf b = {0};
	j->fetched = time(NULL);
	if (strncmp(j->src, "http://", 7) == 0 || strncmp(j->src, "https://", 8) == 0) {
		CURL *c = curl_easy_init();
		long code = 0;
		if (!c) {
			snprintf(err, errlen, "unable to start libcurl");
			return -1;
		}
		curl_easy_setopt(c, CURLOPT_URL, j->src);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		CURLcode rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_cleanup(c);
		if (rc != CURLE_OK || code != 200) {
			snprintf(err, errlen, "unable to fetch %s: %s", j->src,
			         rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP status not 200");
			free(b.p);
			return -1;
		}
	} else if (fs_read_file(j->src, &b.p, &b.n, 1 << 20) != 0) {
		snprintf(err, errlen, "unable to read %s: %m", j->src);
		return -1;
	}
	/* the issuer's server is as untrusted as any peer: the same checked parse as our input lines */
	jv set = jsonl_parse_object(b.p ? b.p : "", b.n);
	free(b.p);
	if (!jv_is_valid(set)) {
		jv msg = jv_invalid_get_msg(set);
		snprintf(err, errlen, "%s: not a JWKS: %s", j->src,
		         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "unreadable");
		jv_free(msg);
		return -1;
	}
	jv keys = jl_get(set, "keys");
	jv_free(set);
	if (jv_get_kind(keys) != JV_KIND_ARRAY) {
		jv_free(keys);
		snprintf(err, errlen, "%s: not a JWKS ({\"keys\":[...]})", j->src);
		return -1;
	}
	int len = jv_array_length(jv_copy(keys));
	struct jwk *v = calloc((size_t)len + 1, sizeof *v);
	size_t n = 0;
	for (int i = 0; i < len; i++) {
		jv k = jv_array_get(jv_copy(keys), i);
		if (jv_get_kind(k) == JV_KIND_OBJECT && import_jwk(k, &v[n]) == 0)
			n++;
		jv_free(k);
	}
	jv_free(keys);
	if (n == 0) {
		free(v);
		snprintf(err, errlen, "%s: no usable key (EC P-256, RSA, OKP Ed25519)", j->src);
		return -1;
	}
	keys_free(j->keys, j->n);
	j->keys = v;
	j->n = n;
	return 0;
}

struct js_jwt *js_jwt_new(const char *issuer, const char *audience, const char *jwks, char *err, size_t errlen)
{
	struct js_jwt *j = calloc(1, sizeof *j);
	j->issuer = strdup(issuer);
	j->audience = audience ? strdup(audience) : NULL;
	j->src = strdup(jwks);
	pthread_mutex_init(&j->mu, NULL);
	if (fetch(j, err, errlen) != 0) {
		js_jwt_free(j);
		return NULL;
	}
	return j;
}

void js_jwt_free(struct js_jwt *j)
{
	if (!j)
		return;
	keys_free(j->keys, j->n);
	free(j->issuer);
	free(j->audience);
	free(j->src);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

void js_jwt_reload(struct js_jwt *j)
{
	char err[256];
	pthread_mutex_lock(&j->mu);
	if (fetch(j, err, sizeof err) != 0)
		log_error("JWKS: %s; keeping the keys fetched before", err);
	pthread_mutex_unlock(&j->mu);
}

static int sig_verify(gnutls_pubkey_t pk, const char *alg, const gnutls_datum_t *data, const uint8_t *sig,
                      size_t siglen)
{
	gnutls_datum_t s = {.data = (unsigned char *)sig, .size = (unsigned)siglen};
	if (strcmp(alg, "RS256") == 0)
		return gnutls_pubkey_verify_data2(pk, GNUTLS_SIGN_RSA_SHA256, 0, data, &s) < 0 ? -1 : 0;
	if (strcmp(alg, "EdDSA") == 0)
		return gnutls_pubkey_verify_data2(pk, GNUTLS_SIGN_EDDSA_ED25519, 0, data, &s) < 0 ? -1 : 0;
	if (strcmp(alg, "ES256") == 0) {
		if (siglen != 64)
			return -1;
		gnutls_datum_t r = {.data = (unsigned char *)sig, .size = 32}, ss = {.data = (unsigned char *)sig + 32, .size = 32};
		gnutls_datum_t der;
		if (gnutls_encode_rs_value(&der, &r, &ss) < 0)
			return -1;
		int rc = gnutls_pubkey_verify_data2(pk, GNUTLS_SIGN_ECDSA_SHA256, 0, data, &der) < 0 ? -1 : 0;
		gnutls_free(der.data);
		return rc;
	}
	return -1;
}

static const char *kty_for(const char *alg)
{
	return strcmp(alg, "ES256") == 0 ? "EC" : strcmp(alg, "RS256") == 0 ? "RSA" : "OKP";
}

static int try_keys(struct js_jwt *j, const char *alg, const char *kid, const gnutls_datum_t *data,
                    const uint8_t *sig, size_t siglen, int *found)
{
	*found = 0;
	for (size_t i = 0; i < j->n; i++) {
		if (strcmp(j->keys[i].kty, kty_for(alg)) != 0 || (kid && j->keys[i].kid && strcmp(kid, j->keys[i].kid)))
			continue;
		*found = 1;
		if (sig_verify(j->keys[i].pk, alg, data, sig, siglen) == 0)
			return 0;
	}
	return -1;
}

static int aud_ok(jv claims, const char *want)
{
	if (!want)
		return 1;
	jv aud = jl_get(claims, "aud");
	int ok = 0;
	if (jv_get_kind(aud) == JV_KIND_STRING)
		ok = strcmp(jv_string_value(aud), want) == 0;
	else if (jv_get_kind(aud) == JV_KIND_ARRAY) {
		jv_array_foreach(aud, i, x)
		{
			if (jv_get_kind(x) == JV_KIND_STRING && strcmp(jv_string_value(x), want) == 0)
				ok = 1;
			jv_free(x);
		}
	}
	jv_free(aud);
	return ok;
}

int js_jwt_verify_at(struct js_jwt *j, const char *token, time_t now, char *err, size_t errlen)
{
	const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	uint8_t *hdr = NULL, *pl = NULL, *sig = NULL;
	size_t hl, pll, sl;
	int rc = -1;
	jv h = jv_invalid(), c = jv_invalid();
	if (!d2 || strchr(d2 + 1, '.') || b64url(token, (size_t)(d1 - token), &hdr, &hl) ||
	    b64url(d1 + 1, (size_t)(d2 - d1 - 1), &pl, &pll) || b64url(d2 + 1, strlen(d2 + 1), &sig, &sl)) {
		snprintf(err, errlen, "not a JWT");
		goto out;
	}
	h = jsonl_parse_object((char *)hdr, hl);
	c = jsonl_parse_object((char *)pl, pll);
	if (!jv_is_valid(h) || !jv_is_valid(c)) {
		snprintf(err, errlen, "JWT header or claims are not JSON objects");
		goto out;
	}
	const char *alg = jl_str(h, "alg"), *kid = jl_str(h, "kid");
	if (!alg || (strcmp(alg, "ES256") && strcmp(alg, "RS256") && strcmp(alg, "EdDSA"))) {
		snprintf(err, errlen, "JWT alg %s not accepted", alg ? alg : "(none)");
		goto out;
	}
	gnutls_datum_t data = {.data = (unsigned char *)token, .size = (unsigned)(d2 - token)};
	int found;
	pthread_mutex_lock(&j->mu);
	int ok = try_keys(j, alg, kid, &data, sig, sl, &found);
	if (ok != 0 && !found && time(NULL) - j->fetched >= REFETCH_MIN) {
		char e[200];
		if (fetch(j, e, sizeof e) == 0)
			ok = try_keys(j, alg, kid, &data, sig, sl, &found);
		else
			log_warn("JWKS: %s", e);
	}
	pthread_mutex_unlock(&j->mu);
	if (ok != 0) {
		snprintf(err, errlen, found ? "JWT signature does not verify" : "JWT key %s unknown", kid ? kid : "");
		goto out;
	}
	const char *iss = jl_str(c, "iss");
	if (!iss || strcmp(iss, j->issuer) != 0) {
		snprintf(err, errlen, "JWT issuer %s not accepted", iss ? iss : "(none)");
		goto out;
	}
	if (!aud_ok(c, j->audience)) {
		snprintf(err, errlen, "JWT audience does not name %s", j->audience);
		goto out;
	}
	double exp = jl_num(c, "exp", -1), nbf = jl_num(c, "nbf", 0);
	if (exp < 0 || (double)now > exp + LEEWAY) {
		snprintf(err, errlen, exp < 0 ? "JWT has no exp" : "JWT expired");
		goto out;
	}
	if ((double)now + LEEWAY < nbf) {
		snprintf(err, errlen, "JWT not valid yet");
		goto out;
	}
	rc = 0;
out:
	jv_free(h);
	jv_free(c);
	free(hdr);
	free(pl);
	free(sig);
	return rc;
}

int js_jwt_verify(struct js_jwt *j, const char *token, char *err, size_t errlen)
{
	return js_jwt_verify_at(j, token, time(NULL), err, errlen);
}
