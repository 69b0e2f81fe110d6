/* ljs-join's device registry (devices.jsonl, lib/js_devices.c) and the secure-element devices
 * that kms-wrap serve reads from the same file (se_devices_load): the input is the file. It is
 * loaded as ljs-join loads it in its three modes (-K keyring and -M local KMS: wrapped and
 * KMS-encrypted root keys opened; --crypto: encrypted keys left to the co-process; neither: an
 * encrypted key is an error), then as kms-serve loads it; every device loaded is looked up as a
 * join would look it up. The KEK keyring (ns-000013: 128 bits, as-1: 192 bits) and the local KMS
 * keyring (parts, devkeys) are fixed; the seeds hold records wrapped and encrypted with them. */
#include "fuzz_common.h"
#include "js_devices.h"
#include "kek_keyring.h"
#include "kms.h"
#include "se_parts.h"

static const char keks_yaml[] = "ns-000013: 000102030405060708090A0B0C0D0E0F\n"
                                "as-1: 101112131415161718191A1B1C1D1E1F1011121314151617\n";

static char dir[64], file[96];
static struct kek_keyring keks;
static struct kms kms;
static int ready;

static void cleanup(void)
{
	kek_keyring_free(&keks);
	kek_keyring_free(&kms.local);
	unlink(file);
	rmdir(dir);
}

static void setup(void)
{
	char err[256];
	fuzz_quiet_logs();
	fuzz_tmpdir(dir, sizeof dir, "fuzz-js-devices");
	snprintf(file, sizeof file, "%s/devices.jsonl", dir);
	if (kek_keyring_parse(&keks, keks_yaml, sizeof keks_yaml - 1, "keks.yml", err, sizeof err) != 0 ||
	    kek_keyring_parse(&kms.local, fuzz_kms_yaml, sizeof fuzz_kms_yaml - 1, "keyring.yml", err, sizeof err) != 0)
		abort();
	atexit(cleanup);
	ready = 1;
}

static void lookups(const struct js_devices *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct js_device *dev = &d->v[i];
		if (js_devices_find(d, dev->dev_eui) != dev)
			abort(); /* sorted, no duplicates */
		uint8_t de[8], je[8];
		js_put_be64(de, dev->dev_eui);
		js_put_be64(je, dev->join_eui);
		struct js_root_keys k;
		char err[128];
		if ((js_devices_root_keys((void *)d, de, je, &k, err, sizeof err) == 0) != dev->has_keys)
			abort();
		(void)js_device_allows_net_id(dev, dev->home_net_id);
		(void)js_device_allows_ns_id(dev, "ns.example.net");
		(void)js_device_allows_ns_id(dev, NULL);
		(void)js_device_allows_as_id(dev, "as.example.net");
		(void)js_device_allows_as_id(dev, NULL);
		(void)lw_mac_name(dev->mac);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	fuzz_write_file(file, data, size);
	char err[512];
	struct kms *modes[3] = {&kms, JS_KMS_ELSEWHERE, NULL};
	for (int m = 0; m < 3; m++) {
		struct js_devices d;
		if (js_devices_load_kms(&d, file, m == 0 ? &keks : NULL, modes[m], err, sizeof err) == 0) {
			lookups(&d);
			js_devices_free(&d);
		} else if (!*err || d.n || d.v) {
			abort(); /* refused: said why, nothing kept */
		}
	}
	struct se_table t = {0};
	int rejected = 0;
	if (se_devices_load(&t, file, &rejected, err, sizeof err) == 0) {
		for (size_t i = 0; i < t.ndevs; i++) {
			struct js_root_keys k;
			(void)se_root_key_lookup(&t, t.devs[i].dev_eui, t.devs[i].join_eui, &k, err, sizeof err);
			(void)se_root_key_lookup(&t, t.devs[i].dev_eui, NULL, &k, err, sizeof err);
		}
	}
	se_table_free(&t);
	return 0;
}
