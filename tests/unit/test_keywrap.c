/* RFC 3394 key wrap against the RFC's own vectors (section 4), KeyEnvelopes, YAML KEK keyrings. */
#include "hex.h"
#include "jsonl.h"
#include "kek_keyring.h"
#include "keywrap.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

static const struct {
	const char *sec, *kek, *data, *wrapped;
} rfc3394[] = {
	{"4.1", "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
	 "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
	{"4.2", "000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF",
	 "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"},
	{"4.3", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
	 "00112233445566778899AABBCCDDEEFF", "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"},
	{"4.4", "000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF0001020304050607",
	 "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"},
	{"4.5", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
	 "00112233445566778899AABBCCDDEEFF0001020304050607",
	 "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"},
	{"4.6", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
	 "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
	 "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
};

static void test_rfc3394(void)
{
	for (size_t i = 0; i < sizeof rfc3394 / sizeof rfc3394[0]; i++) {
		uint8_t kek[32], data[32], want[40], got[40], back[32];
		long kl = hex_decode(rfc3394[i].kek, kek, sizeof kek);
		long dl = hex_decode(rfc3394[i].data, data, sizeof data);
		long wl = hex_decode(rfc3394[i].wrapped, want, sizeof want);
		CHECK(kl > 0 && dl > 0 && wl == dl + 8);
		CHECK(keywrap_wrap(kek, (size_t)kl, data, (size_t)dl, got) == 0);
		if (memcmp(got, want, (size_t)wl) != 0) {
			fprintf(stderr, "RFC 3394 %s: wrap differs\n", rfc3394[i].sec);
			failures++;
		}
		CHECK(keywrap_unwrap(kek, (size_t)kl, want, (size_t)wl, back) == 0);
		CHECK(memcmp(back, data, (size_t)dl) == 0);
		/* any altered bit fails the integrity check */
		want[wl - 1] ^= 1;
		CHECK(keywrap_unwrap(kek, (size_t)kl, want, (size_t)wl, back) == -1);
		want[wl - 1] ^= 1;
		kek[0] ^= 0x80;
		CHECK(keywrap_unwrap(kek, (size_t)kl, want, (size_t)wl, back) == -1);
	}
	uint8_t k[16] = {0}, o[40];
	CHECK(keywrap_wrap(k, 15, k, 16, o) == -1);
	CHECK(keywrap_wrap(k, 16, k, 12, o) == -1);
	CHECK(keywrap_wrap(k, 16, k, 8, o) == -1);
	CHECK(keywrap_unwrap(k, 16, o, 16, o) == -1);
	CHECK(keywrap_unwrap(k, 16, o, 25, o) == -1);
}

static void test_envelope(void)
{
	static const char yaml[] = "# KEKs by label\n"
	                           "ns-000013: 000102030405060708090A0B0C0D0E0F\n"
	                           "as.example: \"0x000102030405060708090a0b0c0d0e0f1011121314151617\"\n";
	char err[256];
	struct kek_keyring ring;
	CHECK(kek_keyring_parse(&ring, yaml, strlen(yaml), "t.yml", err, sizeof err) == 0);
	CHECK(ring.n == 2);
	const struct kek *k = kek_find(&ring, "ns-000013");
	CHECK(k && k->len == 16);
	CHECK(kek_find(&ring, "as.example") && kek_find(&ring, "as.example")->len == 24);
	CHECK(kek_find(&ring, "nope") == NULL);

	uint8_t key[16], back[16];
	hex_decode("00112233445566778899AABBCCDDEEFF", key, 16);
	jv env = keyenv_build("ns-000013", k, key);
	CHECK(strcmp(jl_str(env, "KEKLabel"), "ns-000013") == 0);
	/* the RFC 3394 4.1 vector again, through the envelope */
	CHECK(strcmp(jl_str(env, "AESKey"), "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5") == 0);
	CHECK(keyenv_parse(env, &ring, back, err, sizeof err) == 0 && memcmp(back, key, 16) == 0);
	CHECK(keyenv_parse(env, NULL, back, err, sizeof err) == -1 && strstr(err, "unknown KEKLabel"));
	jv_free(env);

	env = keyenv_build(NULL, NULL, key);
	CHECK(strcmp(jl_str(env, "KEKLabel"), "") == 0);
	CHECK(strcmp(jl_str(env, "AESKey"), "00112233445566778899AABBCCDDEEFF") == 0);
	CHECK(keyenv_parse(env, NULL, back, err, sizeof err) == 0 && memcmp(back, key, 16) == 0);
	jv_free(env);

	/* the right label with an altered wrapped key, a short key, a wrong-shaped envelope */
	env = jv_parse("{\"KEKLabel\":\"ns-000013\",\"AESKey\":\"1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe4\"}");
	CHECK(keyenv_parse(env, &ring, back, err, sizeof err) == -1 && strstr(err, "does not unwrap"));
	jv_free(env);
	env = jv_parse("{\"KEKLabel\":\"ns-000013\",\"AESKey\":\"1FA68B0A\"}");
	CHECK(keyenv_parse(env, &ring, back, err, sizeof err) == -1);
	jv_free(env);
	env = jv_parse("{\"KEKLabel\":\"\",\"AESKey\":\"zz\"}");
	CHECK(keyenv_parse(env, &ring, back, err, sizeof err) == -1);
	jv_free(env);
	env = jv_parse("[1]");
	CHECK(keyenv_parse(env, &ring, back, err, sizeof err) == -1);
	jv_free(env);
	kek_keyring_free(&ring);

	static const char nested[] = "keks:\n  a: 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n";
	CHECK(kek_keyring_parse(&ring, nested, strlen(nested), "n.yml", err, sizeof err) == 0 && ring.n == 1 &&
	      kek_find(&ring, "a")->len == 32);
	kek_keyring_free(&ring);
	static const char bad1[] = "a: 0011\n";
	CHECK(kek_keyring_parse(&ring, bad1, strlen(bad1), "b.yml", err, sizeof err) == -1 &&
	      strstr(err, "b.yml:1:"));
	static const char bad2[] = "a: 000102030405060708090A0B0C0D0E0F\na: 000102030405060708090A0B0C0D0E0F\n";
	CHECK(kek_keyring_parse(&ring, bad2, strlen(bad2), "b.yml", err, sizeof err) == -1 && strstr(err, "twice"));
	static const char bad3[] = "a: [1, 2\n";
	CHECK(kek_keyring_parse(&ring, bad3, strlen(bad3), "b.yml", err, sizeof err) == -1 && strstr(err, "YAML"));
	static const char bad4[] = "- 1\n";
	CHECK(kek_keyring_parse(&ring, bad4, strlen(bad4), "b.yml", err, sizeof err) == -1);
}

int main(void)
{
	test_rfc3394();
	test_envelope();
	if (failures)
		fprintf(stderr, "test_keywrap: %d checks failed\n", failures);
	return failures != 0;
}
