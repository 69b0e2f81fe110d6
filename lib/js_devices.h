/* The Join Server's device registry: one JSON object per line, e.g.
 *   {"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000000","mac_version":"1.0.3",
 *    "app_key":"…","home_net_id":"000013","net_ids":["000013"],"as_ids":["as.example.net"],
 *    "ns_kek_label":"ns-000013","as_kek_label":"as-1"}
 * Root keys ("app_key", "nwk_key") are hex in clear, a KeyEnvelope {"KEKLabel","AESKey"}
 * wrapped with a KEK of the keyring, or KMS-encrypted ("app_key_encrypted"); a device may have
 * none when a crypto process holds them.
 * Blank lines and lines starting with '#' are skipped. See ljs-join(1). */
#ifndef JS_DEVICES_H
#define JS_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "js_keys.h"

/* MAC versions, ordered. */
enum lw_mac {
	LW_MAC_1_0 = 0,
	LW_MAC_1_0_1,
	LW_MAC_1_0_2,
	LW_MAC_1_0_3,
	LW_MAC_1_0_4,
	LW_MAC_1_1,
};

/* "1.0", "1.0.2", "1.0.2-B", "1.1.0"... -> enum, or -1. */
int lw_mac_parse(const char *s);
const char *lw_mac_name(int mac);

struct js_device {
	uint64_t dev_eui, join_eui;
	int mac;
	struct js_root_keys keys;
	bool has_keys;
	bool has_home_net_id;
	uint32_t home_net_id;
	char *home_ns_id;    /* NULL when unknown */
	uint32_t *net_ids;   /* NetIDs whose NS may join the device; home_net_id when none given */
	size_t n_net_ids;
	char **ns_ids;       /* allowed SenderNSIDs (1.1); any when none given */
	size_t n_ns_ids;
	char **as_ids;       /* AS-IDs allowed to ask for the AppSKey */
	size_t n_as_ids;
	char *ns_kek_label;  /* KEK for the session keys sent to the NS; clear when NULL */
	char *as_kek_label;  /* KEK for the AppSKey */
};

struct js_devices {
	struct js_device *v; /* sorted by dev_eui */
	size_t n;
};

struct kek_keyring;

/* Load the registry at path. Unwrapping of wrapped root keys uses ring (may be NULL). A bad
 * line is an error naming the file and line: the registry loads whole or not at all.
 * 0, or -1 with a reason in err. */
int js_devices_load(struct js_devices *d, const char *path, const struct kek_keyring *ring,
                    char *err, size_t errlen);
/* The same, with KMS-encrypted root keys ("app_key_encrypted", "nwk_key_encrypted": base64 as
 * `kms-wrap encrypt` writes them, encryption context "kms_context") decrypted through kms. */
struct kms;
/* kms for a registry whose encrypted keys a crypto process holds: they are left encrypted
 * (ljs-join --crypto without -M). */
#define JS_KMS_ELSEWHERE ((struct kms *)1)
int js_devices_load_kms(struct js_devices *d, const char *path, const struct kek_keyring *ring, struct kms *kms,
                        char *err, size_t errlen);
void js_devices_free(struct js_devices *d);
const struct js_device *js_devices_find(const struct js_devices *d, uint64_t dev_eui);

/* js_root_key_fn over a registry (ctx is a struct js_devices *). */
int js_devices_root_keys(void *ctx, const uint8_t dev_eui[8], const uint8_t join_eui[8],
                         struct js_root_keys *out, char *err, size_t errlen);

bool js_device_allows_net_id(const struct js_device *dev, uint32_t net_id);
bool js_device_allows_ns_id(const struct js_device *dev, const char *ns_id);
bool js_device_allows_as_id(const struct js_device *dev, const char *as_id);

/* Big-endian bytes <-> numbers, and hex IDs as Backend Interfaces writes them. */
uint64_t js_be64(const uint8_t b[8]);
void js_put_be64(uint8_t b[8], uint64_t v);
/* Parse hex of exactly n bytes (either case, optional 0x) into a number. 0, or -1. */
int js_hex_uint(const char *s, size_t n, uint64_t *v);

#endif
