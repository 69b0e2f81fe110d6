#include "kms_fields.h"

#include "hex.h"
#include "jsonl.h"
#include "keywrap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kms_encoding_parse(const char *s, enum kms_encoding *e)
{
	if (strcmp(s, "hex") == 0)
		*e = KMS_ENC_HEX;
	else if (strcmp(s, "base64") == 0)
		*e = KMS_ENC_BASE64;
	else if (strcmp(s, "text") == 0)
		*e = KMS_ENC_TEXT;
	else
		return -1;
	return 0;
}

jv kms_record_context(const struct kms_field_opts *o, jv rec)
{
	jv ctx = jl_get(rec, "kms_context");
	if (jv_get_kind(ctx) == JV_KIND_INVALID || jv_get_kind(ctx) == JV_KIND_NULL) {
		jv_free(ctx);
		ctx = jv_object();
	} else if (jv_get_kind(ctx) != JV_KIND_OBJECT) {
		jv_free(ctx);
		return jv_invalid_with_msg(jv_string("kms_context is not an object"));
	}
	if (jv_get_kind(o->context) == JV_KIND_OBJECT)
		ctx = jv_object_merge(ctx, jv_copy(o->context));
	for (size_t i = 0; i < o->nctx; i++) {
		jv v = jl_get(rec, o->ctx_fields[i]);
		if (jv_get_kind(v) == JV_KIND_NUMBER)
			v = jv_dump_string(v, 0);
		if (jv_get_kind(v) != JV_KIND_STRING) {
			jv_free(v);
			jv_free(ctx);
			return jv_invalid_with_msg(jl_fmt("context field \"%s\" is missing or not a string", o->ctx_fields[i]));
		}
		ctx = jv_object_set(ctx, jv_string(o->ctx_fields[i]), v);
	}
	return ctx;
}

static jv fail(jv rec, jv ctx, const char *field, const char *why)
{
	jv_free(rec);
	jv_free(ctx);
	return jv_invalid_with_msg(jl_fmt("field \"%s\": %s", field, why));
}

static void wipe_free(uint8_t *p, size_t n)
{
	if (p) {
		memset(p, 0, n);
		free(p);
	}
}

/* plaintext JSON value -> bytes */
static int decode_plain(enum kms_encoding enc, const char *s, uint8_t **out, size_t *n)
{
	size_t len = strlen(s);
	if (enc == KMS_ENC_BASE64)
		return kms_b64_decode(s, out, n);
	uint8_t *b = malloc(len + 1);
	if (!b)
		return -1;
	if (enc == KMS_ENC_TEXT) {
		memcpy(b, s, len);
		*n = len;
	} else {
		long m = hex_decode(s, b, len);
		if (m <= 0) {
			free(b);
			return -1;
		}
		*n = (size_t)m;
	}
	*out = b;
	return 0;
}

static jv encode_plain(enum kms_encoding enc, const uint8_t *p, size_t n)
{
	if (enc == KMS_ENC_TEXT) {
		if (memchr(p, 0, n))
			return jv_invalid_with_msg(jv_string("plaintext holds a NUL byte; use --encoding hex"));
		/* jv_string_sized replaces invalid UTF-8 rather than failing; that is acceptable for text */
		return jv_string_sized((const char *)p, (int)n);
	}
	char *s;
	if (enc == KMS_ENC_BASE64) {
		s = kms_b64_encode(p, n);
	} else {
		s = malloc(2 * n + 1);
		if (s)
			hex_encode(p, n, s);
	}
	if (!s)
		return jv_invalid_with_msg(jv_string("out of memory"));
	jv v = jv_string(s);
	memset(s, 0, strlen(s));
	free(s);
	return v;
}

static char *cipher_name(const struct kms_field_opts *o, const char *field)
{
	size_t n = strlen(field) + strlen(o->suffix) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s%s", field, o->suffix);
	return s;
}

