/* RFC 3394 AES key wrap (nettle's implementation) and the LoRaWAN Backend Interfaces
 * KeyEnvelope {"KEKLabel": "...", "AESKey": "<hex>"}. */
#ifndef KEYWRAP_H
#define KEYWRAP_H

#include <jv.h>
#include <stddef.h>
#include <stdint.h>

#include "kek_keyring.h"

/* Wrap n bytes (n a multiple of 8, at least 16) under a KEK of 16, 24 or 32 bytes with the
 * RFC 3394 default IV; out receives n + 8 bytes. 0, or -1 for bad lengths. */
int keywrap_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t n, uint8_t *out);
/* Unwrap n bytes (a multiple of 8, at least 24); out receives n - 8 bytes. 0, or -1 for bad
 * lengths or a failed integrity check (wrong KEK or altered data); out is zeroed then. */
int keywrap_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t n, uint8_t *out);

/* A KeyEnvelope for a 16-byte key: wrapped under kek (label its KEKLabel) or, when kek is NULL,
 * the key in clear with an empty KEKLabel, as Backend Interfaces allows. */
jv keyenv_build(const char *label, const struct kek *kek, const uint8_t key[16]);
/* Recover the 16-byte key of a KeyEnvelope (borrowed), looking its KEKLabel up in ring (may be
 * NULL: only clear envelopes then). 0, or -1 with a reason in err (never key material). */
int keyenv_parse(jv env, const struct kek_keyring *ring, uint8_t key[16], char *err, size_t errlen);

#endif
