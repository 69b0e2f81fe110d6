/* Shared between the content-format codecs (lib/lwm2m_*.c); not a public interface. */
#ifndef LWM2M_CODEC_INT_H
#define LWM2M_CODEC_INT_H

#include "lwm2m_codec.h"
#include "objmodel.h"
#include "obuf.h"

#include <stdbool.h>

/* Decoders refuse payloads larger than this, and nesting deeper than the LwM2M tree allows. */
#define CODEC_MAX_PAYLOAD (16u << 20)
#define CODEC_MAX_DEPTH 16

/* A value of the flat object, checked and converted to its LwM2M type, ready for encoding. */
struct codec_val {
	struct lwm2m_path path;
	uint8_t type;  /* enum lwm2m_type */
	union {
		int64_t i;     /* INTEGER, TIME */
		uint64_t u;    /* UNSIGNED */
		double f;      /* FLOAT */
		bool b;        /* BOOLEAN */
		uint16_t lnk[2]; /* OBJLNK */
	} v;
	uint8_t *bytes; /* STRING, CORELNK (UTF-8), OPAQUE (raw); malloc'd */
	size_t nbytes;
};

struct codec_vals {
	struct codec_val *v; /* sorted by path */
	size_t n;
	/* The name prefix for formats with a base name: base itself when every value is below it,
	 * else base's parent. Names are then never empty. */
	struct lwm2m_path prefix;
};

/* Errors: jv_invalid_with_msg(fmt...). */
jv codec_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* *err = malloc'd message; returns -1. */
int codec_seterr(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "/3/0/9" into a PATHSTR buffer. */
#define PATHSTR(p, buf) lwm2m_path_str((p), (buf), sizeof(buf))
enum lwm2m_type codec_res_type(const struct lwm2m_path *p, bool *known);
/* Store v at path p in the flat object o. Checks that p names a resource or resource instance
 * covered by base; on failure frees o and v and returns the error. */
jv codec_store(jv o, const struct lwm2m_path *base, const struct lwm2m_path *p, jv v,
               const char *fmt_name);
/* The same, for formats where a path may appear only once (TLV, LwM2M CBOR). */
jv codec_store_once(jv o, const struct lwm2m_path *base, const struct lwm2m_path *p, jv v,
                    const char *fmt_name);
/* Parse an absolute name ("/3/0/9", tolerating one trailing '/') into p; 0 or -1. */
int codec_name_to_path(const char *s, size_t n, struct lwm2m_path *p);
/* Relative name of p below prefix: "9" or "7/0" ("/3/0/9" when prefix is root). */
void codec_rel_name(const struct lwm2m_path *prefix, const struct lwm2m_path *p, char *buf,
                    size_t size);

/* base64 (RFC 4648 standard alphabet, padded) of data, as a jv string. */
jv codec_b64(const uint8_t *data, size_t n);
/* url-safe alphabet without padding (SenML "vd"), malloc'd NUL-terminated. */
char *codec_b64url(const uint8_t *data, size_t n);
/* Decode base64 in either alphabet, padding optional. malloc'd *out (may be NULL when *n == 0).
 * 0, or -1 if not base64. */
int codec_unb64(const char *s, size_t len, uint8_t **out, size_t *n);

/* Values from self-describing formats (SenML, JSON, CBOR), typed by the model where that
 * is unambiguous: numbers stay numbers, a 0/1 for a boolean resource becomes a boolean, bytes
 * become base64, an object link "3:0". */
jv codec_from_number(const struct lwm2m_path *p, double d);
jv codec_from_text(const struct lwm2m_path *p, const char *s, size_t n);
jv codec_from_bytes(const struct lwm2m_path *p, const uint8_t *b, size_t n);
jv codec_from_bool(const struct lwm2m_path *p, bool b);

/* Per-format decoders and encoders. Decoders take the base of the request (len 0..4). */
jv lwm2m_tlv_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len);
int lwm2m_tlv_encode(const struct lwm2m_path *base, const struct codec_vals *vals, struct obuf *o,
                     char **err);
jv lwm2m_text_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len);
int lwm2m_text_encode(const struct lwm2m_path *base, const struct codec_vals *vals, struct obuf *o,
                      char **err);
jv lwm2m_opaque_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len);
int lwm2m_opaque_encode(const struct lwm2m_path *base, const struct codec_vals *vals,
                        struct obuf *o, char **err);
jv lwm2m_senml_json_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len);
int lwm2m_senml_json_encode(const struct lwm2m_path *base, const struct codec_vals *vals,
                            struct obuf *o, char **err);
jv lwm2m_senml_cbor_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len);
int lwm2m_senml_cbor_encode(const struct lwm2m_path *base, const struct codec_vals *vals,
                            struct obuf *o, char **err);
jv lwm2m_cbor_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len);
int lwm2m_cbor_encode(const struct lwm2m_path *base, const struct codec_vals *vals, struct obuf *o,
                      char **err);
jv lwm2m_plain_cbor_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len);
int lwm2m_plain_cbor_encode(const struct lwm2m_path *base, const struct codec_vals *vals,
                            struct obuf *o, char **err);
jv lwm2m_oldjson_decode(const struct lwm2m_path *base, const uint8_t *data, size_t len);
int lwm2m_oldjson_encode(const struct lwm2m_path *base, const struct codec_vals *vals,
                         struct obuf *o, char **err);

/* SenML records (JSON and CBOR share the resolution of names, base time and values). */
enum senml_kind { SENML_NONE, SENML_NUM, SENML_STR, SENML_BOOL, SENML_DATA, SENML_OBJLNK };
struct senml_rec {
	bool has_bn, has_n, has_bt;
	const char *bn, *n;
	size_t bnlen, nlen;
	double bt, t;
	int nvals; /* value fields seen; exactly one is required */
	enum senml_kind kind;
	double num;
	bool b;
	const uint8_t *s; /* STR, OBJLNK (text), DATA (bytes) */
	size_t slen;
};
struct senml_state {
	const struct lwm2m_path *base;
	const char *fmt;
	char bn[LWM2M_PATH_STRLEN + 8];
	size_t bnlen;
	double bt;
	int idx;
	jv times; /* path -> time of the value kept; the newest of a pack wins */
	jv out;
};
void senml_begin(struct senml_state *st, const struct lwm2m_path *base, const char *fmt);
/* Resolve and store one record; 0, or -1 when st->out became the error. */
int senml_record(struct senml_state *st, const struct senml_rec *r);
/* Fail with a message about record st->idx (frees the output). */
int senml_fail(struct senml_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
jv senml_end(struct senml_state *st);
/* The name fields of record i of an encoding: bn (first record only, else "") and n. */
void senml_names(const struct codec_vals *vs, size_t i, char *bn, size_t bnsize, char *n,
                 size_t nsize);

/* A single value as text (text/plain and names in tests): "55", "21.5", "1", "3:0". */
void codec_val_text(const struct codec_val *v, struct obuf *o);

#endif