jv kms_fields_encrypt(struct kms *k, const char *key_id, const struct kms_field_opts *o, jv rec, int *temporary)
{
	char err[300];
	*temporary = 0;
	jv ctx = jv_null();
	int have_ctx = 0;
	for (size_t i = 0; i < o->nfields; i++) {
		const char *f = o->fields[i];
		jv v = jl_get(rec, f);
		if (jv_get_kind(v) == JV_KIND_INVALID) {
			jv_free(v);
			continue;
		}
		if (!have_ctx) {
			jv_free(ctx);
			ctx = kms_record_context(o, rec);
			if (!jv_is_valid(ctx)) {
				jv_free(v);
				jv_free(rec);
				return ctx;
			}
			have_ctx = 1;
		}
		uint8_t *pt = NULL;
		size_t n = 0;
		int bad = jv_get_kind(v) != JV_KIND_STRING || decode_plain(o->enc, jv_string_value(v), &pt, &n) < 0;
		jv_free(v);
		if (bad)
			return fail(rec, ctx, f, o->enc == KMS_ENC_HEX      ? "not a string of hex digits"
			                         : o->enc == KMS_ENC_BASE64 ? "not a string of base64"
			                                                    : "not a string");
		char *b64 = NULL;
		int rc = kms_encrypt(k, key_id, pt, n, ctx, &b64, err, sizeof err);
		wipe_free(pt, n);
		if (rc != KMS_OK) {
			*temporary = rc == KMS_TEMPORARY;
			return fail(rec, ctx, f, err);
		}
		char *cn = cipher_name(o, f);
		if (!cn) {
			free(b64);
			return fail(rec, ctx, f, "out of memory");
		}
		rec = jv_object_delete(rec, jv_string(f));
		rec = jv_object_set(rec, jv_string(cn), jv_string(b64));
		free(cn);
		free(b64);
	}
	/* the context goes with the ciphertext, where the registry loaders read it back */
	if (have_ctx && jv_object_length(jv_copy(ctx)) > 0)
		return jv_object_set(rec, jv_string("kms_context"), ctx);
	jv_free(ctx);
	return rec;
}

jv kms_fields_decrypt(struct kms *k, const char *key_id, const struct kms_field_opts *o, jv rec, int *temporary)
{
	char err[300];
	*temporary = 0;
	jv ctx = jv_null();
	int have_ctx = 0;
	for (size_t i = 0; i < o->nfields; i++) {
		const char *f = o->fields[i];
		char *cn = cipher_name(o, f);
		if (!cn)
			return fail(rec, ctx, f, "out of memory");
		jv v = jl_get(rec, cn);
		if (jv_get_kind(v) == JV_KIND_INVALID) {
			jv_free(v);
			free(cn);
			continue;
		}
		if (!have_ctx) {
			jv_free(ctx);
			ctx = kms_record_context(o, rec);
			if (!jv_is_valid(ctx)) {
				jv_free(v);
				jv_free(rec);
				free(cn);
				return ctx;
			}
			have_ctx = 1;
		}
		if (jv_get_kind(v) != JV_KIND_STRING) {
			jv_free(v);
			jv r = fail(rec, ctx, cn, "not a string of base64");
			free(cn);
			return r;
		}
		uint8_t *pt = NULL;
		size_t n = 0;
		int rc = kms_decrypt(k, key_id, jv_string_value(v), ctx, &pt, &n, err, sizeof err);
		jv_free(v);
		if (rc != KMS_OK) {
			*temporary = rc == KMS_TEMPORARY;
			jv r = fail(rec, ctx, cn, err);
			free(cn);
			return r;
		}
		jv plain = encode_plain(o->enc, pt, n);
		wipe_free(pt, n);
		if (!jv_is_valid(plain)) {
			jv_free(rec);
			jv_free(ctx);
			jv msg = jv_invalid_get_msg(plain);
			jv r = jv_invalid_with_msg(jl_fmt("field \"%s\": %s", cn, jv_string_value(msg)));
			jv_free(msg);
			free(cn);
			return r;
		}
		rec = jv_object_delete(rec, jv_string(cn));
		rec = jv_object_set(rec, jv_string(f), plain);
		free(cn);
	}
	jv_free(ctx);
	return have_ctx ? jv_object_delete(rec, jv_string("kms_context")) : rec;
}

jv kms_fields_wrap(const char *label, const struct kek *kek, const char **fields, size_t n, jv rec)
{
	for (size_t i = 0; i < n; i++) {
		const char *hex = jl_str(rec, fields[i]);
		if (!jl_has(rec, fields[i]))
			continue;
		uint8_t key[16];
		if (!hex || hex_decode_exact(hex, key, sizeof key) < 0)
			return fail(rec, jv_null(), fields[i], "not a 16-byte key in hex");
		jv env = keyenv_build(label, kek, key);
		memset(key, 0, sizeof key);
		if (!jv_is_valid(env)) {
			jv_free(env);
			return fail(rec, jv_null(), fields[i], "bad KEK");
		}
		rec = jv_object_set(rec, jv_string(fields[i]), env);
	}
	return rec;
}

jv kms_fields_unwrap(const struct kek_keyring *ring, const char **fields, size_t n, jv rec)
{
	char err[200];
	for (size_t i = 0; i < n; i++) {
		if (!jl_has(rec, fields[i]))
			continue;
		jv env = jl_get(rec, fields[i]);
		uint8_t key[16];
		int rc = keyenv_parse(env, ring, key, err, sizeof err);
		jv_free(env);
		if (rc < 0)
			return fail(rec, jv_null(), fields[i], err);
		char hex[33];
		hex_encode(key, sizeof key, hex);
		memset(key, 0, sizeof key);
		rec = jv_object_set(rec, jv_string(fields[i]), jv_string(hex));
		memset(hex, 0, sizeof hex);
	}
	return rec;
}
