/* lwm2m_decode for every content format. Input: byte 0 picks the format, byte 1 the base path
 * length (0-4), then two big-endian bytes per id; the rest is the payload. What decodes is
 * encoded back in the same format, so the encoders see the decoders' output shapes too. */
#include "lwm2m_codec.h"

#include <stdlib.h>

static const int cts[] = {LWM2M_CT_TEXT, LWM2M_CT_OPAQUE, LWM2M_CT_CBOR, LWM2M_CT_SENML_JSON,
                          LWM2M_CT_SENML_CBOR, LWM2M_CT_TLV, LWM2M_CT_JSON, LWM2M_CT_LWM2M_CBOR,
                          LWM2M_CT_LINK};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int ct = cts[data[0] % (sizeof cts / sizeof cts[0])];
	struct lwm2m_path base = {.len = data[1] % 5};
	data += 2;
	size -= 2;
	if (size < (size_t)base.len * 2)
		return 0;
	for (int i = 0; i < base.len; i++) {
		base.id[i] = (uint16_t)((data[0] << 8 | data[1]) % (LWM2M_ID_MAX + 1));
		data += 2;
		size -= 2;
	}
	jv v = lwm2m_decode(ct, &base, data, size);
	if (jv_is_valid(v)) {
		uint8_t *out = NULL;
		size_t len = 0;
		char *err = NULL;
		if (lwm2m_encode(ct, &base, v, &out, &len, &err) == 0)
			free(out);
		else
			free(err);
	} else {
		jv_free(v);
	}
	return 0;
}
