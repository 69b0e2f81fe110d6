/* The YAML keyring (kms-wrap, ljs-join): labels to hex keys. */
#include "kek_keyring.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kek_keyring ring;
	char err[256];
	memset(&ring, 0, sizeof ring);
	if (kek_keyring_parse(&ring, (const char *)data, size, "fuzz.yml", err, sizeof err) == 0) {
		for (size_t i = 0; i < ring.n; i++)
			if (kek_find(&ring, ring.keks[i].label) == NULL)
				__builtin_trap(); /* every loaded label is found */
		kek_keyring_free(&ring);
	}
	return 0;
}
