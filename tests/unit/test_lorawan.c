/* LoRaWAN join crypto and frames against published vectors: RFC 4493 (AES-CMAC), The Things
 * Stack's pkg/crypto tests and ChirpStack's lrwn/src/keys.rs tests. */
#include "hex.h"
#include "js_cryptod.h"
#include "js_devices.h"
#include "lorawan_crypto.h"
#include "lorawan_frame.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int failures, checks;
#define CHECK(cond)                                                                          \
	do {                                                                                 \
		checks++;                                                                    \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                          \
		}                                                                            \
	} while (0)

static int eq_hex(const uint8_t *got, size_t n, const char *want)
{
	uint8_t w[64];
	if (hex_decode(want, w, sizeof w) != (long)n)
		return 0;
	if (memcmp(got, w, n) != 0) {
		char g[129];
		hex_encode(got, n, g);
		fprintf(stderr, "  got  %s\n  want %s\n", g, want);
		return 0;
	}
	return 1;
}

static void test_cmac_rfc4493(void)
{
	uint8_t key[16], msg[64], tag[16];
	hex_decode("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
	hex_decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
	           "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", msg, 64);
	lw_aes_cmac(key, msg, 0, tag);
	CHECK(eq_hex(tag, 16, "bb1d6929e95937287fa37d129b756746"));
	lw_aes_cmac(key, msg, 16, tag);
	CHECK(eq_hex(tag, 16, "070a16b46b4d4144f79bdd9dd04a287c"));
	lw_aes_cmac(key, msg, 40, tag);
	CHECK(eq_hex(tag, 16, "dfa66747de9ae63030ca32611497c827"));
	lw_aes_cmac(key, msg, 64, tag);
	CHECK(eq_hex(tag, 16, "51f0bebf7e3b9d92fc49741779363cfe"));
}

/* The Things Stack, pkg/crypto/key_derivation_test.go */
static void test_tts_derivation(void)
{
	uint8_t key[16], out[16];
	hex_decode("BEC499C69E9C939E413B663961636C61", key, 16);
	uint16_t dn = 0x7369;
	uint32_t nid = 0x020101, jn = 0xAE3B1C;
	uint64_t join_eui = 0x0000001223224242ULL, dev_eui = 0x0042004213424341ULL;

	lw_derive_skey(key, LW_KT_APPSKEY, jn, join_eui, dn, out);
	CHECK(eq_hex(out, 16, "B035CCE24E4A040EB5CECBF21724412D"));
	lw_derive_skey(key, LW_KT_NWKSKEY, jn, join_eui, dn, out);
	CHECK(eq_hex(out, 16, "379084E7CE22FF191BFF4B77536F2AA3"));
	lw_derive_skey(key, LW_KT_SNWKSINTKEY, jn, join_eui, dn, out);
	CHECK(eq_hex(out, 16, "63C59309D53485BC5164DBF71627AEB9"));
	lw_derive_skey(key, LW_KT_NWKSENCKEY, jn, join_eui, dn, out);
	CHECK(eq_hex(out, 16, "CE07A009A3970AC0519A099ED53E550B"));
	lw_derive_legacy(key, LW_KT_APPSKEY, jn, nid, dn, out);
	CHECK(eq_hex(out, 16, "8C1E0543A229088DE6F84E74BB46BD62"));
	lw_derive_legacy(key, LW_KT_NWKSKEY, jn, nid, dn, out);
	CHECK(eq_hex(out, 16, "0DB924EE6AF90698E05FC7CE48303C01"));
	lw_derive_js_key(key, LW_KT_JSINTKEY, dev_eui, out);
	CHECK(eq_hex(out, 16, "CB8E9EE114C3FB5CE472A5AA13AB1855"));
	lw_derive_js_key(key, LW_KT_JSENCKEY, dev_eui, out);
	CHECK(eq_hex(out, 16, "BB711EEFB9829B4A75866F8616BACD6D"));
}

