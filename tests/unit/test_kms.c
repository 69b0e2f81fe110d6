#define _GNU_SOURCE
/* The local KMS: base64, canonical encryption contexts, AES-256-GCM blobs and their refusals. */
#include "hex.h"
#include "kms.h"
#include "kms_local.h"
#include "log.h"
#include "se_parts.h"

#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_b64(void)
{
	/* RFC 4648 section 10 */
	static const char *const v[][2] = {{"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
	                                   {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < 6; i++) {
		char *e = kms_b64_encode((const uint8_t *)v[i][0], strlen(v[i][0]));
		CHECK(e && strcmp(e, v[i][1]) == 0);
		free(e);
		uint8_t *d;
		size_t n;
		CHECK(kms_b64_decode(v[i][1], &d, &n) == 0 && n == strlen(v[i][0]) && memcmp(d, v[i][0], n) == 0);
		free(d);
	}
	uint8_t *d;
	size_t n;
	CHECK(kms_b64_decode("", &d, &n) == -1);
	CHECK(kms_b64_decode("Zm9", &d, &n) == -1);
	CHECK(kms_b64_decode("Zm 9v", &d, &n) == -1);
	CHECK(kms_b64_decode("Zm9*", &d, &n) == -1);
	CHECK(kms_b64_decode("Z===", &d, &n) == -1);
}

static void test_context(void)
{
	char err[200];
	jv c = jv_parse("{\"b\":\"2\",\"a\":\"1\"}");
	char *s = kms_context_canonical(c, err, sizeof err);
	CHECK(s && strcmp(s, "{\"a\":\"1\",\"b\":\"2\"}") == 0);
	free(s);
	jv_free(c);
	c = jv_parse("{\"a\":1}");
	CHECK(kms_context_canonical(c, err, sizeof err) == NULL && strstr(err, "strings"));
	jv_free(c);
	s = kms_context_canonical(jv_null(), err, sizeof err);
	CHECK(s && *s == 0);
	free(s);
	c = jv_object();
	s = kms_context_canonical(c, err, sizeof err);
	CHECK(s && *s == 0);
	free(s);
	jv_free(c);
}

static void test_local(void)
{
	static const char ring_yaml[] = "k1: 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n"
	                                "k2: 1F1E1D1C1B1A191817161514131211100F0E0D0C0B0A09080706050403020100\n";
	struct kms k = {0};
	char err[300];
	CHECK(kek_keyring_parse(&k.local, ring_yaml, strlen(ring_yaml), "ring", err, sizeof err) == 0);
	const uint8_t pt[] = "sixteen byte key, and more";
	size_t ptn = sizeof pt - 1;
	jv ctx = jv_parse("{\"part_number\":\"P1\",\"b\":\"x\"}");
	jv ctx_reordered = jv_parse("{\"b\":\"x\",\"part_number\":\"P1\"}");
	jv ctx_other = jv_parse("{\"part_number\":\"P2\",\"b\":\"x\"}");
	char *b64 = NULL;
	CHECK(kms_encrypt(&k, "k1", pt, ptn, ctx, &b64, err, sizeof err) == KMS_OK);
	uint8_t *blob;
	size_t bl;
	CHECK(kms_b64_decode(b64, &blob, &bl) == 0);
	/* version, name length, name, nonce, ciphertext, tag */
	CHECK(bl == 2 + 2 + 12 + ptn + 16 && blob[0] == KMS_LOCAL_VERSION && blob[1] == 2 && memcmp(blob + 2, "k1", 2) == 0);
	CHECK(memmem(blob, bl, pt, ptn) == NULL);

	uint8_t *out = NULL;
	size_t on = 0;
	CHECK(kms_decrypt(&k, NULL, b64, ctx_reordered, &out, &on, err, sizeof err) == KMS_OK && on == ptn &&
	      memcmp(out, pt, ptn) == 0);
	free(out);
	CHECK(kms_decrypt(&k, "k1", b64, ctx, &out, &on, err, sizeof err) == KMS_OK);
	free(out);
	CHECK(kms_decrypt(&k, NULL, b64, ctx_other, &out, &on, err, sizeof err) == KMS_REJECTED &&
	      strstr(err, "does not authenticate"));
	CHECK(kms_decrypt(&k, NULL, b64, jv_null(), &out, &on, err, sizeof err) == KMS_REJECTED);
	CHECK(kms_decrypt(&k, "k2", b64, ctx, &out, &on, err, sizeof err) == KMS_REJECTED && strstr(err, "not \"k2\""));

	/* every single-bit change anywhere in the blob is refused */
	int accepted = 0;
	for (size_t i = 0; i < bl; i++) {
		blob[i] ^= 0x10;
		char *t = kms_b64_encode(blob, bl);
		if (kms_decrypt(&k, NULL, t, ctx, &out, &on, err, sizeof err) == KMS_OK) {
			accepted++;
			free(out);
		}
		free(t);
		blob[i] ^= 0x10;
	}
	CHECK(accepted == 0);
	/* truncations */
	for (size_t cut = 1; cut < bl; cut += 7) {
		char *t = kms_b64_encode(blob, cut);
		CHECK(kms_decrypt(&k, NULL, t, ctx, &out, &on, err, sizeof err) == KMS_REJECTED);
		free(t);
	}
	/* the name in the header is authenticated: rename k1 -> k2 (same length) */
	blob[3] = '2';
	char *t = kms_b64_encode(blob, bl);
	CHECK(kms_decrypt(&k, NULL, t, ctx, &out, &on, err, sizeof err) == KMS_REJECTED);
	free(t);
	/* an AWS KMS blob starts with 01 */
	blob[0] = 0x01;
	t = kms_b64_encode(blob, bl);
	CHECK(kms_decrypt(&k, NULL, t, ctx, &out, &on, err, sizeof err) == KMS_REJECTED && strstr(err, "--aws"));
	free(t);
	free(blob);
	free(b64);

	CHECK(kms_encrypt(&k, "nope", pt, ptn, ctx, &b64, err, sizeof err) == KMS_REJECTED && strstr(err, "nope"));
	CHECK(kms_encrypt(&k, "k1", pt, 0, ctx, &b64, err, sizeof err) == KMS_REJECTED);
	jv_free(ctx);
	jv_free(ctx_reordered);
	jv_free(ctx_other);
	kms_free(&k);
}

static void unhex(const char *h, uint8_t *b, size_t n)
{
	if (hex_decode_exact(h, b, n) < 0)
		abort();
}

/* Expected values computed with Python's hashlib over the message layout in se_parts.h
 * (an implementation independent of this one, not a vendor vector). */
static void test_se_derive(void)
{
	uint8_t parent[32], sn[9], k[32], want[32];
	for (int i = 0; i < 32; i++)
		parent[i] = (uint8_t)i;
	unhex("0123456789ABCDEF01", sn, 9);
	se_derive(parent, sn, k);
	unhex("F4E7A30F7C46288817AC5685894117AE5710C5A90982E3B0A4C55CBEDF37AF98", want, 32);
	CHECK(memcmp(k, want, 32) == 0);
	memset(parent, 0x5a, 32);
	unhex("EE0123AABBCCDD0127", sn, 9);
	se_derive(parent, sn, k);
	unhex("081638B059A6DF0352524FD20730FB7CD6C654712F323414BD696CA2CB2BC799", want, 32);
	CHECK(memcmp(k, want, 32) == 0);

	struct js_root_keys rk;
	se_root_keys(parent, sn, true, &rk);
	CHECK(rk.has_nwk_key && memcmp(rk.nwk_key, want, 16) == 0 && memcmp(rk.app_key, want + 16, 16) == 0);
	se_root_keys(parent, sn, false, &rk);
	CHECK(!rk.has_nwk_key && memcmp(rk.app_key, want + 16, 16) == 0 && memcmp(rk.nwk_key, want + 16, 16) == 0);
	/* every serial byte matters, including SN[8], SN[0] and SN[1] counted twice */
	for (int i = 0; i < 9; i++) {
		uint8_t k2[32];
		sn[i] ^= 1;
		se_derive(parent, sn, k2);
		sn[i] ^= 1;
		CHECK(memcmp(k2, want, 32) != 0);
	}
}

static void test_se_tables(void)
{
	static const char ring_yaml[] = "parts: 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n";
	struct kms k = {0};
	char err[300];
	CHECK(kek_keyring_parse(&k.local, ring_yaml, strlen(ring_yaml), "ring", err, sizeof err) == 0);
	uint8_t parent[32];
	memset(parent, 0x5a, 32);
	const char *fields[] = {"psk_root_keys"}, *cf[] = {"part_number"};
	struct kms_field_opts o = {fields, 1, "_encrypted", KMS_ENC_HEX, jv_null(), cf, 1};
	jv ctx = jv_parse("{\"part_number\":\"P1\"}");
	char *ct = NULL;
	CHECK(kms_encrypt(&k, "parts", parent, 32, ctx, &ct, err, sizeof err) == KMS_OK);
	jv_free(ctx);
	char dir[] = "/tmp/test_kms.XXXXXX", parts[64], devs[64];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(parts, sizeof parts, "%s/parts.jsonl", dir);
	snprintf(devs, sizeof devs, "%s/devices.jsonl", dir);
	FILE *f = fopen(parts, "w");
	/* good; moved to another part number (context differs); duplicate; malformed */
	fprintf(f, "{\"part_number\":\"P1\",\"psk_root_keys_encrypted\":\"%s\"}\n", ct);
	fprintf(f, "{\"part_number\":\"P2\",\"psk_root_keys_encrypted\":\"%s\"}\n", ct);
	fprintf(f, "{\"part_number\":\"P1\",\"psk_root_keys_encrypted\":\"%s\"}\n\n{\n", ct);
	fclose(f);
	free(ct);
	f = fopen(devs, "w");
	fputs("{\"DevEUI\":\"70B3D57ED0000001\",\"JoinEUI\":\"70B3D57ED0000000\",\"MACVersion\":\"1.1\","
	      "\"part_number\":\"P1\",\"serial_number\":\"EE0123AABBCCDD0127\"}\n"
	      "{\"DevEUI\":\"70b3d57ed0000002\",\"MACVersion\":\"1.0.3\",\"part_number\":\"P2\","
	      "\"serial_number\":\"EE0123AABBCCDD0128\"}\n"
	      "{\"DevEUI\":\"70B3D57ED0000003\",\"AppKey\":\"00112233445566778899AABBCCDDEEFF\"}\n"
	      "{\"DevEUI\":\"70B3D57ED0000004\",\"part_number\":\"P1\",\"serial_number\":\"EE01\"}\n",
	      f);
	fclose(f);
	struct se_table t = {0};
	int rejected = 0;
	log_level = LOG_LVL_ERROR - 1; /* the rejections below are expected */
	CHECK(se_parts_load(&t, parts, &k, NULL, &o, &rejected, err, sizeof err) == 0);
	CHECK(t.nparts == 1 && rejected == 3);
	rejected = 0;
	CHECK(se_devices_load(&t, devs, &rejected, err, sizeof err) == 0);
	CHECK(t.ndevs == 2 && rejected == 1);
	log_level = LOG_LVL_INFO;

	uint8_t dev[8], join[8], other[8], want[32], sn[9];
	unhex("70B3D57ED0000001", dev, 8);
	unhex("70B3D57ED0000000", join, 8);
	unhex("70B3D57ED0000009", other, 8);
	unhex("EE0123AABBCCDD0127", sn, 9);
	se_derive(parent, sn, want);
	struct js_root_keys rk;
	CHECK(se_root_key_lookup(&t, dev, join, &rk, err, sizeof err) == 0 && rk.has_nwk_key &&
	      memcmp(rk.nwk_key, want, 16) == 0 && memcmp(rk.app_key, want + 16, 16) == 0);
	CHECK(se_root_key_lookup(&t, dev, other, &rk, err, sizeof err) == -1 && strstr(err, "another JoinEUI"));
	unhex("70B3D57ED0000002", dev, 8);
	CHECK(se_root_key_lookup(&t, dev, join, &rk, err, sizeof err) == -1 && strstr(err, "\"P2\" is not in the parts"));
	unhex("70B3D57ED0000003", dev, 8);
	CHECK(se_root_key_lookup(&t, dev, join, &rk, err, sizeof err) == -1 && strstr(err, "not a secure-element"));
	se_table_free(&t);
	CHECK(se_parts_load(&t, "/nonexistent/parts", &k, NULL, &o, &rejected, err, sizeof err) == -1);
	unlink(parts);
	unlink(devs);
	rmdir(dir);
	kms_free(&k);
}

int main(void)
{
	test_se_derive();
	test_se_tables();
	test_b64();
	test_context();
	test_local();
	if (failures)
		fprintf(stderr, "test_kms: %d checks failed\n", failures);
	return failures != 0;
}
