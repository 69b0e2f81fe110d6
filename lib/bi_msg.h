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

/* The fields a Join Server reads of a message, found in one pass, instead of one object lookup
 * (a jv string and a hash each) per read. */
enum bi_field {
	BI_F_PROTOCOL_VERSION,
	BI_F_MESSAGE_TYPE,
	BI_F_SENDER_ID,
	BI_F_RECEIVER_ID,
	BI_F_TRANSACTION_ID,
	BI_F_SENDER_TOKEN,
	BI_F_RECEIVER_TOKEN,
	BI_F_SENDER_NSID,
	BI_F_MAC_VERSION,
	BI_F_PHY_PAYLOAD,
	BI_F_DEV_EUI,
	BI_F_DEV_ADDR,
	BI_F_DL_SETTINGS,
	BI_F_RX_DELAY,
	BI_F_CFLIST,
	BI_NFIELDS
};
struct bi_val {
	jv_kind kind;    /* JV_KIND_INVALID: absent */
	const char *str; /* a string's bytes (NUL-terminated once the view is complete) */
	size_t len;
	double num;
	jv v; /* the value of a view made from a jv (borrowed), else jv_invalid() */
};
struct bi_view {
	struct bi_val f[BI_NFIELDS];
	char *text;         /* a text view: where its strings end, to be NUL-terminated */
	size_t ends[BI_NFIELDS];
	unsigned n_ends;
};

/* A view of an object (borrowed: it must outlive the view). */
void bi_view_jv(struct bi_view *m, jv msg);
/* A view straight from JSON text that json_check found well-formed: 0, or -1 when the text
 * needs jq's decoding to be read as jq would (not a flat object; a field read here that holds a
 * backslash escape, a byte outside printable ASCII, an object or array; a field given twice).
 * Nothing is changed in text until bi_view_text_finish, which NUL-terminates the strings. */
int bi_view_text(struct bi_view *m, char *text, size_t len);
void bi_view_text_finish(struct bi_view *m);

/* Readers over a view, with the semantics of the jv ones above: a string or NULL; present (any
 * kind, null included); a number or def. */
const char *bi_str(const struct bi_view *m, enum bi_field f);
int bi_has(const struct bi_view *m, enum bi_field f);
/* The field is the string s (usable before bi_view_text_finish). */
bool bi_eq(const struct bi_view *m, enum bi_field f, const char *s);
double bi_num(const struct bi_view *m, enum bi_field f, double def);
int bi_view_hex_uint(const struct bi_view *m, enum bi_field f, size_t n, uint64_t *v);
long bi_view_hex_var(const struct bi_view *m, enum bi_field f, uint8_t *out, size_t max);

/* The answer's header as JSON text, without the closing brace: what bi_answer builds, in the
 * same order (jq's: insertion), each value as jq prints it. 0, or -1 when memory ran out. */
struct jbuf;
int bi_answer_text(struct jbuf *b, const struct bi_view *m);
/* Append ,"Result":{"ResultCode":..,"Description":..} as bi_result sets it. 0 or -1. */
int bi_result_text(struct jbuf *b, enum bi_result r, const char *protocol_version, const char *desc);

#endif
