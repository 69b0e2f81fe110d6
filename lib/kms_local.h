/* The embedded KMS: a local keyring file (YAML "name: 64 hex digits", mode 0600) of named
 * 256-bit keys; AES-256-GCM with a random 96-bit nonce; the ciphertext blob is
 *     C1 | len(key name) | key name | nonce[12] | ciphertext | tag[16]
 * in base64, and the GCM associated data is the blob's header (C1, length, name) followed by
 * the canonical encryption context (lib/kms.h). */
#ifndef KMS_LOCAL_H
#define KMS_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#include "kek_keyring.h"

#define KMS_LOCAL_VERSION 0xC1

/* Load a keyring whose keys are all 32 bytes. 0, or -1 with a reason in err. */
int kms_local_load(struct kek_keyring *ring, const char *path, char *err, size_t errlen);
/* Add a fresh random key called name to the keyring at path (created 0600 when missing; the
 * file is replaced atomically). 0, or -1 with a reason (name taken, bad name, I/O) in err. */
int kms_local_genkey(const char *path, const char *name, char *err, size_t errlen);

/* ctx is the canonical encryption context ("" for none). KMS_OK / KMS_REJECTED, as lib/kms.h. */
int kms_local_encrypt(const struct kek_keyring *ring, const char *key_id, const uint8_t *pt, size_t n,
                      const char *ctx, char **b64, char *err, size_t errlen);
int kms_local_decrypt(const struct kek_keyring *ring, const char *key_id, const char *b64, const char *ctx,
                      uint8_t **pt, size_t *n, char *err, size_t errlen);

#endif
