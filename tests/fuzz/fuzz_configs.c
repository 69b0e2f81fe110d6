/* The YAML (and JSON-lines) configuration files other than the KEK keyring: byte 0 picks the
 * loader, the rest is the file. 0: lwm2m-observe -c (paths and attributes per endpoint);
 * 1: lwm2m-listen -k (DTLS credentials, YAML or JSON lines); 2: ljs-join's interop.yml (sender
 * to CA file; the files named are read from the fuzzer's own directory, which holds ca.pem). */
#include "fuzz_common.h"
#include "js_http.h"
#include "lwm2m_security.h"
#include "observe_config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ca_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBajCCARCgAwIBAgIUXFhmYwS5aAJ17+jRzPCqB12oFcwwCgYIKoZIzj0EAwIw\n"
	"EjEQMA4GA1UEAxMHZnV6ei1jYTAgFw0yNjExMjMwMzQzNDFaGA8yMTI2MTAzMDAz\n"
	"NDM0MVowEjEQMA4GA1UEAxMHZnV6ei1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
	"A0IABMkp5FHK8vEliXnA5tRocr/SlrNCSwfXRvmSWAx2jI9MWCo1dBRqsECdVdDM\n"
	"TdTFFFEPTKFrboxom0e5Miqa4xijQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0P\n"
	"AQH/BAQDAgIEMB0GA1UdDgQWBBSDNRl0IoHuEeTgxtbQ9CeISx2rODAKBggqhkjO\n"
	"PQQDAgNIADBFAiAEzD3MLAJMKWQGgWE5HvjMrXepV0OwHbkJ9P8p/JP98AIhAOVG\n"
	"LDfNBB3n5PSM9sxO6W7LqxqEdloDYd5pwwkrulaN\n"
	"-----END CERTIFICATE-----\n";

static char dir[64], file[96], ca[96];

static void cleanup(void)
{
	unlink(file);
	unlink(ca);
	rmdir(dir);
}

static void setup(void)
{
	/* a CA file named "/dev/stdin" must not wait for input */
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0)
		abort();
	close(null);
	fuzz_tmpdir(dir, sizeof dir, "fuzz-configs");
	snprintf(file, sizeof file, "%s/cfg", dir);
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	FILE *f = fopen(ca, "w");
	if (!f || fputs(ca_pem, f) < 0 || fclose(f) != 0)
		abort();
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!*file)
		setup();
	if (size < 1)
		return 0;
	int which = data[0] % 3;
	data++;
	size--;
	/* interop.yml names files: only names inside our directory (no slash, no escapes) */
	if (which == 2 && (memchr(data, '/', size) || memchr(data, '\\', size)))
		return 0;
	FILE *f = fopen(file, "w");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	char err[512];
	if (which == 0) {
		struct observe_config cfg;
		char *e = NULL;
		if (observe_config_default(&cfg) != 0)
			abort();
		if (observe_config_load(&cfg, file, &e) == 0)
			(void)observe_config_rule(&cfg, "lamp-1");
		free(e);
		observe_config_free(&cfg);
	} else if (which == 1) {
		struct lwm2m_security *s = lwm2m_security_load(file, err, sizeof err);
		if (s) {
			(void)lwm2m_security_by_ep(s, "dev1");
			lwm2m_security_free(s);
		}
	} else {
		struct js_ca_map *m = js_ca_map_load(file, err, sizeof err);
		if (m) {
			size_t n;
			free(js_ca_map_pem(m, &n));
			js_ca_map_free(m);
		}
	}
	return 0;
}
