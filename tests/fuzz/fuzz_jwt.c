/* Packet Broker bearer tokens: the JWT parser and verifier against a fixed JWKS (EC P-256, RSA,
 * Ed25519 public keys; the seeds are tokens those keys signed, valid at NOW). */
#include "js_jwt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1800000000

static const char jwks[] =
	"{\"keys\":[{\"kty\":\"EC\",\"x\":\"MOgeREkiC-x2CNmm7SEso5w7kkYdrTiCkvWUl7VduSk\",\"y\":\"y"
	"sXxZ1_cfusENvID93eGyAoSs3eAdojZv83vrAL7mZU\",\"crv\":\"P-256\",\"kid\":\"ec-1\"},{\"kty\":"
	"\"RSA\",\"n\":\"tAoCHQvVgZEdCih6GDGp4osodF48Iqmj1r6oHnJmyEw8D3xAzdTDg_ixTvgk9fObkVido0-rgn"
	"1Mstd43LK9l-w-J9w3Sj977ZjcwerxgPkHtRaAokfWdraUmpiFJ4Sqb8c9NKh_SwYTNBpqkJm97Pt161pZ0jqnszbx"
	"U3O16NNZ58pwnkZ0ECRmjswmbwRmD0yZlmXgcAux-jS4bKe787mMwNnM15UHyEidVuJRl0vlPzvpthy6SohPD212A_"
	"iR6sZ0wdeWJ7GYdIzf8D6pt-plAoXiVDhH3QHTnoHqqhjDzbX1j9EwI-7WMFdVVMmnzEuxYJzn0ohY_kqXqelWDQ\""
	",\"e\":\"AQAB\",\"kid\":\"rsa-1\"},{\"crv\":\"Ed25519\",\"x\":\"Y9yMB4NgAZ3IvxLOUzWhGLFrC7"
	"rA9Annit6JjmD0Ijc\",\"kty\":\"OKP\",\"kid\":\"ed-1\"}]}";

static struct js_jwt *jwt;
static char path[] = "/tmp/fuzz-jwks-XXXXXX";

static void rm_jwks(void)
{
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[256];
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, jwks, sizeof jwks - 1) != (ssize_t)(sizeof jwks - 1) || close(fd) != 0) {
		perror("fuzz_jwt: JWKS file");
		exit(1);
	}
	atexit(rm_jwks);
	jwt = js_jwt_new("https://iam.packetbroker.test", "ljs", path, err, sizeof err);
	/* an unknown kid re-reads the file at most once a minute: keep it there */
	if (!jwt) {
		fprintf(stderr, "fuzz_jwt: %s\n", err);
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *token = malloc(size + 1), err[256];
	if (!token)
		return 0;
	memcpy(token, data, size);
	token[size] = 0;
	(void)js_jwt_verify_at(jwt, token, NOW, err, sizeof err);
	free(token);
	return 0;
}
