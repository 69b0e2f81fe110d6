/* The Join Server's crypto: join-request MIC checks, session-key derivation, join-accept MIC and
 * encryption. Either in this process, over a js_root_key_fn (lib/js_keys.h), or in a crypto
 * co-process that alone holds the root keys (`--crypto CMD`, e.g. `kms-wrap serve`), spoken to
 * in JSON lines over pipes or a Unix socket, many requests in flight at once (answers are matched
 * by "id", in any order). js_cryptod_serve (declared in js_keys.h) is the
 * co-process's side of the same protocol.
 *
 * Requests (one per line, "id" echoed):
 *   {"id":1,"op":"check-mic","DevEUI":"..","JoinEUI":"..","MACVersion":"1.0.3","PHYPayload":".."}
 *     -> {"id":1,"ok":true} | {"id":1,"ok":false,"code":"MICFailed","error":"..."}
 *   {"id":2,"op":"join-accept","DevEUI":..,"JoinEUI":..,"MACVersion":..,"DevNonce":"0102",
 *    "JoinNonce":"000001","NetID":"000013","DevAddr":"26011234","DLSettings":"80","RxDelay":1,
 *    "CFList":"...","JoinReqType":"FF"}
 *     -> {"id":2,"ok":true,"PHYPayload":"20...","keys":{"NwkSKey":..,"AppSKey":..}}
 *        (1.1 with OptNeg: "FNwkSIntKey","SNwkSIntKey","NwkSEncKey","AppSKey")
 *   {"id":5,"op":"join", the fields of join-accept and "JoinRequest":"00..." (the 23-byte
 *    join-request, whose DevEUI, JoinEUI and DevNonce must be the request's)}
 *     -> check-mic's failure, or join-accept's answer: one exchange per join instead of two
 *   {"id":3,"op":"derive-keys", the fields of join-accept but DevAddr..CFList} -> {"keys":{...}}
 *   {"id":4,"op":"root-keys","DevEUI":..,"JoinEUI":..} -> refused (code "Refused") unless the
 *     server was started to expose root keys.
 * Failures: {"id":..,"ok":false,"code":"UnknownDevEUI"|"MICFailed"|"MalformedRequest"|"Refused"
 *   |"Other","error":"..."}. No answer carries a root key (except root-keys when exposed). */
#ifndef JS_CRYPTOD_H
#define JS_CRYPTOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "js_keys.h"

struct js_join_in {
	uint64_t dev_eui, join_eui;
	int mac;                   /* enum lw_mac */
	uint8_t phy[23];           /* the join-request */
	uint16_t dev_nonce;
	uint32_t join_nonce, net_id, dev_addr;
	uint8_t dl_settings;       /* bit 7 is OptNeg */
	uint8_t rx_delay;
	uint8_t cflist[16];
	bool has_cflist;
	uint8_t join_req_type;     /* 0xFF: join-request */
};

struct js_session_keys {
	bool v11; /* 1.1 keys (OptNeg); otherwise nwk_s_key holds the NwkSKey */
	uint8_t nwk_s_key[16];     /* 1.0 NwkSKey or 1.1 FNwkSIntKey */
	uint8_t s_nwk_s_int_key[16];
	uint8_t nwk_s_enc_key[16];
	uint8_t app_s_key[16];
};

enum { JS_CRYPTO_OK = 0, JS_CRYPTO_MIC = 1, JS_CRYPTO_UNKNOWN = 2, JS_CRYPTO_ERROR = -1 };

struct js_crypto;

struct js_crypto *js_crypto_local(js_root_key_fn lookup, void *ctx);
/* Start CMD with /bin/sh -c and talk to it over pipes; "unix:PATH" connects to a socket. NULL
 * with a reason in err. */
struct js_crypto *js_crypto_remote(const char *cmd, char *err, size_t errlen);
void js_crypto_free(struct js_crypto *c);
/* SIGHUP to a co-process this started (not a unix: socket's), so it rereads its keys too. */
void js_crypto_reload(struct js_crypto *c);
/* Replace the root-key source of a local crypto (after a registry reload). */
void js_crypto_set_lookup(struct js_crypto *c, js_root_key_fn lookup, void *ctx);

/* The crypto of one join, without waiting for a co-process. */
enum js_join_step {
	JS_JOIN_CHECK,  /* check-mic only */
	JS_JOIN_ACCEPT, /* join-accept only */
	JS_JOIN_BOTH,   /* check the MIC and, when it holds, the join-accept (op "join") */
};
struct js_join_out {
	int rc; /* JS_CRYPTO_* below */
	char err[200];
	struct js_session_keys keys;
	uint8_t phy[33];
	size_t phy_len;
};
typedef void (*js_crypto_done_fn)(void *arg);
/* Fill out for in and call done(arg): before returning (local crypto, or a co-process that cannot
 * be reached), or later from the thread that reads the co-process's answers. Many joins are in
 * flight over one co-process at once. */
void js_crypto_join_async(struct js_crypto *c, const struct js_join_in *in, enum js_join_step step,
                          struct js_join_out *out, js_crypto_done_fn done, void *arg);

/* JS_CRYPTO_OK, JS_CRYPTO_MIC (MIC mismatch), JS_CRYPTO_UNKNOWN (no keys for the device) or
 * JS_CRYPTO_ERROR (with a reason in err). */
int js_crypto_check_mic(struct js_crypto *c, const struct js_join_in *in, char *err, size_t errlen);
/* Derive the session keys and build the encrypted join-accept PHYPayload (phy: 33 bytes room). */
int js_crypto_join_accept(struct js_crypto *c, const struct js_join_in *in, struct js_session_keys *keys,
                          uint8_t *phy, size_t *phy_len, char *err, size_t errlen);

#endif
