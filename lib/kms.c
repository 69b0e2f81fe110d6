#include "kms.h"

#include "kms_aws.h"
#include "kms_local.h"

#include <nettle/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *kms_b64_encode(const uint8_t *in, size_t n)
{
	char *out = malloc(BASE64_ENCODE_RAW_LENGTH(n) + 1);
	if (!out)
		return NULL;
	base64_encode_raw(out, n, in);
	out[BASE64_ENCODE_RAW_LENGTH(n)] = 0;
	return out;
}

int kms_b64_decode(const char *s, uint8_t **out, size_t *n)
{
	size_t len = strlen(s);
	/* nettle skips whitespace; a ciphertext field must be exactly base64 */
	if (len == 0 || len % 4 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != len)
		return -1;
	uint8_t *buf = malloc(BASE64_DECODE_LENGTH(len) + 1);
	if (!buf)
		return -1;
	struct base64_decode_ctx c;
	size_t got = BASE64_DECODE_LENGTH(len) + 1;
	base64_decode_init(&c);
	if (!base64_decode_update(&c, &got, buf, len, s) || !base64_decode_final(&c)) {
		free(buf);
		return -1;
	}
	*out = buf;
	*n = got;
	return 0;
}

char *kms_context_canonical(jv ctx, char *err, size_t errlen)
{
	if (jv_get_kind(ctx) == JV_KIND_NULL || jv_get_kind(ctx) == JV_KIND_INVALID)
		return strdup("");
	if (jv_get_kind(ctx) != JV_KIND_OBJECT) {
		snprintf(err, errlen, "encryption context is not a JSON object");
		return NULL;
	}
	int ok = 1, count = 0;
	jv_object_foreach(ctx, k, v)
	{
		if (jv_get_kind(v) != JV_KIND_STRING)
			ok = 0;
		count++;
		jv_free(k);
		jv_free(v);
	}
	if (!ok) {
		snprintf(err, errlen, "encryption context values must be strings");
		return NULL;
	}
	if (count == 0)
		return strdup("");
	jv s = jv_dump_string(jv_copy(ctx), JV_PRINT_SORTED);
	char *out = strdup(jv_string_value(s));
	jv_free(s);
	return out;
}

int kms_encrypt(struct kms *k, const char *key_id, const uint8_t *pt, size_t n, jv ctx, char **b64,
                char *err, size_t errlen)
{
	if (n == 0 || n > KMS_MAX_PLAINTEXT) {
		snprintf(err, errlen, "plaintext must be 1 to %d bytes", KMS_MAX_PLAINTEXT);
		return KMS_REJECTED;
	}
	char *canon = kms_context_canonical(ctx, err, errlen);
	if (!canon)
		return KMS_REJECTED;
	int rc = k->aws ? kms_aws_encrypt(k->aws, key_id, pt, n, ctx, b64, err, errlen)
	                : kms_local_encrypt(&k->local, key_id, pt, n, canon, b64, err, errlen);
	free(canon);
	return rc;
}

int kms_decrypt(struct kms *k, const char *key_id, const char *b64, jv ctx, uint8_t **pt, size_t *n,
                char *err, size_t errlen)
{
	char *canon = kms_context_canonical(ctx, err, errlen);
	if (!canon)
		return KMS_REJECTED;
	int rc = k->aws ? kms_aws_decrypt(k->aws, key_id, b64, ctx, pt, n, err, errlen)
	                : kms_local_decrypt(&k->local, key_id, b64, canon, pt, n, err, errlen);
	free(canon);
	return rc;
}

void kms_free(struct kms *k)
{
	kek_keyring_free(&k->local);
	kms_aws_close(k->aws);
	k->aws = NULL;
}
