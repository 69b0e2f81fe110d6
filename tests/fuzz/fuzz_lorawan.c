/* LoRaWAN PHYPayloads: a join-request and a (decrypted) join-accept, and the accept laid out
 * again from what was parsed. */
#include "lorawan_frame.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lw_join_request jr;
	char err[128];
	(void)lw_parse_join_request(data, size, &jr, err, sizeof err);
	struct lw_join_accept ja;
	uint8_t mic[4], out[LW_JOIN_ACCEPT_MAX];
	memset(&ja, 0, sizeof ja);
	if (lw_parse_join_accept(data, size, &ja, mic) == 0) {
		size_t n = lw_join_accept_layout(&ja, out);
		if (n + 4 != size || memcmp(out + 1, data + 1, n - 1) != 0)
			__builtin_trap(); /* what parses lays out the same (MHDR: Major bits are not kept) */
	}
	return 0;
}
