#include "lorawan_crypto.h"

#include <nettle/aes.h>
#include <nettle/cmac.h>
#include <nettle/memops.h>
#include <string.h>

void lw_aes_encrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
	struct aes128_ctx ctx;
	aes128_set_encrypt_key(&ctx, key);
	aes128_encrypt(&ctx, 16, out, in);
	lw_wipe(&ctx, sizeof ctx);
}

void lw_aes_decrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
	struct aes128_ctx ctx;
	aes128_set_decrypt_key(&ctx, key);
	aes128_decrypt(&ctx, 16, out, in);
	lw_wipe(&ctx, sizeof ctx);
}

void lw_aes_cmac(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t tag[16])
{
	struct cmac_aes128_ctx ctx;
	cmac_aes128_set_key(&ctx, key);
	cmac_aes128_update(&ctx, len, msg);
	cmac_aes128_digest(&ctx, CMAC128_DIGEST_SIZE, tag);
	lw_wipe(&ctx, sizeof ctx);
}

void lw_join_request_mic(const uint8_t key[16], const uint8_t frame[19], uint8_t mic[4])
{
	uint8_t tag[16];
	lw_aes_cmac(key, frame, 19, tag);
	memcpy(mic, tag, 4);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void lw_derive_legacy(const uint8_t key[16], uint8_t type, uint32_t join_nonce, uint32_t net_id,
                      uint16_t dev_nonce, uint8_t out[16])
{
	uint8_t b[16] = {type};
	put_le(b + 1, join_nonce, 3);
	put_le(b + 4, net_id, 3);
	put_le(b + 7, dev_nonce, 2);
	lw_aes_encrypt(key, b, out);
}

void lw_derive_skey(const uint8_t key[16], uint8_t type, uint32_t join_nonce, uint64_t join_eui,
                    uint16_t dev_nonce, uint8_t out[16])
{
	uint8_t b[16] = {type};
	put_le(b + 1, join_nonce, 3);
	put_le(b + 4, join_eui, 8);
	put_le(b + 12, dev_nonce, 2);
	lw_aes_encrypt(key, b, out);
}

void lw_derive_js_key(const uint8_t nwk_key[16], uint8_t type, uint64_t dev_eui, uint8_t out[16])
{
	uint8_t b[16] = {type};
	put_le(b + 1, dev_eui, 8);
	lw_aes_encrypt(nwk_key, b, out);
}

void lw_join_accept_mic_legacy(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t mic[4])
{
	uint8_t tag[16];
	lw_aes_cmac(key, msg, len, tag);
	memcpy(mic, tag, 4);
}

void lw_join_accept_mic_11(const uint8_t js_int_key[16], uint8_t join_req_type, uint64_t join_eui,
                           uint16_t dev_nonce, const uint8_t *msg, size_t len, uint8_t mic[4])
{
	struct cmac_aes128_ctx ctx;
	uint8_t pre[11], tag[16];
	pre[0] = join_req_type;
	put_le(pre + 1, join_eui, 8);
	put_le(pre + 9, dev_nonce, 2);
	cmac_aes128_set_key(&ctx, js_int_key);
	cmac_aes128_update(&ctx, sizeof pre, pre);
	cmac_aes128_update(&ctx, len, msg);
	cmac_aes128_digest(&ctx, CMAC128_DIGEST_SIZE, tag);
	lw_wipe(&ctx, sizeof ctx);
	memcpy(mic, tag, 4);
}

int lw_join_accept_encrypt(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t *out)
{
	if (len != 16 && len != 32)
		return -1;
	struct aes128_ctx ctx;
	aes128_set_decrypt_key(&ctx, key);
	aes128_decrypt(&ctx, len, out, in); /* ECB: block by block */
	lw_wipe(&ctx, sizeof ctx);
	return 0;
}

int lw_join_accept_decrypt(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t *out)
{
	if (len != 16 && len != 32)
		return -1;
	struct aes128_ctx ctx;
	aes128_set_encrypt_key(&ctx, key);
	aes128_encrypt(&ctx, len, out, in);
	lw_wipe(&ctx, sizeof ctx);
	return 0;
}

int lw_mem_equal(const void *a, const void *b, size_t n)
{
	return memeql_sec(a, b, n);
}

void lw_wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n--)
		*v++ = 0;
}
