/* kms-wrap serve's secure-element parts table (-p parts.jsonl, lib/se_parts.c): the input is the
 * file, loaded as serve loads it (after the devices of a fixed registry), its
 * psk_root_keys_encrypted fields decrypted with the local KMS (keyring: parts, devkeys) and the
 * record's kms_context; then the root keys of every device are looked up. The options are
 * serve's defaults (field psk_root_keys, suffix _encrypted, any key id) plus a fixed context pair
 * and the record's part_number as a context field (-c app=join -C part_number), as the seeds
 * were encrypted. */
#include "fuzz_common.h"
#include "kms.h"
#include "kms_fields.h"
#include "se_parts.h"

static const char devices[] =
	"{\"DevEUI\":\"0004A30B001C0530\",\"JoinEUI\":\"70B3D57ED0000000\",\"part_number\":\"ATECC608B-TNGLORA\","
	"\"serial_number\":\"0123A1B2C3D4E5F6EE\",\"MACVersion\":\"1.0.3\"}\n"
	"{\"dev_eui\":\"0004A30B001C0531\",\"part_number\":\"P2\",\"serial_number\":\"0123000000000000EE\","
	"\"mac_version\":\"1.1\"}\n"
	"{\"dev_eui\":\"0004A30B001C0532\",\"part_number\":\"P3\",\"serial_number\":\"0123FFFFFFFFFFFFEE\"}\n";

static char dir[64], file[96], devfile[96];
static struct kms kms;
static jv context;
static int ready;

static void cleanup(void)
{
	kek_keyring_free(&kms.local);
	jv_free(context);
	unlink(file);
	unlink(devfile);
	rmdir(dir);
}

static void setup(void)
{
	char err[256];
	fuzz_quiet_logs();
	fuzz_tmpdir(dir, sizeof dir, "fuzz-se-parts");
	if (kek_keyring_parse(&kms.local, fuzz_kms_yaml, sizeof fuzz_kms_yaml - 1, "keyring.yml", err, sizeof err) != 0)
		abort();
	snprintf(file, sizeof file, "%s/parts.jsonl", dir);
	snprintf(devfile, sizeof devfile, "%s/devices.jsonl", dir);
	fuzz_write_file(devfile, devices, sizeof devices - 1);
	context = jv_object_set(jv_object(), jv_string("app"), jv_string("join"));
	atexit(cleanup);
	ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	fuzz_write_file(file, data, size);
	static const char *fields[] = {"psk_root_keys"}, *ctx_fields[] = {"part_number"};
	struct kms_field_opts o = {fields, 1, "_encrypted", KMS_ENC_HEX, context, ctx_fields, 1};
	struct se_table t = {0};
	int rejected = 0;
	char err[512];
	if (se_devices_load(&t, devfile, &rejected, err, sizeof err) != 0 || t.ndevs != 3 || rejected)
		abort();
	if (se_parts_load(&t, file, &kms, NULL, &o, &rejected, err, sizeof err) == 0) {
		uint8_t je[8] = {0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, 0};
		for (size_t i = 0; i < t.ndevs; i++) {
			struct js_root_keys k;
			(void)se_root_key_lookup(&t, t.devs[i].dev_eui, je, &k, err, sizeof err);
		}
	}
	se_table_free(&t);
	return 0;
}
