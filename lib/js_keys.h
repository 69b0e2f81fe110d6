/* Root keys of LoRaWAN devices, as the Join Server's crypto side looks them up.
 * The in-process key source (ljs-join without --crypto) and the crypto co-process
 * (kms-wrap serve) both answer through this one callback type, so root keys can live in a
 * process of their own. Implementations: lib/js_devices.c (device registry keys, in clear,
 * KEK-wrapped or KMS-encrypted) and lib/se_parts.c (secure-element parts, derived keys). */
#ifndef JS_KEYS_H
#define JS_KEYS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct js_root_keys {
	uint8_t app_key[16];
	uint8_t nwk_key[16]; /* LoRaWAN 1.1; for 1.0.x devices equal to app_key */
	bool has_nwk_key;
};

/* Fill *out for the device; 0 when found, -1 (with a message in err) when the device is
 * unknown or its keys cannot be recovered. Never logs key material. */
typedef int (*js_root_key_fn)(void *ctx, const uint8_t dev_eui[8], const uint8_t join_eui[8],
                              struct js_root_keys *out, char *err, size_t errlen);

/* Serve crypto requests (JSON lines, defined in lib/js_cryptod.c and kms-wrap(1)) read from
 * in_fd, answering on out_fd, until end of input, or with unblocked (cmd_stop_signals' mask) until
 * SIGTERM/SIGINT, once the requests read are answered. Root keys come only from lookup; no answer
 * carries a root key unless expose_root_keys. Returns 0 at a clean end, 111 on I/O error.
 * Implemented in lib/js_cryptod.c (ljs-join side); called by `kms-wrap serve`. */
int js_cryptod_serve(int in_fd, int out_fd, js_root_key_fn lookup, void *ctx, bool expose_root_keys,
                     const sigset_t *unblocked);

#endif
