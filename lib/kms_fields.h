/* kms-wrap's per-record work on JSON lines: encrypt or decrypt named key fields through a KMS,
 * wrap or unwrap them as Backend Interfaces KeyEnvelopes. */
#ifndef KMS_FIELDS_H
#define KMS_FIELDS_H

#include <jv.h>
#include <stddef.h>

#include "kek_keyring.h"
#include "kms.h"

enum kms_encoding { KMS_ENC_HEX, KMS_ENC_BASE64, KMS_ENC_TEXT };

struct kms_field_opts {
	const char **fields; /* plaintext field names */
	size_t nfields;
	const char *suffix;  /* ciphertext field = field + suffix ("_encrypted") */
	enum kms_encoding enc;
	jv context;          /* fixed encryption context (object of strings, or null); borrowed */
	const char **ctx_fields; /* record fields added to the context under their own names */
	size_t nctx;
};

/* Parse "hex", "base64" or "text"; -1 otherwise. */
int kms_encoding_parse(const char *s, enum kms_encoding *e);

/* The encryption context for rec: the record's "kms_context" object (as encrypt writes it), plus
 * the fixed pairs, plus the record's context fields (a field that is missing, or is not a string
 * or number, is an error). New reference, or invalid with a message. rec is borrowed. */
jv kms_record_context(const struct kms_field_opts *o, jv rec);

/* Transform rec (consumed). On failure: jv_invalid_with_msg naming the field and the reason,
 * never the key; *temporary is set when the failure was the KMS being unreachable. A record
 * without any of the fields comes back unchanged. encrypt leaves a context that is not empty in
 * the record as "kms_context"; decrypt removes it. */
jv kms_fields_encrypt(struct kms *k, const char *key_id, const struct kms_field_opts *o, jv rec, int *temporary);
jv kms_fields_decrypt(struct kms *k, const char *key_id, const struct kms_field_opts *o, jv rec, int *temporary);

/* Replace each named hex key field (16 bytes) with a KeyEnvelope under kek (NULL: in clear). */
jv kms_fields_wrap(const char *label, const struct kek *kek, const char **fields, size_t n, jv rec);
/* Replace each named KeyEnvelope field with its key in hex. */
jv kms_fields_unwrap(const struct kek_keyring *ring, const char **fields, size_t n, jv rec);

#endif