/* The Things Stack, pkg/crypto/join_messages_test.go */
static void test_tts_join_messages(void)
{
	uint8_t key[16], frame[23], mic[4], msg[32], enc[32];
	memset(key, 1, 16);
	hex_decode("00" "0807060504030201" "0807060504030201" "0201" "00000000", frame, 23);
	lw_join_request_mic(key, frame, mic);
	CHECK(eq_hex(mic, 4, "e6e10c55"));

	struct lw_join_request jr;
	char err[128];
	memcpy(frame + 19, mic, 4);
	CHECK(lw_parse_join_request(frame, 23, &jr, err, sizeof err) == 0);
	CHECK(jr.join_eui == 0x0102030405060708ULL && jr.dev_eui == 0x0102030405060708ULL);
	CHECK(jr.dev_nonce == 0x0102 && memcmp(jr.mic, mic, 4) == 0);
	CHECK(lw_parse_join_request(frame, 22, &jr, err, sizeof err) == -1);
	frame[0] = 0x20;
	CHECK(lw_parse_join_request(frame, 23, &jr, err, sizeof err) == -1);
	frame[0] = 0x01;
	CHECK(lw_parse_join_request(frame, 23, &jr, err, sizeof err) == -1);

	struct lw_join_accept ja = {.join_nonce = 0x010203, .net_id = 0x010203, .dev_addr = 0x01020304,
	                            .dl_settings = 0, .rx_delay = 1};
	size_t n = lw_join_accept_layout(&ja, msg);
	CHECK(n == 13);
	CHECK(eq_hex(msg, 13, "20030201030201040302010001"));
	lw_join_accept_mic_legacy(key, msg, n, mic);
	CHECK(eq_hex(mic, 4, "32f54ab3"));
	memcpy(msg + n, mic, 4);
	CHECK(lw_join_accept_encrypt(key, msg + 1, 16, enc) == 0);
	CHECK(eq_hex(enc, 16, "c9fbb259e11649096a568a9e3b7117c3"));
	uint8_t dec[32];
	CHECK(lw_join_accept_decrypt(key, enc, 16, dec) == 0);
	CHECK(memcmp(dec, msg + 1, 16) == 0);
	CHECK(lw_join_accept_encrypt(key, msg, 17, enc) == -1);

	lw_join_accept_mic_11(key, 0xff, 0x0807060504030201ULL, 0x0201, msg, 13, mic);
	CHECK(eq_hex(mic, 4, "48e9be5f"));

	/* a decrypted accept parses back */
	uint8_t full[17];
	full[0] = msg[0];
	memcpy(full + 1, dec, 16);
	struct lw_join_accept back;
	uint8_t bmic[4];
	CHECK(lw_parse_join_accept(full, 17, &back, bmic) == 0);
	CHECK(back.join_nonce == 0x010203 && back.dev_addr == 0x01020304 && back.rx_delay == 1);
	CHECK(eq_hex(bmic, 4, "32f54ab3"));
}

/* ChirpStack, lrwn/src/keys.rs */
static void test_chirpstack_keys(void)
{
	uint8_t nwk_key[16], app_key[16] = {0}, out[16];
	hex_decode("01020304050607080102030405060708", nwk_key, 16);
	uint64_t join_eui = 0x0807060504030201ULL;
	uint32_t jn = 65536, nid = 0x010203;
	uint16_t dn = 258;
	static const uint8_t nwks[] = {223, 83, 195, 95, 48, 52, 204, 206, 208, 255, 53, 76, 112, 222, 4, 223};
	static const uint8_t apps10[] = {146, 123, 156, 145, 17, 131, 207, 254, 76, 178, 255, 75, 117, 84, 95, 109};
	static const uint8_t apps11[] = {1, 98, 18, 21, 209, 202, 8, 254, 191, 12, 96, 44, 194, 173, 144, 250};
	static const uint8_t fnwk[] = {83, 127, 138, 174, 137, 108, 121, 224, 21, 209, 2, 208, 98, 134, 53, 78};
	static const uint8_t snwk[] = {88, 148, 152, 153, 48, 146, 207, 219, 95, 210, 224, 42, 199, 81, 11, 241};
	static const uint8_t nenc[] = {152, 152, 40, 60, 79, 102, 235, 108, 111, 213, 22, 88, 130, 4, 108, 64};

	lw_derive_legacy(nwk_key, LW_KT_NWKSKEY, jn, nid, dn, out);
	CHECK(memcmp(out, nwks, 16) == 0);
	lw_derive_legacy(nwk_key, LW_KT_APPSKEY, jn, nid, dn, out);
	CHECK(memcmp(out, apps10, 16) == 0);
	lw_derive_skey(app_key, LW_KT_APPSKEY, jn, join_eui, dn, out);
	CHECK(memcmp(out, apps11, 16) == 0);
	lw_derive_skey(nwk_key, LW_KT_NWKSKEY, jn, join_eui, dn, out);
	CHECK(memcmp(out, fnwk, 16) == 0);
	lw_derive_skey(nwk_key, LW_KT_SNWKSINTKEY, jn, join_eui, dn, out);
	CHECK(memcmp(out, snwk, 16) == 0);
	lw_derive_skey(nwk_key, LW_KT_NWKSENCKEY, jn, join_eui, dn, out);
	CHECK(memcmp(out, nenc, 16) == 0);
}

/* The crypto co-process protocol: a server thread over a Unix socket answers what the local
 * crypto answers, and refuses root keys. */
