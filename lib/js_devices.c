#include "js_devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "hex.h"
#include "jsonl.h"
#include "log.h"
#include "lorawan_crypto.h"

#include "keywrap.h"
#include "kms.h"

static const char *const mac_names[] = {"1.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.1"};

int lw_mac_parse(const char *s)
{
	if (!s)
		return -1;
	if (strncmp(s, "1.1", 3) == 0 && (s[3] == 0 || strcmp(s + 3, ".0") == 0))
		return LW_MAC_1_1;
	if (strncmp(s, "1.0", 3) != 0)
		return -1;
	s += 3;
	if (*s == 0 || strcmp(s, ".0") == 0)
		return LW_MAC_1_0;
	if (s[0] != '.' || s[1] < '0' || s[1] > '4' || (s[2] != 0 && s[2] != '-' && s[2] != ' '))
		return -1;
	return LW_MAC_1_0 + (s[1] - '0');
}

const char *lw_mac_name(int mac)
{
	return mac >= 0 && mac <= LW_MAC_1_1 ? mac_names[mac] : "?";
}

uint64_t js_be64(const uint8_t b[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

void js_put_be64(uint8_t b[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

int js_hex_uint(const char *s, size_t n, uint64_t *v)
{
	uint8_t b[8];
	if (!s || n > 8 || hex_decode_exact(s, b, n) != 0)
		return -1;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = *v << 8 | b[i];
	return 0;
}

static void device_free(struct js_device *dev)
{
	lw_wipe(&dev->keys, sizeof dev->keys);
	free(dev->home_ns_id);
	free(dev->net_ids);
	for (size_t i = 0; i < dev->n_ns_ids; i++)
		free(dev->ns_ids[i]);
	free(dev->ns_ids);
	for (size_t i = 0; i < dev->n_as_ids; i++)
		free(dev->as_ids[i]);
	free(dev->as_ids);
	free(dev->ns_kek_label);
	free(dev->as_kek_label);
}

void js_devices_free(struct js_devices *d)
{
	for (size_t i = 0; i < d->n; i++)
		device_free(&d->v[i]);
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

/* Out of memory while loading the devices is not the file's fault: no error message about it. */
static void *need(void *p)
{
	if (!p)
		die(EXIT_TEMPORARY, "out of memory");
	return p;
}

static char *dup_str(jv obj, const char *key)
{
	const char *s = jl_str(obj, key);
	return s ? need(strdup(s)) : NULL;
}

/* A root key: hex in clear, or a KeyEnvelope unwrapped with the keyring. */
static int parse_root_key(jv obj, const char *key, const struct kek_keyring *ring, uint8_t out[16],
                          bool *found, char *err, size_t errlen)
{
	jv v = jl_get(obj, key);
	jv_kind k = jv_get_kind(v);
	int rc = 0;
	*found = false;
	if (k == JV_KIND_INVALID || k == JV_KIND_NULL) {
		jv_free(v);
		return 0;
	}
	if (k == JV_KIND_STRING) {
		if (hex_decode_exact(jv_string_value(v), out, 16) != 0) {
			snprintf(err, errlen, "%s: not 16 bytes of hex", key);
			rc = -1;
		}
	} else if (k == JV_KIND_OBJECT) {
		char e[160];
		if (keyenv_parse(v, ring, out, e, sizeof e) != 0) {
			snprintf(err, errlen, "%s: %s", key, e);
			rc = -1;
		}
	} else {
		snprintf(err, errlen, "%s: must be hex or a KeyEnvelope", key);
		rc = -1;
	}
	jv_free(v);
	if (rc == 0)
		*found = true;
	return rc;
}

static int parse_str_list(jv obj, const char *key, char ***out, size_t *n, char *err, size_t errlen)
{
	jv a = jl_get(obj, key);
	*out = NULL;
	*n = 0;
	if (jv_get_kind(a) == JV_KIND_INVALID || jv_get_kind(a) == JV_KIND_NULL) {
		jv_free(a);
		return 0;
	}
	if (jv_get_kind(a) != JV_KIND_ARRAY) {
		jv_free(a);
		snprintf(err, errlen, "%s: must be an array of strings", key);
		return -1;
	}
	int len = jv_array_length(jv_copy(a));
	*out = need(calloc((size_t)len + 1, sizeof **out));
	for (int i = 0; i < len; i++) {
		jv x = jv_array_get(jv_copy(a), i);
		if (jv_get_kind(x) != JV_KIND_STRING) {
			jv_free(x);
			jv_free(a);
			snprintf(err, errlen, "%s: must be an array of strings", key);
			return -1;
		}
		(*out)[(*n)++] = need(strdup(jv_string_value(x)));
		jv_free(x);
	}
	jv_free(a);
	return 0;
}

/* A root key KMS-encrypted as `kms-wrap encrypt -f app_key` leaves it: "app_key_encrypted",
 * base64, with the record's "kms_context" (if any) as encryption context. */
static int parse_kms_key(jv obj, const char *field, struct kms *kms, uint8_t out[16], bool *found, char *err,
                         size_t errlen)
{
	const char *b64 = jl_str(obj, field);
	if (!b64 || kms == JS_KMS_ELSEWHERE)
		return 0;
	if (!kms) {
		snprintf(err, errlen, "%s: KMS-encrypted, but no KMS keyring is configured", field);
		return -1;
	}
	jv ctx = jl_get(obj, "kms_context");
	if (!jv_is_valid(ctx)) {
		jv_free(ctx);
		ctx = jv_null();
	}
	uint8_t *pt = NULL;
	size_t n = 0;
	char e[160];
	int rc = kms_decrypt(kms, NULL, b64, ctx, &pt, &n, e, sizeof e);
	jv_free(ctx);
	if (rc != KMS_OK || n != 16) {
		snprintf(err, errlen, "%s: %s", field, rc != KMS_OK ? e : "does not decrypt to a 16-byte key");
		if (pt) {
			lw_wipe(pt, n);
			free(pt);
		}
		return -1;
	}
	memcpy(out, pt, 16);
	lw_wipe(pt, n);
	free(pt);
	*found = true;
	return 0;
}

static int parse_device(jv obj, const struct kek_keyring *ring, struct kms *kms, struct js_device *dev,
                        char *err, size_t errlen)
{
	memset(dev, 0, sizeof *dev);
	if (js_hex_uint(jl_str(obj, "dev_eui"), 8, &dev->dev_eui) != 0) {
		snprintf(err, errlen, "dev_eui: missing or not 8 bytes of hex");
		return -1;
	}
	if (js_hex_uint(jl_str(obj, "join_eui"), 8, &dev->join_eui) != 0) {
		snprintf(err, errlen, "join_eui: missing or not 8 bytes of hex");
		return -1;
	}
	dev->mac = lw_mac_parse(jl_str(obj, "mac_version"));
	if (dev->mac < 0) {
		snprintf(err, errlen, "mac_version: missing or not one of 1.0, 1.0.1 ... 1.0.4, 1.1");
		return -1;
	}
	bool has_app, has_nwk;
	if (parse_root_key(obj, "app_key", ring, dev->keys.app_key, &has_app, err, errlen) != 0 ||
	    parse_root_key(obj, "nwk_key", ring, dev->keys.nwk_key, &has_nwk, err, errlen) != 0)
		return -1;
	if ((!has_app && parse_kms_key(obj, "app_key_encrypted", kms, dev->keys.app_key, &has_app, err, errlen) != 0) ||
	    (!has_nwk && parse_kms_key(obj, "nwk_key_encrypted", kms, dev->keys.nwk_key, &has_nwk, err, errlen) != 0))
		return -1;
	if (dev->mac >= LW_MAC_1_1 && has_app != has_nwk) {
		snprintf(err, errlen, "a LoRaWAN 1.1 device needs both app_key and nwk_key");
		return -1;
	}
	if (dev->mac < LW_MAC_1_1 && has_nwk && !has_app) {
		memcpy(dev->keys.app_key, dev->keys.nwk_key, 16);
		has_app = true;
	}
	dev->has_keys = has_app;
	dev->keys.has_nwk_key = has_nwk;
	if (has_app && !has_nwk)
		memcpy(dev->keys.nwk_key, dev->keys.app_key, 16);

	const char *s = jl_str(obj, "home_net_id");
	if (s) {
		uint64_t v;
		if (js_hex_uint(s, 3, &v) != 0) {
			snprintf(err, errlen, "home_net_id: not 3 bytes of hex");
			return -1;
		}
		dev->home_net_id = (uint32_t)v;
		dev->has_home_net_id = true;
	}
	dev->home_ns_id = dup_str(obj, "home_ns_id");
	char **nets;
	size_t n_nets;
	if (parse_str_list(obj, "net_ids", &nets, &n_nets, err, errlen) != 0)
		goto bad_nets;
	dev->net_ids = need(calloc(n_nets + 1, sizeof *dev->net_ids));
	for (size_t i = 0; i < n_nets; i++) {
		uint64_t v;
		if (js_hex_uint(nets[i], 3, &v) != 0) {
			snprintf(err, errlen, "net_ids: \"%s\" is not 3 bytes of hex", nets[i] ? nets[i] : "");
			goto bad_nets;
		}
		dev->net_ids[dev->n_net_ids++] = (uint32_t)v;
	}
	if (dev->n_net_ids == 0 && dev->has_home_net_id)
		dev->net_ids[dev->n_net_ids++] = dev->home_net_id;
	for (size_t i = 0; i < n_nets; i++)
		free(nets[i]);
	free(nets);
	if (parse_str_list(obj, "ns_ids", &dev->ns_ids, &dev->n_ns_ids, err, errlen) != 0 ||
	    parse_str_list(obj, "as_ids", &dev->as_ids, &dev->n_as_ids, err, errlen) != 0)
		return -1;
	dev->ns_kek_label = dup_str(obj, "ns_kek_label");
	dev->as_kek_label = dup_str(obj, "as_kek_label");
	return 0;
bad_nets:
	if (nets) {
		for (size_t i = 0; i < n_nets; i++)
			free(nets[i]);
		free(nets);
	}
	return -1;
}

static int cmp_dev(const void *a, const void *b)
{
	uint64_t x = ((const struct js_device *)a)->dev_eui, y = ((const struct js_device *)b)->dev_eui;
	return x < y ? -1 : x > y;
}

int js_devices_load(struct js_devices *d, const char *path, const struct kek_keyring *ring,
                    char *err, size_t errlen)
{
	return js_devices_load_kms(d, path, ring, NULL, err, errlen);
}

int js_devices_load_kms(struct js_devices *d, const char *path, const struct kek_keyring *ring, struct kms *kms,
                        char *err, size_t errlen)
{
	char *data;
	size_t len;
	memset(d, 0, sizeof *d);
	if (fs_read_file(path, &data, &len, (size_t)1 << 30) != 0) {
		snprintf(err, errlen, "unable to read %s: %m", path);
		return -1;
	}
	size_t cap = 0;
	unsigned long lineno = 0;
	char *p = data, *end = data + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		char *line = p;
		p += n + (nl ? 1 : 0);
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		size_t skip = strspn(line, " \t");
		if (skip >= n || line[skip] == '#')
			continue;
		jv obj = jsonl_parse_object(line, n);
		if (!jv_is_valid(obj)) {
			jv msg = jv_invalid_get_msg(obj);
			snprintf(err, errlen, "%s:%lu: %s", path, lineno,
			         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "malformed");
			jv_free(msg);
			goto fail;
		}
		if (d->n == cap) {
			cap = cap ? 2 * cap : 64;
			d->v = need(realloc(d->v, cap * sizeof *d->v));
		}
		char e[200];
		if (parse_device(obj, ring, kms, &d->v[d->n], e, sizeof e) != 0) {
			device_free(&d->v[d->n]);
			jv_free(obj);
			snprintf(err, errlen, "%s:%lu: %s", path, lineno, e);
			goto fail;
		}
		jv_free(obj);
		d->n++;
	}
	lw_wipe(data, len);
	free(data);
	if (d->n > 1) /* an empty registry has no array: qsort(NULL, 0) is undefined */
		qsort(d->v, d->n, sizeof *d->v, cmp_dev);
	for (size_t i = 1; i < d->n; i++)
		if (d->v[i].dev_eui == d->v[i - 1].dev_eui) {
			snprintf(err, errlen, "%s: DevEUI %016llX appears twice", path,
			         (unsigned long long)d->v[i].dev_eui);
			js_devices_free(d);
			return -1;
		}
	return 0;
fail:
	lw_wipe(data, len);
	free(data);
	js_devices_free(d);
	return -1;
}

const struct js_device *js_devices_find(const struct js_devices *d, uint64_t dev_eui)
{
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->v[mid].dev_eui == dev_eui)
			return &d->v[mid];
		if (d->v[mid].dev_eui < dev_eui)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int js_devices_root_keys(void *ctx, const uint8_t dev_eui[8], const uint8_t join_eui[8],
                         struct js_root_keys *out, char *err, size_t errlen)
{
	const struct js_device *dev = js_devices_find(ctx, js_be64(dev_eui));
	if (!dev || dev->join_eui != js_be64(join_eui)) {
		snprintf(err, errlen, "unknown device");
		return -1;
	}
	if (!dev->has_keys) {
		snprintf(err, errlen, "no root keys for this device here");
		return -1;
	}
	*out = dev->keys;
	return 0;
}

bool js_device_allows_net_id(const struct js_device *dev, uint32_t net_id)
{
	for (size_t i = 0; i < dev->n_net_ids; i++)
		if (dev->net_ids[i] == net_id)
			return true;
	return false;
}

bool js_device_allows_ns_id(const struct js_device *dev, const char *ns_id)
{
	if (dev->n_ns_ids == 0)
		return true;
	for (size_t i = 0; ns_id && i < dev->n_ns_ids; i++)
		if (strcasecmp(dev->ns_ids[i], ns_id) == 0)
			return true;
	return false;
}

bool js_device_allows_as_id(const struct js_device *dev, const char *as_id)
{
	for (size_t i = 0; as_id && i < dev->n_as_ids; i++)
		if (strcmp(dev->as_ids[i], as_id) == 0)
			return true;
	return false;
}
