/* LoRaWAN Backend Interfaces 1.0 / 1.1 messages as JSON (libjq jv): the answer header (echo and
 * swap of the request's), ResultCodes, and field readers that accept hex in either case with an
 * optional 0x, as the specification and The Things Stack do. */
#ifndef BI_MSG_H
#define BI_MSG_H

#include <jv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bi_result {
	BI_SUCCESS,
	BI_MIC_FAILED,
	BI_UNKNOWN_DEVEUI,
	BI_ACTIVATION_DISALLOWED,
	BI_JOINREQ_FAILED,
	BI_MALFORMED, /* MalformedRequest (1.0) / MalformedMessage (1.1) */
	BI_UNKNOWN_SENDER,
	BI_OTHER,
};

/* The ResultCode text; MalformedRequest or MalformedMessage by protocol version. */
const char *bi_result_name(enum bi_result r, const char *protocol_version);

/* "JoinReq" -> "JoinAns", ...; NULL for a type that is not a request. */
const char *bi_answer_type(const char *req_type);

/* A new answer for req (borrowed): ProtocolVersion, TransactionID echoed; SenderID and ReceiverID
 * swapped; the request's SenderToken as ReceiverToken (and its ReceiverToken as SenderToken);
 * on 1.1 the request's SenderNSID as ReceiverNSID. MessageType from bi_answer_type, or ans_type. */
jv bi_answer(jv req, const char *ans_type);
/* Set Result {ResultCode, Description}; consumes and returns ans. */
jv bi_result(jv ans, enum bi_result r, const char *protocol_version, const char *desc);

/* Read hex fields of a message (borrowed). 0, or -1 when missing or malformed. */
int bi_hex_bytes(jv msg, const char *key, uint8_t *out, size_t n);
int bi_hex_uint(jv msg, const char *key, size_t n, uint64_t *v);
/* Variable length: the byte count, or -1; a missing field is -2. */
long bi_hex_var(jv msg, const char *key, uint8_t *out, size_t max);

/* Hex strings for answers (upper case, no prefix). */
jv bi_hex_jv(const uint8_t *b, size_t n);
jv bi_hex_uint_jv(uint64_t v, size_t n);
/* A KeyEnvelope holding a key in clear: {"KEKLabel":"","AESKey":"…"}. */
jv bi_clear_envelope(const uint8_t key[16]);

#endif
