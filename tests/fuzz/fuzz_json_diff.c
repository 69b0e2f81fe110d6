/* Differential: the project's own JSON fast paths against libjq's. For any input that passes
 * json_check, json_fast_parse must build the value jq's parser builds (or decline), and
 * json_out must print, byte for byte, what jv_dump_string prints, with json_out_len its length. */
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "json_fast.h"
#include "json_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_text(jv v)
{
	jv ref = jv_dump_string(jv_copy(v), 0);
	const char *rs = jv_string_value(ref);
	size_t rn = (size_t)jv_string_length_bytes(jv_copy(ref));
	struct jbuf b = {0};
	if (json_out_append(&b, v) != 0)
		abort();
	if (b.len != rn || memcmp(b.p, rs, rn) != 0 || json_out_len(v) != rn)
		abort();
	free(b.p);
	jv_free(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[128];
	if (json_check(data, size, 64, why, sizeof why) != 0)
		return 0;
	jv ref = jv_parse_sized((const char *)data, (int)size);
	if (!jv_is_valid(ref)) {
		jv_free(ref);
		return 0;
	}
	jv fast = json_fast_parse((const char *)data, size);
	if (jv_is_valid(fast)) {
		if (jv_get_kind(fast) != jv_get_kind(ref) || !jv_equal(jv_copy(fast), jv_copy(ref)))
			abort();
		same_text(fast);
	}
	same_text(ref);
	jv_free(fast);
	jv_free(ref);
	return 0;
}
