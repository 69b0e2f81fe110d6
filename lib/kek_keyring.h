/* Key-encryption keys by label, from a YAML keyring: a mapping of label to hex key
 * (16, 24 or 32 bytes), e.g.
 *     ns-000013: 000102030405060708090A0B0C0D0E0F
 * A top-level `keks:` mapping holding the same is accepted too. */
#ifndef KEK_KEYRING_H
#define KEK_KEYRING_H

#include <stddef.h>
#include <stdint.h>

struct kek {
	char *label;
	uint8_t key[32];
	size_t len;
};

struct kek_keyring {
	struct kek *keks;
	size_t n;
};

/* Load path into *ring (which it overwrites). 0, or -1 with a reason in err (file, line). */
int kek_keyring_load(struct kek_keyring *ring, const char *path, char *err, size_t errlen);
/* Parse YAML text already in memory; name is used in messages. */
int kek_keyring_parse(struct kek_keyring *ring, const char *text, size_t len, const char *name,
                      char *err, size_t errlen);
const struct kek *kek_find(const struct kek_keyring *ring, const char *label);
/* Wipe and free the keys. */
void kek_keyring_free(struct kek_keyring *ring);

#endif
