/* LwM2M content formats, decoded to and encoded from one shape: a flat JSON object that maps
 * resource paths (or resource-instance paths) to typed values, e.g.
 *   {"/3/0/9": 55, "/3/0/0": "Open Mobile Alliance", "/3/0/7/0": 3800, "/3/0/7/1": 5000}
 * Numbers, booleans and strings are typed from the object model; opaque values are base64
 * strings, object links "65535:0" strings, time integers (seconds).
 * A resource the model does not know keeps what the format says: TLV carries no type, so its
 * bytes become opaque (base64); text/plain stays a string; SenML, JSON and CBOR keep their own
 * number/string/boolean/bytes. To encode such a resource, the JSON kind decides (string,
 * whole number as integer, other number as float, boolean).
 * Decoders are pure functions of (ct, base, data, len): bounded, no global state but the
 * read-only object model. */
#ifndef LWM2M_CODEC_H
#define LWM2M_CODEC_H

#include "lwm2m_path.h"

#include <jv.h>
#include <stddef.h>
#include <stdint.h>

enum lwm2m_ct {
	LWM2M_CT_TEXT = 0,
	LWM2M_CT_LINK = 40,
	LWM2M_CT_OPAQUE = 42,
	LWM2M_CT_CBOR = 60,
	LWM2M_CT_SENML_JSON = 110,
	LWM2M_CT_SENML_CBOR = 112,
	LWM2M_CT_TLV = 11542,
	LWM2M_CT_JSON = 11543,      /* the old LwM2M 1.0 JSON */
	LWM2M_CT_LWM2M_CBOR = 11544,
	LWM2M_CT_NONE = 0xffff,
};

/* "tlv", "senml-json", "senml-cbor", "lwm2m-cbor", "json", "text", "opaque", "cbor", or a number. */
int lwm2m_ct_parse(const char *name);
const char *lwm2m_ct_name(int ct);

/* Decode a payload of content format ct that answers a request on base. Returns the flat object,
 * or jv_invalid_with_msg saying what is wrong (never aborts on hostile input). */
jv lwm2m_decode(int ct, const struct lwm2m_path *base, const uint8_t *data, size_t len);

/* Encode values (flat object as above, consumed) for a write/create on base in format ct.
 * Values are coerced to the resource type from the object model ("21.5" for a float is
 * refused, 1 for a boolean is refused: a clear message). *out is malloc'd. 0, or -1 with
 * *err set to a message (caller frees with free()). */
int lwm2m_encode(int ct, const struct lwm2m_path *base, jv values, uint8_t **out, size_t *len,
                 char **err);

#endif