static int test_lookup(void *ctx, const uint8_t dev_eui[8], const uint8_t join_eui[8], struct js_root_keys *out,
                       char *err, size_t errlen)
{
	(void)ctx;
	(void)join_eui;
	if (js_be64(dev_eui) != 0x0102030405060708ULL) {
		snprintf(err, errlen, "unknown device");
		return -1;
	}
	memset(out, 0, sizeof *out);
	memset(out->app_key, 1, 16);
	memset(out->nwk_key, 2, 16);
	out->has_nwk_key = 1;
	return 0;
}

static int listen_fd;

static void *serve_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++) {
		int c = accept(listen_fd, NULL, NULL);
		if (c < 0)
			return NULL;
		js_cryptod_serve(c, c, test_lookup, NULL, 0, NULL);
		close(c);
	}
	return NULL;
}

static void test_cryptod(void)
{
	char path[] = "/tmp/test_lorawan.XXXXXX", sock[128], err[200];
	CHECK(mkdtemp(path) != NULL);
	snprintf(sock, sizeof sock, "%s/s", path);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, sock);
	listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(listen_fd, 4) == 0);
	pthread_t t;
	pthread_create(&t, NULL, serve_thread, NULL);
	char spec[160];
	snprintf(spec, sizeof spec, "unix:%s", sock);
	struct js_crypto *remote = js_crypto_remote(spec, err, sizeof err);
	struct js_crypto *local = js_crypto_local(test_lookup, NULL);
	CHECK(remote != NULL);

	for (int mac = LW_MAC_1_0_3; remote && mac <= LW_MAC_1_1; mac += LW_MAC_1_1 - LW_MAC_1_0_3) {
		struct js_join_in in = {.dev_eui = 0x0102030405060708ULL, .join_eui = 0x1112131415161718ULL, .mac = mac,
		                        .dev_nonce = 0x0102, .join_nonce = 7, .net_id = 0x000013, .dev_addr = 0x26011234,
		                        .dl_settings = mac >= LW_MAC_1_1 ? 0x80 : 0, .rx_delay = 1, .join_req_type = 0xFF};
		uint8_t key[16];
		memset(key, mac >= LW_MAC_1_1 ? 2 : 1, 16);
		in.phy[0] = 0;
		lw_put_le(in.phy + 1, in.join_eui, 8);
		lw_put_le(in.phy + 9, in.dev_eui, 8);
		lw_put_le(in.phy + 17, in.dev_nonce, 2);
		lw_join_request_mic(key, in.phy, in.phy + 19);
		CHECK(js_crypto_check_mic(remote, &in, err, sizeof err) == JS_CRYPTO_OK);
		in.phy[22] ^= 1;
		CHECK(js_crypto_check_mic(remote, &in, err, sizeof err) == JS_CRYPTO_MIC);
		in.phy[22] ^= 1;
		struct js_session_keys kr, kl;
		uint8_t pr[33], pl[33];
		size_t nr = 0, nl = 0;
		CHECK(js_crypto_join_accept(remote, &in, &kr, pr, &nr, err, sizeof err) == JS_CRYPTO_OK);
		CHECK(js_crypto_join_accept(local, &in, &kl, pl, &nl, err, sizeof err) == JS_CRYPTO_OK);
		CHECK(nr == 17 && nr == nl && memcmp(pr, pl, nr) == 0);
		CHECK(kr.v11 == (mac >= LW_MAC_1_1) && memcmp(&kr, &kl, sizeof kr) == 0);
		in.dev_eui++;
		CHECK(js_crypto_check_mic(remote, &in, err, sizeof err) == JS_CRYPTO_UNKNOWN);
	}
	js_crypto_free(remote);

	/* a raw client asks for root keys: refused, and nothing in the answer looks like a key */
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&sa, sizeof sa) == 0);
	const char *req = "{\"id\":9,\"op\":\"root-keys\",\"DevEUI\":\"0102030405060708\",\"JoinEUI\":\"1112131415161718\"}\n"
	                  "not json\n";
	CHECK(write(c, req, strlen(req)) == (ssize_t)strlen(req));
	shutdown(c, SHUT_WR);
	char buf[1024] = {0};
	size_t got = 0;
	ssize_t n;
	while ((n = read(c, buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	CHECK(strstr(buf, "\"id\":9") && strstr(buf, "\"code\":\"Refused\""));
	CHECK(strstr(buf, "01010101010101010101010101010101") == NULL);
	CHECK(strstr(buf, "MalformedRequest") != NULL);
	close(c);
	pthread_join(t, NULL);
	js_crypto_free(local);
	close(listen_fd);
	unlink(sock);
	rmdir(path);
}

int main(void)
{
	test_cmac_rfc4493();
	test_tts_derivation();
	test_tts_join_messages();
	test_chirpstack_keys();
	test_cryptod();
	if (failures) {
		fprintf(stderr, "test_lorawan: %d of %d checks failed\n", failures, checks);
		return 1;
	}
	printf("test_lorawan: %d checks passed\n", checks);
	return 0;
}
