/* Secure-element parts (Microchip ATECC608, the scheme of The Things Stack's parts; its open
 * source tree does not hold the derivation, so the unit test checks it against an independent
 * Python implementation of the formula below, not a vendor vector): a parts table
 * of JSON lines {"part_number": ..., "psk_root_keys_encrypted": base64} whose parent keys are
 * KMS-encrypted, and devices provisioned with a part_number and the element's 9-byte serial,
 * whose root keys are derived from the part's parent key:
 *   K = SHA-256(parent (32) || 1C 04 00 00 || SN[8] || SN[0] SN[1] || 25 zero bytes
 *               || SN[0..8] || 23 zero bytes)
 *   NwkKey = K[0:16], AppKey = K[16:32]; before LoRaWAN 1.1 the AppKey serves both. */
#ifndef SE_PARTS_H
#define SE_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "js_keys.h"
#include "kms.h"
#include "kms_fields.h"

struct se_part {
	char *part_number;
	uint8_t parent[32];
};

struct se_device {
	uint8_t dev_eui[8], join_eui[8];
	bool has_join_eui;
	bool mac11; /* LoRaWAN 1.1: separate NwkKey and AppKey */
	char *part_number;
	uint8_t sn[9];
};

struct se_table {
	struct se_part *parts;
	size_t nparts;
	struct se_device *devs;
	size_t ndevs;
};

/* The ATECC608 DeriveKey of a parent key with a serial number: 32 bytes into k. */
void se_derive(const uint8_t parent[32], const uint8_t sn[9], uint8_t k[32]);
/* Root keys of a device on a part with the given parent key. */
void se_root_keys(const uint8_t parent[32], const uint8_t sn[9], bool mac11, struct js_root_keys *out);

/* Load the parts table at path, decrypting each psk_root_keys_encrypted (the field names and
 * encryption context as o says; the plaintext is the 32-byte parent key, raw or as 64 hex
 * digits) with k, key_id as kms_decrypt takes it. A line that fails is logged with its number
 * and counted in *rejected. 0, or -1 with a reason in err when the file cannot be read or the
 * KMS cannot be reached. */
int se_parts_load(struct se_table *t, const char *path, struct kms *k, const char *key_id,
                  const struct kms_field_opts *o, int *rejected, char *err, size_t errlen);
/* Load the secure-element devices of a device registry (JSON lines): the lines with a
 * part_number; they need DevEUI, serial_number (18 hex digits), optionally JoinEUI and
 * MACVersion ("1.1..." for LoRaWAN 1.1). Other lines are left to the registry's own reader. */
int se_devices_load(struct se_table *t, const char *path, int *rejected, char *err, size_t errlen);

/* A js_root_key_fn over a loaded table (ctx is the struct se_table *). */
int se_root_key_lookup(void *ctx, const uint8_t dev_eui[8], const uint8_t join_eui[8], struct js_root_keys *out,
                       char *err, size_t errlen);

/* Wipe and free. */
void se_table_free(struct se_table *t);

#endif
