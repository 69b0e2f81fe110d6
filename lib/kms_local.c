#include "kms_local.h"

#include "fsutil.h"
#include "hex.h"
#include "kms.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/gcm.h>
#include <nettle/memops.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { NONCE = 12, TAG = 16 };

int kms_local_load(struct kek_keyring *ring, const char *path, char *err, size_t errlen)
{
	if (kek_keyring_load(ring, path, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < ring->n; i++)
		if (ring->keks[i].len != 32) {
			snprintf(err, errlen, "%s: key \"%s\" is not 256 bits (64 hex digits)", path, ring->keks[i].label);
			kek_keyring_free(ring);
			return -1;
		}
	return 0;
}

static int name_ok(const char *name)
{
	size_t n = strlen(name);
	return n > 0 && n < 256 &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-") == n;
}

int kms_local_genkey(const char *path, const char *name, char *err, size_t errlen)
{
	if (!name_ok(name)) {
		snprintf(err, errlen, "key name \"%s\": use 1 to 255 of A-Z a-z 0-9 . _ / -", name);
		return -1;
	}
	char *text = NULL;
	size_t len = 0;
	if (fs_read_file(path, &text, &len, 1 << 20) < 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "unable to read %s: %s", path, strerror(errno));
			return -1;
		}
		text = strdup("");
		if (!text) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	struct kek_keyring ring;
	int rc = -1;
	if (kek_keyring_parse(&ring, text, len, path, err, errlen) < 0)
		goto out;
	int taken = kek_find(&ring, name) != NULL;
	kek_keyring_free(&ring);
	if (taken) {
		snprintf(err, errlen, "%s: a key named \"%s\" exists already", path, name);
		goto out;
	}
	uint8_t key[32];
	if (gnutls_rnd(GNUTLS_RND_KEY, key, sizeof key) < 0) {
		snprintf(err, errlen, "unable to get random bytes");
		goto out;
	}
	size_t cap = len + strlen(name) + 2 * sizeof key + 8;
	char *out = malloc(cap);
	if (!out) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	char hex[2 * sizeof key + 1];
	hex_encode(key, sizeof key, hex);
	int m = snprintf(out, cap, "%s%s%s: %s\n", text, len && text[len - 1] != '\n' ? "\n" : "", name, hex);
	mode_t old = umask(077);
	if (fs_write_atomic(path, out, (size_t)m) < 0)
		snprintf(err, errlen, "unable to write %s: %s", path, strerror(errno));
	else
		rc = 0;
	umask(old);
	memset(out, 0, (size_t)m);
	memset(hex, 0, sizeof hex);
	memset(key, 0, sizeof key);
	free(out);
out:
	memset(text, 0, len);
	free(text);
	return rc;
}

/* associated data: the blob header, then the canonical context */
static int gcm_start(struct gcm_aes256_ctx *g, const uint8_t key[32], const uint8_t *hdr, size_t hl,
                      const uint8_t *nonce, const char *ctx)
{
	gcm_aes256_set_key(g, key);
	gcm_aes256_set_iv(g, NONCE, nonce);
	size_t cl = strlen(ctx);
	/* GCM takes associated data in one piece unless pieces are multiples of the block size */
	uint8_t *aad = malloc(hl + cl);
	if (!aad)
		return -1;
	memcpy(aad, hdr, hl);
	memcpy(aad + hl, ctx, cl);
	gcm_aes256_update(g, hl + cl, aad);
	free(aad);
	return 0;
}

