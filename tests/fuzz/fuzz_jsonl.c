/* A JSON-lines record as the tools read it, then the shadow update checks: a line that passes
 * shadow_check_update is applied twice (create, then update) and its delta and rejection built. */
#include "jsonl.h"
#include "shadow_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jv req = jsonl_parse_object((const char *)data, size);
	if (!jv_is_valid(req)) {
		jv_free(req);
		return 0;
	}
	struct shadow_error err = {0};
	if (shadow_check_update(req, &err) != 0) {
		jv_free(shadow_rejection(req, &err, 1700000000));
		jv_free(req);
		return 0;
	}
	jv doc = jv_null();
	for (int i = 0; i < 2; i++) {
		jv accepted = jv_invalid(), delta = jv_invalid();
		if (shadow_apply(&doc, req, 1700000000 + i, &accepted, &delta, &err) != 0) {
			jv_free(shadow_rejection(req, &err, 1700000000));
			break;
		}
		jv_free(accepted);
		jv_free(delta);
	}
	jv_free(shadow_delta(doc, 1700000002));
	jv_free(doc);
	jv_free(req);
	return 0;
}
