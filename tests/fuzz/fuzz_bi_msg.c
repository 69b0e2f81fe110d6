/* LoRaWAN Backend Interfaces messages as ljs-join reads them: the JSON line, the answer header,
 * a Result, and the hex field readers on the fields a JoinReq or a KeyEnvelope carries. */
#include "bi_msg.h"
#include "jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jv req = jsonl_parse_object((const char *)data, size);
	if (!jv_is_valid(req)) {
		jv_free(req);
		return 0;
	}
	const char *pv = jl_str(req, "ProtocolVersion");
	jv ans = bi_answer(req, "ErrorNotif");
	ans = bi_result(ans, BI_MALFORMED, pv ? pv : "1.0", "fuzz");
	jv_free(ans);
	uint8_t b[64];
	uint64_t u;
	(void)bi_hex_bytes(req, "MACVersion", b, 3);
	(void)bi_hex_bytes(req, "DevEUI", b, 8);
	(void)bi_hex_uint(req, "DevAddr", 4, &u);
	(void)bi_hex_uint(req, "SenderID", 3, &u);
	(void)bi_hex_uint(req, "ReceiverID", 8, &u);
	(void)bi_hex_var(req, "PHYPayload", b, sizeof b);
	(void)bi_hex_var(req, "SenderToken", b, 1);
	(void)bi_hex_var(req, "DLSettings", b, 0);
	jv_free(req);
	return 0;
}