int kms_local_encrypt(const struct kek_keyring *ring, const char *key_id, const uint8_t *pt, size_t n,
                      const char *ctx, char **b64, char *err, size_t errlen)
{
	const struct kek *k = key_id ? kek_find(ring, key_id) : NULL;
	if (!k) {
		snprintf(err, errlen, "no key named \"%s\" in the keyring", key_id ? key_id : "");
		return KMS_REJECTED;
	}
	size_t il = strlen(key_id), hl = 2 + il;
	size_t bl = hl + NONCE + n + TAG;
	uint8_t *blob = malloc(bl);
	if (!blob) {
		snprintf(err, errlen, "out of memory");
		return KMS_TEMPORARY;
	}
	blob[0] = KMS_LOCAL_VERSION;
	blob[1] = (uint8_t)il;
	memcpy(blob + 2, key_id, il);
	uint8_t *nonce = blob + hl;
	if (gnutls_rnd(GNUTLS_RND_NONCE, nonce, NONCE) < 0) {
		free(blob);
		snprintf(err, errlen, "unable to get random bytes");
		return KMS_TEMPORARY;
	}
	struct gcm_aes256_ctx g;
	if (gcm_start(&g, k->key, blob, hl, nonce, ctx) < 0) {
		free(blob);
		snprintf(err, errlen, "out of memory");
		return KMS_TEMPORARY;
	}
	gcm_aes256_encrypt(&g, n, nonce + NONCE, pt);
	gcm_aes256_digest(&g, TAG, nonce + NONCE + n);
	memset(&g, 0, sizeof g);
	*b64 = kms_b64_encode(blob, bl);
	free(blob);
	if (!*b64) {
		snprintf(err, errlen, "out of memory");
		return KMS_TEMPORARY;
	}
	return KMS_OK;
}

int kms_local_decrypt(const struct kek_keyring *ring, const char *key_id, const char *b64, const char *ctx,
                      uint8_t **pt, size_t *n, char *err, size_t errlen)
{
	uint8_t *blob;
	size_t bl;
	if (kms_b64_decode(b64, &blob, &bl) < 0) {
		snprintf(err, errlen, "ciphertext is not base64");
		return KMS_REJECTED;
	}
	int rc = KMS_REJECTED;
	if (bl < 1 || blob[0] != KMS_LOCAL_VERSION) {
		snprintf(err, errlen, "not a kms-wrap local ciphertext (version byte 0x%02X%s)", bl ? blob[0] : 0,
		         bl && blob[0] == 0x01 ? "; an AWS KMS ciphertext? use --aws" : "");
		goto out;
	}
	size_t il = bl >= 2 ? blob[1] : 0, hl = 2 + il;
	if (bl < hl + NONCE + 1 + TAG) {
		snprintf(err, errlen, "ciphertext is truncated (%zu bytes)", bl);
		goto out;
	}
	char name[256];
	memcpy(name, blob + 2, il);
	name[il] = 0;
	if (key_id && strcmp(key_id, name) != 0) {
		snprintf(err, errlen, "ciphertext is under key \"%s\", not \"%s\"", name, key_id);
		goto out;
	}
	const struct kek *k = kek_find(ring, name);
	if (!k) {
		snprintf(err, errlen, "ciphertext is under key \"%s\", which is not in the keyring", name);
		goto out;
	}
	size_t m = bl - hl - NONCE - TAG;
	const uint8_t *nonce = blob + hl, *ct = nonce + NONCE, *tag = ct + m;
	uint8_t *plain = malloc(m), got[TAG];
	if (!plain) {
		snprintf(err, errlen, "out of memory");
		rc = KMS_TEMPORARY;
		goto out;
	}
	struct gcm_aes256_ctx g;
	if (gcm_start(&g, k->key, blob, hl, nonce, ctx) < 0) {
		free(plain);
		snprintf(err, errlen, "out of memory");
		rc = KMS_TEMPORARY;
		goto out;
	}
	gcm_aes256_decrypt(&g, m, plain, ct);
	gcm_aes256_digest(&g, TAG, got);
	memset(&g, 0, sizeof g);
	if (!memeql_sec(got, tag, TAG)) {
		memset(plain, 0, m);
		free(plain);
		snprintf(err, errlen, "ciphertext does not authenticate under key \"%s\" "
		                      "(wrong encryption context, or altered)", name);
		goto out;
	}
	*pt = plain;
	*n = m;
	rc = KMS_OK;
out:
	free(blob);
	return rc;
}
