/* LoRaWAN join crypto (1.0.x and 1.1): join-request MIC, session and JS key derivation,
 * join-accept MIC and encryption. AES-128 and AES-CMAC come from nettle.
 * EUIs, nonces and NetIDs are passed as numbers (their big-endian display value); the
 * functions lay them out little-endian as the frames and the specification do. */
#ifndef LORAWAN_CRYPTO_H
#define LORAWAN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

enum {
	LW_KEY_LEN = 16,
	LW_MIC_LEN = 4,
};

/* Key derivation types (first byte of the derivation block). */
enum {
	LW_KT_NWKSKEY = 0x01,    /* 1.0 NwkSKey; 1.1 FNwkSIntKey */
	LW_KT_APPSKEY = 0x02,
	LW_KT_SNWKSINTKEY = 0x03,
	LW_KT_NWKSENCKEY = 0x04,
	LW_KT_JSENCKEY = 0x05,
	LW_KT_JSINTKEY = 0x06,
};

void lw_aes_encrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);
void lw_aes_decrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);
/* AES-CMAC (RFC 4493) of msg under key: the full 16-byte tag. */
void lw_aes_cmac(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t tag[16]);

/* MIC of a join-request: CMAC(key, MHDR|JoinEUI|DevEUI|DevNonce)[0:4], over the first 19 bytes
 * of the frame. key is the AppKey (1.0.x) or NwkKey (1.1). */
void lw_join_request_mic(const uint8_t key[16], const uint8_t frame[19], uint8_t mic[4]);

/* 1.0 (and 1.1 with OptNeg unset): aes128_encrypt(key, type | JoinNonce | NetID | DevNonce | pad) */
void lw_derive_legacy(const uint8_t key[16], uint8_t type, uint32_t join_nonce, uint32_t net_id,
                      uint16_t dev_nonce, uint8_t out[16]);
/* 1.1: aes128_encrypt(key, type | JoinNonce | JoinEUI | DevNonce | pad) */
void lw_derive_skey(const uint8_t key[16], uint8_t type, uint32_t join_nonce, uint64_t join_eui,
                    uint16_t dev_nonce, uint8_t out[16]);
/* 1.1 JSIntKey / JSEncKey: aes128_encrypt(NwkKey, type | DevEUI | pad) */
void lw_derive_js_key(const uint8_t nwk_key[16], uint8_t type, uint64_t dev_eui, uint8_t out[16]);

/* Join-accept MIC over msg = MHDR|JoinNonce|NetID|DevAddr|DLSettings|RxDelay[|CFList]
 * (13 or 29 bytes). Legacy: CMAC(key, msg). 1.1 with OptNeg: CMAC(JSIntKey,
 * JoinReqType|JoinEUI|DevNonce|msg). */
void lw_join_accept_mic_legacy(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t mic[4]);
void lw_join_accept_mic_11(const uint8_t js_int_key[16], uint8_t join_req_type, uint64_t join_eui,
                           uint16_t dev_nonce, const uint8_t *msg, size_t len, uint8_t mic[4]);
/* Encrypt (with the AES decrypt operation, as the specification says) or decrypt the part of a
 * join-accept after the MHDR; len is 16 or 32. -1 for another length. in and out may alias. */
int lw_join_accept_encrypt(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t *out);
int lw_join_accept_decrypt(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t *out);

/* Constant-time comparison of n bytes: 1 when equal. */
int lw_mem_equal(const void *a, const void *b, size_t n);
/* Overwrite key material so the compiler cannot drop the store. */
void lw_wipe(void *p, size_t n);

#endif
