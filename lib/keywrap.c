#include "keywrap.h"

#include "hex.h"
#include "jsonl.h"

#include <nettle/aes.h>
#include <nettle/nist-keywrap.h>
#include <stdio.h>
#include <string.h>

static const uint8_t default_iv[8] = {0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6};

int keywrap_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t n, uint8_t *out)
{
	if (n < 16 || n % 8)
		return -1;
	union {
		struct aes128_ctx a128;
		struct aes192_ctx a192;
		struct aes256_ctx a256;
	} c;
	switch (kek_len) {
	case 16:
		aes128_set_encrypt_key(&c.a128, kek);
		aes128_keywrap(&c.a128, default_iv, n + 8, out, in);
		break;
	case 24:
		aes192_set_encrypt_key(&c.a192, kek);
		aes192_keywrap(&c.a192, default_iv, n + 8, out, in);
		break;
	case 32:
		aes256_set_encrypt_key(&c.a256, kek);
		aes256_keywrap(&c.a256, default_iv, n + 8, out, in);
		break;
	default:
		return -1;
	}
	memset(&c, 0, sizeof c);
	return 0;
}

int keywrap_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t n, uint8_t *out)
{
	if (n < 24 || n % 8)
		return -1;
	union {
		struct aes128_ctx a128;
		struct aes192_ctx a192;
		struct aes256_ctx a256;
	} c;
	int ok;
	switch (kek_len) {
	case 16:
		aes128_set_decrypt_key(&c.a128, kek);
		ok = aes128_keyunwrap(&c.a128, default_iv, n - 8, out, in);
		break;
	case 24:
		aes192_set_decrypt_key(&c.a192, kek);
		ok = aes192_keyunwrap(&c.a192, default_iv, n - 8, out, in);
		break;
	case 32:
		aes256_set_decrypt_key(&c.a256, kek);
		ok = aes256_keyunwrap(&c.a256, default_iv, n - 8, out, in);
		break;
	default:
		return -1;
	}
	memset(&c, 0, sizeof c);
	if (!ok) {
		memset(out, 0, n - 8);
		return -1;
	}
	return 0;
}

jv keyenv_build(const char *label, const struct kek *kek, const uint8_t key[16])
{
	char hex[2 * 24 + 1];
	if (kek) {
		uint8_t w[24];
		if (keywrap_wrap(kek->key, kek->len, key, 16, w) < 0)
			return jv_invalid_with_msg(jv_string("bad KEK length"));
		hex_encode(w, sizeof w, hex);
	} else {
		label = "";
		hex_encode(key, 16, hex);
	}
	jv env = jv_object();
	env = jv_object_set(env, jv_string("KEKLabel"), jv_string(label ? label : ""));
	env = jv_object_set(env, jv_string("AESKey"), jv_string(hex));
	memset(hex, 0, sizeof hex);
	return env;
}

int keyenv_parse(jv env, const struct kek_keyring *ring, uint8_t key[16], char *err, size_t errlen)
{
	if (jv_get_kind(env) != JV_KIND_OBJECT) {
		snprintf(err, errlen, "KeyEnvelope is not an object");
		return -1;
	}
	const char *label = jl_str(env, "KEKLabel");
	const char *aes = jl_str(env, "AESKey");
	if (!aes) {
		snprintf(err, errlen, "KeyEnvelope has no AESKey string");
		return -1;
	}
	if (!label || !*label) {
		if (hex_decode_exact(aes, key, 16) < 0) {
			snprintf(err, errlen, "KeyEnvelope without KEKLabel: AESKey is not 16 bytes of hex");
			return -1;
		}
		return 0;
	}
	const struct kek *k = ring ? kek_find(ring, label) : NULL;
	if (!k) {
		snprintf(err, errlen, "unknown KEKLabel \"%s\"", label);
		return -1;
	}
	uint8_t w[24];
	if (hex_decode_exact(aes, w, sizeof w) < 0) {
		snprintf(err, errlen, "KeyEnvelope AESKey is not 24 bytes of hex (a wrapped 16-byte key)");
		return -1;
	}
	if (keywrap_unwrap(k->key, k->len, w, sizeof w, key) < 0) {
		snprintf(err, errlen, "KeyEnvelope does not unwrap with KEK \"%s\" (wrong KEK or altered key)", label);
		return -1;
	}
	return 0;
}
