/* KMS-style encryption of small secrets (keys): a local keyring by default (lib/kms_local.c),
 * AWS KMS for real (lib/kms_aws.c). Ciphertexts are base64 text; an encryption context (a JSON
 * object of strings, as AWS KMS has it) is bound to each ciphertext and needed to decrypt it. */
#ifndef KMS_H
#define KMS_H

#include <jv.h>
#include <stddef.h>
#include <stdint.h>

#include "kek_keyring.h"

#define KMS_MAX_PLAINTEXT 4096 /* as AWS KMS Encrypt */

struct kms_aws;

struct kms {
	struct kek_keyring local; /* named 256-bit keys, when aws is NULL */
	struct kms_aws *aws;
};

enum { KMS_OK = 0, KMS_REJECTED = -1, KMS_TEMPORARY = -2 };

/* base64 (RFC 4648, padded). encode: malloc'd NUL-terminated text. decode: malloc'd bytes;
 * -1 for anything but well-formed base64 (whitespace is not accepted either). */
char *kms_b64_encode(const uint8_t *in, size_t n);
int kms_b64_decode(const char *s, uint8_t **out, size_t *n);

/* The canonical form of an encryption context: compact JSON with keys sorted, "" when ctx is
 * null or an empty object. Malloc'd; NULL with a reason in err when ctx is not an object of
 * strings. ctx is borrowed. */
char *kms_context_canonical(jv ctx, char *err, size_t errlen);

/* Encrypt n bytes under key_id (local: a keyring name; AWS: key id, ARN, alias/name or alias
 * ARN). *b64 is malloc'd. KMS_OK, KMS_REJECTED (bad key id, ...), KMS_TEMPORARY (network,
 * service); err says why, never with key material. ctx is borrowed (null for none). */
int kms_encrypt(struct kms *k, const char *key_id, const uint8_t *pt, size_t n, jv ctx, char **b64,
                char *err, size_t errlen);
/* Decrypt; *pt is malloc'd (the caller wipes and frees it). key_id may be NULL (the ciphertext
 * names its key); if given, a ciphertext under another key is refused. */
int kms_decrypt(struct kms *k, const char *key_id, const char *b64, jv ctx, uint8_t **pt, size_t *n,
                char *err, size_t errlen);
/* Release keys and connections. */
void kms_free(struct kms *k);

#endif
